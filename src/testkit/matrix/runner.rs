//! Runs a scenario's procedure — a repair, a repair twice, a repair killed
//! after every step, a repair and a rollback — against the built state,
//! holding the scenario's lock and making its application writes meanwhile,
//! and keeps a log of what happened and the phase times.

use std::fmt::Write;

use sqlx::Connection;

use super::State;
use crate::engine::execute::Faults;
use crate::engine::inspect::Inspection;
use crate::engine::outcome::RunOutcome;
use crate::engine::plan::Plan;
use crate::engine::repair::{RepairOptions, Stopped, make_plan, repair};
use crate::engine::rollback::{Procedure, rollback};
use crate::pg::sandbox::Database;
use crate::pg::tools::PgTools;
use crate::source::ledger::Ledger;
use crate::testkit::scenario::{Outcome, Run, Scenario};
use crate::{Error, Result, report};

/// What a scenario file calls a run's outcome.
fn expected((outcome, reason): (RunOutcome, Option<String>)) -> (Outcome, Option<String>) {
    let expected = match outcome {
        RunOutcome::Repaired => Outcome::Repaired,
        RunOutcome::NothingToDo => Outcome::NoOp,
        RunOutcome::Refused => Outcome::Refused,
        RunOutcome::Running
        | RunOutcome::Failed
        | RunOutcome::VerificationFailed
        | RunOutcome::Interrupted => Outcome::Failed,
    };
    (expected, reason)
}

pub(super) fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or("")
}

/// Runs the scenario's procedure; keeps a log of what happened and the phase times.
pub(super) struct Runner<'a> {
    scenario: &'a Scenario,
    target: &'a crate::pg::target::Target,
    tools: &'a PgTools,
    options: &'a RepairOptions,
    db: &'a Database,
    pub(super) log: String,
    pub(super) backup_ms: u128,
    pub(super) repair_ms: u128,
    /// A repair reported success without Phase 1 having run.
    pub(super) unbacked: bool,
    /// The scenario's lock is held for the first run only (the retry must succeed).
    lock_released: bool,
    /// What the procedure's first run found and planned, before it touched
    /// anything: the scenario's diagnosis and plan.
    pub(super) first: Option<(Inspection, Plan)>,
}

impl<'a> Runner<'a> {
    pub(super) fn new(
        scenario: &'a Scenario,
        target: &'a crate::pg::target::Target,
        tools: &'a PgTools,
        options: &'a RepairOptions,
        db: &'a Database,
    ) -> Self {
        Runner {
            scenario,
            target,
            tools,
            options,
            db,
            log: String::new(),
            backup_ms: 0,
            repair_ms: 0,
            unbacked: false,
            lock_released: false,
            first: None,
        }
    }

    pub(super) async fn run(
        &mut self,
        before: &State,
        violations: &mut Vec<String>,
    ) -> Result<(Outcome, Option<String>)> {
        let p = &self.scenario.procedure;
        match p.run {
            Run::PlanOnly => {
                let (inspection, plan) = make_plan(self.target, self.tools, self.options).await?;
                self.first = Some((inspection, plan.clone()));
                let reasons: Vec<String> = plan.refusals.iter().map(|r| r.reason.clone()).collect();
                Ok(if plan.is_runnable() {
                    (
                        if plan.is_noop() {
                            Outcome::NoOp
                        } else {
                            Outcome::Repaired
                        },
                        None,
                    )
                } else {
                    (Outcome::Refused, Some(reasons.join("; ")))
                })
            }
            Run::Repair if p.kill_at_every_step => self.kill_at_every_step(violations).await,
            Run::Repair => self.repair_once(self.options.clone()).await.map(expected),
            Run::RepairTwice => {
                let first = expected(self.repair_once(self.options.clone()).await?);
                let _ = writeln!(
                    self.log,
                    "\nFirst run: {:?} {}\n",
                    first.0,
                    first.1.as_deref().map(first_line).unwrap_or("")
                );
                let mut again = self.options.clone();
                again.faults = Faults::default();
                again.backup_dir = self.options.backup_dir.join("again");
                self.lock_released = true;
                let second = expected(self.repair_once(again).await?);
                if let Some(then) = &self.scenario.expect.then
                    && &second.0 != then
                {
                    violations.push(format!(
                        "second run: expected {then:?}, got {:?} {:?}",
                        second.0, second.1
                    ));
                }
                Ok(first)
            }
            Run::RollbackFailedMigration | Run::RollbackDroppedTables | Run::RollbackLedger => {
                self.rollback(before, violations).await
            }
        }
    }

