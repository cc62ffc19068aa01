//! Readable renderings of what the engine returns — one renderer per report,
//! used by the CLI, the scenario matrix and the rehearsal alike: the
//! diagnosis as the `migration list` table ([`diagnosis`]), the [`plan`], the
//! execution log with its checklist ([`journal`]), a [`rollback`] and its
//! proof, and the rehearsal's [`runbook`] — as Markdown, and as an [`html`]
//! page rendered from that Markdown, both topped by what [`summary`] works
//! out. JSON comes from serde on the engine's types themselves.

pub mod diagnosis;
pub mod html;
pub mod journal;
pub mod plan;
pub mod rollback;
pub mod runbook;
pub mod summary;

pub use diagnosis::{diagnosis_table, diagnosis_text, migration_list};
pub use html::{markdown_html, runbook_html};
pub use journal::{journal_body, journal_markdown, preservation_table, verification_markdown};
pub use plan::plan_markdown;
pub use rollback::rollback_markdown;
pub use runbook::{Rehearsal, Runbook, runbook_markdown};

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

/// A Markdown table cell: pipes escaped, one line.
pub(crate) fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

#[cfg(test)]
mod tests;
