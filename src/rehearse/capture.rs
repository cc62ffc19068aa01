//! Taking the capture a rehearsal replays: a live database read with a
//! `pg_dump` of its own major (nothing is created there), a dump file the
//! user made, or the built-in incident built for real on a stand-in
//! "production" database.

use std::path::{Path, PathBuf};

use super::{RehearseOptions, Source, builtin};
use crate::engine::backup::dump_scope;
use crate::engine::inspect::server_major;
use crate::pg::sandbox::{Database, image};
use crate::pg::tools::{DumpScope, PgTools};
use crate::testkit::scenario::{Scenario, build_state};
use crate::{Error, Result};

/// What was captured, besides the dump file.
pub(crate) struct Capture {
    /// What the runbook calls it (a redacted URL, a file, the built-in incident).
    pub source: String,
    pub major: u8,
    pub migrations: PathBuf,
    /// Ids of `auth.users` (what foreign keys into the platform schema need
    /// on the copy); `None` for a dump file, which is read for them instead.
    pub users: Option<Vec<String>>,
}

/// Takes the capture into `dump`.
pub(crate) async fn capture(options: &RehearseOptions, dump: &Path) -> Result<Capture> {
    match &options.source {
        Source::Database(target) => {
            let mut conn = target.connect().await?;
            let major = server_major(&mut conn).await?;
            image::check_major(major)?;
            let users = user_ids(&mut conn).await?;
            drop(conn);
            let scope = DumpScope {
                schema_only: options.schema_only,
                ..dump_scope()
            };
            PgTools::for_major(major)
                .await?
                .dump(target, dump, &scope)
                .await?;
            Ok(Capture {
                source: target.redacted().to_string(),
                major,
                migrations: options.migrations_dir(),
                users: Some(users),
            })
        }
        Source::Dump { file, major } => {
            std::fs::copy(file, dump).map_err(Error::io("copy", file))?;
            Ok(Capture {
                source: format!("dump {}", file.display()),
                major: *major,
                migrations: options.migrations_dir(),
                users: None,
            })
        }
        Source::BuiltIn => built_in(&options.out, dump).await,
    }
}

/// The built-in incident: the plan's state, built for real on a stand-in
/// "production" database, then dumped like a real one.
async fn built_in(out: &Path, dump: &Path) -> Result<Capture> {
    let major = 17;
    let path = builtin::write(&out.join("incident"))?;
    let scenario = Scenario::load(&path)?;
    let project = scenario.project()?;
    let production = Database::fresh(major, "production").await?;
    let built = async {
        let mut conn = production.connect().await?;
        build_state(&scenario, &project, &mut conn).await?;
        let users = user_ids(&mut conn).await?;
        drop(conn);
        PgTools::for_database(&production)
            .dump(&production.target(), dump, &dump_scope())
            .await?;
        Ok::<_, Error>(users)
    }
    .await;
    production.drop_database().await?;
    Ok(Capture {
        source: format!("built-in incident ({})", scenario.description),
        major,
        migrations: scenario.migrations_dir(),
        users: Some(built?),
    })
}

/// A `--dump` file must be a pg_dump custom-format archive ("PGDMP" magic).
pub(crate) fn check_archive(file: &Path) -> Result<()> {
    use std::io::Read;
    let mut head = [0u8; 512];
    let n = std::fs::File::open(file)
        .and_then(|mut f| f.read(&mut head))
        .map_err(|e| {
            Error::Invalid(format!(
                "--dump {}: cannot read it: {e} (hint: give the path of a pg_dump -Fc file)",
                file.display()
            ))
        })?;
    let head = &head[..n];
    if head.starts_with(b"PGDMP") {
        return Ok(());
    }
    let text = String::from_utf8_lossy(head);
    let what = if text.contains("PostgreSQL database dump") {
        "a plain-format (SQL) dump, which phantom-sync cannot restore selectively yet"
    } else {
        "not a pg_dump archive"
    };
    Err(Error::Invalid(format!(
        "--dump {}: {what} (hint: make a custom-format dump of the whole database: pg_dump -Fc \"$PHANTOM_DB_URL\" > prod.dump)",
        file.display()
    )))
}

/// Ids of `auth.users`, read-only; empty when there is no such table.
pub(crate) async fn user_ids(conn: &mut sqlx::PgConnection) -> Result<Vec<String>> {
    let exists: bool = sqlx::query_scalar("SELECT to_regclass('auth.users') IS NOT NULL")
        .fetch_one(&mut *conn)
        .await
        .map_err(Error::db("looking for auth.users"))?;
    if !exists {
        return Ok(Vec::new());
    }
    sqlx::query_scalar("SELECT id::text FROM auth.users ORDER BY id")
        .fetch_all(&mut *conn)
        .await
        .map_err(Error::db("reading the ids of auth.users"))
}
