//! The whole procedure as the CLI runs it — inspect → plan → predict →
//! execute — in one call, so the CLI, the scenario matrix and the rehearsal
//! run exactly the same thing.

use std::path::{Path, PathBuf};

use crate::engine::execute::{Context, Failure, Faults, execute};
use crate::engine::inspect::{Inspection, inspect};
use crate::engine::journal::Journal;
use crate::engine::outcome::RunOutcome;
use crate::engine::plan::{Plan, PlanOptions, plan, short_fingerprint};
use crate::engine::predict::predict;
use crate::pg::target::Target;
use crate::pg::tools::PgTools;
use crate::source::catalog::CatalogOptions;
use crate::{Error, Result};

/// What a repair run is told.
#[derive(Debug, Clone)]
pub struct RepairOptions {
    pub migrations: PathBuf,
    pub backup_dir: PathBuf,
    pub plan: PlanOptions,
    pub catalog: CatalogOptions,
    pub faults: Faults,
    /// Check re-runnability on a copy first (on by default).
    pub predict: bool,
    /// A plan made earlier (a rehearsal's plan file); its fingerprint must match.
    pub planned: Option<Plan>,
    /// What Phase 4 checks, e.g. tables the application keeps writing to.
    pub verify: crate::engine::verify::VerifyOptions,
}

impl RepairOptions {
    /// Defaults for `migrations`, writing the backup to `backup_dir`.
    pub fn new(migrations: &Path, backup_dir: &Path) -> RepairOptions {
        RepairOptions {
            migrations: migrations.to_path_buf(),
            backup_dir: backup_dir.to_path_buf(),
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

/// Inspects and plans (with prediction), touching nothing.
pub async fn make_plan(
    target: &Target,
    tools: &PgTools,
    options: &RepairOptions,
) -> Result<(Inspection, Plan)> {
    let inspection = inspect(target, &options.migrations, &options.catalog).await?;
    let mut made = plan(&inspection.project, &inspection.diagnosis, &options.plan);
    if options.predict {
        predict(target, tools, &inspection, &mut made, &options.catalog).await?;
    }
    Ok((inspection, made))
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
    let (inspection, mut made) = match make_plan(target, tools, options).await {
        Ok(pair) => pair,
        Err(e) => return Err(stop(e, None, None)),
    };
    if let Some(planned) = &options.planned {
        if planned.fingerprint != made.fingerprint {
            let error = Error::StalePlan {
                planned: short_fingerprint(&planned.fingerprint),
                live: short_fingerprint(&made.fingerprint),
            };
            return Err(stop(error, Some(inspection), Some(made)));
        }
        made = planned.clone();
    }
    let ctx = Context {
        target: target.clone(),
        project: &inspection.project,
        effects: &inspection.effects,
        catalog_options: options.catalog.clone(),
        backup_dir: options.backup_dir.clone(),
        tools: tools.clone(),
        faults: options.faults.clone(),
        lock_timeout_ms: options.plan.lock_timeout_ms,
        check_fingerprint: true,
        verify: options.verify.for_plan(&made),
    };
    match execute(&made, &ctx).await {
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
