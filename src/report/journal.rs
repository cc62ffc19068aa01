//! The journal as the incident plan's execution log, with the success
//! checklist and the data preservation table.

use std::fmt::Write;

use super::cell;
use crate::engine::backup::TableComparison;
use crate::engine::journal::{Journal, StepOutcome};
use crate::engine::plan::{Phase, short_fingerprint};
use crate::engine::verify::Verification;
use crate::text::count;

/// The journal as the incident plan's execution log.
pub fn journal_markdown(j: &Journal) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Execution log\n\n- Target: {}\n- Plan: {}\n- Result: **{}**\n",
        j.target,
        short_fingerprint(&j.plan_fingerprint),
        j.result.label()
    );
    out.push_str(&journal_body(j));
    let _ = writeln!(
        out,
        "## Timings\n\nTotal: {} ms over {}",
        j.total_ms(),
        count(j.entries.len(), "step")
    );
    out
}

/// The log's tables (one per phase), the checklist, the data preservation
/// table and the issues, under `##` headings — without the log's header and
/// timings, for reports that show those their own way (the runbook).
pub fn journal_body(j: &Journal) -> String {
    let mut out = String::new();
    for phase in Phase::ALL {
        let entries: Vec<_> = j.phase(phase).collect();
        if entries.is_empty() {
            continue;
        }
        let _ = writeln!(
            out,
            "## {}\n\n| Step | Title | Outcome | Rows | Duration | Detail |\n|---|---|---|---|---|---|",
            phase.title()
        );
        for e in entries {
            let outcome = match e.outcome {
                StepOutcome::Done => "✓ done",
                StepOutcome::Failed => "✗ failed",
                StepOutcome::NotRun => "not run",
                StepOutcome::Started => "⚠ started, never finished (process killed?)",
                StepOutcome::Interrupted => "⚠ interrupted (rolled back)",
            };
            let rows = e.rows_affected.map(|r| r.to_string()).unwrap_or_default();
            let _ = writeln!(
                out,
                "| {} | {} | {outcome} | {rows} | {} ms | {} |",
                e.step,
                cell(&e.title),
                e.duration_ms,
                cell(&e.detail.join("; "))
            );
        }
        out.push('\n');
    }
    if let Some(v) = &j.verification {
        out.push_str(&verification_markdown(v));
    }
    if !j.issues.is_empty() {
        out.push_str("## Issues\n\n");
        for issue in &j.issues {
            let _ = writeln!(out, "- {}", issue.replace('\n', " "));
        }
        out.push('\n');
    }
    out
}

/// The success checklist and the data preservation table.
pub fn verification_markdown(v: &Verification) -> String {
    let mut out = String::from("## Success criteria checklist\n\n");
    for check in &v.checks {
        let _ = writeln!(
            out,
            "- [{}] {}",
            if check.passed { "x" } else { " " },
            check.name
        );
        for line in &check.evidence {
            let _ = writeln!(out, "  - {line}");
        }
    }
    if !v.preservation.is_empty() {
        out.push('\n');
        out.push_str(&preservation_table(&v.preservation));
    }
    out.push('\n');
    out
}

/// Rows and checksums before and after, per pre-existing table.
pub fn preservation_table(rows: &[TableComparison]) -> String {
    let mut out = String::from(
        "## Data preservation\n\n| Table | Rows before | Rows after | Checksum | Preserved |\n|---|---|---|---|---|\n",
    );
    for c in rows {
        let (after, checksum) = match &c.after {
            Some(a) => (
                a.rows.to_string(),
                if a.checksum == c.before.checksum {
                    "equal"
                } else {
                    "differs"
                },
            ),
            None => ("missing".into(), "—"),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {after} | {checksum} | {} |",
            c.table,
            c.before.rows,
            if c.preserved { "✓" } else { "✗" }
        );
    }
    out
}
