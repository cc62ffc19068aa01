//! The library's one error type. Every variant names the migration, statement,
//! file or object it is about and, where the fix is known, says it
//! (`hint: …`). The troubleshooting section of the incident plan maps onto
//! variants here; `phantom-sync`'s exit codes come from [`Error::exit_code`].

use std::path::PathBuf;

/// Result alias used throughout the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong, grouped by the exit code the CLI gives it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A query failed; `context` says what we were doing.
    #[error("{context}: {source}")]
    Database {
        context: String,
        #[source]
        source: sqlx::Error,
    },

    /// The database could not be reached at all (plan: "Cannot connect to remote database"),
    /// or TLS could not be set up as `sslmode` demands.
    #[error("cannot connect to {target}: {reason} (hint: {hint})")]
    Connect {
        /// The target, password redacted.
        target: String,
        /// What failed.
        reason: String,
        /// What to do ([`Error::CONNECT_HINT`] unless the cause is known).
        hint: String,
    },

    /// A file could not be read or written.
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// Bad input the user can fix: a file, field or value, and what to do.
    #[error("{0}")]
    Invalid(String),

    /// Docker, an image or a container could not be provided.
    #[error("{0}")]
    Environment(String),

    /// An external tool (pg_dump, psql, docker …) failed.
    #[error("{tool} failed: {detail}")]
    Tool { tool: String, detail: String },

    // ---- The repair: refusals, and the plan's troubleshooting section ----
    /// The plan has refusals; nothing was touched.
    #[error("the plan refuses to run: {reasons} (hint: see the plan's refusals and their options)")]
    Refused { reasons: String },

    /// The live diagnosis no longer matches the plan's fingerprint.
    #[error(
        "the database changed since the plan was made (plan {planned}, now {live}); nothing was touched (hint: rehearse and plan again)"
    )]
    StalePlan { planned: String, live: String },

    /// Phase 2 deleted another number of ledger rows than planned (the plan expected `DELETE 2`).
    #[error(
        "ledger repair deleted {actual} rows, the plan expected DELETE {expected}; the transaction was rolled back (hint: someone changed the ledger meanwhile — diagnose again)"
    )]
    LedgerRepairMismatch { expected: u64, actual: u64 },

    /// Troubleshooting: "Migration already applied" — the ledger repair did not happen.
    #[error(
        "migration {version} is already recorded in the ledger, so it cannot be applied again (hint: Phase 2 did not remove its row — check that Step 2.1 reported the expected DELETE count, then run the repair again)"
    )]
    AlreadyApplied { version: String },

    /// Troubleshooting: "relation does not exist" — applied out of order, or pushed without repair.
    #[error(
        "migration {version}, statement {statement_index}: {message}\n  {statement}\n(hint: a migration it depends on is not applied — a phantom migration must be reverted in the ledger and re-applied first, in version order; check `phantom-sync list`)"
    )]
    RelationMissing {
        version: String,
        statement_index: usize,
        statement: String,
        message: String,
    },

    /// Another transaction holds a lock the migration needs.
    #[error(
        "migration {version} waited too long for a lock: {message}\n  {statement}\n(hint: another session holds a lock on the table; nothing of this migration was kept — wait for it to finish and run the repair again)"
    )]
    LockTimeout {
        version: String,
        statement: String,
        message: String,
    },

    /// Troubleshooting: "Timeout during migration push" — the connection dropped or timed out.
    #[error(
        "connection lost while applying {version}: {message} (hint: the migration's transaction was rolled back; run the repair again — it resumes after the last migration that committed)"
    )]
    ConnectionLost { version: String, message: String },

    /// A migration statement failed for another reason.
    #[error(
        "migration {version}, statement {statement_index} failed: {message}\n  {statement}\n(hint: nothing of this migration was kept; fix the statement or the object it needs, then run the repair again)"
    )]
    MigrationFailed {
        version: String,
        statement_index: usize,
        statement: String,
        message: String,
    },

    /// Phase 4 found something wrong; troubleshooting "Seed data not appearing" shows here.
    #[error("verification failed: {failures}")]
    VerificationFailed { failures: String },

    /// A fault injected on purpose stopped the run (the harness's "process killed").
    #[error("interrupted after step {step} (injected fault)")]
    Interrupted { step: String },
}

impl Error {
    /// The hint of a connection failure whose cause is not known more precisely.
    pub const CONNECT_HINT: &'static str = "check host, port, user and password; on a hosted project check that the database accepts connections from here";

    /// Wraps a database error with what we were doing when it happened.
    pub fn db(context: impl Into<String>) -> impl FnOnce(sqlx::Error) -> Error {
        let context = context.into();
        move |source| Error::Database { context, source }
    }

    /// Wraps an I/O error with the action and the path it concerns.
    pub fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io {
            action,
            path,
            source,
        }
    }

    /// The CLI's exit code for this error (documented in the README).
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Invalid(_) => 2,
            Error::Connect { .. } => 3,
            Error::Environment(_) | Error::Tool { .. } | Error::Io { .. } => 4,
            Error::Database { .. } => 5,
            Error::Refused { .. } | Error::StalePlan { .. } => 6,
            Error::LedgerRepairMismatch { .. }
            | Error::AlreadyApplied { .. }
            | Error::RelationMissing { .. }
            | Error::LockTimeout { .. }
            | Error::ConnectionLost { .. }
            | Error::MigrationFailed { .. }
            | Error::Interrupted { .. } => 7,
            Error::VerificationFailed { .. } => 8,
        }
    }
}
