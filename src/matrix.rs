//! Runs one scenario on one PostgreSQL major, exactly as the CLI would: build
//! the broken state → record "before" → run the procedure with its faults →
//! record "after" → check the invariants in code. The result carries a
//! readable, redacted text (the scenario's snapshot) and every invariant that
//! did not hold. `make matrix` times the whole catalogue per major.

use std::fmt::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use sqlx::Connection;

use crate::backup::{BackupSet, DataSnapshot};
use crate::catalog::{Catalog, CatalogOptions, diff};
use crate::execute::Faults;
use crate::harness::Database;
use crate::ledger::Ledger;
use crate::repair::{RepairOptions, make_plan, repair};
use crate::rollback::{Procedure, rollback};
use crate::scenario::{Outcome, Run, Scenario, build_state};
use crate::tools::PgTools;
use crate::{Error, Result, redact, report};

/// What one scenario run produced.
#[derive(Debug)]
pub struct ScenarioRun {
    pub scenario: String,
    pub major: u8,
    pub outcome: Outcome,
    /// The refusal or error text, when there was one.
    pub reason: Option<String>,
    /// The readable, redacted record compared with `snapshots/<scenario>.snap`.
    pub snapshot: String,
    /// Invariants that did not hold (empty = all held).
    pub violations: Vec<String>,
    pub elapsed: Duration,
    /// Time spent in Phase 1 (backup) and in everything else of the repair.
    pub backup_ms: u128,
    pub repair_ms: u128,
}

/// The state of a database, as the invariants compare it.
struct State {
    ledger: Ledger,
    catalog: Catalog,
    data: DataSnapshot,
}

async fn state_of(db: &Database, tables: Option<&[String]>) -> Result<State> {
    let mut conn = db.connect().await?;
    let ledger = Ledger::read(&mut conn).await?;
    let catalog = Catalog::introspect(&mut conn, &CatalogOptions::default()).await?;
    let tables = tables
        .map(<[String]>::to_vec)
        .unwrap_or_else(|| catalog.tables());
    let data = DataSnapshot::capture(&mut conn, &tables).await?;
    conn.close().await.ok();
    Ok(State {
        ledger,
        catalog,
        data,
    })
}

/// Runs `scenario` on `major`.
pub async fn run_scenario(scenario: &Scenario, major: u8) -> Result<ScenarioRun> {
    let clock = Instant::now();
    let project = scenario.project()?;
    let db = Database::fresh(major, &scenario.name).await?;
    let result = run_on(scenario, &project, &db, major).await;
    db.drop_database().await?;
    let mut run = result?;
    run.elapsed = clock.elapsed();
    Ok(run)
}

