//! The diagnosis as the `supabase migration list` table, with a status
//! column and the evidence behind each status ([`migration_list`]); the full
//! diagnosis ([`diagnosis_table`]) adds what needs more than a cell — how an
//! edited migration's recorded statements differ from its file, data
//! statements a file lost — and the differences from a clean replay in their
//! three sets: what the repair closes, pre-existing drift, the environment's.

use std::fmt::Write;

use super::{cell, version_time};
use crate::engine::diagnose::{Diagnosis, Drift};
use crate::source::catalog::{Difference, group, parts_phrase, plural};

/// The full diagnosis: the table, the explanations and the differences.
pub fn diagnosis_table(d: &Diagnosis) -> String {
    let mut out = migration_list(d);
    out.push_str(&explanations(d));
    out.push_str(&differences(d));
    out
}

/// The `supabase migration list` table with a Status column and details.
pub fn migration_list(d: &Diagnosis) -> String {
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

fn explanations(d: &Diagnosis) -> String {
    let explained: Vec<_> = d
        .entries
        .iter()
        .filter(|e| !e.explanation.is_empty())
        .collect();
    if explained.is_empty() {
        return String::new();
    }
    let mut out = String::from("\n### What the ledger recorded, against today's files\n\n");
    for e in explained {
        let _ = writeln!(out, "{} {} ({}):", e.version, e.name, e.status.label());
        for line in &e.explanation {
            match line.strip_prefix("  ") {
                Some(statement) => {
                    let _ = writeln!(out, "    - `{}`", statement.replace('`', "'"));
                }
                None => {
                    let _ = writeln!(out, "- {line}");
                }
            }
        }
        out.push('\n');
    }
    out
}

fn differences(d: &Diagnosis) -> String {
    let diff = &d.differences;
    if diff.environment.is_empty() && diff.pre_existing.is_empty() {
        return String::new();
    }
    let mut out = format!(
        "\nBesides what the repair creates ({} objects), the target differs from a clean replay in {} pre-existing and {} environment difference{}.\n",
        diff.to_close.len(),
        diff.pre_existing.len(),
        diff.environment.len(),
        if diff.environment.len() == 1 { "" } else { "s" }
    );
    if !diff.pre_existing.is_empty() {
        out.push_str("\n### Pre-existing drift (there before the repair; no step touches it)\n\n");
        out.push_str(&drift_lines(&diff.pre_existing));
    }
    if !diff.environment.is_empty() {
        out.push_str(
            "\n### The environment's (default privileges; never evidence against a migration)\n\n",
        );
        for line in &diff.environment {
            let _ = writeln!(out, "- {line}");
        }
    }
    out
}

/// Pre-existing drift as a list: a table that is there as a whole is one
/// line with its parts counted, and every line says how many rows its table holds.
pub fn drift_lines(drift: &[Drift]) -> String {
    let differences: Vec<Difference> = drift.iter().map(|d| d.difference.clone()).collect();
    let mut out = String::new();
    for g in group(&differences) {
        let item = &drift[g.head];
        let parts = if g.parts.is_empty() {
            String::new()
        } else {
            format!(", with {}", parts_phrase(&g.parts))
        };
        let rows = match (&item.table, item.rows) {
            (Some(t), Some(n)) => format!(" — {t} holds {n} {}", plural("row", n as usize)),
            _ => String::new(),
        };
        let _ = writeln!(out, "- {}{parts}{rows}", item.description);
    }
    out
}
