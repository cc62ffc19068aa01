//! Reads everything a diagnosis needs: the migrations folder, the target's
//! ledger and catalog, and the effects of every migration — found by
//! replaying the folder on a scratch database of the target's major (an
//! ephemeral container: the target itself is only read).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use sqlx::Connection;
use tracing::Instrument;

use crate::engine::diagnose::{Diagnosis, diagnose};
use crate::engine::effects::cache::{self, EffectsKey};
use crate::engine::effects::{Effects, replay, replay_split, split_point};
use crate::engine::variants::{explain, recorded_variants};
use crate::pg::sandbox::{Database, PgServer};
use crate::pg::target::Target;
use crate::source::catalog::{Catalog, CatalogOptions};
use crate::source::environment::Environment;
use crate::source::ledger::Ledger;
use crate::source::project::Project;
use crate::{Error, Result};

/// A project and a live database, read and diagnosed.
#[derive(Debug, Clone)]
pub struct Inspection {
    pub project: Project,
    pub ledger: Ledger,
    pub live: Catalog,
    pub effects: Effects,
    pub diagnosis: Diagnosis,
    /// The server's PostgreSQL major.
    pub major: u8,
    /// What the target's platform gives every new object (reproduced for the replay).
    pub environment: Environment,
}

/// Reads `target` and the migrations in `migrations`, and diagnoses them.
pub async fn inspect(
    target: &Target,
    migrations: &Path,
    options: &CatalogOptions,
) -> Result<Inspection> {
    let project = Project::load(migrations)?;
    let reading = tracing::info_span!(
        target: "phantom_sync::progress",
        "inspect",
        task = %format!("reading {target}: ledger, schema, environment")
    );
    let (mut conn, major, ledger, live, environment, key) = async {
        let mut conn = target.connect().await?;
        let major = server_major(&mut conn).await?;
        crate::pg::sandbox::image::check_major(major)?;
        let environment = Environment::capture(&mut conn).await?;
        let key = EffectsKey::new(&project, major, options, &environment.fingerprint());
        // A replay will need a scratch server: it starts while the ledger
        // and the catalog are read.
        let warm_up = async {
            if !effects_at_hand(&key) {
                PgServer::shared(major).await?;
            }
            Ok::<_, Error>(())
        };
        let read = async {
            let ledger = Ledger::read(&mut conn).await?;
            let live = Catalog::introspect(&mut conn, options).await?;
            Ok::<_, Error>((ledger, live))
        };
        let (read, warmed) = tokio::join!(read, warm_up);
        let (ledger, live) = read?;
        warmed?;
        Ok::<_, Error>((conn, major, ledger, live, environment, key))
    }
    .instrument(reading)
    .await?;
    let effects = effects_for(&project, &key, &environment).await?;
    let mut diagnosis = diagnose(&project, &ledger, &live, &effects);
    count_drift_rows(&mut conn, &mut diagnosis).await?;
    conn.close().await.ok();
    let variants = recorded_variants(&project, &ledger, major, options, &environment).await?;
    for entry in &mut diagnosis.entries {
        if let Some(variant) = variants.get(&entry.version) {
            let lines = explain(variant, &live, |k| effects.grants.is_environment(k));
            entry.explanation.splice(0..0, lines);
        }
    }
    Ok(Inspection {
        project,
        ledger,
        live,
        effects,
        diagnosis,
        major,
        environment,
    })
}

