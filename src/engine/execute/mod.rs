//! Runs a [`Plan`] against a target, step by step, writing the [`Journal`].
//! Every unit of work is one transaction (the ledger repair; each migration
//! with its ledger row), so a repair interrupted anywhere — connection lost,
//! process killed — leaves a state from which running it again converges to
//! the same end, and never applies a migration twice. The journal records a
//! step when it starts and again when it ends, so a killed run's journal
//! names the step it died in. A [`Cancel`] (SIGINT, SIGTERM) stops the run
//! between steps, or inside one by ending its session, whose transaction the
//! server then rolls back. Nothing is written to the target before Phase 1's
//! backup is complete, and the diagnosis is checked again right before the
//! first write.

use std::path::{Path, PathBuf};
use std::time::Instant;
use tracing::Instrument;

use sqlx::Connection;
use sqlx::postgres::PgConnection;

use crate::engine::backup::{self, DataSnapshot};
use crate::engine::diagnose::diagnose;
use crate::engine::effects::Effects;
use crate::engine::journal::{Journal, JournalEntry, StepOutcome};
use crate::engine::outcome::RunOutcome;
use crate::engine::plan::{Action, Phase, Plan, Step, short_fingerprint};
use crate::files::now_ms;
use crate::pg::target::Target;
use crate::pg::tools::PgTools;
use crate::source::catalog::{Catalog, CatalogOptions};
use crate::source::ledger::Ledger;
use crate::source::project::Project;
use crate::text::count;
use crate::{Error, Result};

mod cancel;
mod units;

pub use cancel::Cancel;
use units::{apply, repair_ledger};

/// Faults injected on purpose by the harness and the scenario matrix — to
/// prove the checks catch a broken procedure. Never set them on production.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Stop (as if the process were killed) right after this step id, e.g. "2.1".
    pub stop_after: Option<String>,
    /// Fail this migration with an error after its last statement.
    pub fail_in: Option<String>,
    /// Drop the connection in the middle of this migration (timeout / network loss).
    pub drop_connection_in: Option<String>,
    /// Broken procedure: skip Phase 2 (the ledger repair).
    pub skip_ledger_repair: bool,
    /// Broken procedure: apply the migrations in reverse order.
    pub reverse_order: bool,
    /// Broken procedure: skip Phase 1 (the backup).
    pub skip_backup: bool,
}

/// Everything a run needs besides the plan.
pub struct Context<'a> {
    pub target: Target,
    pub project: &'a Project,
    pub effects: &'a Effects,
    pub catalog_options: CatalogOptions,
    /// Where Phase 1 writes the backup and the journal is saved.
    pub backup_dir: PathBuf,
    /// Where pg_dump runs (a container of the server's major).
    pub tools: PgTools,
    pub faults: Faults,
    /// `lock_timeout` before each migration (ms).
    pub lock_timeout_ms: u64,
    /// Refuse when the live diagnosis differs from the plan's (off only for
    /// the prediction, whose copy is known to be the target's).
    pub check_fingerprint: bool,
    /// What Phase 4 checks (no seed rows on the prediction's schema-only copy).
    pub verify: crate::engine::verify::VerifyOptions,
    /// Stops the run when cancelled.
    pub cancel: Cancel,
    /// Phase 1 links this backup of the same state (see
    /// `backup::reuse`) instead of taking one: the rehearsal's drills.
    /// `None` everywhere else.
    pub reuse_backup: Option<PathBuf>,
}

