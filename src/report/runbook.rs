//! The runbook a rehearsal hands over, as Markdown (read in terminals and
//! pull requests): the verdict and what it means, a summary (statuses, what
//! each phase will do, the data at risk), the exact commands for production
//! and the rollbacks — then the proof: the migration list before and after,
//! every step with its SQL folded, the rehearsed execution, the rollback
//! drills and one timings table. [`super::html`] renders the same parts as
//! a page.

use std::fmt::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::summary::{self, RiskKind};
use super::{diagnosis_table, journal_body, rollback_markdown};
use crate::engine::diagnose::Diagnosis;
use crate::engine::journal::Journal;
use crate::engine::plan::{Phase, Plan, short_fingerprint};
use crate::engine::rollback::RollbackReport;
use crate::text::count;

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

/// What a rehearsal found (saved as `rehearsal.json`).
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Rehearsal {
    pub source: String,
    pub major: u8,
    pub passed: bool,
    pub diagnosis_before: Diagnosis,
    pub diagnosis_after: Option<Diagnosis>,
    pub plan: Option<Plan>,
    pub journal: Option<Journal>,
    pub error: Option<String>,
    pub drills: Vec<RollbackReport>,
    pub timings_ms: Vec<(String, u128)>,
    pub out: PathBuf,
}

impl Rehearsal {
    /// The runbook's view of this rehearsal.
    pub fn runbook(&self) -> Runbook<'_> {
        Runbook {
            source: &self.source,
            major: self.major,
            passed: self.passed,
            error: self.error.as_deref(),
            diagnosis_before: &self.diagnosis_before,
            diagnosis_after: self.diagnosis_after.as_ref(),
            plan: self.plan.as_ref(),
            out: &self.out,
            journal: self.journal.as_ref(),
            drills: &self.drills,
            timings_ms: &self.timings_ms,
        }
    }
}

/// The runbook as Markdown: verdict, summary, commands, then the details.
pub fn runbook_markdown(r: &Runbook<'_>) -> String {
    let verdict = summary::verdict(r);
    let mut out = format!(
        "# phantom-sync runbook — {}\n\n{}\n\n",
        verdict.word, verdict.meaning
    );
    if let Some(error) = r.error {
        let _ = writeln!(out, "> {}\n", error.replace('\n', "\n> "));
    }
    for section in sections(r) {
        out.push_str(section.markdown.trim_end());
        out.push_str("\n\n");
    }
    out.truncate(out.trim_end().len());
    out.push('\n');
    out
}

/// The facts, the statuses, what each phase will do, and the data at risk.
fn summary_markdown(r: &Runbook<'_>) -> String {
    let mut out = String::from("## Summary\n\n");
    let _ = writeln!(out, "- **Rehearsed:** {}", r.source);
    let _ = write!(out, "- **Server:** PostgreSQL {}", r.major);
    match r.plan {
        Some(plan) => {
            let _ = writeln!(out, "; plan {}", short_fingerprint(&plan.fingerprint));
        }
        None => out.push('\n'),
    }
    let _ = writeln!(
        out,
        "- **Migrations before:** {}",
        summary::counts_text(r.diagnosis_before)
    );
    if let Some(after) = r.diagnosis_after {
        let _ = writeln!(
            out,
            "- **After, on the copy:** {}",
            summary::counts_text(after)
        );
    }
    let phases = summary::phases(r);
    if !phases.is_empty() {
        out.push_str("\n### What the repair will do\n\n");
        for (i, phase) in phases.iter().enumerate() {
            let _ = writeln!(out, "{}. **{}** — {}", i + 1, phase.title, phase.does);
        }
    }
    out.push_str("\n### Data at risk\n\n");
    let risks = summary::risks(r);
    if risks.is_empty() && r.plan.is_some() {
        out.push_str("- None found: the plan neither refuses nor warns.\n");
    }
    for risk in &risks {
        let subject = risk
            .version
            .as_deref()
            .map(|v| format!("{v}: "))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "- **{}** — {subject}{}",
            risk.kind.label(),
            risk.text.replace('\n', " ")
        );
        if let Some(statement) = &risk.statement {
            let _ = writeln!(out, "  - statement: `{}`", statement.replace('`', "'"));
        }
        for option in &risk.options {
            let _ = writeln!(out, "  - option: {option}");
        }
    }
    if risks.iter().any(|r| r.kind == RiskKind::Refusal) {
        out.push_str("\nThe plan will not run until every refusal is dealt with.\n");
    }
    if let Some(sentence) = summary::preservation(r) {
        let _ = writeln!(out, "\n{sentence}");
    }
    out
}

