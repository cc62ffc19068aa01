//! A rollback procedure's report: what it did, then each check of its proof.

use std::fmt::Write;

use crate::engine::rollback::RollbackReport;

/// `### <title> — restored`, the steps taken, then the proof as a checklist.
pub fn rollback_markdown(report: &RollbackReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "### {} — {}\n",
        report.procedure.title(),
        if report.restored() {
            "restored"
        } else {
            "NOT restored"
        }
    );
    for step in &report.steps {
        let _ = writeln!(out, "- {step}");
    }
    for check in &report.proof {
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
    out
}
