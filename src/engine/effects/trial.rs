//! Other statements tried where a migration runs: a ledger row may record
//! statements that differ from today's file (an edited migration), and what
//! they did is found the way every effect is — by running them. A replay
//! walks the project from the first such migration on ([`replay_trying`]);
//! before each one, the recorded statements run in a transaction with the
//! event triggers recording, the objects they touched are read, and the
//! transaction is rolled back; then the file runs and is recorded as usual.
//! Both answers are changes from the same catalog, so comparing them costs
//! what the two migrations touched, not the catalog's size.

use std::collections::BTreeMap;

use sqlx::Connection;

use super::capture::Next;
use super::db_message;
use super::replay::{Lane, Progress, ReplayMode, generic, message};
use crate::source::catalog::{Catalog, CatalogOptions, Difference, ObjectSet, diff};
use crate::source::environment::Environment;
use crate::source::project::{Migration, Project};
use crate::{Error, Result};

/// What one migration's file and the statements tried in its place change,
/// each from the catalog the migrations before it leave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tried {
    /// The tried statements' changes, or the server's message when one failed.
    pub instead: std::result::Result<Vec<Difference>, String>,
    /// The file's changes.
    pub file: Vec<Difference>,
}

/// Replays `project` on `scratch` (an empty database with the shim), set up
/// like the target, and tries `instead`'s statements (by version) in place
/// of each migration they name before running the migration itself. The
/// migrations before the first one named are applied without being read;
/// the replay stops after the last one named. Nothing is tried (and nothing
/// runs) when `instead` names no migration of the project.
pub async fn replay_trying(
    project: &Project,
    scratch: &mut sqlx::PgConnection,
    options: &CatalogOptions,
    environment: &Environment,
    mode: ReplayMode,
    instead: &BTreeMap<String, Vec<String>>,
) -> Result<BTreeMap<String, Tried>> {
    let named = |m: &Migration| instead.contains_key(&m.version);
    let (Some(first), Some(last)) = (
        project.migrations.iter().position(named),
        project.migrations.iter().rposition(named),
    ) else {
        return Ok(BTreeMap::new());
    };
    let (before, walked) = project.migrations[..=last].split_at(first);
    let progress = Progress::new(walked.len());
    let mut lane = Lane::start(scratch, options, environment, mode, before).await?;
    let mut out = BTreeMap::new();
    for migration in walked {
        let tried = match instead.get(&migration.version) {
            Some(statements) => Some(lane.try_instead(migration, statements).await?),
            None => None,
        };
        lane.run(std::slice::from_ref(migration), &progress).await?;
        if let Some(instead) = tried {
            let file = lane
                .migrations
                .last()
                .map(|m| m.changes.clone())
                .unwrap_or_default();
            out.insert(migration.version.clone(), Tried { instead, file });
        }
    }
    Ok(out)
}

impl Lane<'_, '_> {
    /// Runs `statements` where `migration` would run, reads what they
    /// changed, and rolls them back: the lane's database and catalog are as
    /// they were. A statement that fails is an answer (its message), not an
    /// error.
    async fn try_instead(
        &mut self,
        migration: &Migration,
        statements: &[String],
    ) -> Result<std::result::Result<Vec<Difference>, String>> {
        let stand_in = Migration {
            sql: statements.join("\n;\n"),
            statements: statements.to_vec(),
            ..migration.clone()
        };
        let recording = self.capture.as_ref().is_some_and(|c| c.recording());
        let mut tx = self.conn.begin().await.map_err(Error::db(format!(
            "starting a trial of the ledger's statements for {}",
            migration.file_name()
        )))?;
        let batch = format!("{}{}", message(statements, recording), generic(recording));
        if let Err(e) = sqlx::raw_sql(sqlx::AssertSqlSafe(batch))
            .execute(&mut *tx)
            .await
        {
            tx.rollback().await.ok();
            return Ok(Err(db_message(&e)));
        }
        let next = match &self.capture {
            Some(capture) => {
                capture
                    .take(
                        &mut tx,
                        &stand_in,
                        &self.tracked,
                        &self.options.exclude_schemas,
                    )
                    .await?
            }
            None => Next::Reread("whole reads asked for"),
        };
        let changes = match next {
            Next::Refresh(refresh) if refresh.is_empty() => Vec::new(),
            Next::Refresh(refresh) => {
                self.tracked
                    .changes_if_read(&mut tx, self.options, &refresh)
                    .await?
            }
            Next::Reread(_) => {
                let everything = ObjectSet::everything();
                let now = Catalog::introspect_objects(&mut tx, self.options, &everything).await?;
                diff(&now.catalog, self.tracked.catalog())
            }
        };
        tx.rollback().await.map_err(Error::db(format!(
            "rolling back the trial of the ledger's statements for {}",
            migration.file_name()
        )))?;
        Ok(Ok(changes))
    }
}
