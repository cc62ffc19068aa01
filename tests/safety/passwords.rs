//! A password never shows: every command that takes a URL, fed URLs whose
//! password holds raw and encoded `@ / ? # % :` and spaces, or comes as a
//! `password=` / `PASSWORD=` parameter — against a port where nothing
//! listens and against a real server where the password is needed (so the
//! tools containers must have received it) — prints it nowhere and writes
//! it into no file. A tools container's environment (`docker inspect`)
//! holds no `PGPASSWORD`.

use std::path::Path;
use std::time::Duration;

use phantom_sync::pg::sandbox::Database;
use phantom_sync::pg::target::Target;
use phantom_sync::pg::tools::{PgTools, TOOLS_LABEL};
use sqlx::Connection;

use crate::support::{Work, build_state, phantom_sync, text};

/// The password's distinctive start: none of its forms may show.
const MARK: &str = "Zq9";
const RAW: &str = "Zq9@/?#%: pw";
const ENCODED: &str = "Zq9%40%2F%3F%23%25%3A%20pw";

fn shapes(host: &str, db: &str) -> Vec<String> {
    vec![
        format!("postgres://weird:{RAW}@{host}/{db}"),
        format!("postgres://weird:{ENCODED}@{host}/{db}"),
        format!("postgresql://weird:{RAW}@{host}/{db}?sslmode=disable"),
        format!("postgres://weird@{host}/{db}?password={ENCODED}"),
        format!("postgres://weird@{host}/{db}?sslmode=prefer&PASSWORD={ENCODED}"),
    ]
}

/// Every command that takes a URL, with its output going under `out`.
fn commands(url: &str, migrations: &str, out: &Path, rehearse: bool) -> Vec<Vec<String>> {
    let o = |name: &str| out.join(name).to_string_lossy().into_owned();
    let common = |cmd: &str| {
        vec![
            cmd.to_string(),
            "--db-url".into(),
            url.into(),
            "--migrations".into(),
            migrations.into(),
        ]
    };
    let mut all = vec![
        common("list"),
        common("diagnose"),
        [common("plan"), vec!["--out".into(), o("plan.json")]].concat(),
        [common("repair"), vec!["--backup-dir".into(), o("backups")]].concat(),
        common("verify"),
        vec![
            "rollback".into(),
            "--db-url".into(),
            url.into(),
            "--procedure".into(),
            "ledger".into(),
            "--backup-dir".into(),
            o("backups"),
        ],
    ];
    if rehearse {
        all.push(vec![
            "rehearse".into(),
            "--db-url".into(),
            url.into(),
            "--migrations".into(),
            migrations.into(),
            "--out".into(),
            o("rehearsal"),
            "--quiet".into(),
        ]);
    }
    all
}

/// Every file under `dir` that holds the mark.
fn files_with_mark(dir: &Path, found: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files_with_mark(&path, found);
        } else if let Ok(bytes) = std::fs::read(&path)
            && bytes.windows(MARK.len()).any(|w| w == MARK.as_bytes())
        {
            found.push(path.display().to_string());
        }
    }
}

/// A login whose password has every awkward character (roles are
/// cluster-wide: made once per server, reused by later runs), with the
/// default privileges on `public` that the shim gives `postgres`, so that
/// what it creates gets the API roles' grants (see the README: run the
/// repair as the role your migrations run as).
async fn weird_login(conn: &mut sqlx::PgConnection) -> anyhow::Result<()> {
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "do $$ begin create role weird login superuser; exception when duplicate_object then null; end $$; \
         alter role weird password '{RAW}'; \
         alter default privileges for role weird in schema public grant all on tables to anon, authenticated, service_role; \
         alter default privileges for role weird in schema public grant all on sequences to anon, authenticated, service_role; \
         alter default privileges for role weird in schema public grant all on functions to anon, authenticated, service_role"
    )))
    .execute(conn)
    .await?;
    Ok(())
}

fn run_and_scan(args: &[String], out_dir: &Path) -> (Option<i32>, String) {
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = phantom_sync(&refs);
    let all = text(&out);
    assert!(
        !all.contains(MARK),
        "{} printed the password:\n{all}",
        args[0]
    );
    let mut found = Vec::new();
    files_with_mark(out_dir, &mut found);
    assert!(
        found.is_empty(),
        "{} wrote the password into {found:?}",
        args[0]
    );
    (out.status.code(), all)
}