/// Each command in a block of its own, so each copies alone.
fn commands_markdown(r: &Runbook<'_>) -> String {
    let mut out = String::from("## Commands for production\n\n");
    let commands = summary::commands(r);
    if commands.is_empty() {
        out.push_str(
            "None: the rehearsal found a problem, so nothing of it may run in production. Fix the problem, then rehearse again.\n\n",
        );
        return out;
    }
    out.push_str(COMMANDS_INTRO);
    out.push_str("\n\n");
    for (i, command) in commands.iter().enumerate() {
        if i == 1 {
            out.push_str(ROLLBACKS_INTRO);
            out.push_str("\n\n");
        }
        let _ = writeln!(
            out,
            "{}. {}:\n\n```sh\n{}\n```\n",
            i + 1,
            command.label,
            command.line
        );
    }
    out
}

/// What the reader needs before running the commands.
pub(crate) const COMMANDS_INTRO: &str = "With `PHANTOM_DB_URL` set to production, from the folder the rehearsal ran in, and `<database name>` replaced by its database's name:";

/// What the rollbacks are for.
pub(crate) const ROLLBACKS_INTRO: &str = "If something goes wrong, the rollbacks (each one drilled on a fresh copy, below). Each uses the newest complete backup of this database under `.phantom/backups/`, checks it against its manifest first and names it; add `--backup-dir <folder>` to pick another:";

/// A part of the runbook below its verdict, as Markdown (heading included).
pub(crate) struct Section {
    /// The HTML page's id for it.
    pub id: &'static str,
    pub markdown: String,
}

/// The sections below the verdict, in order: the summary and the commands,
/// then the details — migration lists, plan, execution, drills, timings.
pub(crate) fn sections(r: &Runbook<'_>) -> Vec<Section> {
    let mut sections = vec![
        Section {
            id: "summary",
            markdown: summary_markdown(r),
        },
        Section {
            id: "commands",
            markdown: commands_markdown(r),
        },
    ];
    let mut migrations = String::from("## Migration list before the repair\n\n");
    migrations.push_str(&diagnosis_table(r.diagnosis_before));
    if let Some(after) = r.diagnosis_after {
        migrations.push_str("\n## Migration list after the repair (on the copy)\n\n");
        migrations.push_str(&diagnosis_table(after));
    }
    sections.push(Section {
        id: "migrations",
        markdown: migrations,
    });
    if let Some(plan) = r.plan {
        sections.push(Section {
            id: "plan",
            markdown: format!("## The plan, step by step\n\n{}", plan_steps(plan)),
        });
    }
    if let Some(journal) = r.journal {
        sections.push(Section {
            id: "journal",
            markdown: format!(
                "## Rehearsed execution (on the copy)\n\n- Target: {}\n- Result: **{}**\n\n{}",
                journal.target,
                journal.result.label(),
                demote(&journal_body(journal), 1)
            ),
        });
    }
    if !r.drills.is_empty() {
        let mut drills = String::from("## Rollback drills (each on a fresh copy)\n\n");
        for drill in r.drills {
            drills.push_str(&rollback_markdown(drill));
            drills.push('\n');
        }
        sections.push(Section {
            id: "drills",
            markdown: drills,
        });
    }
    let timings = summary::timings(r);
    if !timings.is_empty() {
        let mut table = String::from("## Timings\n\n| Phase | Wall time |\n|---|---|\n");
        for (phase, ms) in timings {
            let _ = writeln!(table, "| {phase} | {ms} ms |");
        }
        sections.push(Section {
            id: "timings",
            markdown: table,
        });
    }
    sections
}

