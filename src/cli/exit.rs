//! The exit codes of `phantom-sync`, in one table (the README's "Exit codes"
//! section is this table). Errors map by their [`ErrorKind`]; finished runs
//! by their [`RunOutcome`].

use phantom_sync::engine::outcome::RunOutcome;
use phantom_sync::error::ErrorKind;

/// Everything as it should be: in sync, plan made, repaired, rehearsal passed.
pub const OK: u8 = 0;
/// The command ran and found a problem: out of sync, a refused plan, a failed rehearsal.
pub const FOUND_PROBLEM: u8 = 1;
/// Bad input: a file, flag or value that cannot be used; nothing was touched.
pub const BAD_INPUT: u8 = 2;
/// The database could not be reached.
pub const CANNOT_CONNECT: u8 = 3;
/// The environment failed: Docker, an image, a tool, a local file.
pub const ENVIRONMENT: u8 = 4;
/// The database answered with an error outside a repair step.
pub const DATABASE: u8 = 5;
/// The plan refused to run, or the database changed since it was made; nothing was touched.
pub const REFUSED: u8 = 6;
/// A repair or rollback step failed; its transaction was rolled back.
pub const STEP_FAILED: u8 = 7;
/// The repair ran but verification (or a rollback's proof) failed.
pub const VERIFICATION_FAILED: u8 = 8;
/// Another repair or rollback holds the database's repair lock; nothing was touched.
pub const BUSY: u8 = 9;
/// Stopped by SIGINT or SIGTERM (128 + 2, as shells report an interrupted program).
pub const INTERRUPTED: u8 = 130;

/// Every code with its meaning, for `--help` and the README.
pub const TABLE: &[(u8, &str)] = &[
    (OK, "ok"),
    (
        FOUND_PROBLEM,
        "found a problem (out of sync, plan refused, rehearsal failed)",
    ),
    (BAD_INPUT, "bad input"),
    (CANNOT_CONNECT, "cannot connect"),
    (ENVIRONMENT, "environment (Docker, image, tool, file)"),
    (DATABASE, "database error"),
    (REFUSED, "plan refused or stale"),
    (STEP_FAILED, "a repair step failed"),
    (VERIFICATION_FAILED, "verification failed"),
    (
        BUSY,
        "busy: another repair or rollback runs on that database",
    ),
    (INTERRUPTED, "interrupted (SIGINT/SIGTERM)"),
];

/// The exit code of an error.
pub fn of_error(kind: ErrorKind) -> u8 {
    match kind {
        ErrorKind::BadInput => BAD_INPUT,
        ErrorKind::Connect => CANNOT_CONNECT,
        ErrorKind::Environment => ENVIRONMENT,
        ErrorKind::Database => DATABASE,
        ErrorKind::Refused => REFUSED,
        ErrorKind::StepFailed => STEP_FAILED,
        ErrorKind::Verification => VERIFICATION_FAILED,
        ErrorKind::Interrupted => INTERRUPTED,
        ErrorKind::Busy => BUSY,
    }
}

/// The exit code of a finished repair.
pub fn of_outcome(outcome: RunOutcome) -> u8 {
    match outcome {
        RunOutcome::Repaired | RunOutcome::NothingToDo => OK,
        RunOutcome::Refused => REFUSED,
        RunOutcome::Failed | RunOutcome::Running => STEP_FAILED,
        RunOutcome::VerificationFailed => VERIFICATION_FAILED,
        RunOutcome::Interrupted => INTERRUPTED,
    }
}

/// The table as text for `--help`.
pub fn help() -> String {
    let rows: Vec<String> = TABLE
        .iter()
        .map(|(code, meaning)| format!("  {code:>3}  {meaning}"))
        .collect();
    format!("Exit codes:\n{}", rows.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_kind_and_outcome_has_a_code_from_the_table() {
        let codes: Vec<u8> = TABLE.iter().map(|(c, _)| *c).collect();
        for kind in [
            ErrorKind::BadInput,
            ErrorKind::Connect,
            ErrorKind::Environment,
            ErrorKind::Database,
            ErrorKind::Refused,
            ErrorKind::StepFailed,
            ErrorKind::Verification,
            ErrorKind::Interrupted,
            ErrorKind::Busy,
        ] {
            assert!(codes.contains(&of_error(kind)), "{kind:?}");
        }
        assert_eq!(
            of_outcome(RunOutcome::Refused),
            of_error(ErrorKind::Refused)
        );
        assert_eq!(of_outcome(RunOutcome::NothingToDo), OK);
        let mut sorted = codes.clone();
        sorted.dedup();
        assert_eq!(sorted, codes, "codes are listed once, in order");
    }
}
