//! The units of work a run commits one by one: the ledger repair (Phase 2)
//! and each migration with its ledger row (Phase 3), each in one
//! transaction, and how their failures map onto the plan's troubleshooting
//! cases.

use sqlx::Connection;
use sqlx::postgres::PgConnection;

use super::{Context, StepResult};
use crate::engine::effects::{db_message, first_line};
use crate::pg::sql::sql_state;
use crate::source::ledger::{self, Ledger};
use crate::source::project::{Migration, Project};
use crate::{Error, Result};

/// Phase 2 in one transaction; the DELETE must remove exactly the planned rows.
pub(super) async fn repair_ledger(
    conn: &mut PgConnection,
    project: &Project,
    revert: &[String],
    record: &[String],
    rekey: &[(String, String)],
) -> Result<StepResult> {
    let mut tx = conn
        .begin()
        .await
        .map_err(Error::db("starting the ledger repair"))?;
    ledger::ensure_table(&mut tx).await?;
    let mut detail = Vec::new();
    let deleted = ledger::mark_reverted(&mut tx, revert).await?;
    if deleted != revert.len() as u64 {
        return Err(Error::LedgerRepairMismatch {
            expected: revert.len() as u64,
            actual: deleted,
        });
    }
    if !revert.is_empty() {
        detail.push(format!("DELETE {deleted} ({})", revert.join(", ")));
    }
    for version in record {
        let m = project.get(version).ok_or_else(|| Error::PlanFileMissing {
            version: version.clone(),
            dir: project.dir.clone(),
        })?;
        ledger::mark_applied(&mut tx, &m.version, &m.name, &m.statements).await?;
        detail.push(format!("recorded {} as applied", m.file_name()));
    }
    for (from, to) in rekey {
        let name = project.get(to).map(|m| m.name.clone()).unwrap_or_default();
        ledger::rekey(&mut tx, from, to, &name).await?;
        detail.push(format!("re-keyed {from} → {to}"));
    }
    tx.commit()
        .await
        .map_err(Error::db("committing the ledger repair"))?;
    let after = Ledger::read(conn).await?;
    let still: Vec<String> = revert
        .iter()
        .filter(|v| after.get(v).is_some())
        .cloned()
        .collect();
    if !still.is_empty() {
        return Err(Error::LedgerRepairIncomplete { versions: still });
    }
    Ok((Some(deleted), detail))
}

/// One migration and its ledger row in one transaction, after `RESET ALL`
/// and a lock timeout, as the Supabase CLI pushes them.
pub(super) async fn apply(conn: &mut PgConnection, m: &Migration, ctx: &Context<'_>) -> Result<()> {
    let version = m.version.clone();
    sqlx::raw_sql("RESET ALL")
        .execute(&mut *conn)
        .await
        .map_err(|e| classify(&version, 0, "RESET ALL", e))?;
    // A client that dies mid-migration (killed, cut off) has its
    // transaction rolled back within a second, not when the statement ends.
    sqlx::raw_sql("SET client_connection_check_interval = '1s'")
        .execute(&mut *conn)
        .await
        .map_err(|e| classify(&version, 0, "SET client_connection_check_interval", e))?;
    let timeout = format!("SET lock_timeout = '{}ms'", ctx.lock_timeout_ms.max(1));
    sqlx::raw_sql(sqlx::AssertSqlSafe(timeout.clone()))
        .execute(&mut *conn)
        .await
        .map_err(|e| classify(&version, 0, &timeout, e))?;
    let mut tx = conn
        .begin()
        .await
        .map_err(|e| classify(&version, 0, "BEGIN", e))?;
    ledger::ensure_table(&mut tx).await?;
    for (i, statement) in m.statements.iter().enumerate() {
        tracing::debug!(target: "phantom_sync::sql", "{} statement {}: {statement}", version, i + 1);
        if ctx.faults.drop_connection_in.as_deref() == Some(version.as_str())
            && i + 1 == m.statements.len()
        {
            let _ = sqlx::raw_sql("SELECT pg_terminate_backend(pg_backend_pid())")
                .execute(&mut *tx)
                .await;
        }
        sqlx::raw_sql(sqlx::AssertSqlSafe(statement.clone()))
            .execute(&mut *tx)
            .await
            .map_err(|e| classify(&version, i + 1, statement, e))?;
    }
    if ctx.faults.fail_in.as_deref() == Some(version.as_str()) {
        let injected = "SELECT 1 / 0 AS injected_failure";
        sqlx::raw_sql(injected)
            .execute(&mut *tx)
            .await
            .map_err(|e| classify(&version, m.statements.len() + 1, injected, e))?;
    }
    ledger::mark_applied(&mut tx, &m.version, &m.name, &m.statements)
        .await
        .map_err(|e| ledger_write_error(&version, e))?;
    tx.commit()
        .await
        .map_err(|e| classify(&version, m.statements.len(), "COMMIT", e))
}

/// A failed ledger insert: a duplicate version (`23505`) means the ledger
/// already records the migration (the plan's "migration already applied");
/// anything else stays the database error it is.
fn ledger_write_error(version: &str, e: Error) -> Error {
    match e {
        Error::Database { source, .. } if sql_state(&source).as_deref() == Some("23505") => {
            Error::AlreadyApplied {
                version: version.to_string(),
            }
        }
        other => other,
    }
}

/// Maps a failed statement onto the plan's troubleshooting cases.
fn classify(version: &str, statement_index: usize, statement: &str, e: sqlx::Error) -> Error {
    let code = sql_state(&e);
    let message = db_message(&e);
    let statement = first_line(statement);
    let version = version.to_string();
    match code.as_deref() {
        Some("42P01") => Error::RelationMissing {
            version,
            statement_index,
            statement,
            message,
        },
        Some("55P03") => Error::LockTimeout {
            version,
            statement,
            message,
        },
        Some("57P01") | Some("57014") => Error::ConnectionLost { version, message },
        Some(_) => Error::MigrationFailed {
            version,
            statement_index,
            statement,
            message,
        },
        None => Error::ConnectionLost { version, message },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_duplicate_version_makes_a_failed_ledger_write_already_applied() {
        let lost = Error::Database {
            context: "recording 20250413093000 in the ledger".into(),
            source: sqlx::Error::Protocol("connection lost".into()),
        };
        match ledger_write_error("20250413093000", lost) {
            Error::Database { context, .. } => assert!(context.contains("ledger"), "{context}"),
            other => panic!("a lost connection is no duplicate version: {other}"),
        }
        let other = Error::Invalid("not a database error".into());
        assert!(matches!(
            ledger_write_error("20250413093000", other),
            Error::Invalid(_)
        ));
    }
}
