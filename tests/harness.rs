//! The harness gives every scenario a fresh PostgreSQL database, on every
//! major in PHANTOM_PG_VERSIONS, with the Supabase shim in place.

use phantom_sync::pg::sandbox::{Database, PgServer, versions_from_env};
use pretty_assertions::assert_eq;
use sqlx::Row;

type TestResult = anyhow::Result<()>;

#[tokio::test]
async fn each_server_reports_the_major_it_was_asked_for() -> TestResult {
    for major in versions_from_env()? {
        let db = Database::fresh(major, "version").await?;
        let mut conn = db.connect().await?;
        let num: String = sqlx::query_scalar("SHOW server_version_num")
            .fetch_one(&mut conn)
            .await?;
        assert_eq!(
            num.parse::<u32>()? / 10_000,
            u32::from(major),
            "server_version_num {num}"
        );
        let fsync: String = sqlx::query_scalar("SHOW fsync")
            .fetch_one(&mut conn)
            .await?;
        assert_eq!(fsync, "off", "PostgreSQL {major} runs with test settings");
        drop(conn);
        db.drop_database().await?;
    }
    Ok(())
}

#[tokio::test]
async fn the_shim_answers_auth_uid_from_jwt_claims() -> TestResult {
    for major in versions_from_env()? {
        let db = Database::fresh(major, "shim").await?;
        let mut conn = db.connect().await?;
        let uid = "7d2b6b5e-1f0a-4c55-9a0e-3f8b1a2c4d5e";
        let claims = format!(r#"{{"sub":"{uid}","role":"authenticated"}}"#);
        sqlx::query("SELECT set_config('request.jwt.claims', $1, false)")
            .bind(&claims)
            .execute(&mut conn)
            .await?;
        let row = sqlx::query(
            "SELECT auth.uid()::text AS uid, auth.role() AS role, auth.jwt()->>'sub' AS sub",
        )
        .fetch_one(&mut conn)
        .await?;
        assert_eq!(row.get::<String, _>("uid"), uid, "PostgreSQL {major}");
        assert_eq!(row.get::<String, _>("role"), "authenticated");
        assert_eq!(row.get::<String, _>("sub"), uid);
        let roles: Vec<String> = sqlx::query_scalar(
            "SELECT rolname::text FROM pg_roles WHERE rolname IN ('anon','authenticated','service_role','authenticator') ORDER BY 1",
        )
        .fetch_all(&mut conn)
        .await?;
        assert_eq!(
            roles,
            ["anon", "authenticated", "authenticator", "service_role"]
        );
        let uuid_ok: bool = sqlx::query_scalar("SELECT gen_random_uuid() IS NOT NULL")
            .fetch_one(&mut conn)
            .await?;
        assert!(uuid_ok);
        drop(conn);
        db.drop_database().await?;
    }
    Ok(())
}

#[tokio::test]
async fn a_template_clone_holds_no_user_data() -> TestResult {
    for major in versions_from_env()? {
        let first = Database::fresh(major, "dirty").await?;
        let mut conn = first.connect().await?;
        sqlx::raw_sql("CREATE TABLE public.leftover (id int); INSERT INTO auth.users (email) VALUES ('x@example.com')")
            .execute(&mut conn)
            .await?;
        drop(conn);
        let second = Database::fresh(major, "clean").await?;
        let mut conn = second.connect().await?;
        let tables: i64 =
            sqlx::query_scalar("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
                .fetch_one(&mut conn)
                .await?;
        let users: i64 = sqlx::query_scalar("SELECT count(*) FROM auth.users")
            .fetch_one(&mut conn)
            .await?;
        let ledger: bool = sqlx::query_scalar(
            "SELECT to_regclass('supabase_migrations.schema_migrations') IS NOT NULL",
        )
        .fetch_one(&mut conn)
        .await?;
        assert_eq!(
            (tables, users, ledger),
            (0, 0, false),
            "PostgreSQL {major}: a clone starts empty"
        );
        drop(conn);
        first.drop_database().await?;
        second.drop_database().await?;
    }
    Ok(())
}

#[tokio::test]
async fn twenty_databases_created_in_parallel_do_not_collide() -> TestResult {
    for major in versions_from_env()? {
        let tasks: Vec<_> = (0..20)
            .map(|i| {
                tokio::spawn(async move {
                    let db = Database::fresh(major, &format!("parallel {i}")).await?;
                    let mut conn = db.connect().await?;
                    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                        "CREATE TABLE public.mine (owner int); INSERT INTO public.mine VALUES ({i})"
                    )))
                    .execute(&mut conn)
                    .await?;
                    anyhow::Ok((i, db))
                })
            })
            .collect();
        let mut dbs = Vec::new();
        for task in tasks {
            dbs.push(task.await??);
        }
        let names: std::collections::BTreeSet<_> =
            dbs.iter().map(|(_, db)| db.name.clone()).collect();
        assert_eq!(names.len(), 20, "20 distinct databases");
        for (i, db) in dbs {
            let mut conn = db.connect().await?;
            let owners: Vec<i32> = sqlx::query_scalar("SELECT owner FROM public.mine")
                .fetch_all(&mut conn)
                .await?;
            assert_eq!(
                owners,
                vec![i],
                "PostgreSQL {major}: database {} sees only its own row",
                db.name
            );
            drop(conn);
            db.drop_database().await?;
        }
    }
    Ok(())
}

#[tokio::test]
async fn a_dropped_database_is_really_gone() -> TestResult {
    for major in versions_from_env()? {
        let db = Database::fresh(major, "gone").await?;
        let name = db.name.clone();
        let server = PgServer::shared(major).await?;
        let mut conn = db.connect().await?; // still connected: the drop must force it out
        db.drop_database().await?;
        assert!(
            sqlx::query("SELECT 1").execute(&mut conn).await.is_err(),
            "session was terminated"
        );
        let mut admin = server.target("postgres").connect().await?;
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)")
                .bind(&name)
                .fetch_one(&mut admin)
                .await?;
        assert!(
            !exists,
            "PostgreSQL {major}: {name} still listed in pg_database"
        );
    }
    Ok(())
}

/// The harness's own connections go to the container's address on Docker's
/// bridge where this machine routes it, past the published port's proxy;
/// what is printed, or handed to a child process, names the published port
/// either way. In CI (this project's Linux machine kind) the bridge is routed.
#[tokio::test]
async fn connections_skip_the_port_proxy_and_output_names_the_published_port() -> TestResult {
    let major = versions_from_env()?[0];
    let server = PgServer::shared(major).await?;
    let published = format!("127.0.0.1:{}", server.port);
    let printed = server.target("postgres").redacted().to_string();
    assert!(printed.contains(&published), "{printed}");
    assert!(server.url("postgres").contains(&format!("@{published}/")));
    let connecting = server.connect_target("postgres");
    match &server.direct {
        Some(address) => {
            let shown = connecting.redacted();
            assert!(shown.contains(&format!("{address}:5432")), "{shown}");
            let mut conn = connecting.connect().await?;
            let own: String = sqlx::query_scalar("SELECT host(inet_server_addr())")
                .fetch_one(&mut conn)
                .await?;
            assert_eq!(&own, address, "the server's own address");
        }
        None => assert_eq!(connecting.redacted(), printed),
    }
    if cfg!(target_os = "linux") && std::env::var_os("CI").is_some() {
        assert!(server.direct.is_some(), "the bridge is routed in CI");
    }
    Ok(())
}
