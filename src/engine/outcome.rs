//! How a run of the procedure ends, as one typed value. The journal records
//! it, the CLI maps it to an exit code, the scenario matrix compares it with
//! what a scenario expects — so nothing classifies a run by reading text.

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind};

/// The result of a repair run.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum RunOutcome {
    /// Still running: what a journal saved between steps says.
    Running,
    /// Every step ran and the success checklist passed.
    Repaired,
    /// The database needed nothing; the checklist passed.
    NothingToDo,
    /// The plan refused to run, or did not fit the database any more; nothing was touched.
    Refused,
    /// A step failed (its transaction rolled back), or the run could not start.
    Failed,
    /// The steps ran, but the success checklist failed.
    VerificationFailed,
    /// The run was stopped between or inside steps (a signal or an injected fault).
    Interrupted,
}

impl RunOutcome {
    /// The outcome of a run that ended with `error`.
    pub fn of_error(error: &Error) -> RunOutcome {
        match error.kind() {
            ErrorKind::Refused => RunOutcome::Refused,
            ErrorKind::Verification => RunOutcome::VerificationFailed,
            ErrorKind::Interrupted => RunOutcome::Interrupted,
            _ => RunOutcome::Failed,
        }
    }

    /// The words journals and reports use.
    pub fn label(self) -> &'static str {
        match self {
            RunOutcome::Running => "running",
            RunOutcome::Repaired => "repaired",
            RunOutcome::NothingToDo => "nothing to do",
            RunOutcome::Refused => "refused",
            RunOutcome::Failed => "failed",
            RunOutcome::VerificationFailed => "verification failed",
            RunOutcome::Interrupted => "interrupted",
        }
    }

    /// True when the database ends up in the verified state.
    pub fn succeeded(self) -> bool {
        matches!(self, RunOutcome::Repaired | RunOutcome::NothingToDo)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_map_to_outcomes_by_kind() {
        let refused = Error::StalePlan {
            planned: "a".into(),
            live: "b".into(),
        };
        assert_eq!(RunOutcome::of_error(&refused), RunOutcome::Refused);
        let interrupted = Error::Interrupted {
            step: "2.1".into(),
            by: "SIGINT".into(),
        };
        assert_eq!(RunOutcome::of_error(&interrupted), RunOutcome::Interrupted);
        let failed = Error::AlreadyApplied {
            version: "1".into(),
        };
        assert_eq!(RunOutcome::of_error(&failed), RunOutcome::Failed);
        let verification = Error::VerificationFailed {
            failures: "x".into(),
        };
        assert_eq!(
            RunOutcome::of_error(&verification),
            RunOutcome::VerificationFailed
        );
        assert!(RunOutcome::NothingToDo.succeeded() && !RunOutcome::Refused.succeeded());
    }
}
