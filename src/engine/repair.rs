//! The whole procedure as the CLI runs it — lock → inspect → plan →
//! predict → execute — in one call, so the CLI, the scenario matrix and the
//! rehearsal run exactly the same thing. The repair lock
//! ([`crate::pg::lock`]) is held from before the diagnosis to the end, so a
//! second run on the same database fails at once ([`Error::Busy`]). A plan
//! file is never trusted: the plan is made again from the live diagnosis and
//! must equal the file's, field by field. Rows the plan would destroy stop
//! it unless [`RepairOptions::allow_data_loss`] is set.

use std::path::{Path, PathBuf};

use sqlx::Connection;

use crate::engine::backup::manifest;
use crate::engine::execute::{Cancel, Context, Failure, Faults, execute};
use crate::engine::inspect::{Inspection, inspect};
use crate::engine::journal::Journal;
use crate::engine::outcome::RunOutcome;
use crate::engine::plan::{Plan, PlanOptions, plan, short_fingerprint};
use crate::engine::predict::predict;
use crate::pg::lock::RepairLock;
use crate::pg::target::Target;
use crate::pg::tools::PgTools;
use crate::source::catalog::CatalogOptions;
use crate::{Error, Result};

/// What a repair run is told.
#[derive(Debug, Clone)]
pub struct RepairOptions {
    pub migrations: PathBuf,
    /// Where Phase 1 writes the backup and the run its journal: this folder
    /// (new or empty; a backup is never overwritten), or with
    /// [`RepairOptions::new_backup_folder`] a new folder under it.
    pub backup_dir: PathBuf,
    /// Write into a new folder `<backup_dir>/<UTC time>-<short fingerprint>/`.
    pub new_backup_folder: bool,
    /// Run even though the plan destroys rows ([`Plan::data_at_risk`]).
    pub allow_data_loss: bool,
    /// Stops the run (SIGINT, SIGTERM).
    pub cancel: Cancel,
    pub plan: PlanOptions,
    pub catalog: CatalogOptions,
    pub faults: Faults,
    /// Check re-runnability on a copy first (on by default).
    pub predict: bool,
    /// A plan made earlier (a rehearsal's plan file): the plan made now, with
    /// its options, must equal it.
    pub planned: Option<Plan>,
    /// What Phase 4 checks, e.g. tables the application keeps writing to.
    pub verify: crate::engine::verify::VerifyOptions,
    /// Phase 1 links this backup of the very same state instead of taking
    /// one (checked first; see `backup::reuse`). Only the rehearsal's
    /// drills set it: their databases are clones of the state the
    /// rehearsal's repair just backed up.
    pub(crate) reuse_backup: Option<PathBuf>,
}

impl RepairOptions {
    /// Defaults for `migrations`, writing the backup to `backup_dir`.
    pub fn new(migrations: &Path, backup_dir: &Path) -> RepairOptions {
        RepairOptions {
            migrations: migrations.to_path_buf(),
            backup_dir: backup_dir.to_path_buf(),
            new_backup_folder: false,
            allow_data_loss: false,
            cancel: Cancel::new(),
            plan: PlanOptions {
                revert_remote_only: false,
                lock_timeout_ms: 10_000,
                accept_existing_drift: false,
            },
            catalog: CatalogOptions::default(),
            faults: Faults::default(),
            predict: true,
            planned: None,
            verify: crate::engine::verify::VerifyOptions::default(),
            reuse_backup: None,
        }
    }
}

/// A finished run.
#[derive(Debug)]
pub struct Repaired {
    pub inspection: Inspection,
    pub plan: Plan,
    pub journal: Journal,
}

impl Repaired {
    /// [`RunOutcome::Repaired`], or [`RunOutcome::NothingToDo`] when the plan had no work.
    pub fn outcome(&self) -> RunOutcome {
        self.journal.result
    }
}

/// A run that stopped: where, why, and the journal so far (none when it
/// stopped before executing anything).
#[derive(Debug)]
pub struct Stopped {
    pub inspection: Option<Inspection>,
    pub plan: Option<Plan>,
    pub failure: Failure,
}

impl Stopped {
    /// How the run ended (refused, failed, verification failed, interrupted).
    pub fn outcome(&self) -> RunOutcome {
        RunOutcome::of_error(&self.failure.error)
    }

    /// Why, in one text: the plan's refusals when it refused, else the error.
    pub fn reason(&self) -> String {
        match &self.plan {
            Some(plan) if !plan.is_runnable() => plan
                .refusals
                .iter()
                .map(|r| r.reason.clone())
                .collect::<Vec<_>>()
                .join("; "),
            _ => self.failure.error.to_string(),
        }
    }
}

