//! The plan, phase by phase as the incident plan lays it out; with its SQL
//! for `--dry-run` and the runbook.

use std::fmt::Write;

use crate::engine::plan::{Phase, Plan, short_fingerprint};

/// The plan, phase by phase; with `sql`, every statement it will run (`--dry-run`).
pub fn plan_markdown(plan: &Plan, sql: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Plan for diagnosis {}\n",
        short_fingerprint(&plan.fingerprint)
    );
    if !plan.data_at_risk.is_empty() {
        out.push_str(
            "**DATA AT RISK** — these statements destroy rows the database holds now; \
             `repair` refuses them unless given `--allow-data-loss`:\n\n",
        );
        for risk in &plan.data_at_risk {
            let _ = writeln!(
                out,
                "- {} **{} {}**: {}{}",
                risk.migration,
                risk.kind.label(),
                risk.object,
                risk.rows_text(),
                risk.statement
                    .as_deref()
                    .map(|s| format!(" (`{s}`)"))
                    .unwrap_or_default()
            );
        }
        out.push('\n');
    }
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
    for phase in Phase::ALL {
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
