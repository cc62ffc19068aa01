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

    /// The database could not be reached at all (plan: "Cannot connect to remote database").
    #[error("cannot connect to {target}: {reason} (hint: check host, port, user and password; on a hosted project check that the database accepts connections from here)")]
    Connect { target: String, reason: String },

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
}

impl Error {
    /// Wraps a database error with what we were doing when it happened.
    pub fn db(context: impl Into<String>) -> impl FnOnce(sqlx::Error) -> Error {
        let context = context.into();
        move |source| Error::Database { context, source }
    }

    /// Wraps an I/O error with the action and the path it concerns.
    pub fn io(action: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { action, path, source }
    }

    /// The CLI's exit code for this error (documented in the README).
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Invalid(_) => 2,
            Error::Connect { .. } => 3,
            Error::Environment(_) | Error::Tool { .. } | Error::Io { .. } => 4,
            Error::Database { .. } => 5,
        }
    }
}
