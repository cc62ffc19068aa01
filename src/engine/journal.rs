//! The execution log of a repair: one entry per step with start, end,
//! duration, outcome and rows affected, plus the verification checklist and
//! the data preservation table. It is saved as `journal.json` after every
//! step, so a repair that is killed leaves the log of what it had done; the
//! readable `journal.md` is rendered from it by [`crate::report`].

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::Result;
use crate::engine::outcome::RunOutcome;
use crate::engine::plan::Phase;
use crate::engine::verify::Verification;
use crate::files::{now_ms, write_atomic};

/// File name of the journal inside a backup folder.
pub const JOURNAL_FILE: &str = "journal.json";

/// How a step ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum StepOutcome {
    Done,
    Failed,
    /// Not run because an earlier step failed or was interrupted.
    NotRun,
    /// Started and not finished: what a killed run's journal says of the
    /// step it died in.
    Started,
    /// Stopped by a signal while running; its transaction was rolled back.
    Interrupted,
}

/// One executed step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct JournalEntry {
    pub step: String,
    pub phase: Phase,
    pub title: String,
    /// Milliseconds since the Unix epoch.
    pub started_at_ms: u128,
    pub finished_at_ms: u128,
    pub duration_ms: u128,
    pub outcome: StepOutcome,
    pub rows_affected: Option<u64>,
    /// What the step produced or why it failed.
    pub detail: Vec<String>,
}

/// The whole log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Journal {
    /// The target, password redacted.
    pub target: String,
    pub plan_fingerprint: String,
    pub started_at_ms: u128,
    pub entries: Vec<JournalEntry>,
    pub verification: Option<Verification>,
    /// Errors and warnings met on the way.
    pub issues: Vec<String>,
    /// How the run ended ([`RunOutcome::Running`] while it runs).
    pub result: RunOutcome,
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
            result: RunOutcome::Running,
            path: dir.map(|d| d.join(JOURNAL_FILE)),
        }
    }

    /// Writes `journal.json` next to the backup, atomically.
    pub fn save(&self) -> Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        write_atomic(
            path,
            &serde_json::to_string_pretty(self).unwrap_or_default(),
        )
    }

    /// Ends the journal: records `result` (and the error, if any) and saves it.
    pub fn finish(&mut self, result: RunOutcome, error: Option<&crate::Error>) {
        self.result = result;
        if let Some(error) = error {
            self.issues.push(error.to_string());
        }
        let _ = self.save();
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
