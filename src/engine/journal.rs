//! The execution log of a repair: one entry per step with start, end,
//! duration, outcome and rows affected, plus the verification checklist and
//! the data preservation table. It is saved after every step, so a repair
//! that is killed leaves the journal of what it had done.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::engine::plan::Phase;
use crate::engine::verify::Verification;
use crate::{Error, Result};

/// How a step ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Done,
    Failed,
    /// Not run because an earlier step failed or was interrupted.
    NotRun,
}

/// One executed step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalEntry {
    pub step: String,
    pub phase: Phase,
    pub title: String,
    /// Milliseconds since the Unix epoch.
    pub started_at_ms: u128,
    pub finished_at_ms: u128,
    pub duration_ms: u128,
    pub outcome: Outcome,
    pub rows_affected: Option<u64>,
    /// What the step produced or why it failed.
    pub detail: Vec<String>,
}

/// The whole log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Journal {
    /// The target, password redacted.
    pub target: String,
    pub plan_fingerprint: String,
    pub started_at_ms: u128,
    pub entries: Vec<JournalEntry>,
    pub verification: Option<Verification>,
    /// Errors and warnings met on the way.
    pub issues: Vec<String>,
    /// "success", "failed", "interrupted", "refused" or "nothing to do".
    pub result: String,
    /// Where it is saved (not serialised into itself).
    #[serde(skip)]
    pub path: Option<PathBuf>,
}

impl Journal {
    /// A new journal for `target`.
    pub fn new(target: &str, plan_fingerprint: &str, dir: Option<&Path>) -> Journal {
        Journal {
            target: target.to_string(),
            plan_fingerprint: plan_fingerprint.to_string(),
            started_at_ms: now_ms(),
            entries: Vec::new(),
            verification: None,
            issues: Vec::new(),
            result: "running".into(),
            path: dir.map(|d| d.join("journal.json")),
        }
    }

    /// Writes `journal.json` (and `journal.md`) next to the backup, atomically.
    pub fn save(&self) -> Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        write_atomic(
            path,
            &serde_json::to_string_pretty(self).unwrap_or_default(),
        )?;
        write_atomic(
            &path.with_extension("md"),
            &crate::report::journal_markdown(self),
        )
    }

    /// Total time of the steps that ran, in milliseconds.
    pub fn total_ms(&self) -> u128 {
        self.entries.iter().map(|e| e.duration_ms).sum()
    }

    /// The entries of a phase.
    pub fn phase(&self, phase: Phase) -> impl Iterator<Item = &JournalEntry> {
        self.entries.iter().filter(move |e| e.phase == phase)
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

/// Writes `text` to `path` through a temporary file and a rename, so a
/// reader never sees a half-written file.
pub fn write_atomic(path: &Path, text: &str) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(Error::io("create", parent))?;
    }
    let partial = path.with_extension("partial");
    std::fs::write(&partial, text).map_err(Error::io("write", &partial))?;
    std::fs::rename(&partial, path).map_err(Error::io("rename", path))
}
