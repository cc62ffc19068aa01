//! What the top of a runbook says, worked out once for both renderings
//! (Markdown and HTML): the verdict and what it means, the statuses counted
//! before and after, what each phase of the repair will do, the data at risk,
//! and the exact commands for production.

use std::collections::BTreeMap;

use super::runbook::Runbook;
use crate::engine::backup::DEFAULT_PARENT;
use crate::engine::diagnose::{Diagnosis, Status};
use crate::engine::outcome::RunOutcome;
use crate::engine::plan::{Action, Phase, Plan};
use crate::engine::rollback::Procedure;
use crate::text::count;

/// The first thing a runbook says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub passed: bool,
    /// `PASSED` or `FOUND A PROBLEM`.
    pub word: &'static str,
    /// One sentence: what the verdict means for production.
    pub meaning: String,
}

/// The verdict of a rehearsal and what it means.
pub fn verdict(r: &Runbook<'_>) -> Verdict {
    if r.passed {
        let drills = drills_phrase(r.drills.len());
        let meaning = match r.plan {
            Some(plan) if plan.is_noop() => format!(
                "The migration history already matches the schema, so production needs no repair (the checks passed on a copy{drills})."
            ),
            _ => format!(
                "The repair ran on a copy of production and passed every check{drills}: production can be repaired with the commands below."
            ),
        };
        return Verdict {
            passed: true,
            word: "PASSED",
            meaning,
        };
    }
    Verdict {
        passed: false,
        word: "FOUND A PROBLEM",
        meaning: format!(
            "On a copy of production, {} (production was not touched): do not run the repair there until this is fixed and a new rehearsal passes.",
            problems(r).join("; ")
        ),
    }
}

/// `, and each of the 3 rollback drills restored the copy` (or nothing).
fn drills_phrase(n: usize) -> String {
    match n {
        0 => String::new(),
        1 => ", and its rollback drill restored the copy".into(),
        n => format!(", and each of the {n} rollback drills restored the copy"),
    }
}

/// What went wrong, in a few words each (the error itself is shown apart).
fn problems(r: &Runbook<'_>) -> Vec<String> {
    let mut found = Vec::new();
    if let Some(plan) = r.plan
        && !plan.is_runnable()
    {
        found.push(format!(
            "the plan refuses to run, with {}",
            count(plan.refusals.len(), "refusal")
        ));
    }
    if let Some(journal) = r.journal
        && !journal.result.succeeded()
    {
        found.push(
            match journal.result {
                RunOutcome::Refused => "the repair refused to start",
                RunOutcome::VerificationFailed => "the repair ran but its checks failed",
                RunOutcome::Interrupted => "the repair was interrupted",
                RunOutcome::Running => "the repair did not finish",
                _ => "a step of the repair failed",
            }
            .to_string(),
        );
    }
    for drill in r.drills.iter().filter(|d| !d.restored()) {
        let title = drill.procedure.title();
        let (number, what) = title.split_once(": ").unwrap_or((title, ""));
        found.push(format!(
            "{} ({what}) did not restore the copy",
            number.to_lowercase()
        ));
    }
    if found.is_empty() {
        found.push("the rehearsal stopped".into());
    }
    found
}

/// `4 applied, 2 phantom, 2 pending`, as (status, count) in status order.
pub fn status_counts(d: &Diagnosis) -> Vec<(Status, usize)> {
    d.counts().into_iter().collect()
}