async fn run_on(
    scenario: &Scenario,
    project: &crate::project::Project,
    db: &Database,
    major: u8,
) -> Result<ScenarioRun> {
    let mut conn = db.connect().await?;
    build_state(scenario, project, &mut conn).await?;
    conn.close().await.ok();
    let before = state_of(db, None).await?;
    let backup_dir = crate::predict::tempdir(&scenario.name)?;
    let mut options = RepairOptions::new(&scenario.migrations_dir(), &backup_dir);
    options.faults = scenario.faults::<Faults>()?;
    if let Some(ms) = scenario.procedure.lock_timeout_ms {
        options.plan.lock_timeout_ms = ms;
    }
    if let Some(writes) = &scenario.procedure.concurrent_writes {
        options.verify.live_tables.push(writes.table.clone());
    }
    let tools = PgTools::for_database(db);
    let target = db.target();

    let mut out = String::new();
    let mut violations = Vec::new();
    let _ = writeln!(
        out,
        "# {}\n\n{}\n\n## Ledger before\n\n{}",
        scenario.name,
        scenario.description,
        before.ledger.to_table()
    );

    let (inspection, plan) = make_plan(&target, &tools, &options).await?;
    for (label, versions) in scenario.expect.statuses.listed() {
        let found: Vec<String> = inspection
            .diagnosis
            .entries
            .iter()
            .filter(|e| e.status.label() == label)
            .map(|e| e.version.clone())
            .collect();
        if found != versions {
            violations.push(format!(
                "diagnosis: expected {label} {versions:?}, found {found:?}"
            ));
        }
    }
    let _ = writeln!(
        out,
        "\n## Diagnosis\n\n{}\n## Plan\n\n{}",
        report::diagnosis_table(&inspection.diagnosis),
        report::plan_markdown(&plan, false)
    );

    let mut procedure = Runner::new(scenario, &target, &tools, &options, db);
    let (outcome, reason) = procedure.run(&before, &mut violations).await?;
    let _ = writeln!(
        out,
        "## Outcome\n\n{outcome:?}{}\n",
        reason
            .as_deref()
            .map(|r| format!(": {}", first_line(r)))
            .unwrap_or_default()
    );
    out.push_str(&procedure.log);

    let after = state_of(db, None).await?;
    let _ = writeln!(
        out,
        "\n## Ledger after\n\n{}\n## Schema after\n\n```\n{}```\n",
        after.ledger.to_table(),
        after.catalog.to_text()
    );
    let mut conn = db.connect().await?;
    let seed = crate::effects::seed_rows(&mut conn, &after.catalog.tables()).await?;
    conn.close().await.ok();
    out.push_str("## Seed data after (stable columns)\n\n");
    for (table, rows) in seed
        .iter()
        .filter(|(t, _)| !before.data.tables.contains_key(*t))
    {
        let _ = writeln!(out, "{table}:");
        for row in rows {
            let _ = writeln!(out, "  {row}");
        }
    }
    let altered = crate::effects::touched_tables(&inspection.effects, &plan.to_apply());
    let written: Vec<String> = scenario
        .procedure
        .concurrent_writes
        .iter()
        .map(|w| w.table.clone())
        .collect();
    let mut preserved = before.data.compare(&after.data);
    for c in preserved
        .iter_mut()
        .filter(|c| altered.contains(&c.table) || written.contains(&c.table))
    {
        // Altered by a re-applied migration or written by the application: no row may be lost.
        c.preserved = c.after.as_ref().is_some_and(|a| a.rows >= c.before.rows);
    }
    let _ = writeln!(out, "\n{}", report::preservation_table(&preserved));

    check_invariants(
        scenario,
        &outcome,
        &before,
        &after,
        &altered,
        &mut violations,
    );
    if procedure.unbacked {
        violations.push(
            "a repair succeeded without Phase 1: no ledger export, no counts, no dump".into(),
        );
    }
    if outcome == Outcome::Repaired {
        second_run_is_noop(&target, &tools, &options, &mut violations).await;
    }
    if let Some(expected) = &scenario.expect.reason
        && !reason.as_deref().unwrap_or("").contains(expected.as_str())
    {
        violations.push(format!(
            "expected the reason to mention {expected:?}, got {reason:?}"
        ));
    }
    let _ = std::fs::remove_dir_all(&backup_dir);
    Ok(ScenarioRun {
        scenario: scenario.name.clone(),
        major,
        outcome,
        reason,
        snapshot: redact::redact(&out.replace(&db.name, "<database>")),
        violations,
        elapsed: Duration::ZERO,
        backup_ms: procedure.backup_ms,
        repair_ms: procedure.repair_ms,
    })
}

/// The invariants that hold whatever the snapshot says.
fn check_invariants(
    scenario: &Scenario,
    outcome: &Outcome,
    before: &State,
    after: &State,
    altered: &std::collections::BTreeSet<String>,
    violations: &mut Vec<String>,
) {
    let written = scenario
        .procedure
        .concurrent_writes
        .as_ref()
        .map(|w| w.table.clone());
    let changed: Vec<String> = before
        .data
        .compare(&after.data)
        .into_iter()
        .filter(|c| !c.preserved && Some(&c.table) != written.as_ref())
        .filter(|c| {
            !altered.contains(&c.table) || c.after.as_ref().is_none_or(|a| a.rows < c.before.rows)
        })
        .map(|c| c.table)
        .collect();
    let dropped_on_purpose =
        scenario.procedure.run == Run::RollbackDroppedTables && *outcome != Outcome::RolledBack;
    if !changed.is_empty() && !dropped_on_purpose {
        violations.push(format!(
            "rows lost or changed in preserved tables: {changed:?}"
        ));
    }
    if let (Some(w), Some(writes)) = (&written, &scenario.procedure.concurrent_writes) {
        let rows_before = before.data.tables.get(w).map(|t| t.rows).unwrap_or(0);
        let rows_after = after.data.tables.get(w).map(|t| t.rows).unwrap_or(0);
        if rows_after != rows_before + i64::from(writes.rows) {
            violations.push(format!(
                "{w}: {rows_before} rows + {} concurrent inserts, found {rows_after}",
                writes.rows
            ));
        }
    }
    let untouched = matches!(outcome, Outcome::Refused)
        || (*outcome == Outcome::RolledBack
            && scenario.procedure.run == Run::RollbackFailedMigration);
    if untouched {
        if after.ledger != before.ledger {
            violations.push(format!(
                "ledger differs from the pre-repair state: {:?} vs {:?}",
                after.ledger.versions(),
                before.ledger.versions()
            ));
        }
        let schema: Vec<String> = diff(&before.catalog, &after.catalog)
            .iter()
            .map(|d| d.describe())
            .collect();
        if !schema.is_empty() {
            violations.push(format!(
                "schema differs from the pre-repair state: {}",
                schema.join("; ")
            ));
        }
    }
}

