//! The diagnosis as the `supabase migration list` table, with a status
//! column and the evidence behind each status.

use std::fmt::Write;

use super::{cell, version_time};
use crate::engine::diagnose::Diagnosis;

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