    /// One repair run: how it ended and, unless it succeeded, why.
    async fn repair_once(
        &mut self,
        options: RepairOptions,
    ) -> Result<(RunOutcome, Option<String>)> {
        let lock = self.hold_lock().await?;
        let finished = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writer = self.concurrent_writes(&options.backup_dir, finished.clone());
        let outcome = repair(self.target, self.tools, &options).await;
        finished.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(writer) = writer {
            let after_backup = writer
                .await
                .map_err(|e| Error::Environment(e.to_string()))??;
            let _ = writeln!(
                self.log,
                "Application writes after Phase 1 (during Phases 2–4): {}\n",
                if after_backup { "yes" } else { "no" }
            );
        }
        if let Some(lock) = lock {
            lock.close().await.ok();
        }
        let (journal, result) = match outcome {
            Ok(done) => {
                let outcome = done.outcome();
                self.first.get_or_insert((done.inspection, done.plan));
                (done.journal, (outcome, None))
            }
            Err(stopped) => {
                let result = (stopped.outcome(), Some(stopped.reason()));
                let Stopped {
                    inspection,
                    plan,
                    failure,
                } = *stopped;
                match (inspection, plan) {
                    (Some(inspection), Some(plan)) => {
                        self.first.get_or_insert((inspection, plan));
                    }
                    // The first run could not even plan: the scenario has
                    // no diagnosis to show, which is an error of its own.
                    _ if self.first.is_none() => return Err(failure.error),
                    _ => {}
                }
                (failure.journal, result)
            }
        };
        if result.0 == RunOutcome::Repaired
            && journal
                .phase(crate::engine::plan::Phase::Backup)
                .next()
                .is_none()
        {
            self.unbacked = true;
        }
        self.backup_ms += journal
            .phase(crate::engine::plan::Phase::Backup)
            .map(|e| e.duration_ms)
            .sum::<u128>();
        self.repair_ms += journal
            .entries
            .iter()
            .filter(|e| e.phase != crate::engine::plan::Phase::Backup)
            .map(|e| e.duration_ms)
            .sum::<u128>();
        let mut rendered = report::journal_markdown(&journal);
        if let Some(writes) = &self.scenario.procedure.concurrent_writes {
            rendered = vary(&rendered, &writes.table);
        }
        let _ = writeln!(self.log, "## Journal\n\n{rendered}");
        Ok(result)
    }

    /// Kills the repair after each backup step, then after each unit of work
    /// (the ledger repair, every migration) of a freshly made plan, until
    /// nothing is left; the last, undisturbed run must find the database
    /// repaired.
    async fn kill_at_every_step(
        &mut self,
        violations: &mut Vec<String>,
    ) -> Result<(Outcome, Option<String>)> {
        let mut backup_steps = ["1.1", "1.2", "1.3"].into_iter();
        for round in 0..32 {
            let stop = match backup_steps.next() {
                Some(id) => Some(id.to_string()),
                None => {
                    let (_, plan) = make_plan(self.target, self.tools, self.options).await?;
                    plan.steps
                        .iter()
                        .find(|s| {
                            matches!(
                                s.phase,
                                crate::engine::plan::Phase::LedgerRepair
                                    | crate::engine::plan::Phase::Reapply
                            )
                        })
                        .map(|s| s.id.clone())
                }
            };
            let Some(stop) = stop else { break };
            let mut options = self.options.clone();
            options.faults = Faults {
                stop_after: Some(stop.clone()),
                ..Faults::default()
            };
            options.backup_dir = self.options.backup_dir.join(format!("killed-{round}"));
            let (outcome, reason) = self.repair_once(options).await?;
            let _ = writeln!(self.log, "Killed after step {stop}: {outcome:?}\n");
            if outcome != RunOutcome::Interrupted {
                violations.push(format!(
                    "run killed after {stop} ended otherwise: {outcome:?} {reason:?}"
                ));
            }
        }
        let mut last = self.options.clone();
        last.backup_dir = self.options.backup_dir.join("last");
        let (outcome, reason) = expected(self.repair_once(last).await?);
        // The work was done by the killed runs; the last one verifies it.
        Ok(if outcome == Outcome::NoOp {
            (Outcome::Repaired, reason)
        } else {
            (outcome, reason)
        })
    }

