//! One repair at a time: a session advisory lock on the target database,
//! taken with `pg_try_advisory_lock` on a connection of its own and held for
//! a whole repair or rollback. A second run does not wait: it fails at once
//! with [`Error::Busy`], naming the session that holds the lock (pid,
//! application name, client address, since when) as `pg_locks` and
//! `pg_stat_activity` show it. The lock belongs to the session, so a run
//! whose process dies releases it as soon as the server notices the
//! connection is gone.

use sqlx::Connection;
use sqlx::postgres::PgConnection;

use crate::pg::target::Target;
use crate::{Error, Result};

/// The advisory lock key every phantom-sync repair and rollback takes: the
/// bytes of `"phantom1"` read as a big-endian 64-bit integer
/// (8099831056853593393). Advisory locks are per database, so runs on two
/// databases of one server do not block each other. Another tool that wants
/// to keep out of a repair's way can take the same key.
pub const LOCK_KEY: i64 = 0x7068_616E_746F_6D31;

/// The lock, held for as long as this value lives (its connection's session).
pub struct RepairLock {
    conn: Option<PgConnection>,
}

impl std::fmt::Debug for RepairLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RepairLock")
    }
}

impl RepairLock {
    /// Takes the lock on `target` for `what` ("repair", "rollback"), or fails
    /// with [`Error::Busy`] naming who holds it.
    pub async fn take(target: &Target, what: &str) -> Result<RepairLock> {
        let name = format!("phantom-sync {what} (pid {})", std::process::id());
        let mut conn = target.with_application_name(&name).connect().await?;
        let taken: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(LOCK_KEY)
            .fetch_one(&mut conn)
            .await
            .map_err(Error::db(format!("taking the repair lock on {target}")))?;
        if taken {
            return Ok(RepairLock { conn: Some(conn) });
        }
        let holder = holder(&mut conn).await;
        conn.close().await.ok();
        Err(Error::Busy {
            target: target.redacted().to_string(),
            holder,
        })
    }

    /// Releases the lock now (dropping the value releases it too, when the
    /// server sees the connection close).
    pub async fn release(mut self) {
        if let Some(mut conn) = self.conn.take() {
            let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(LOCK_KEY)
                .execute(&mut conn)
                .await;
            conn.close().await.ok();
        }
    }
}

/// pid, application name, client, user, since when.
type Holder = (i32, String, String, String, String);

/// Who holds [`LOCK_KEY`] on the connection's database, in words.
async fn holder(conn: &mut PgConnection) -> String {
    let row: std::result::Result<Option<Holder>, _> =
        sqlx::query_as(
            "SELECT a.pid, coalesce(a.application_name, ''), \
                    coalesce(host(a.client_addr), 'a local socket'), coalesce(a.usename::text, ''), \
                    to_char(a.backend_start AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS \"UTC\"') \
             FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
             WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 \
               AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
               AND l.classid::bigint = ($1 >> 32) AND l.objid::bigint = ($1 & 4294967295) \
             LIMIT 1",
        )
        .bind(LOCK_KEY)
        .fetch_optional(&mut *conn)
        .await;
    match row {
        Ok(Some((pid, app, client, user, since))) => format!(
            "pid {pid}, application {:?}, user {user:?}, client {client}, connected since {since}",
            app
        ),
        Ok(None) => "a session that has just released it (try again)".into(),
        Err(e) => format!(
            "a session this role may not see in pg_stat_activity ({})",
            crate::pg::sql::sql_state(&e).unwrap_or_default()
        ),
    }
}
