//! The runbook a rehearsal hands over: the verdict, what will happen in
//! production, the exact commands, and the proof that it works — the
//! rehearsed execution and every rollback drill.

use std::fmt::Write;
use std::path::Path;

use super::{diagnosis_table, journal_markdown, plan_markdown, rollback_markdown};
use crate::engine::backup::DEFAULT_PARENT;
use crate::engine::diagnose::Diagnosis;
use crate::engine::journal::Journal;
use crate::engine::plan::Plan;
use crate::engine::rollback::RollbackReport;

/// What a runbook shows: a view of a rehearsal's results.
#[derive(Debug, Clone, Copy)]
pub struct Runbook<'a> {
    /// What was rehearsed (a redacted URL, a dump file, the built-in incident).
    pub source: &'a str,
    pub major: u8,
    pub passed: bool,
    /// Why the rehearsal did not pass, if it stopped on an error.
    pub error: Option<&'a str>,
    pub diagnosis_before: &'a Diagnosis,
    pub diagnosis_after: Option<&'a Diagnosis>,
    pub plan: Option<&'a Plan>,
    /// The rehearsal's output folder, which holds `plan.json` (for the production command).
    pub out: &'a Path,
    pub journal: Option<&'a Journal>,
    pub drills: &'a [RollbackReport],
    pub timings_ms: &'a [(String, u128)],
}

/// The runbook as Markdown.
pub fn runbook_markdown(r: &Runbook<'_>) -> String {
    let mut out = String::new();
    let verdict = if r.passed {
        "PASSED"
    } else {
        "FOUND A PROBLEM"
    };
    let _ = writeln!(
        out,
        "# phantom-sync runbook\n\n- Source: {}\n- Server: PostgreSQL {}\n- Rehearsal: **{verdict}**\n",
        r.source, r.major
    );
    if let Some(error) = r.error {
        let _ = writeln!(out, "> {}\n", error.replace('\n', "\n> "));
    }
    out.push_str("## Migration list before the repair\n\n");
    out.push_str(&diagnosis_table(r.diagnosis_before));
    if let Some(after) = r.diagnosis_after {
        out.push_str("\n## Migration list after the repair (on the copy)\n\n");
        out.push_str(&diagnosis_table(after));
    }
    if let Some(plan) = r.plan {
        out.push_str("\n## The plan, with every statement\n\n");
        out.push_str(&plan_markdown(plan, true));
    }
    let allow_data_loss = r.plan.is_some_and(|p| !p.data_at_risk.is_empty());
    out.push_str(&production_commands(
        &r.out.join("plan.json"),
        allow_data_loss,
    ));
    if let Some(journal) = r.journal {
        out.push_str("## Rehearsed execution\n\n");
        out.push_str(&journal_markdown(journal).replacen(
            "# Execution log",
            "### Execution log",
            1,
        ));
    }
    if !r.drills.is_empty() {
        out.push_str("\n## Rollback drills (each on a fresh copy)\n\n");
        for drill in r.drills {
            out.push_str(&rollback_markdown(drill));
            out.push('\n');
        }
    }
    out.push_str("## Timings\n\n| Phase | Wall time |\n|---|---|\n");
    for (phase, ms) in r.timings_ms {
        let _ = writeln!(out, "| {phase} | {ms} ms |");
    }
    out
}

/// The commands to run in production: the rehearsed plan, then each
/// rollback. The repair's backup folder is made when it runs (its name holds
/// the time), so the rollbacks name none: they use the newest complete
/// backup of the database under the default folder, and say which.
fn production_commands(plan_file: &Path, allow_data_loss: bool) -> String {
    let mut out = String::from("\n## Commands for production\n\n```sh\n");
    out.push_str(
        "# 1. Execute exactly this rehearsed plan (refused if production changed since);\n",
    );
    let _ = writeln!(
        out,
        "#    its backup goes to a new folder under {DEFAULT_PARENT}/, named in its output:"
    );
    if allow_data_loss {
        out.push_str("#    the plan destroys data (see \"Data at risk\" above): --allow-data-loss says you accept it\n");
    }
    let _ = writeln!(
        out,
        "phantom-sync repair --plan {} --db-url \"$PHANTOM_DB_URL\" --confirm <database name>{}",
        plan_file.display(),
        if allow_data_loss {
            " --allow-data-loss"
        } else {
            ""
        }
    );
    let rollbacks = [
        (
            "failed-migration",
            "# 2. If a migration fails mid-way (rollback 1): restore ledger and database from Phase 1's backup",
        ),
        (
            "dropped-tables",
            "# 3. If the wrong tables were dropped (rollback 2):",
        ),
        (
            "ledger",
            "# 4. If the migration history is corrupted (rollback 3):",
        ),
    ];
    let _ = writeln!(
        out,
        "# Rollbacks use the newest complete backup of this database under {DEFAULT_PARENT}/\n# (checked against its manifest first); add --backup-dir <folder> to pick another."
    );
    for (procedure, comment) in rollbacks {
        let _ = writeln!(
            out,
            "{comment}\nphantom-sync rollback --procedure {procedure} --db-url \"$PHANTOM_DB_URL\" --confirm <database name>"
        );
    }
    out.push_str("```\n\n");
    out
}
