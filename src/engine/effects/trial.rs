//! Other statements tried where a migration runs: a ledger row may record
//! statements that differ from today's file (an edited migration), and what
//! they did is found the way every effect is — by running them. A replay
//! walks the project from the first such migration on ([`replay_trying`]);
//! before each one, the recorded statements run in a transaction with the
//! event triggers recording, the objects they touched are read, and the
//! transaction is rolled back; then the file runs and is recorded as usual.
//! Statements with a transaction command (`COMMIT`, …) are not tried: it
//! would end that transaction and keep what they did.
//! Both answers are changes from the same catalog, so comparing them costs
//! what the two migrations touched, not the catalog's size.

use std::collections::BTreeMap;

use sqlx::Connection;
use tracing::Instrument;

use super::capture::{Capture, Next};
use super::replay::{Lane, Progress, ReplayMode, generic, message};
use super::{db_message, first_line};
use crate::source::catalog::{
    Catalog, CatalogOptions, Difference, ObjectSet, TrackedCatalog, diff,
};
use crate::source::environment::Environment;
use crate::source::project::{Migration, Project};
use crate::source::split::is_transaction_command;
use crate::{Error, Result};

/// What one migration's file and the statements tried in its place change,
/// each from the catalog the migrations before it leave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tried {
    /// What the tried statements did.
    pub instead: Instead,
    /// The file's changes.
    pub file: Vec<Difference>,
}

/// What statements tried in a migration's place did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Instead {
    /// They ran; what they changed.
    Changed(Vec<Difference>),
    /// One failed: the server's message.
    Failed(String),
    /// They were not run, and why (a transaction command among them would
    /// end the transaction they are tried in, and keep what they did).
    NotTried(String),
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
    let trying = tracing::info_span!(
        target: "phantom_sync::progress",
        "variants",
        task = %format!(
            "trying the ledger's statements of {} edited migrations on a scratch database",
            instead.len()
        ),
        total = walked.len() as u64
    );
    async {
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
    .instrument(trying)
    .await
}

impl Lane<'_, '_> {
    /// Runs `statements` where `migration` would run, reads what they
    /// changed, and rolls them back: the lane's database and catalog are as
    /// they were. A statement that fails is an answer, not an error. Reading
    /// only what they touched can fail where a whole read does not (they may
    /// change the role, or drop the session's temporary log): the trial then
    /// runs again with a whole read, as the reference does.
    async fn try_instead(
        &mut self,
        migration: &Migration,
        statements: &[String],
    ) -> Result<Instead> {
        if let Some(command) = statements.iter().find(|s| is_transaction_command(s)) {
            return Ok(Instead::NotTried(format!(
                "`{}` would end the transaction they are tried in",
                first_line(command)
            )));
        }
        let recording = self.capture.as_ref().is_some_and(|c| c.recording());
        match self.trial(migration, statements, recording).await {
            Err(e) if recording => {
                tracing::debug!(
                    "trial of the ledger's statements for {}: {e}; tried again with a whole read",
                    migration.file_name()
                );
                self.trial(migration, statements, false).await
            }
            outcome => outcome,
        }
    }

    /// One trial, recording what the statements touch (`recording`) or
    /// reading the whole catalog after them.
    async fn trial(
        &mut self,
        migration: &Migration,
        statements: &[String],
        recording: bool,
    ) -> Result<Instead> {
        let stand_in = Migration {
            sql: statements.join("\n;\n"),
            statements: statements.to_vec(),
            ..migration.clone()
        };
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
            return Ok(Instead::Failed(db_message(&e)));
        }
        let capture = self.capture.as_ref().filter(|_| recording);
        let read = read_tried(&mut tx, capture, &self.tracked, self.options, &stand_in).await;
        let rolled_back = tx.rollback().await.map_err(Error::db(format!(
            "rolling back the trial of the ledger's statements for {}",
            migration.file_name()
        )));
        let changes = read?;
        rolled_back?;
        Ok(Instead::Changed(changes))
    }
}

/// What the statements of a trial (`stand_in`, just run on `tx`) changed in
/// `tracked`: the roots `capture` saw them touch, or the whole catalog.
async fn read_tried(
    tx: &mut sqlx::PgConnection,
    capture: Option<&Capture>,
    tracked: &TrackedCatalog,
    options: &CatalogOptions,
    stand_in: &Migration,
) -> Result<Vec<Difference>> {
    let next = match capture {
        Some(capture) => {
            capture
                .take(&mut *tx, stand_in, tracked, &options.exclude_schemas)
                .await?
        }
        None => Next::Reread("whole reads asked for"),
    };
    match next {
        Next::Refresh(refresh) if refresh.is_empty() => Ok(Vec::new()),
        Next::Refresh(refresh) => tracked.changes_if_read(tx, options, &refresh).await,
        Next::Reread(_) => {
            let everything = ObjectSet::everything();
            let now = Catalog::introspect_objects(tx, options, &everything).await?;
            Ok(diff(&now.catalog, tracked.catalog()))
        }
    }
}
