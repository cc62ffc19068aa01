//! Markdown rendering of diagnoses, plans, journals and verifications —
//! laid out like the incident plan's tables and execution log. JSON comes
//! from serde on the types themselves.

use std::fmt::Write;

use crate::engine::backup::TableComparison;
use crate::engine::diagnose::Diagnosis;
use crate::engine::journal::{Journal, Outcome};
use crate::engine::plan::{Phase, Plan, short_fingerprint};
use crate::engine::verify::Verification;

/// The `supabase migration list` table with a Status column and details.
pub fn diagnosis_table(d: &Diagnosis) -> String {
    let mut out = String::new();
    if !d.ledger_exists {
        out.push_str("(no ledger table: supabase_migrations.schema_migrations does not exist — every migration counts as not recorded)\n\n");
    }
    out.push_str("| Local | Remote | Time (UTC) | Status | Details |\n|---|---|---|---|---|\n");
    for e in &d.entries {
        let local = if e.local { e.version.as_str() } else { "" };
        let remote = e.recorded_as.as_deref().unwrap_or("");
        let details = if e.evidence.is_empty() {
            e.name.clone()
        } else {
            format!("{}: {}", e.name, e.evidence.join("; "))
        };
        let _ = writeln!(
            out,
            "| {local} | {remote} | {} | {} | {} |",
            version_time(&e.version),
            e.status.label(),
            cell(&details)
        );
    }
    let counts: Vec<String> = d
        .counts()
        .iter()
        .map(|(s, n)| format!("{n} {}", s.label()))
        .collect();
    let _ = writeln!(out, "\n{}", counts.join(", "));
    out
}

/// `20250413093000` → `2025-04-13 09:30:00`.
pub fn version_time(version: &str) -> String {
    let v: Vec<char> = version.chars().collect();
    if v.len() != 14 || !v.iter().all(char::is_ascii_digit) {
        return String::new();
    }
    let s = |a: usize, b: usize| v[a..b].iter().collect::<String>();
    format!(
        "{}-{}-{} {}:{}:{}",
        s(0, 4),
        s(4, 6),
        s(6, 8),
        s(8, 10),
        s(10, 12),
        s(12, 14)
    )
}

fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// The plan, phase by phase; with `sql`, every statement it will run (`--dry-run`).
pub fn plan_markdown(plan: &Plan, sql: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Plan for diagnosis {}\n",
        short_fingerprint(&plan.fingerprint)
    );
    for refusal in &plan.refusals {
        let _ = writeln!(out, "REFUSED — {}: {}", refusal.version, refusal.reason);
        if let Some(statement) = &refusal.statement {
            let _ = writeln!(
                out,
                "  statement: {}",
                statement.lines().next().unwrap_or("")
            );
        }
        for option in &refusal.options {
            let _ = writeln!(out, "  option: {option}");
        }
    }
    for warning in &plan.warnings {
        let _ = writeln!(out, "warning: {warning}");
    }
    for phase in [
        Phase::Backup,
        Phase::LedgerRepair,
        Phase::Reapply,
        Phase::Verify,
    ] {
        let steps: Vec<_> = plan.phase(phase).collect();
        let _ = writeln!(out, "\n### {}\n", phase.title());
        if steps.is_empty() {
            out.push_str("(nothing to do)\n");
        }
        for step in steps {
            let _ = writeln!(out, "- Step {}: {}", step.id, step.title);
            if sql && !step.sql.is_empty() {
                out.push_str("\n```sql\n");
                for statement in &step.sql {
                    let _ = writeln!(out, "{};", statement.trim_end_matches(';'));
                }
                out.push_str("```\n\n");
            }
        }
    }
    out
}

