//! Phase 4's guard: a table no step had reason to touch is checksummed again
//! only when its guard (file node, row counters) moved since Phase 1 — and
//! it moves for every kind of change the full checksums catch: insert,
//! update, delete, truncate and a rewrite. Made by the verifying session (the
//! repair's own), the guard moves at once; made by another session, once
//! that session has flushed its counters (within about a second). On
//! PostgreSQL 14 there is no guard and every table is checksummed again.

use phantom_sync::engine::backup::guard::{capture_changed, read, to_checksum};
use phantom_sync::engine::backup::{DataSnapshot, record_data};
use phantom_sync::pg::sandbox::{Database, versions_from_env};
use phantom_sync::source::catalog::CatalogOptions;
use sqlx::Connection;

type TestResult = anyhow::Result<()>;

const SETUP: &str = "
create table public.touched (id int primary key, body text);
create table public.quiet (id int primary key, body text);
create table public.target (id int primary key, body text);
insert into public.touched select g, 't' || g from generate_series(1, 100) g;
insert into public.quiet select g, 'q' || g from generate_series(1, 100) g;
insert into public.target select g, 'x' || g from generate_series(1, 100) g;";

/// Each way a table's rows can change, and whether its rows differ afterwards.
const CHANGES: &[(&str, &str, bool)] = &[
    (
        "insert",
        "insert into public.target values (1000, 'new')",
        true,
    ),
    (
        "update",
        "update public.target set body = 'changed' where id = 7",
        true,
    ),
    ("delete", "delete from public.target where id = 9", true),
    ("truncate", "truncate public.target", true),
    ("rewrite", "vacuum full public.target", false),
    (
        "rewrite by alter",
        "alter table public.target alter column body type varchar(50)",
        false,
    ),
];

#[tokio::test]
async fn the_guard_moves_for_every_kind_of_change_by_any_session() -> TestResult {
    for major in versions_from_env()? {
        for (what, sql, differs) in CHANGES {
            for other_session in [false, true] {
                let db = Database::fresh(major, "guard").await?;
                let mut conn = db.connect().await?;
                sqlx::raw_sql(SETUP).execute(&mut conn).await?;
                let dir = phantom_sync::files::temp_dir("guard")?;
                let (before, _) =
                    record_data(&mut conn, dir.path(), &CatalogOptions::default()).await?;
                assert_eq!(before.tables.len(), 3);
                if major < 15 {
                    assert!(before.guards.is_empty(), "PG{major} has no guard");
                } else {
                    assert_eq!(before.guards.len(), 3, "PG{major}");
                }
                if other_session {
                    let mut writer = db.connect().await?;
                    sqlx::raw_sql(sqlx::AssertSqlSafe(*sql))
                        .execute(&mut writer)
                        .await?;
                    writer.close().await?; // a session flushes its counters when it ends
                } else {
                    sqlx::raw_sql(sqlx::AssertSqlSafe(*sql))
                        .execute(&mut conn)
                        .await?;
                }
                let touched = vec!["public.touched".to_string()];
                let tables: Vec<String> = before.tables.keys().cloned().collect();
                let mut again = to_checksum(&before, &read(&mut conn, &tables).await?, &touched);
                // Another session's counters arrive when it flushes them (about
                // a second at most once it is idle or gone): the guard moves
                // then. This session's own are flushed by `read` itself.
                let mut waited = 0;
                while other_session && major >= 15 && again.len() < 2 && waited < 50 {
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    waited += 1;
                    again = to_checksum(&before, &read(&mut conn, &tables).await?, &touched);
                }
                let label = format!("PG{major} {what} (other session: {other_session})");
                if major < 15 {
                    assert_eq!(again.len(), 3, "{label}");
                } else {
                    assert_eq!(again, vec!["public.target", "public.touched"], "{label}");
                }
                let after = capture_changed(&mut conn, &before, &touched).await?;
                let comparison = before.compare(&after);
                let target = comparison
                    .iter()
                    .find(|c| c.table == "public.target")
                    .unwrap();
                assert_eq!(!target.preserved, *differs, "{label}");
                let quiet = comparison
                    .iter()
                    .find(|c| c.table == "public.quiet")
                    .unwrap();
                assert!(quiet.preserved, "{label}");
                conn.close().await.ok();
                db.drop_database().await?;
            }
        }
    }
    Ok(())
}

#[tokio::test]
async fn an_untouched_quiet_table_is_not_read_again() -> TestResult {
    let major = versions_from_env()?[0];
    let db = Database::fresh(major, "guard-quiet").await?;
    let mut conn = db.connect().await?;
    sqlx::raw_sql(SETUP).execute(&mut conn).await?;
    let dir = phantom_sync::files::temp_dir("guard-quiet")?;
    let (before, _) = record_data(&mut conn, dir.path(), &CatalogOptions::default()).await?;
    // Reads and a no-op statement do not move a guard.
    sqlx::raw_sql("select count(*) from public.quiet; analyze public.quiet")
        .execute(&mut conn)
        .await?;
    let now = read(
        &mut conn,
        &before.tables.keys().cloned().collect::<Vec<_>>(),
    )
    .await?;
    let again = to_checksum(&before, &now, &[]);
    if major >= 15 {
        assert!(again.is_empty(), "{again:?}");
    } else {
        assert_eq!(again.len(), 3);
    }
    let after = capture_changed(&mut conn, &before, &[]).await?;
    assert_eq!(after.tables, before.tables);
    let _: DataSnapshot = after;
    conn.close().await.ok();
    db.drop_database().await?;
    Ok(())
}
