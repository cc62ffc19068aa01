//! The predictions this process has made, by everything they depend on. A
//! harness that repairs the same database again — a run killed after each
//! step starts over where the last one stopped, a second run follows a lock
//! timeout — gets the answer it already had, instead of copying the same
//! schema into another scratch database and running the same plan there. The
//! key is a SHA-256 over the schema-only archive's content (its digest
//! without the dump's time), the target's major, ledger and environment, the
//! plan, the project's migrations and their effects, and the catalog
//! options: a change to any of them is a new prediction. The last [`KEPT`]
//! answers are kept.

use std::sync::Mutex;

use sha2::{Digest, Sha256};

use crate::engine::inspect::Inspection;
use crate::engine::plan::{Plan, Refusal};
use crate::recent::Recent;
use crate::source::catalog::CatalogOptions;

/// How many answers are kept.
const KEPT: usize = 64;

static ANSWERS: Mutex<Recent<String, Option<Refusal>>> = Mutex::new(Recent::new(KEPT));

/// The key of a prediction, or `None` when a part cannot be written as JSON
/// (then nothing is remembered).
pub(super) fn key(
    archive: &str,
    inspection: &Inspection,
    plan: &Plan,
    options: &CatalogOptions,
) -> Option<String> {
    let mut hasher = Sha256::new();
    hasher.update(archive.as_bytes());
    hasher.update([inspection.major]);
    for part in [
        serde_json::to_vec(&inspection.ledger),
        serde_json::to_vec(&inspection.environment),
        serde_json::to_vec(plan),
        serde_json::to_vec(&inspection.project),
        serde_json::to_vec(&inspection.effects),
        serde_json::to_vec(options),
    ] {
        let bytes = part.ok()?;
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(&bytes);
    }
    Some(format!("{:x}", hasher.finalize()))
}

/// The answer remembered under `key`, if any: `Some(None)` is "no refusal".
pub(super) fn get(key: &Option<String>) -> Option<Option<Refusal>> {
    let key = key.as_ref()?;
    ANSWERS.lock().unwrap_or_else(|p| p.into_inner()).get(key)
}

/// Remembers `answer` under `key`; the oldest answer goes past [`KEPT`].
pub(super) fn put(key: Option<String>, answer: &Option<Refusal>) {
    let Some(key) = key else { return };
    ANSWERS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .put(key, answer);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(version: &str) -> Option<Refusal> {
        Some(Refusal {
            version: version.into(),
            reason: "re-applying fails".into(),
            statement: None,
            options: Vec::new(),
        })
    }

    #[test]
    fn an_answer_comes_back_under_its_key_until_newer_ones_push_it_out() {
        // The memo is process-wide: these keys are this test's own.
        let key = |n: usize| Some(format!("memo-test-{n}"));
        put(key(0), &refusal("20250101000000"));
        put(key(1), &None);
        assert_eq!(get(&key(0)), Some(refusal("20250101000000")));
        assert_eq!(get(&key(1)), Some(None), "no refusal is an answer too");
        assert_eq!(get(&key(2)), None);
        put(None, &refusal("20250101000000"));
        assert_eq!(get(&None), None, "without a key nothing is remembered");
        for n in 2..=KEPT {
            put(key(n), &None);
        }
        assert_eq!(get(&key(0)), None, "the oldest went");
        assert_eq!(get(&key(KEPT)), Some(None));
    }
}