/// Inspects and plans (with prediction and the rows at risk), touching nothing.
pub async fn make_plan(
    target: &Target,
    tools: &PgTools,
    options: &RepairOptions,
) -> Result<(Inspection, Plan)> {
    make_plan_with(target, tools, options, &options.plan).await
}

async fn make_plan_with(
    target: &Target,
    tools: &PgTools,
    options: &RepairOptions,
    plan_options: &PlanOptions,
) -> Result<(Inspection, Plan)> {
    let inspection = inspect(target, &options.migrations, &options.catalog).await?;
    let mut made = plan(&inspection.project, &inspection.diagnosis, plan_options);
    let mut conn = target.connect().await?;
    let at_risk = crate::engine::plan::data_loss::data_at_risk(
        &mut conn,
        &inspection.project,
        &inspection.effects,
        &made.to_apply(),
    )
    .await;
    conn.close().await.ok();
    made.data_at_risk = at_risk?;
    if options.predict {
        predict(target, tools, &inspection, &mut made, &options.catalog).await?;
    }
    Ok((inspection, made))
}

/// The plan to run: the one made now, which must equal `planned` (a plan
/// file) when there is one.
fn check_planned(planned: &Plan, made: &Plan) -> Result<()> {
    if planned.fingerprint != made.fingerprint {
        return Err(Error::StalePlan {
            planned: short_fingerprint(&planned.fingerprint),
            live: short_fingerprint(&made.fingerprint),
        });
    }
    match planned.first_difference(made) {
        None => Ok(()),
        Some((path, planned, live)) => Err(Error::PlanMismatch {
            path,
            planned,
            live,
        }),
    }
}

/// The whole procedure against `target`.
pub async fn repair(
    target: &Target,
    tools: &PgTools,
    options: &RepairOptions,
) -> std::result::Result<Repaired, Box<Stopped>> {
    let stop = |error: Error, inspection: Option<Inspection>, plan: Option<Plan>| {
        let fingerprint = plan
            .as_ref()
            .map(|p| p.fingerprint.clone())
            .unwrap_or_default();
        let mut journal = Journal::new(target.redacted(), &fingerprint, None);
        journal.finish(RunOutcome::of_error(&error), Some(&error));
        Box::new(Stopped {
            inspection,
            plan,
            failure: Failure { error, journal },
        })
    };
    let lock = match RepairLock::take(target, "repair").await {
        Ok(lock) => lock,
        Err(e) => return Err(stop(e, None, None)),
    };
    let plan_options = options
        .planned
        .as_ref()
        .map_or(&options.plan, |p| &p.options);
    let planning = make_plan_with(target, tools, options, plan_options);
    let made = tokio::select! {
        made = planning => made,
        by = options.cancel.cancelled() => Err(Error::Interrupted {
            step: "none (while planning; nothing was touched)".into(),
            by,
        }),
    };
    let (inspection, made) = match made {
        Ok(pair) => pair,
        Err(e) => {
            lock.release().await;
            return Err(stop(e, None, None));
        }
    };
    let checked = match &options.planned {
        Some(planned) => check_planned(planned, &made),
        None => Ok(()),
    }
    // A refused plan stops here: no backup folder, no journal file.
    .and_then(|()| made.refused().map_or(Ok(()), Err))
    .and_then(|()| {
        if made.data_at_risk.is_empty() || options.allow_data_loss {
            return Ok(());
        }
        let summary = made
            .data_at_risk
            .iter()
            .map(|d| d.describe())
            .collect::<Vec<_>>()
            .join("; ");
        Err(Error::DataAtRisk { summary })
    });
    let backup_dir = match checked.and_then(|()| {
        if options.new_backup_folder {
            manifest::new_folder(&options.backup_dir, &short_fingerprint(&made.fingerprint))
        } else {
            Ok(options.backup_dir.clone())
        }
    }) {
        Ok(dir) => dir,
        Err(e) => {
            lock.release().await;
            return Err(stop(e, Some(inspection), Some(made)));
        }
    };
    let ctx = Context {
        target: target.clone(),
        project: &inspection.project,
        effects: &inspection.effects,
        catalog_options: options.catalog.clone(),
        backup_dir,
        tools: tools.clone(),
        faults: options.faults.clone(),
        lock_timeout_ms: made.options.lock_timeout_ms,
        check_fingerprint: true,
        verify: options.verify.for_plan(&made),
        cancel: options.cancel.clone(),
        reuse_backup: options.reuse_backup.clone(),
    };
    let executed = execute(&made, &ctx).await;
    lock.release().await;
    match executed {
        Ok(journal) => Ok(Repaired {
            inspection,
            plan: made,
            journal,
        }),
        Err(failure) => Err(Box::new(Stopped {
            inspection: Some(inspection),
            plan: Some(made),
            failure: *failure,
        })),
    }
}