/// A failed run: the error and the journal built so far.
#[derive(Debug)]
pub struct Failure {
    pub error: Error,
    pub journal: Journal,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

/// Executes `plan`. Refuses (touching nothing) when the plan has refusals or
/// the live diagnosis is not the one the plan was made for.
pub async fn execute(plan: &Plan, ctx: &Context<'_>) -> std::result::Result<Journal, Box<Failure>> {
    let mut journal = Journal::new(
        ctx.target.redacted(),
        &plan.fingerprint,
        Some(&ctx.backup_dir),
    );
    match run(plan, ctx, &mut journal).await {
        Ok(()) => {
            let result = if plan.is_noop() {
                RunOutcome::NothingToDo
            } else {
                RunOutcome::Repaired
            };
            journal.finish(result, None);
            Ok(journal)
        }
        Err(error) => {
            journal.finish(RunOutcome::of_error(&error), Some(&error));
            Err(Box::new(Failure { error, journal }))
        }
    }
}

async fn run(plan: &Plan, ctx: &Context<'_>, journal: &mut Journal) -> Result<()> {
    if let Some(refused) = plan.refused() {
        return Err(refused);
    }
    let backs_up = plan.phase(Phase::Backup).next().is_some() && !ctx.faults.skip_backup;
    if backs_up {
        backup::manifest::ensure_fresh(&ctx.backup_dir)?;
    }
    let mut conn = ctx.target.connect().await?;
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut conn)
        .await
        .map_err(Error::db("reading the session's pid"))?;
    check_fingerprint(&mut conn, plan, ctx).await?;
    let mut before: Option<DataSnapshot> = None;
    let mut steps: Vec<&Step> = plan.steps.iter().collect();
    if ctx.faults.reverse_order {
        reverse_applies(&mut steps);
    }
    let mut backed_up = ctx.faults.skip_backup;
    let mut wrote = false;
    let mut last_done = "none".to_string();
    for step in steps {
        if skipped_by_fault(step, &ctx.faults) {
            continue;
        }
        if let Some(by) = ctx.cancel.reason() {
            return Err(Error::Interrupted {
                step: last_done,
                by,
            });
        }
        let writes = matches!(step.phase, Phase::LedgerRepair | Phase::Reapply);
        if writes && !wrote {
            if !backed_up {
                return Err(Error::Refused {
                    reasons: format!(
                        "step {} would write to the database before Phase 1 backed it up (the plan has no complete backup phase)",
                        step.id
                    ),
                });
            }
            // Under the repair lock: nothing else of ours ran since the
            // plan was made, but the backup took time — look again.
            check_fingerprint(&mut conn, plan, ctx).await?;
            wrote = true;
        }
        let started_at_ms = now_ms();
        let clock = Instant::now();
        journal.entries.push(JournalEntry {
            step: step.id.clone(),
            phase: step.phase,
            title: step.title.clone(),
            started_at_ms,
            finished_at_ms: started_at_ms,
            duration_ms: 0,
            outcome: StepOutcome::Started,
            rows_affected: None,
            detail: Vec::new(),
        });
        let _ = journal.save();
        let result = {
            let task = tracing::info_span!(
                target: "phantom_sync::progress",
                "step",
                task = %format!("step {}: {}", step.id, step.title)
            );
            let running =
                run_step(step, ctx, &mut conn, &mut before, journal, plan).instrument(task);
            tokio::select! {
                result = running => Some(result),
                _ = ctx.cancel.cancelled() => None,
            }
        };
        let result = match result {
            Some(result) => result,
            None => {
                // The step's future is gone; end its session so the server
                // rolls its transaction back now, not when it next reads.
                drop(conn);
                terminate(ctx, pid).await;
                let by = ctx.cancel.reason().unwrap_or_default();
                if let Some(entry) = journal.entries.last_mut() {
                    entry.outcome = StepOutcome::Interrupted;
                    entry.finished_at_ms = now_ms();
                    entry.duration_ms = clock.elapsed().as_millis();
                    entry.detail = vec![format!(
                        "stopped by {by} while running; its transaction was rolled back"
                    )];
                }
                let _ = journal.save();
                return Err(Error::Interrupted {
                    step: format!("{last_done}, inside {}", step.id),
                    by,
                });
            }
        };
        let result = match result {
            Ok(done) if matches!(step.action, Action::Dump) => {
                write_manifest(&mut conn, plan, ctx).await.map(|()| {
                    backed_up = true;
                    done
                })
            }
            other => other,
        };
        let (outcome, rows, detail, error) = match result {
            Ok((rows, detail)) => (StepOutcome::Done, rows, detail, None),
            Err(e) => (StepOutcome::Failed, None, vec![e.to_string()], Some(e)),
        };
        if let Some(entry) = journal.entries.last_mut() {
            entry.finished_at_ms = now_ms();
            entry.duration_ms = clock.elapsed().as_millis();
            entry.outcome = outcome;
            entry.rows_affected = rows;
            entry.detail = detail;
        }
        let _ = journal.save();
        if let Some(e) = error {
            return Err(e);
        }
        last_done = step.id.clone();
        if ctx.faults.stop_after.as_deref() == Some(step.id.as_str()) {
            return Err(Error::Interrupted {
                step: step.id.clone(),
                by: "a fault injected by the harness".into(),
            });
        }
    }
    conn.close().await.ok();
    Ok(())
}