#[test]
fn no_command_prints_a_password_of_any_shape_when_nothing_listens() -> anyhow::Result<()> {
    let work = Work::new("pw-closed")?;
    let migrations = work.migrations().to_string_lossy().into_owned();
    let mut urls = shapes("127.0.0.1:1", "prod");
    // Shapes no parser accepts: the error names at most the host and database.
    urls.push(format!("postgres://weird:{RAW}@127.0.0.1:notaport/prod"));
    urls.push(format!("postgres://weird:{RAW}"));
    urls.push(format!("mysql://weird:{RAW}@127.0.0.1/prod"));
    for url in &urls {
        for args in commands(url, &migrations, work.dir.path(), true) {
            let (code, all) = run_and_scan(&args, work.dir.path());
            assert!(
                matches!(code, Some(2 | 3)),
                "{} {url}: {code:?}\n{all}",
                args[0]
            );
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn no_command_prints_a_password_of_any_shape_on_a_real_server() -> anyhow::Result<()> {
    let work = Work::new("pw-real")?;
    let db = Database::fresh(17, "passwords").await?;
    let mut conn = db.connect().await?;
    build_state(&mut conn, &work.migrations()).await?;
    weird_login(&mut conn).await?;
    let host = format!("{}:{}", db.server().host, db.server().port);
    let migrations = work.migrations().to_string_lossy().into_owned();
    for (i, url) in shapes(&host, &db.name).iter().enumerate() {
        for args in commands(url, &migrations, work.dir.path(), i == 0) {
            let (code, all) = run_and_scan(&args, work.dir.path());
            // It connected, and so did pg_dump in its container.
            assert!(
                matches!(code, Some(0 | 1)),
                "{} with shape {i}: {code:?}\n{all}",
                args[0]
            );
        }
    }
    conn.close().await.ok();
    db.drop_database().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn tools_containers_get_the_password_from_a_file_not_their_environment() -> anyhow::Result<()>
{
    let db = Database::fresh(17, "inspect").await?;
    let mut conn = db.connect().await?;
    weird_login(&mut conn).await?;
    conn.close().await.ok();
    let url = format!(
        "postgres://weird:{ENCODED}@{}:{}/{}",
        db.server().host,
        db.server().port,
        db.name
    );
    let target = Target::parse(&url)?;
    let tools = PgTools::for_major(17).await?;
    let running = tokio::spawn({
        let (tools, target) = (tools.clone(), target.clone());
        async move { tools.psql_script(&target, "select pg_sleep(6)").await }
    });
    let filter = format!("label={TOOLS_LABEL}=psql");
    let mut inspected = Vec::new();
    for _ in 0..100 {
        let ids = std::process::Command::new("docker")
            .args(["ps", "-q", "--filter", &filter])
            .output()?;
        for id in String::from_utf8_lossy(&ids.stdout).lines() {
            let out = std::process::Command::new("docker")
                .args([
                    "inspect",
                    "--format",
                    "{{json .Config.Env}} {{json .Args}} {{json .Mounts}}",
                    id,
                ])
                .output()?;
            let shown = String::from_utf8_lossy(&out.stdout).into_owned();
            if !shown.trim().is_empty() {
                inspected.push(shown);
            }
        }
        if !inspected.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let finished = running.await?;
    assert!(
        finished.is_ok(),
        "psql connected with the file's password: {finished:?}"
    );
    assert!(
        !inspected.is_empty(),
        "the psql container was never seen running"
    );
    for shown in &inspected {
        assert!(!shown.contains("PGPASSWORD"), "{shown}");
        assert!(!shown.contains(MARK), "{shown}");
        assert!(
            shown.contains("PGPASSFILE=/run/phantom-sync/pass/pgpass"),
            "{shown}"
        );
        assert!(
            shown.contains("\"Destination\":\"/run/phantom-sync/pass\"")
                && shown.contains("\"RW\":false"),
            "{shown}"
        );
    }
    db.drop_database().await?;
    Ok(())
}
