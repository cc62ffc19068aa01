//! The diagnosis as the `supabase migration list` table, with a status
//! column and the evidence behind each status ([`migration_list`]); the full
//! diagnosis ([`diagnosis_table`]) adds what needs more than a cell — how an
//! edited migration's recorded statements differ from its file, data
//! statements a file lost — and the differences from a clean replay in their
//! three sets: what the repair closes, pre-existing drift, the environment's.

use std::fmt::Write;

use super::{cell, version_time};
use crate::engine::diagnose::{Diagnosis, Drift, Status};
use crate::source::catalog::{Difference, group, parts_phrase};
use crate::text::count;

/// The full diagnosis: the table, the explanations and the differences.
pub fn diagnosis_table(d: &Diagnosis) -> String {
    let mut out = migration_list(d);
    out.push_str(&explanations(d));
    out.push_str(&differences(d));
    out
}

/// The `supabase migration list` table with a Status column and details.
pub fn migration_list(d: &Diagnosis) -> String {
    let mut out = folder_warnings(d);
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
            (Some(t), Some(n)) => format!(" — {t} holds {}", count(n, "row")),
            _ => String::new(),
        };
        let _ = writeln!(out, "- {}{parts}{rows}", item.description);
    }
    out
}

/// What each status means, in one line.
fn meaning(status: Status) -> &'static str {
    match status {
        Status::Applied => "recorded in the ledger, and its effects are in the schema",
        Status::Phantom => "recorded in the ledger, but none of its effects are in the schema",
        Status::Partial => "recorded, but only some of its effects are in the schema",
        Status::Drifted => "recorded, and objects it made exist with another shape",
        Status::Unrecorded => "not recorded, but its effects are in the schema (applied by hand)",
        Status::Pending => "not recorded and not applied",
        Status::RemoteOnly => "recorded in the ledger, but no local file has this version",
        Status::Edited => {
            "recorded and applied, but the file's statements differ from the ledger's"
        }
        Status::ReVersioned => "recorded under another version with this file's exact statements",
    }
}

/// The diagnosis for a terminal (`phantom-sync diagnose`): per migration a
/// heading, what its status means, and the evidence one item per line —
/// items about a table's parts under that table — wrapped at `width`; then
/// the explanations, the differences and the skipped files.
pub fn diagnosis_text(d: &Diagnosis, width: usize) -> String {
    let mut out = String::new();
    out.push_str(&folder_warnings(d));
    for e in &d.entries {
        let _ = writeln!(out, "{} {} — {}", e.version, e.name, e.status.label());
        out.push_str(&wrap(meaning(e.status), width, "    ", "    "));
        let mut current_table: Option<String> = None;
        for item in &e.evidence {
            match table_part(item) {
                Some((table, rest)) => {
                    if current_table.as_deref() != Some(table.as_str()) {
                        let _ = writeln!(out, "  • table {table}:");
                        current_table = Some(table);
                    }
                    out.push_str(&wrap(&rest, width, "      - ", "        "));
                }
                None => {
                    current_table = None;
                    out.push_str(&wrap(item, width, "  • ", "    "));
                }
            }
        }
        for line in &e.explanation {
            out.push_str(&wrap(line.trim_start(), width, "  ↳ ", "    "));
        }
        out.push('\n');
    }
    let counts: Vec<String> = d
        .counts()
        .iter()
        .map(|(s, n)| format!("{n} {}", s.label()))
        .collect();
    let _ = writeln!(out, "{}", counts.join(", "));
    out.push_str(&differences(d));
    out
}

/// `column public.t.c (text): missing` → (`public.t`, `column c (text): missing`):
/// evidence about a part of a table, grouped under that table.
fn table_part(item: &str) -> Option<(String, String)> {
    const PARTS: [&str; 6] = [
        "column ",
        "constraint ",
        "policy ",
        "trigger ",
        "comment column ",
        "rls ",
    ];
    let kind = PARTS.iter().find(|k| item.starts_with(**k))?;
    let rest = &item[kind.len()..];
    let (schema, after) = split_name_part(rest)?;
    let after = after.strip_prefix('.')?;
    let (table, after) = split_name_part(after)?;
    let after = match *kind {
        "rls " => after.to_string(),
        _ => after.strip_prefix('.')?.to_string(),
    };
    Some((
        format!("{schema}.{table}"),
        format!("{} {}", kind.trim_end(), after.trim_start()),
    ))
}

/// One name as keys write it (plain or double-quoted) and the text after it.
fn split_name_part(text: &str) -> Option<(&str, &str)> {
    if let Some(quoted) = text.strip_prefix('"') {
        let mut i = 0;
        let bytes = quoted.as_bytes();
        while i < bytes.len() {
            if bytes[i] == b'"' {
                if bytes.get(i + 1) == Some(&b'"') {
                    i += 2;
                    continue;
                }
                return Some((&text[..i + 2], &text[i + 2..]));
            }
            i += 1;
        }
        return None;
    }
    let end = text
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '$'))
        .unwrap_or(text.len());
    (end > 0).then(|| (&text[..end], &text[end..]))
}

/// Words of `text` on lines of at most `width` characters: the first line
/// starts with `first`, the others with `rest`.
fn wrap(text: &str, width: usize, first: &str, rest: &str) -> String {
    let mut out = String::new();
    let mut line = String::from(first);
    let mut empty = true;
    for word in text.split_whitespace() {
        if !empty && line.chars().count() + 1 + word.chars().count() > width {
            out.push_str(line.trim_end());
            out.push('\n');
            line = String::from(rest);
            empty = true;
        }
        if !empty {
            line.push(' ');
        }
        line.push_str(word);
        empty = false;
    }
    out.push_str(line.trim_end());
    out.push('\n');
    out
}

/// What the Supabase CLI would warn about the folder: skipped entries, or no
/// migration at all.
fn folder_warnings(d: &Diagnosis) -> String {
    let mut out = String::new();
    for s in &d.skipped {
        let _ = writeln!(out, "Skipping {}: {}", s.path.display(), s.reason);
    }
    if d.no_migrations {
        let remote = d.entries.iter().filter(|e| !e.local).count();
        let _ = writeln!(
            out,
            "The migrations folder has no migration files{}. (hint: point --migrations at your project's supabase/migrations)",
            if remote > 0 {
                format!(", so every one of the {remote} ledger rows reads as remote-only")
            } else {
                String::new()
            }
        );
    }
    if !out.is_empty() {
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evidence_about_a_tables_parts_goes_under_the_table() {
        assert_eq!(
            table_part("column public.user_consents.ip_address (text): unexpected"),
            Some((
                "public.user_consents".into(),
                "column ip_address (text): unexpected".into()
            ))
        );
        assert_eq!(
            table_part("policy public.collections.\"Users can view\": missing"),
            Some((
                "public.collections".into(),
                "policy \"Users can view\": missing".into()
            ))
        );
        assert_eq!(
            table_part("rls public.tags (enabled): missing"),
            Some(("public.tags".into(), "rls (enabled): missing".into()))
        );
        assert_eq!(table_part("table public.t: missing"), None);
        assert_eq!(table_part("function public.f(): missing"), None);
    }

    #[test]
    fn lines_wrap_at_the_width_with_hanging_indents() {
        let text = wrap("one two three four five six", 14, "  • ", "    ");
        assert_eq!(text, "  • one two\n    three four\n    five six\n");
        for line in text.lines() {
            assert!(line.chars().count() <= 14, "{line}");
        }
    }
}