/// Every step, phase by phase; a step's SQL folded under `<details>` (which
/// GitHub and the HTML page fold, and a terminal shows as it is).
fn plan_steps(plan: &Plan) -> String {
    let mut out = String::new();
    for phase in Phase::ALL {
        let _ = writeln!(out, "### {}\n", phase.title());
        let steps: Vec<_> = plan.phase(phase).collect();
        if steps.is_empty() {
            out.push_str("(nothing to do)\n\n");
        }
        for step in &steps {
            if step.sql.is_empty() {
                let _ = writeln!(out, "- Step {}: {}", step.id, step.title);
            }
        }
        if steps.iter().any(|s| s.sql.is_empty()) {
            out.push('\n');
        }
        for step in steps.iter().filter(|s| !s.sql.is_empty()) {
            let sql: String = step
                .sql
                .iter()
                .map(|s| format!("{};\n", s.trim_end_matches(';')))
                .collect();
            let fence = fence_for(&sql);
            let _ = writeln!(
                out,
                "<details><summary>Step {}: {} — {}</summary>\n\n{fence}sql\n{sql}{fence}\n\n</details>\n",
                escape_html(&step.id),
                escape_html(&step.title),
                count(step.sql.len(), "statement"),
            );
        }
    }
    out
}

/// A code fence longer than any run of backticks in `code`.
fn fence_for(code: &str) -> String {
    let longest = code.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    "`".repeat(longest.max(2) + 1)
}