/// A second repair right after a successful one must change nothing.
async fn second_run_is_noop(
    target: &crate::target::Target,
    tools: &PgTools,
    options: &RepairOptions,
    violations: &mut Vec<String>,
) {
    let mut again = options.clone();
    again.faults = Faults::default();
    again.backup_dir = options.backup_dir.join("second-run");
    match repair(target, tools, &again).await {
        Ok(done) if done.plan.is_noop() => {}
        Ok(done) => violations.push(format!(
            "a second repair was not a no-op: it applied {:?}",
            done.plan.to_apply()
        )),
        Err(stopped) => {
            violations.push(format!("a second repair failed: {}", stopped.failure.error))
        }
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or("")
}

/// Runs the scenario's procedure; keeps a log of what happened and the phase times.
struct Runner<'a> {
    scenario: &'a Scenario,
    target: &'a crate::target::Target,
    tools: &'a PgTools,
    options: &'a RepairOptions,
    db: &'a Database,
    log: String,
    backup_ms: u128,
    repair_ms: u128,
    /// A repair reported success without Phase 1 having run.
    unbacked: bool,
    /// The scenario's lock is held for the first run only (the retry must succeed).
    lock_released: bool,
}

impl<'a> Runner<'a> {
    fn new(
        scenario: &'a Scenario,
        target: &'a crate::target::Target,
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
        }
    }

    async fn run(
        &mut self,
        before: &State,
        violations: &mut Vec<String>,
    ) -> Result<(Outcome, Option<String>)> {
        let p = &self.scenario.procedure;
        match p.run {
            Run::PlanOnly => {
                let (_, plan) = make_plan(self.target, self.tools, self.options).await?;
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
            Run::Repair => self.repair_once(self.options.clone()).await,
            Run::RepairTwice => {
                let first = self.repair_once(self.options.clone()).await?;
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
                let second = self.repair_once(again).await?;
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

    async fn repair_once(&mut self, options: RepairOptions) -> Result<(Outcome, Option<String>)> {
        let lock = self.hold_lock().await?;
        let writer = self.concurrent_writes();
        let outcome = repair(self.target, self.tools, &options).await;
        if let Some(writer) = writer {
            writer
                .await
                .map_err(|e| Error::Environment(e.to_string()))??;
        }
        if let Some(lock) = lock {
            lock.close().await.ok();
        }
        let (journal, result) = match outcome {
            Ok(done) => {
                let outcome = if done.plan.is_noop() {
                    Outcome::NoOp
                } else {
                    Outcome::Repaired
                };
                (done.journal, (outcome, None))
            }
            Err(stopped) => {
                let refused = matches!(stopped.failure.error, Error::Refused { .. })
                    || stopped.plan.as_ref().is_some_and(|p| !p.is_runnable());
                let reason = match &stopped.plan {
                    Some(plan) if !plan.is_runnable() => plan
                        .refusals
                        .iter()
                        .map(|r| r.reason.clone())
                        .collect::<Vec<_>>()
                        .join("; "),
                    _ => stopped.failure.error.to_string(),
                };
                (
                    stopped.failure.journal,
                    (
                        if refused {
                            Outcome::Refused
                        } else {
                            Outcome::Failed
                        },
                        Some(reason),
                    ),
                )
            }
        };
        if result.0 == Outcome::Repaired
            && journal.phase(crate::plan::Phase::Backup).next().is_none()
        {
            self.unbacked = true;
        }
        self.backup_ms += journal
            .phase(crate::plan::Phase::Backup)
            .map(|e| e.duration_ms)
            .sum::<u128>();
        self.repair_ms += journal
            .entries
            .iter()
            .filter(|e| e.phase != crate::plan::Phase::Backup)
            .map(|e| e.duration_ms)
            .sum::<u128>();
        let _ = writeln!(
            self.log,
            "## Journal\n\n{}",
            report::journal_markdown(&journal)
        );
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
                                crate::plan::Phase::LedgerRepair | crate::plan::Phase::Reapply
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
            if !reason.as_deref().unwrap_or("").contains("interrupted") {
                violations.push(format!(
                    "run killed after {stop} ended otherwise: {outcome:?} {reason:?}"
                ));
            }
        }
        let (outcome, reason) = self.repair_once(self.options.clone()).await?;
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
        let (outcome, reason) = self.repair_once(self.options.clone()).await?;
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
        let set = BackupSet::load(&self.options.backup_dir)?;
        let report = rollback(
            self.target,
            self.tools,
            &set,
            procedure,
            &self.options.catalog,
        )
        .await?;
        let _ = writeln!(self.log, "## {}\n", report.procedure.title());
        for step in &report.steps {
            let _ = writeln!(
                self.log,
                "- {}",
                step.replace(&self.options.backup_dir.display().to_string(), "<backup>")
            );
        }
        for check in &report.proof {
            let _ = writeln!(
                self.log,
                "- [{}] {} {}",
                if check.passed { "x" } else { " " },
                check.name,
                check.evidence.join("; ")
            );
        }
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

    fn concurrent_writes(&self) -> Option<tokio::task::JoinHandle<Result<()>>> {
        let writes = self.scenario.procedure.concurrent_writes.clone()?;
        let target = self.target.clone();
        Some(tokio::spawn(async move {
            let mut conn = target.connect().await?;
            for _ in 0..writes.rows {
                sqlx::raw_sql(sqlx::AssertSqlSafe(writes.insert.clone()))
                    .execute(&mut conn)
                    .await
                    .map_err(Error::db("an application write"))?;
            }
            conn.close().await.ok();
            Ok(())
        }))
    }
}

/// `make matrix`: every scenario on every major, with wall times. Runs
/// `parallel` scenarios at a time on a major (as `cargo test` does on two
/// cores) and reports each scenario's own wall time and each major's total
/// elapsed time.
pub async fn run_all(dir: &std::path::Path, majors: &[u8], parallel: usize) -> Result<String> {
    let scenarios = crate::scenario::load_all(dir)?;
    let mut out = String::from(
        "| scenario | major | outcome | wall ms | backup ms | repair ms (outside backup) | invariants |\n|---|---|---|---|---|---|---|\n",
    );
    let mut totals = Vec::new();
    for &major in majors {
        crate::harness::PgServer::shared(major).await?;
        let clock = Instant::now();
        let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(parallel.max(1)));
        let mut tasks = tokio::task::JoinSet::new();
        for (index, s) in scenarios.iter().cloned().enumerate() {
            let gate = gate.clone();
            tasks.spawn(async move {
                let _permit = gate.acquire_owned().await;
                (index, run_scenario(&s, major).await)
            });
        }
        let mut runs: Vec<(usize, ScenarioRun)> = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            let (index, run) = joined.map_err(|e| Error::Environment(e.to_string()))?;
            let run = run?;
            eprintln!(
                "{} on {major}: {} ms",
                run.scenario,
                run.elapsed.as_millis()
            );
            runs.push((index, run));
        }
        runs.sort_by_key(|(index, _)| *index);
        for (index, run) in runs {
            let expected = &scenarios[index].expect.outcome;
            let ok = if run.violations.is_empty() && run.outcome == *expected {
                "hold"
            } else {
                "VIOLATED"
            };
            let _ = writeln!(
                out,
                "| {} | {major} | {:?} | {} | {} | {} | {ok} |",
                run.scenario,
                run.outcome,
                run.elapsed.as_millis(),
                run.backup_ms,
                run.repair_ms
            );
        }
        totals.push((major, clock.elapsed().as_millis()));
    }
    out.push_str(&format!(
        "\n| major | whole catalogue, wall ms ({parallel} at a time) |\n|---|---|\n"
    ));
    for (major, ms) in totals {
        let _ = writeln!(out, "| {major} | {ms} |");
    }
    Ok(out)
}

/// The scenario folder of this repository.
pub fn scenarios_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios")
}