/// The counts as words: `4 applied, 2 phantom, 2 pending`.
pub fn counts_text(d: &Diagnosis) -> String {
    status_counts(d)
        .iter()
        .map(|(s, n)| format!("{n} {}", s.label()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What one phase of the repair will do, in a line or two.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhaseSummary {
    pub title: &'static str,
    pub does: String,
}

/// One summary per phase of the plan.
pub fn phases(r: &Runbook<'_>) -> Vec<PhaseSummary> {
    let Some(plan) = r.plan else {
        return Vec::new();
    };
    let names: BTreeMap<&str, &str> = r
        .diagnosis_before
        .entries
        .iter()
        .map(|e| (e.version.as_str(), e.name.as_str()))
        .collect();
    let tables = r
        .journal
        .and_then(|j| j.verification.as_ref())
        .map(|v| v.preservation.len());
    Phase::ALL
        .into_iter()
        .map(|phase| PhaseSummary {
            title: phase.title(),
            does: phase_does(plan, phase, &names, tables),
        })
        .collect()
}

fn phase_does(
    plan: &Plan,
    phase: Phase,
    names: &BTreeMap<&str, &str>,
    tables: Option<usize>,
) -> String {
    let named = |version: &String| match names.get(version.as_str()) {
        Some(name) => format!("{version} {name}"),
        None => version.clone(),
    };
    match phase {
        Phase::Backup => format!(
            "Export the migration history, record row counts and checksums of every table, and dump the database with the server's own pg_dump, into a new folder under `{DEFAULT_PARENT}/` with a manifest of every file."
        ),
        Phase::LedgerRepair => {
            let mut parts = Vec::new();
            for step in plan.phase(phase) {
                if let Action::RepairLedger {
                    revert,
                    record,
                    rekey,
                } = &step.action
                {
                    if !revert.is_empty() {
                        parts.push(format!(
                            "delete {} ({}), expecting `DELETE {}`",
                            count(revert.len(), "ledger row"),
                            revert.iter().map(named).collect::<Vec<_>>().join(", "),
                            revert.len()
                        ));
                    }
                    if !record.is_empty() {
                        parts.push(format!(
                            "record {} as applied ({})",
                            count(record.len(), "migration"),
                            record.iter().map(named).collect::<Vec<_>>().join(", ")
                        ));
                    }
                    for (from, to) in rekey {
                        parts.push(format!("move ledger row {from} to version {to}"));
                    }
                }
            }
            if parts.is_empty() {
                "Nothing to do: the ledger needs no change.".into()
            } else {
                format!("In one transaction: {}.", parts.join("; "))
            }
        }
        Phase::Reapply => {
            let apply = plan.to_apply();
            if apply.is_empty() {
                return "Nothing to do: no migration is missing.".into();
            }
            let statements: usize = plan.phase(phase).map(|s| s.sql.len()).sum();
            format!(
                "Apply {} in version order, each with its ledger row in its own transaction ({} in all): {}.",
                count(apply.len(), "migration"),
                count(statements, "statement"),
                apply.iter().map(named).collect::<Vec<_>>().join(", ")
            )
        }
        Phase::Verify => format!(
            "Check the ledger against the local files, the schema against a clean replay, the seed data, and that {} kept every row (counts and checksums).",
            match tables {
                Some(n) => format!("the {} that held data before", count(n, "table")),
                None => "the tables that held data before".into(),
            }
        ),
    }
}

/// How bad a risk is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RiskKind {
    /// A pending statement destroys rows that are there now.
    DataLoss,
    /// The plan will not run until this is dealt with.
    Refusal,
    /// The plan runs, but this deserves a look first.
    Warning,
}

impl RiskKind {
    /// The word shown before the risk.
    pub fn label(self) -> &'static str {
        match self {
            RiskKind::DataLoss => "Data loss",
            RiskKind::Refusal => "Refused",
            RiskKind::Warning => "Warning",
        }
    }
}

/// One entry of the runbook's "data at risk" list. Today they come from the
/// plan's refusals and warnings; a structured list of the data a plan would
/// lose becomes more entries of this list (with a kind of its own).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Risk {
    pub kind: RiskKind,
    /// The migration concerned, if one is.
    pub version: Option<String>,
    /// What is at risk and why (may hold `code` in backticks).
    pub text: String,
    /// The offending statement, if one is to blame.
    pub statement: Option<String>,
    /// What the reader can do about it.
    pub options: Vec<String>,
}

/// The data at risk: the plan's refusals, then its warnings.
pub fn risks(r: &Runbook<'_>) -> Vec<Risk> {
    let Some(plan) = r.plan else {
        return Vec::new();
    };
    let losses = plan.data_at_risk.iter().map(|loss| Risk {
        kind: RiskKind::DataLoss,
        version: Some(loss.version.clone()),
        text: loss.describe(),
        statement: loss.statement.clone(),
        options: Vec::new(),
    });
    let refusals = plan.refusals.iter().map(|refusal| Risk {
        kind: RiskKind::Refusal,
        version: Some(refusal.version.clone()),
        text: refusal.reason.clone(),
        statement: refusal
            .statement
            .as_ref()
            .map(|s| s.lines().next().unwrap_or("").to_string()),
        options: refusal.options.clone(),
    });
    let warnings = plan.warnings.iter().map(|warning| Risk {
        kind: RiskKind::Warning,
        version: None,
        text: warning.clone(),
        statement: None,
        options: Vec::new(),
    });
    losses.chain(refusals).chain(warnings).collect()
}

/// What the rehearsal proved about the data that was there: one sentence,
/// when the repair got as far as comparing it.
pub fn preservation(r: &Runbook<'_>) -> Option<String> {
    let rows = &r.journal?.verification.as_ref()?.preservation;
    let kept = rows.iter().filter(|c| c.preserved).count();
    Some(if rows.is_empty() {
        "No table held data before the repair.".into()
    } else if kept == rows.len() {
        format!(
            "On the copy, {} that held data before kept every row (counts and checksums equal).",
            match rows.len() {
                1 => "the one table".to_string(),
                2 => "both tables".to_string(),
                n => format!("all {n} tables"),
            }
        )
    } else {
        format!(
            "On the copy, {} of {} that held data before changed (see Data preservation).",
            rows.len() - kept,
            count(rows.len(), "table")
        )
    })
}

/// A command to copy into a shell, and what it is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// When to run it and what it does.
    pub label: String,
    /// The command, its options on lines continued with `\` (short enough
    /// to read without wrapping; pasted, it runs as one line).
    pub line: String,
}

