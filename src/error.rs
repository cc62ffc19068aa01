//! The library's one error type. Every variant names the migration, statement,
//! file or object it is about and, where the fix is known, says it
//! (`hint: …`). The troubleshooting section of the incident plan maps onto
//! variants here. Each error has a [`ErrorKind`] — what sort of failure it is —
//! from which the binary derives its documented exit codes.

use std::path::PathBuf;

/// Result alias used throughout the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What sort of failure an [`Error`] is: the binary's exit codes follow it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorKind {
    /// A file, field or value the user gave cannot be used; nothing was touched.
    BadInput,
    /// The database could not be reached.
    Connect,
    /// Docker, an image, a tool or a local file failed.
    Environment,
    /// The database answered with an error outside a repair step.
    Database,
    /// The plan refused to run, or no longer fits the database; nothing was touched.
    Refused,
    /// A repair or rollback step failed (its transaction was rolled back).
    StepFailed,
    /// The repair ran, but the success checklist failed.
    Verification,
    /// The run was stopped (a signal, or a fault injected by the harness).
    Interrupted,
    /// Another repair or rollback holds the target's repair lock; nothing was touched.
    Busy,
}

/// Everything that can go wrong, each with its [`ErrorKind`].
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

    /// A step of a local PostgreSQL image build failed (debootstrap, pip
    /// download, docker import, docker build); what it made was removed.
    #[error("{0}")]
    ImageBuild(Box<ImageBuildFailure>),

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
        "ledger repair deleted {}, the plan expected DELETE {expected}; the transaction was rolled back (hint: someone changed the ledger meanwhile — diagnose again)",
        crate::text::count(*actual, "row")
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

    /// The run was stopped after `step`: by a signal, or by a fault the
    /// harness injected on purpose (`by` says which).
    #[error(
        "interrupted after step {step} ({by}) (hint: run the repair again — it resumes after the last step that committed)"
    )]
    Interrupted { step: String, by: String },

    /// A local migration does not apply to an empty Supabase database, so its
    /// effects cannot be known.
    #[error(
        "migration {migration} does not apply to a clean database: statement {statement_index} failed: {message}\n  {statement}\n(hint: fix {} — every migration must apply in order to an empty Supabase database)",
        path.display()
    )]
    ReplayFailed {
        migration: String,
        path: PathBuf,
        statement_index: usize,
        statement: String,
        message: String,
    },

    /// After the ledger repair committed, the ledger still lists versions it should not.
    #[error(
        "after the ledger repair the ledger still lists {versions:?} (hint: another session wrote to the ledger meanwhile — diagnose again)"
    )]
    LedgerRepairIncomplete { versions: Vec<String> },

    /// The plan names a migration the folder no longer has.
    #[error(
        "the plan applies or records {version}, which is not in {} (hint: the migrations folder changed since the plan was made — plan again)",
        dir.display()
    )]
    PlanFileMissing { version: String, dir: PathBuf },

    /// The server answered something we cannot interpret.
    #[error("unexpected answer from the server: {0}")]
    UnexpectedServer(String),

    /// A restore would destroy what it cannot bring back; nothing was changed.
    #[error("{0}")]
    RestoreRefused(String),

    /// A backup folder cannot be used (missing, incomplete or damaged files).
    #[error("backup {}: {problem}", dir.display())]
    Backup { dir: PathBuf, problem: String },

    /// A backup folder failed its manifest or identity check, so a rollback
    /// from it was refused before anything was touched.
    #[error("backup {} refused: {problem}; nothing was touched (hint: {hint})", dir.display())]
    BackupRejected {
        dir: PathBuf,
        /// What does not match, naming the file.
        problem: String,
        hint: String,
    },

    /// A repair would write its backup into a folder that already holds files.
    #[error(
        "backup folder {} already holds files; a backup is never overwritten (hint: pass a new or empty folder — `phantom-sync repair` makes a new one under --backup-dir for every run)",
        dir.display()
    )]
    BackupExists { dir: PathBuf },

    /// Another phantom-sync run holds the target's repair lock.
    #[error(
        "another repair or rollback is running on {target}: {holder}; nothing was touched (hint: phantom-sync runs one repair or rollback at a time per database — wait for that one to finish, then diagnose again; a run whose process died releases the lock when its session ends)"
    )]
    Busy {
        /// The target, password redacted.
        target: String,
        /// Who holds the lock: pid, application name, client address, since when.
        holder: String,
    },

    /// A plan file's content no longer matches its digest: it was edited.
    #[error(
        "plan file {}: its content does not match its digest ({problem}); nothing was touched (hint: a plan file must be used as `phantom-sync plan --out` or `rehearse` wrote it — plan again)",
        file.display()
    )]
    PlanEdited { file: PathBuf, problem: String },

    /// The plan in a plan file differs from the plan the live diagnosis gives.
    #[error(
        "the plan file differs from the plan for the database as it is now, first at {path}: the file has {planned}, the database needs {live}; nothing was touched (hint: run the plan that `phantom-sync plan` makes now, after reviewing it)"
    )]
    PlanMismatch {
        /// Where in the plan (a JSON path, e.g. `steps[3].action.revert`).
        path: String,
        planned: String,
        live: String,
    },

    /// Pending statements would destroy rows; refused without `--allow-data-loss`.
    #[error(
        "the plan destroys data: {summary}; nothing was touched (hint: read the plan's \"Data at risk\" list; if losing those rows is intended, run the repair again with --allow-data-loss)"
    )]
    DataAtRisk { summary: String },
}

/// Which step of a local image build failed, and where to read why.
#[derive(Debug, thiserror::Error)]
#[error(
    "building {image} failed at step `{step}`: {message}\n{tail}\n(full log: {}) (hint: {hint}; nothing half-made was kept, so running again starts clean)",
    log.display()
)]
pub struct ImageBuildFailure {
    /// The image (or base image) being built.
    pub image: String,
    /// The step that failed, as its progress line named it.
    pub step: String,
    /// What the build script said about the failure.
    pub message: String,
    /// The last lines of the step's log.
    pub tail: String,
    /// The step's full log.
    pub log: PathBuf,
    /// What to check, by step.
    pub hint: &'static str,
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

    /// What sort of failure this is (the binary maps it to an exit code).
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Invalid(_) | Error::ReplayFailed { .. } | Error::Backup { .. } => {
                ErrorKind::BadInput
            }
            Error::Connect { .. } => ErrorKind::Connect,
            Error::Environment(_)
            | Error::ImageBuild(_)
            | Error::Tool { .. }
            | Error::Io { .. } => ErrorKind::Environment,
            Error::Database { .. } | Error::UnexpectedServer(_) => ErrorKind::Database,
            Error::Refused { .. }
            | Error::StalePlan { .. }
            | Error::PlanFileMissing { .. }
            | Error::RestoreRefused(_)
            | Error::BackupRejected { .. }
            | Error::BackupExists { .. }
            | Error::PlanEdited { .. }
            | Error::PlanMismatch { .. }
            | Error::DataAtRisk { .. } => ErrorKind::Refused,
            Error::Busy { .. } => ErrorKind::Busy,
            Error::LedgerRepairMismatch { .. }
            | Error::LedgerRepairIncomplete { .. }
            | Error::AlreadyApplied { .. }
            | Error::RelationMissing { .. }
            | Error::LockTimeout { .. }
            | Error::ConnectionLost { .. }
            | Error::MigrationFailed { .. } => ErrorKind::StepFailed,
            Error::VerificationFailed { .. } => ErrorKind::Verification,
            Error::Interrupted { .. } => ErrorKind::Interrupted,
        }
    }
}