/// Replays `project` on fresh scratch databases of `key.major` (two at once
/// when [`split_point`] allows it) and drops them, whatever the outcome.
async fn replay_on_scratch(
    project: &Project,
    key: &EffectsKey,
    environment: &Environment,
) -> Result<Effects> {
    let first = Database::fresh(key.major, "replay").await?;
    let second = match split_point(project) {
        Some(at) => match Database::fresh(key.major, "replay").await {
            Ok(db) => Some((db, at)),
            Err(e) => {
                first.drop_database().await.ok();
                return Err(e);
            }
        },
        None => None,
    };
    let result = async {
        let mut conn = first.connect().await?;
        let effects = match &second {
            Some((db, at)) => {
                let mut other = db.connect().await?;
                let effects = replay_split(
                    project,
                    &mut conn,
                    &mut other,
                    &key.options,
                    environment,
                    *at,
                )
                .await;
                other.close().await.ok();
                effects
            }
            None => replay(project, &mut conn, &key.options, environment).await,
        };
        conn.close().await.ok();
        effects
    }
    .await;
    if let Some((db, _)) = second {
        db.drop_database().await?;
    }
    first.drop_database().await?;
    result
}

/// Fills in the row count of every table that carries pre-existing drift
/// (an exact `count(*)`: these are the rows a user must not lose).
async fn count_drift_rows(conn: &mut sqlx::PgConnection, diagnosis: &mut Diagnosis) -> Result<()> {
    let mut counted: BTreeMap<String, Option<i64>> = BTreeMap::new();
    for drift in &mut diagnosis.differences.pre_existing {
        let Some(table) = drift.table.clone() else {
            continue;
        };
        if !counted.contains_key(&table) {
            let Some((schema, name)) = crate::source::catalog::split_qualified(&table) else {
                continue;
            };
            let sql = format!(
                "SELECT count(*) FROM {}.{}",
                crate::pg::sql::quote_ident(&schema),
                crate::pg::sql::quote_ident(&name)
            );
            let rows: Option<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                .fetch_one(&mut *conn)
                .await
                .ok();
            counted.insert(table.clone(), rows);
        }
        drift.rows = counted[&table];
    }
    Ok(())
}

/// The server's major version.
pub async fn server_major(conn: &mut sqlx::PgConnection) -> Result<u8> {
    let num: String = sqlx::query_scalar("SHOW server_version_num")
        .fetch_one(&mut *conn)
        .await
        .map_err(Error::db("reading server_version_num"))?;
    let num: u32 = num.trim().parse().map_err(|_| {
        Error::UnexpectedServer(format!("server_version_num {num:?} is not a number"))
    })?;
    Ok(u8::try_from(num / 10_000).unwrap_or(0))
}

/// Effects replayed in this process, by key digest (scenarios share them).
fn memory() -> std::sync::MutexGuard<'static, BTreeMap<String, Arc<Effects>>> {
    type Memory = Mutex<BTreeMap<String, Arc<Effects>>>;
    static MEMORY: std::sync::OnceLock<Memory> = std::sync::OnceLock::new();
    MEMORY
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner())
}

/// Whether [`effects_for`] will find `key`'s effects without a replay.
fn effects_at_hand(key: &EffectsKey) -> bool {
    cache::enabled() && (memory().contains_key(&key.digest()) || cache::exists(key))
}

/// Effects of `project` replayed on `key.major` after `key.environment`:
/// from this process's memory (scenarios share them), else from the
/// persistent cache (`effects::cache`), else replayed on a scratch database
/// and stored in both. The one way the engine gets effects.
pub async fn effects_for(
    project: &Project,
    key: &EffectsKey,
    environment: &Environment,
) -> Result<Effects> {
    let digest = key.digest();
    if cache::enabled()
        && let Some(hit) = memory().get(&digest).cloned()
    {
        return Ok((*hit).clone());
    }
    let effects = match cache::load(key) {
        Some(stored) => stored,
        None => {
            let replaying = tracing::info_span!(
                target: "phantom_sync::progress",
                "replay",
                task = %format!(
                    "replaying {} migrations on a scratch PostgreSQL {} database",
                    project.migrations.len(),
                    key.major
                ),
                total = project.migrations.len() as u64
            );
            let effects = replay_on_scratch(project, key, environment)
                .instrument(replaying)
                .await?;
            cache::store(key, &effects);
            effects
        }
    };
    if cache::enabled() {
        memory().insert(digest, Arc::new(effects.clone()));
    }
    Ok(effects)
}