    async fn rollback(
        &mut self,
        before: &State,
        violations: &mut Vec<String>,
    ) -> Result<(Outcome, Option<String>)> {
        let p = &self.scenario.procedure;
        let (outcome, reason) = expected(self.repair_once(self.options.clone()).await?);
        let _ = writeln!(
            self.log,
            "Repair before the rollback: {outcome:?} {}\n",
            reason.as_deref().map(first_line).unwrap_or("")
        );
        let mut conn = self.db.connect().await?;
        for statement in &p.mistake {
            sqlx::raw_sql(sqlx::AssertSqlSafe(statement.clone()))
                .execute(&mut conn)
                .await
                .map_err(Error::db("running the scenario's mistake"))?;
        }
        conn.close().await.ok();
        let procedure = match p.run {
            Run::RollbackFailedMigration => Procedure::FailedMigration,
            Run::RollbackDroppedTables => Procedure::DroppedTables(Vec::new()),
            _ => Procedure::Ledger,
        };
        let report = rollback(
            self.target,
            self.tools,
            &self.options.backup_dir,
            procedure,
            &self.options.catalog,
            &self.options.backup_dir.join("pre-rollback"),
        )
        .await?;
        let rendered = report::rollback_markdown(&report)
            .replace(&self.options.backup_dir.display().to_string(), "<backup>");
        let _ = writeln!(self.log, "{rendered}");
        if report.procedure == Procedure::Ledger
            && Ledger::read(&mut self.db.connect().await?).await? != before.ledger
        {
            violations
                .push("after rollback 3 the ledger differs from the pre-repair ledger".into());
        }
        Ok(if report.restored() {
            (Outcome::RolledBack, None)
        } else {
            (Outcome::Failed, Some("the rollback's proof failed".into()))
        })
    }

    async fn hold_lock(&self) -> Result<Option<sqlx::PgConnection>> {
        let Some(hold) = self
            .scenario
            .procedure
            .hold_lock
            .as_ref()
            .filter(|_| !self.lock_released)
        else {
            return Ok(None);
        };
        let mut conn = self.db.connect().await?;
        let sql = format!(
            "BEGIN; LOCK TABLE {} IN {} MODE",
            hold.table,
            hold.mode.sql()
        );
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut conn)
            .await
            .map_err(Error::db("holding the scenario's lock"))?;
        Ok(Some(conn))
    }

    /// The application's writers: `writers` sessions at once, together
    /// running `insert` exactly `rows` times, each in its own transaction.
    /// Each writes during planning and Phase 1 until Phase 1's manifest
    /// appears in `backup_dir` or half its share is written, then waits for
    /// the manifest (or the repair's end) and writes the rest while Phases
    /// 2–4 run. Looking for the manifest before every insert, rather than
    /// after a fixed half, keeps writes inside Phases 2–4 on a loaded
    /// machine, where a writer's first half could outlast the whole repair.
    /// Says whether any write came after Phase 1, before the repair ended.
    fn concurrent_writes(
        &self,
        backup_dir: &std::path::Path,
        finished: std::sync::Arc<std::sync::atomic::AtomicBool>,
    ) -> Option<tokio::task::JoinHandle<Result<bool>>> {
        let writes = self.scenario.procedure.concurrent_writes.clone()?;
        let target = self.target.clone();
        let manifest = backup_dir.join(crate::engine::backup::manifest::MANIFEST_FILE);
        Some(tokio::spawn(async move {
            let writers = writes.writers.max(1);
            let mut tasks = tokio::task::JoinSet::new();
            for w in 0..writers {
                let share = writes.rows / writers + u32::from(w < writes.rows % writers);
                let (target, insert) = (target.clone(), writes.insert.clone());
                let (manifest, finished) = (manifest.clone(), finished.clone());
                tasks.spawn(async move {
                    let mut conn = target.connect().await?;
                    let mut after_backup = false;
                    let mut switched = false;
                    for i in 0..share {
                        if !switched && (i >= share / 2 || manifest.exists()) {
                            while !manifest.exists()
                                && !finished.load(std::sync::atomic::Ordering::SeqCst)
                            {
                                tokio::time::sleep(std::time::Duration::from_millis(2)).await;
                            }
                            after_backup = manifest.exists()
                                && !finished.load(std::sync::atomic::Ordering::SeqCst);
                            switched = true;
                        }
                        sqlx::raw_sql(sqlx::AssertSqlSafe(insert.clone()))
                            .execute(&mut conn)
                            .await
                            .map_err(Error::db("an application write"))?;
                    }
                    conn.close().await.ok();
                    Ok::<bool, Error>(after_backup)
                });
            }
            let mut after_backup = false;
            while let Some(done) = tasks.join_next().await {
                after_backup |= done.map_err(|e| Error::Environment(e.to_string()))??;
            }
            Ok(after_backup)
        }))
    }
}

/// The journal with the lines about `table` cut after its name: the
/// application writes to it while the repair runs, so its counts there vary
/// from run to run (the invariants count it exactly after the run).
fn vary(journal: &str, table: &str) -> String {
    journal
        .lines()
        .map(|line| match line.find(table) {
            Some(at) => format!(
                "{} [written concurrently: counts vary]",
                &line[..at + table.len()]
            ),
            None => line.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}