/// The production command, then the three rollbacks — or none when the
/// rehearsal did not pass (nothing of it may run in production).
pub fn commands(r: &Runbook<'_>) -> Vec<Command> {
    if !r.passed || r.plan.is_none() {
        return Vec::new();
    }
    let confirm = "--db-url \"$PHANTOM_DB_URL\" --confirm <database name>";
    let lines = |parts: &[&str]| parts.join(" \\\n    ");
    let mut out = vec![Command {
        label: "Repair: execute exactly this rehearsed plan (refused if production changed since)"
            .into(),
        line: lines(&[
            &format!(
                "phantom-sync repair --plan {}",
                r.out.join("plan.json").display()
            ),
            confirm,
        ]),
    }];
    let at_risk = r.plan.is_some_and(|p| !p.data_at_risk.is_empty());
    if at_risk {
        out[0].label.push_str(
            "; the plan destroys data (see the data at risk): --allow-data-loss says you accept it",
        );
        out[0].line.push_str(" \\\n    --allow-data-loss");
    }
    let rollbacks = [
        (
            Procedure::FailedMigration,
            "if a migration fails mid-way: restore the ledger and the database from Phase 1's backup",
        ),
        (
            Procedure::DroppedTables(Vec::new()),
            "if the wrong tables were dropped: recreate them from Phase 1's dump",
        ),
        (
            Procedure::Ledger,
            "if the migration history is corrupted: restore it from Phase 1's export",
        ),
    ];
    for (procedure, when) in rollbacks {
        out.push(Command {
            label: format!(
                "{} — {when}",
                procedure.title().split(':').next().unwrap_or("Rollback")
            ),
            line: lines(&[
                &format!("phantom-sync rollback --procedure {}", procedure.slug()),
                confirm,
            ]),
        });
    }
    out
}

/// The timings table's rows: each phase of the rehearsal, then the total.
pub fn timings(r: &Runbook<'_>) -> Vec<(String, u128)> {
    let mut rows: Vec<(String, u128)> = r
        .timings_ms
        .iter()
        .map(|(phase, ms)| match (phase.as_str(), r.journal) {
            ("repair", Some(j)) => (
                format!(
                    "repair (its {} took {} ms)",
                    count(j.entries.len(), "step"),
                    j.total_ms()
                ),
                *ms,
            ),
            _ => (phase.clone(), *ms),
        })
        .collect();
    if !rows.is_empty() {
        rows.push(("total".into(), r.timings_ms.iter().map(|(_, ms)| ms).sum()));
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::rollback::RollbackReport;
    use crate::engine::verify::Check;
    use crate::report::tests::{failed, rehearsal};

    #[test]
    fn the_verdict_says_what_it_means_in_one_sentence() {
        let passed = verdict(&rehearsal().runbook());
        assert_eq!(
            passed.meaning,
            "The repair ran on a copy of production and passed every check, and each of the 3 rollback drills restored the copy: production can be repaired with the commands below."
        );
        let problem = verdict(&failed().runbook());
        assert_eq!(problem.word, "FOUND A PROBLEM");
        assert_eq!(
            problem.meaning.matches(". ").count(),
            0,
            "{}",
            problem.meaning
        );
    }

    #[test]
    fn a_drill_that_did_not_restore_is_the_problem() {
        let mut r = rehearsal();
        r.passed = false;
        r.drills.push(RollbackReport {
            procedure: Procedure::Ledger,
            steps: Vec::new(),
            proof: vec![Check {
                name: "Ledger equals the Phase 1 export".into(),
                passed: false,
                evidence: Vec::new(),
            }],
        });
        let v = verdict(&r.runbook());
        assert!(
            v.meaning.starts_with(
                "On a copy of production, rollback 3 (migration history corrupted) did not restore the copy (production was not touched)"
            ),
            "{}",
            v.meaning
        );
        assert!(
            commands(&r.runbook()).is_empty(),
            "nothing to run in production"
        );
    }

    #[test]
    fn a_plan_with_nothing_to_do_says_so() {
        let mut r = rehearsal();
        let plan = r.plan.as_mut().expect("a plan");
        plan.steps
            .retain(|s| matches!(s.phase, Phase::Backup | Phase::Verify));
        let v = verdict(&r.runbook());
        assert!(v.meaning.starts_with(
            "The migration history already matches the schema, so production needs no repair"
        ));
        let phases = phases(&r.runbook());
        assert_eq!(phases[1].does, "Nothing to do: the ledger needs no change.");
        assert_eq!(phases[2].does, "Nothing to do: no migration is missing.");
    }

    #[test]
    fn one_timings_table_ends_with_the_total() {
        let r = rehearsal();
        let rows = timings(&r.runbook());
        let names: Vec<&str> = rows.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names[0], "capture");
        assert!(
            names[2].starts_with("repair (its 9 steps took "),
            "{names:?}"
        );
        assert_eq!(names.last(), Some(&"total"));
        let total: u128 = r.timings_ms.iter().map(|(_, ms)| ms).sum();
        assert_eq!(rows.last().map(|(_, ms)| *ms), Some(total));
    }
}