/// Headings one level (or `by` levels) deeper, outside code blocks.
fn demote(markdown: &str, by: usize) -> String {
    let mut out = String::with_capacity(markdown.len() + 16);
    let mut in_code = false;
    for line in markdown.lines() {
        if line.starts_with("```") {
            in_code = !in_code;
        }
        if !in_code && line.starts_with('#') {
            out.push_str(&"#".repeat(by));
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// `&`, `<`, `>` and quotes as HTML entities.
pub(crate) fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::plan::Refusal;
    use crate::report::tests::{at, failed, rehearsal};

    #[test]
    fn the_verdict_summary_and_commands_come_before_the_details() {
        let md = runbook_markdown(&rehearsal().runbook());
        assert!(md.starts_with("# phantom-sync runbook — PASSED\n\nThe repair ran on a copy"));
        let order = [
            "## Summary",
            "### What the repair will do",
            "### Data at risk",
            "## Commands for production",
            "phantom-sync repair --plan .phantom/rehearsal/plan.json",
            "phantom-sync rollback --procedure failed-migration",
            "phantom-sync rollback --procedure dropped-tables",
            "phantom-sync rollback --procedure ledger",
            "## Migration list before the repair",
            "## Migration list after the repair (on the copy)",
            "## The plan, step by step",
            "<details>",
            "## Rehearsed execution (on the copy)",
            "### Success criteria checklist",
            "### Data preservation",
            "## Rollback drills",
            "## Timings",
        ];
        let places: Vec<usize> = order.iter().map(|n| at(&md, n)).collect();
        assert!(places.is_sorted(), "{order:?} out of order: {places:?}");
        assert_eq!(md.matches("## Timings").count(), 1, "one timings table");
        assert!(md.contains("| total | "), "{md}");
        assert!(!md.contains("\n\n\n"), "no double blank lines");
    }

    #[test]
    fn the_summary_counts_statuses_and_says_what_each_phase_does() {
        let md = runbook_markdown(&rehearsal().runbook());
        for line in [
            "- **Migrations before:** 4 applied, 2 phantom, 2 pending",
            "- **After, on the copy:** 8 applied",
            "delete 2 ledger rows (20250413093000 prompt_manager_orgs, 20251001211923 prompt_manager_catalog), expecting `DELETE 2`",
            "Apply 4 migrations in version order",
            "- None found: the plan neither refuses nor warns.",
            "On the copy, both tables that held data before kept every row",
        ] {
            at(&md, line);
        }
    }

    #[test]
    fn each_command_is_a_block_of_its_own() {
        let md = runbook_markdown(&rehearsal().runbook());
        let blocks: Vec<&str> = md.split("```sh\n").skip(1).collect();
        assert_eq!(blocks.len(), 4, "repair and three rollbacks");
        for block in blocks {
            let command = &block[..at(block, "```")];
            assert_eq!(command.matches("phantom-sync ").count(), 1, "{command}");
            assert!(command.contains("--confirm <database name>"), "{command}");
        }
    }

    #[test]
    fn a_step_s_sql_is_folded_and_counted_in_good_english() {
        let md = runbook_markdown(&rehearsal().runbook());
        at(
            &md,
            "<details><summary>Step 3.3: Apply 20251002100000_localize_prompts_table.sql — 4 statements</summary>\n\n```sql\nRESET ALL;\n",
        );
        assert_eq!(md.matches("<details>").count(), 5, "2.1 and 3.1-3.4");
        assert_eq!(md.matches("</details>").count(), 5);
        at(&md, "| 1 statement and its ledger row committed |");
        assert!(!md.contains(" 1 statements"), "{md}");
    }

    #[test]
    fn a_failed_rehearsal_says_so_first_and_offers_nothing_to_run() {
        let md = runbook_markdown(&failed().runbook());
        assert!(
            md.starts_with("# phantom-sync runbook — FOUND A PROBLEM\n\nOn a copy of production, a step of the repair failed (production was not touched): do not run"),
            "{md}"
        );
        at(&md, "> migration 20251002100000 failed");
        at(
            &md,
            "## Commands for production\n\nNone: the rehearsal found a problem",
        );
        assert!(!md.contains("phantom-sync repair --plan"), "{md}");
    }

    #[test]
    fn refusals_and_warnings_are_the_data_at_risk() {
        let mut r = rehearsal();
        let plan = r.plan.as_mut().expect("a plan");
        plan.refusals.push(Refusal {
            version: "20251003000000".into(),
            reason: "CREATE POLICY cannot run twice".into(),
            statement: Some("create policy p on t\n  using (true)".into()),
            options: vec!["edit the file: `create policy if not exists`".into()],
        });
        plan.warnings
            .push("20250413093000 orgs: objects exist with another shape".into());
        r.passed = false;
        let md = runbook_markdown(&r.runbook());
        let risks = &md[at(&md, "### Data at risk")..at(&md, "## Commands for production")];
        assert_eq!(
            risks,
            "### Data at risk\n\n\
             - **Refused** — 20251003000000: CREATE POLICY cannot run twice\n  \
             - statement: `create policy p on t`\n  \
             - option: edit the file: `create policy if not exists`\n\
             - **Warning** — 20250413093000 orgs: objects exist with another shape\n\n\
             The plan will not run until every refusal is dealt with.\n\n\
             On the copy, both tables that held data before kept every row (counts and checksums equal).\n\n"
        );
        at(
            &md,
            "On a copy of production, the plan refuses to run, with 1 refusal (production was not touched)",
        );
    }

    #[test]
    fn fences_outgrow_the_backticks_of_the_sql_and_headings_go_down_a_level() {
        assert_eq!(fence_for("select 1;"), "```");
        assert_eq!(fence_for("-- ```sql\nselect 1;"), "````");
        assert_eq!(
            demote("## A\n```\n# not a heading\n```\n### B\n", 1),
            "### A\n```\n# not a heading\n```\n#### B\n"
        );
    }
}
