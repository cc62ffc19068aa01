//! A cheap guard against changes to tables the repair had no reason to
//! touch, so that Phase 4 re-checksums only the tables a step could have
//! changed. Phase 1 records per table, *before* it checksums them, the file
//! node (`pg_class.relfilenode`: a new one after `TRUNCATE`, `VACUUM FULL`,
//! `CLUSTER` or a rewriting `ALTER TABLE`) and the cumulative row counters of
//! `pg_stat_user_tables` (`n_tup_ins`, `n_tup_upd`, `n_tup_del`: every
//! inserted, updated or deleted row counts, committed or not, and they never
//! go down). In Phase 4 a table whose guard is unchanged kept its rows; any
//! other table is checksummed again, as are the tables a re-applied
//! migration alters and those declared live.
//!
//! The counters are flushed by each session on its own schedule. The
//! session that verifies forces its own flush first; the repair's writes are
//! on that session. On PostgreSQL 14 the counters travel through the stats
//! collector with a delay no session can force, so there the guard is not
//! used (every table is checksummed again). A write by *another* session
//! becomes visible within about a second of that session going idle: the
//! guard can miss a concurrent write made in the last second before Phase 4,
//! which a full re-checksum would have caught — declare tables the
//! application writes to with `--live-table`.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use sqlx::PgConnection;

use super::checksum::DataSnapshot;
use crate::error::{Error, Result};

/// The oldest major whose row counters a session can flush on demand.
const MIN_MAJOR: i32 = 15;

/// One table's guard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableGuard {
    pub relfilenode: i64,
    pub inserted: i64,
    pub updated: i64,
    pub deleted: i64,
}

/// Whether a server (`server_version_num`) is older than what the guards
/// read (`pg_stat_force_next_flush` came with PostgreSQL 15).
fn predates_guards(server_version_num: i32) -> bool {
    server_version_num / 10_000 < MIN_MAJOR
}

/// Guards by `schema.table` (the keys of [`DataSnapshot::tables`]).
pub type Guards = BTreeMap<String, TableGuard>;

/// The guards of `tables` (raw names split at the first dot); empty on
/// servers older than PostgreSQL 15. This session's pending counters are
/// flushed first.
pub async fn read(conn: &mut PgConnection, tables: &[String]) -> Result<Guards> {
    let version: i32 = sqlx::query_scalar("SELECT current_setting('server_version_num')::int4")
        .fetch_one(&mut *conn)
        .await
        .map_err(Error::db("reading the server version"))?;
    if predates_guards(version) {
        return Ok(Guards::new());
    }
    // Flushes when this statement ends and the session goes idle.
    sqlx::query("SELECT pg_stat_force_next_flush()")
        .execute(&mut *conn)
        .await
        .map_err(Error::db("flushing this session's table statistics"))?;
    let (schemas, names): (Vec<&str>, Vec<&str>) = tables
        .iter()
        .map(|t| t.split_once('.').unwrap_or(("public", t.as_str())))
        .unzip();
    let rows: Vec<(i64, i64, i64, i64, i64)> = sqlx::query_as(
        "SELECT w.i, c.relfilenode::int8, pg_stat_get_tuples_inserted(c.oid), \
                pg_stat_get_tuples_updated(c.oid), pg_stat_get_tuples_deleted(c.oid) \
           FROM unnest($1::text[], $2::text[]) WITH ORDINALITY w(s, r, i) \
           JOIN pg_namespace n ON n.nspname = w.s \
           JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = w.r",
    )
    .bind(&schemas)
    .bind(&names)
    .fetch_all(&mut *conn)
    .await
    .map_err(Error::db("reading the tables' file nodes and row counters"))?;
    let mut guards = Guards::new();
    for (i, relfilenode, inserted, updated, deleted) in rows {
        if let Some(table) = usize::try_from(i - 1).ok().and_then(|i| tables.get(i)) {
            guards.insert(
                table.clone(),
                TableGuard {
                    relfilenode,
                    inserted,
                    updated,
                    deleted,
                },
            );
        }
    }
    Ok(guards)
}

/// The tables of `before` to checksum again, given the guards `now`: those
/// in `read_anyway`, those without a guard, and those whose guard moved.
pub fn to_checksum(before: &DataSnapshot, now: &Guards, read_anyway: &[String]) -> Vec<String> {
    let anyway: BTreeSet<&String> = read_anyway.iter().collect();
    before
        .tables
        .keys()
        .filter(|t| {
            anyway.contains(t) || before.guards.get(*t).is_none_or(|g| now.get(*t) != Some(g))
        })
        .cloned()
        .collect()
}

/// The tables of `before` as they are now: those in `read_anyway`, those
/// without a guard and those whose guard moved are checksummed again (one
/// statement); the others are proved unchanged by their guard and keep
/// their Phase 1 state.
pub async fn capture_changed(
    conn: &mut PgConnection,
    before: &DataSnapshot,
    read_anyway: &[String],
) -> Result<DataSnapshot> {
    let tables: Vec<String> = before.tables.keys().cloned().collect();
    let now = if before.guards.is_empty() {
        Guards::new()
    } else {
        read(conn, &tables).await?
    };
    let to_read = to_checksum(before, &now, read_anyway);
    let unchanged: Vec<String> = tables
        .into_iter()
        .filter(|t| !to_read.contains(t))
        .collect();
    let mut after = DataSnapshot::capture(conn, &to_read).await?;
    for table in unchanged {
        if let Some(state) = before.tables.get(&table) {
            after.tables.insert(table, state.clone());
        }
    }
    tracing::debug!(
        "data preservation: {} tables checksummed again, the others kept by their guard",
        to_read.len()
    );
    Ok(after)
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::*;
    use crate::engine::backup::checksum::TableState;

    fn guard(relfilenode: i64, inserted: i64) -> TableGuard {
        TableGuard {
            relfilenode,
            inserted,
            updated: 0,
            deleted: 0,
        }
    }

    #[test]
    fn servers_from_postgresql_15_on_have_guards() {
        assert!(predates_guards(140_013));
        assert!(!predates_guards(150_000));
        assert!(!predates_guards(170_004));
        assert!(!predates_guards(180_001));
    }

    #[test]
    fn only_tables_whose_guard_moved_or_is_missing_are_read_again() {
        let mut before = DataSnapshot::default();
        for table in [
            "public.kept",
            "public.written",
            "public.rewritten",
            "public.unguarded",
            "public.touched",
        ] {
            before.tables.insert(
                table.into(),
                TableState {
                    table: table.into(),
                    rows: 1,
                    checksum: "c".into(),
                },
            );
        }
        for table in [
            "public.kept",
            "public.written",
            "public.rewritten",
            "public.touched",
        ] {
            before.guards.insert(table.into(), guard(10, 5));
        }
        let mut now = before.guards.clone();
        now.insert("public.written".into(), guard(10, 6));
        now.insert("public.rewritten".into(), guard(11, 5));
        let again = to_checksum(&before, &now, &["public.touched".to_string()]);
        assert_eq!(
            again,
            vec![
                "public.rewritten".to_string(),
                "public.touched".to_string(),
                "public.unguarded".to_string(),
                "public.written".to_string(),
            ]
        );
        // A table gone since Phase 1 has no guard now: read again, found missing.
        now.remove("public.kept");
        assert!(to_checksum(&before, &now, &[]).contains(&"public.kept".to_string()));
    }
}