/// The journal as the incident plan's execution log.
pub fn journal_markdown(j: &Journal) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Execution log\n\n- Target: {}\n- Plan: {}\n- Result: **{}**\n",
        j.target,
        short_fingerprint(&j.plan_fingerprint),
        j.result
    );
    for phase in [
        Phase::Backup,
        Phase::LedgerRepair,
        Phase::Reapply,
        Phase::Verify,
    ] {
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
                Outcome::Done => "✓ done",
                Outcome::Failed => "✗ failed",
                Outcome::NotRun => "not run",
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
    let _ = writeln!(
        out,
        "## Timings\n\nTotal: {} ms over {} steps",
        j.total_ms(),
        j.entries.len()
    );
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

/// The runbook a rehearsal hands over: what will happen in production and the proof it works.
pub fn runbook_markdown(r: &crate::rehearse::Rehearsal) -> String {
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
    if let Some(error) = &r.error {
        let _ = writeln!(out, "> {}\n", error.replace('\n', "\n> "));
    }
    out.push_str("## Migration list before the repair\n\n");
    out.push_str(&diagnosis_table(&r.diagnosis_before));
    if let Some(after) = &r.diagnosis_after {
        out.push_str("\n## Migration list after the repair (on the copy)\n\n");
        out.push_str(&diagnosis_table(after));
    }
    if let Some(plan) = &r.plan {
        out.push_str("\n## The plan, with every statement\n\n");
        out.push_str(&plan_markdown(plan, true));
    }
    out.push_str("\n## Commands for production\n\n```sh\n");
    out.push_str(
        "# 1. Execute exactly this rehearsed plan (refused if production changed since):\n",
    );
    let _ = writeln!(
        out,
        "phantom-sync repair --plan {} --db-url \"$PHANTOM_DB_URL\" --confirm <database name> --backup-dir .phantom/backup",
        r.out.join("plan.json").display()
    );
    out.push_str("# 2. If a migration fails mid-way (rollback 1): restore ledger and database from Phase 1's backup\n");
    out.push_str("phantom-sync rollback --procedure failed-migration --backup-dir .phantom/backup --db-url \"$PHANTOM_DB_URL\" --confirm <database name>\n");
    out.push_str("# 3. If the wrong tables were dropped (rollback 2):\n");
    out.push_str("phantom-sync rollback --procedure dropped-tables --backup-dir .phantom/backup --db-url \"$PHANTOM_DB_URL\" --confirm <database name>\n");
    out.push_str("# 4. If the migration history is corrupted (rollback 3):\n");
    out.push_str("phantom-sync rollback --procedure ledger --backup-dir .phantom/backup --db-url \"$PHANTOM_DB_URL\" --confirm <database name>\n```\n\n");
    if let Some(journal) = &r.journal {
        out.push_str("## Rehearsed execution\n\n");
        out.push_str(&journal_markdown(journal).replacen(
            "# Execution log",
            "### Execution log",
            1,
        ));
    }
    if !r.drills.is_empty() {
        out.push_str("\n## Rollback drills (each on a fresh copy)\n\n");
        for d in &r.drills {
            let _ = writeln!(
                out,
                "### {} — {}\n",
                d.procedure.title(),
                if d.restored() {
                    "restored"
                } else {
                    "NOT restored"
                }
            );
            for step in &d.steps {
                let _ = writeln!(out, "- {step}");
            }
            for check in &d.proof {
                let _ = writeln!(
                    out,
                    "- [{}] {}{}",
                    if check.passed { "x" } else { " " },
                    check.name,
                    if check.evidence.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", check.evidence.join("; "))
                    }
                );
            }
            out.push('\n');
        }
    }
    out.push_str("## Timings\n\n| Phase | Wall time |\n|---|---|\n");
    for (phase, ms) in &r.timings_ms {
        let _ = writeln!(out, "| {phase} | {ms} ms |");
    }
    out
}

/// A self-contained HTML page showing `markdown` (tables and code kept readable).
pub fn html_page(title: &str, markdown: &str) -> String {
    let mut body = String::new();
    let mut in_code = false;
    let mut in_table = false;
    for line in markdown.lines() {
        if line.starts_with("```") {
            body.push_str(if in_code { "</pre>\n" } else { "<pre>" });
            in_code = !in_code;
            continue;
        }
        if in_code {
            body.push_str(&escape(line));
            body.push('\n');
            continue;
        }
        let is_row = line.starts_with('|');
        if in_table && !is_row {
            body.push_str("</table>\n");
            in_table = false;
        }
        if is_row {
            if line.starts_with("|---") {
                continue;
            }
            if !in_table {
                body.push_str("<table>\n");
                in_table = true;
            }
            let cells: Vec<String> = line
                .trim_matches('|')
                .split(" | ")
                .map(|c| format!("<td>{}</td>", escape(c.trim())))
                .collect();
            let _ = writeln!(body, "<tr>{}</tr>", cells.join(""));
        } else if let Some(h) = line.strip_prefix("### ") {
            let _ = writeln!(body, "<h3>{}</h3>", escape(h));
        } else if let Some(h) = line.strip_prefix("## ") {
            let _ = writeln!(body, "<h2>{}</h2>", escape(h));
        } else if let Some(h) = line.strip_prefix("# ") {
            let _ = writeln!(body, "<h1>{}</h1>", escape(h));
        } else if !line.trim().is_empty() {
            let _ = writeln!(body, "<p>{}</p>", escape(line));
        }
    }
    if in_table {
        body.push_str("</table>\n");
    }
    format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{}</title><style>\
body{{font-family:system-ui,sans-serif;max-width:72rem;margin:2rem auto;padding:0 1rem;line-height:1.4}}\
table{{border-collapse:collapse;margin:1rem 0}}td{{border:1px solid #ccc;padding:.25rem .5rem;vertical-align:top}}\
tr:first-child td{{font-weight:600;background:#f4f4f4}}pre{{background:#f6f8fa;padding:1rem;overflow-x:auto}}\
</style></head><body>\n{}</body></html>\n",
        escape(title),
        body
    )
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_read_as_times() {
        assert_eq!(version_time("20250413093000"), "2025-04-13 09:30:00");
        assert_eq!(version_time("0001"), "");
    }
}
