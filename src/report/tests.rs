//! The report's unit tests that span its renderers, and the fixtures they
//! share: a real rehearsal's results (`tests/data/rehearsal.json`).

use super::*;
use crate::engine::outcome::RunOutcome;

/// The built-in incident's rehearsal as a real run saved it (its
/// `rehearsal.json`, with the output folder renamed `.phantom/rehearsal`).
pub(crate) fn rehearsal() -> Rehearsal {
    serde_json::from_str(include_str!("../../tests/data/rehearsal.json"))
        .expect("tests/data/rehearsal.json is a rehearsal")
}

/// The same rehearsal, stopped by a failed step.
pub(crate) fn failed() -> Rehearsal {
    let mut r = rehearsal();
    r.passed = false;
    r.error = Some("migration 20251002100000 failed: relation \"public.prompts\" does not exist\n  <b>alter table</b> & more".into());
    r.diagnosis_after = None;
    r.drills.clear();
    if let Some(j) = &mut r.journal {
        j.result = RunOutcome::Failed;
    }
    r
}

/// Where `needle` first appears in `text` (panics when it does not).
pub(crate) fn at(text: &str, needle: &str) -> usize {
    text.find(needle)
        .unwrap_or_else(|| panic!("{needle:?} is missing from:\n{text}"))
}

#[test]
fn versions_read_as_times() {
    assert_eq!(version_time("20250413093000"), "2025-04-13 09:30:00");
    assert_eq!(version_time("0001"), "");
}
