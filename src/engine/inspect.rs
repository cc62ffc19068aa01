//! Reads everything a diagnosis needs: the migrations folder, the target's
//! ledger and catalog, and the effects of every migration — found by
//! replaying the folder on a scratch database of the target's major (an
//! ephemeral container: the target itself is only read).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use sqlx::Connection;

use crate::engine::diagnose::{Diagnosis, diagnose};
use crate::engine::effects::{Effects, replay};
use crate::pg::sandbox::Database;
use crate::pg::target::Target;
use crate::source::catalog::{Catalog, CatalogOptions};
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
}

/// Reads `target` and the migrations in `migrations`, and diagnoses them.
pub async fn inspect(
    target: &Target,
    migrations: &Path,
    options: &CatalogOptions,
) -> Result<Inspection> {
    let project = Project::load(migrations)?;
    let mut conn = target.connect().await?;
    let major = server_major(&mut conn).await?;
    crate::pg::sandbox::image::check_major(major)?;
    let ledger = Ledger::read(&mut conn).await?;
    let live = Catalog::introspect(&mut conn, options).await?;
    conn.close().await.ok();
    let effects = effects_for(&project, major, options).await?;
    let diagnosis = diagnose(&project, &ledger, &live, &effects);
    Ok(Inspection {
        project,
        ledger,
        live,
        effects,
        diagnosis,
        major,
    })
}

/// The server's major version.
pub async fn server_major(conn: &mut sqlx::PgConnection) -> Result<u8> {
    let num: String = sqlx::query_scalar("SHOW server_version_num")
        .fetch_one(&mut *conn)
        .await
        .map_err(Error::db("reading server_version_num"))?;
    let num: u32 = num
        .trim()
        .parse()
        .map_err(|_| Error::Invalid(format!("unexpected server_version_num {num}")))?;
    Ok(u8::try_from(num / 10_000).unwrap_or(0))
}

/// Effects of `project` on `major`, replayed once per process and folder
/// content (scenarios share them).
pub async fn effects_for(
    project: &Project,
    major: u8,
    options: &CatalogOptions,
) -> Result<Effects> {
    type Cache = Mutex<BTreeMap<(PathBuf, u8, String), Effects>>;
    static CACHE: std::sync::OnceLock<Cache> = std::sync::OnceLock::new();
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for m in &project.migrations {
        hasher.update(m.file_name().as_bytes());
        hasher.update(m.sql.as_bytes());
    }
    hasher.update(format!("{options:?}").as_bytes());
    let key = (
        project.dir.clone(),
        major,
        format!("{:x}", hasher.finalize()),
    );
    if let Some(hit) = CACHE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&key)
    {
        return Ok(hit.clone());
    }
    let scratch = Database::fresh(major, "replay").await?;
    let mut conn = scratch.connect().await?;
    let result = replay(project, &mut conn, options).await;
    conn.close().await.ok();
    scratch.drop_database().await?;
    let effects = result?;
    CACHE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(key, effects.clone());
    Ok(effects)
}
