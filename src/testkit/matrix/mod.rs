//! Runs one scenario on one PostgreSQL major, exactly as the CLI would: build
//! the broken state → record "before" → run the procedure with its faults →
//! record "after" → check the invariants in code. The result carries a
//! readable, redacted text (the scenario's snapshot) and every invariant that
//! did not hold. `make matrix` times the whole catalogue per major.

use std::fmt::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use sqlx::Connection;

use crate::engine::backup::{DataSnapshot, TableComparison};
use crate::engine::execute::Faults;
use crate::engine::repair::{RepairOptions, make_plan};
use crate::pg::sandbox::Database;
use crate::pg::tools::PgTools;
use crate::source::catalog::{Catalog, CatalogOptions, diff};
use crate::source::ledger::Ledger;
use crate::testkit::redact;
use crate::testkit::scenario::{Outcome, Run, Scenario, build_state};
use crate::text::count;
use crate::{Error, Result, report};

mod changes;
mod runner;
use runner::{Runner, first_line};

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
    project: &crate::source::project::Project,
    db: &Database,
    major: u8,
) -> Result<ScenarioRun> {
    let mut conn = db.connect().await?;
    build_state(scenario, project, &mut conn).await?;
    conn.close().await.ok();
    let before = state_of(db, None).await?;
    let work = crate::files::temp_dir(&scenario.name)?;
    let backup_dir = work.path().to_path_buf();
    let mut options = RepairOptions::new(&scenario.migrations_dir(), &backup_dir);
    options.faults = scenario.faults::<Faults>()?;
    options.plan.accept_existing_drift = scenario.procedure.accept_existing_drift;
    options.plan.revert_remote_only = scenario.procedure.revert_remote_only;
    options.allow_data_loss = scenario.procedure.allow_data_loss;
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

    let mut procedure = Runner::new(scenario, &target, &tools, &options, db);
    let (outcome, reason) = procedure.run(&before, &mut violations).await?;
    // The diagnosis and the plan are those of the procedure's first run,
    // made before it touched anything (as `phantom-sync plan` would show).
    let (inspection, plan) = procedure
        .first
        .take()
        .ok_or_else(|| Error::Invalid(format!("{}: the procedure never planned", scenario.name)))?;
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
        "\n## Ledger after\n\n{}\n## Schema: what the procedure changed (+ created, - removed, ~ altered)\n\n{}\n## Schema after, against a clean replay of every migration (- only in the replay, + only here, ~ different)\n\n{}",
        after.ledger.to_table(),
        bullets(&changes::describe(&before.catalog, &after.catalog)),
        bullets(&changes::describe(
            inspection.effects.final_catalog(),
            &after.catalog
        ))
    );
    // The rows of the tables the procedure created (those that existed
    // before are compared by count and checksum below, not listed).
    let created: Vec<String> = after
        .catalog
        .tables()
        .into_iter()
        .filter(|t| !before.data.tables.contains_key(t))
        .collect();
    let mut conn = db.connect().await?;
    let seed = crate::engine::effects::seed_rows(&mut conn, &created).await?;
    conn.close().await.ok();
    out.push_str("## Seed data after (stable columns)\n\n");
    for (table, rows) in &seed {
        let _ = writeln!(out, "{table}:");
        for row in rows {
            let _ = writeln!(out, "  {row}");
        }
    }
    let altered = crate::engine::effects::touched_tables(&inspection.effects, &plan.to_apply());
    // Tables altered by a re-applied migration or written by the application may gain rows.
    let growing: Vec<String> = altered
        .into_iter()
        .chain(
            scenario
                .procedure
                .concurrent_writes
                .iter()
                .map(|w| w.table.clone()),
        )
        .collect();
    let preserved = before.data.compare_allowing_growth(&after.data, &growing);
    let _ = writeln!(out, "\n{}", report::preservation_table(&preserved));

    check_invariants(
        scenario,
        &outcome,
        &before,
        &after,
        &preserved,
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
    drop(work);
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

/// Lines as a Markdown list; `(none)` when there are none.
fn bullets(lines: &[String]) -> String {
    if lines.is_empty() {
        return "(none)\n".into();
    }
    lines.iter().map(|l| format!("- {l}\n")).collect()
}

/// The invariants that hold whatever the snapshot says.
fn check_invariants(
    scenario: &Scenario,
    outcome: &Outcome,
    before: &State,
    after: &State,
    preserved: &[TableComparison],
    violations: &mut Vec<String>,
) {
    let written = scenario
        .procedure
        .concurrent_writes
        .as_ref()
        .map(|w| w.table.clone());
    let changed: Vec<&str> = preserved
        .iter()
        .filter(|c| !c.preserved)
        .map(|c| c.table.as_str())
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
                "{w}: {} + {}, found {rows_after}",
                count(rows_before, "row"),
                count(writes.rows, "concurrent insert")
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

/// A second repair right after a successful one must change nothing: the
/// plan it would make from the repaired database has no step besides the
/// backup and the checks, and nothing refuses it. Planning is enough here —
/// running that plan would only take a backup and check again what the
/// first run's Phase 4 checked; the `repair-twice` scenarios run the second
/// repair in full.
async fn second_run_is_noop(
    target: &crate::pg::target::Target,
    tools: &PgTools,
    options: &RepairOptions,
    violations: &mut Vec<String>,
) {
    match make_plan(target, tools, options).await {
        Ok((_, plan)) if !plan.is_runnable() => violations.push(format!(
            "a second repair would be refused: {}",
            plan.refused().map(|e| e.to_string()).unwrap_or_default()
        )),
        Ok((_, plan)) if plan.is_noop() => {}
        Ok((_, plan)) => violations.push(format!(
            "a second repair would not be a no-op: it would apply {:?}",
            plan.to_apply()
        )),
        Err(e) => violations.push(format!("a second repair could not plan: {e}")),
    }
}

/// `make matrix`: every scenario on every major, with wall times. Runs
/// `parallel` scenarios at a time on a major (as `cargo test` does on two
/// cores) and reports each scenario's own wall time and each major's total
/// elapsed time.
pub async fn run_all(dir: &std::path::Path, majors: &[u8], parallel: usize) -> Result<String> {
    let scenarios = crate::testkit::scenario::load_all(dir)?;
    let mut out = String::from(
        "| scenario | major | outcome | wall ms | backup ms | repair ms (outside backup) | invariants |\n|---|---|---|---|---|---|---|\n",
    );
    let mut totals = Vec::new();
    for &major in majors {
        crate::pg::sandbox::PgServer::shared(major).await?;
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
            tracing::info!(
                target: "phantom_sync::progress",
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