/// Refuses when the live diagnosis is not the plan's.
async fn check_fingerprint(conn: &mut PgConnection, plan: &Plan, ctx: &Context<'_>) -> Result<()> {
    if !ctx.check_fingerprint {
        return Ok(());
    }
    let live = live_fingerprint(conn, ctx).await?;
    if live != plan.fingerprint {
        return Err(Error::StalePlan {
            planned: short_fingerprint(&plan.fingerprint),
            live: short_fingerprint(&live),
        });
    }
    Ok(())
}

/// Phase 1 is complete: hash its files into the manifest.
async fn write_manifest(conn: &mut PgConnection, plan: &Plan, ctx: &Context<'_>) -> Result<()> {
    let identity = backup::manifest::DatabaseIdentity::read(conn).await?;
    backup::manifest::write(
        &ctx.backup_dir,
        backup::manifest::BackupKind::Repair,
        identity,
        &plan.fingerprint,
    )
    .map(|_| ())
}

/// Ends the session `pid` from a connection of its own (best effort).
async fn terminate(ctx: &Context<'_>, pid: i32) {
    if let Ok(mut other) = ctx.target.connect().await {
        let _ = sqlx::query("SELECT pg_terminate_backend($1)")
            .bind(pid)
            .execute(&mut other)
            .await;
        other.close().await.ok();
    }
}

/// The fingerprint of the target's diagnosis now.
pub async fn live_fingerprint(conn: &mut PgConnection, ctx: &Context<'_>) -> Result<String> {
    let ledger = Ledger::read(conn).await?;
    let live = Catalog::introspect(conn, &ctx.catalog_options).await?;
    Ok(diagnose(ctx.project, &ledger, &live, ctx.effects).fingerprint)
}

fn skipped_by_fault(step: &Step, faults: &Faults) -> bool {
    match step.action {
        Action::RepairLedger { .. } => faults.skip_ledger_repair,
        Action::ExportLedger | Action::RecordData | Action::Dump => faults.skip_backup,
        _ => false,
    }
}

/// A Phase 1 step done from a backup of the same state: the first step
/// checks and links it, the others read what it linked. `None`: take the
/// step as usual (the backup could not stand for this state, and why is
/// said as a warning).
async fn reuse_step(
    step: &Step,
    from: &Path,
    ctx: &Context<'_>,
    conn: &mut PgConnection,
    before: &mut Option<DataSnapshot>,
    plan: &Plan,
) -> Result<Option<StepResult>> {
    let reused = format!(
        "from {} (the same state's Phase 1: its manifest, database and plan fingerprint checked)",
        from.display()
    );
    let linked = |name: &str| ctx.backup_dir.join(name).exists();
    match step.action {
        Action::ExportLedger => {
            let live = backup::manifest::DatabaseIdentity::read(conn).await?;
            if let Err(e) = backup::reuse::check(from, &live, &plan.fingerprint) {
                tracing::warn!("Phase 1 takes a new backup: {e}");
                return Ok(None);
            }
            backup::reuse::link_files(from, &ctx.backup_dir)?;
            let ledger = backup::BackupSet::load(&ctx.backup_dir)?.ledger;
            Ok(Some((
                Some(ledger.rows.len() as u64),
                vec![format!(
                    "{} linked {reused}",
                    count(ledger.rows.len(), "ledger row")
                )],
            )))
        }
        Action::RecordData if linked(backup::DATA_JSON) => {
            let snapshot = backup::load_data(&ctx.backup_dir)?;
            let mut detail = vec![format!("counts and checksums linked {reused}")];
            detail.extend(rows_per_table(&snapshot));
            let tables = snapshot.tables.len() as u64;
            *before = Some(snapshot);
            Ok(Some((Some(tables), detail)))
        }
        Action::Dump if linked(backup::DUMP_FILE) => {
            Ok(Some((None, vec![format!("dump linked {reused}")])))
        }
        _ => Ok(None),
    }
}

/// Step 1.3's journal lines: each table with its row count.
fn rows_per_table(snapshot: &DataSnapshot) -> Vec<String> {
    snapshot
        .tables
        .values()
        .map(|t| format!("{}: {}", t.table, count(t.rows, "row")))
        .collect()
}

fn reverse_applies(steps: &mut [&Step]) {
    let positions: Vec<usize> = steps
        .iter()
        .enumerate()
        .filter(|(_, s)| matches!(s.action, Action::Apply { .. }))
        .map(|(i, _)| i)
        .collect();
    let reversed: Vec<&Step> = positions.iter().rev().map(|&i| steps[i]).collect();
    for (slot, step) in positions.into_iter().zip(reversed) {
        steps[slot] = step;
    }
}

pub(crate) type StepResult = (Option<u64>, Vec<String>);

async fn run_step(
    step: &Step,
    ctx: &Context<'_>,
    conn: &mut PgConnection,
    before: &mut Option<DataSnapshot>,
    journal: &mut Journal,
    plan: &Plan,
) -> Result<StepResult> {
    if let Some(from) = &ctx.reuse_backup
        && let Some(done) = reuse_step(step, from, ctx, conn, before, plan).await?
    {
        return Ok(done);
    }
    match &step.action {
        Action::ExportLedger => {
            let ledger = backup::export_ledger(conn, &ctx.backup_dir).await?;
            Ok((
                Some(ledger.rows.len() as u64),
                vec![format!(
                    "{} saved to ledger.json and ledger.txt",
                    count(ledger.rows.len(), "ledger row")
                )],
            ))
        }
        Action::RecordData => {
            let (snapshot, _) =
                backup::record_data(conn, &ctx.backup_dir, &ctx.catalog_options).await?;
            let detail = rows_per_table(&snapshot);
            let count = snapshot.tables.len() as u64;
            *before = Some(snapshot);
            Ok((Some(count), detail))
        }
        Action::Dump => {
            let info = ctx
                .tools
                .dump(
                    &ctx.target,
                    &ctx.backup_dir.join(backup::DUMP_FILE),
                    &backup::dump_scope(),
                )
                .await?;
            backup::save_dump_info(&ctx.backup_dir, &info)?;
            Ok((
                None,
                vec![format!(
                    "{} bytes, pg_dump of PostgreSQL {}, sha256 {}",
                    info.bytes,
                    info.major,
                    &info.sha256[..12.min(info.sha256.len())]
                )],
            ))
        }
        Action::RepairLedger {
            revert,
            record,
            rekey,
        } => repair_ledger(conn, ctx.project, revert, record, rekey).await,
        Action::Apply { version } => {
            let migration = ctx
                .project
                .get(version)
                .ok_or_else(|| Error::PlanFileMissing {
                    version: version.clone(),
                    dir: ctx.project.dir.clone(),
                })?;
            apply(conn, migration, ctx).await?;
            Ok((
                Some(migration.statements.len() as u64),
                vec![format!(
                    "{} and its ledger row committed",
                    count(migration.statements.len(), "statement")
                )],
            ))
        }
        Action::Verify => {
            let mut snapshot = match before {
                Some(s) => Some(s.clone()),
                None => backup::load_data(&ctx.backup_dir).ok(),
            };
            // Rows the plan said it destroys (and the user accepted) are
            // no loss: those tables are not compared.
            if let Some(snapshot) = &mut snapshot {
                for risk in &plan.data_at_risk {
                    snapshot.tables.remove(&risk.table);
                }
            }
            let mut scope = ctx.verify.clone();
            scope
                .live_tables
                .extend(crate::engine::effects::touched_tables(
                    ctx.effects,
                    &plan.to_apply(),
                ));
            let verification = crate::engine::verify::verify(
                conn,
                ctx.project,
                ctx.effects,
                snapshot.as_ref(),
                &ctx.catalog_options,
                &scope,
            )
            .await?;
            let failures: Vec<String> = verification
                .failures()
                .iter()
                .map(|c| format!("{} — {}", c.name, c.evidence.join("; ")))
                .collect();
            let detail = verification
                .checks
                .iter()
                .map(|c| format!("{} {}", if c.passed { "✓" } else { "✗" }, c.name))
                .collect();
            journal.verification = Some(verification);
            if failures.is_empty() {
                Ok((None, detail))
            } else {
                Err(Error::VerificationFailed {
                    failures: failures.join(" | "),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests;
