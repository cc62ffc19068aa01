//! What the integration tests share: the repository's root, the binary run
//! as a user runs it (from the root, without `PHANTOM_DB_URL`), its output as
//! one text, and a database in the incident plan's state.
#![allow(dead_code)] // each test file uses a part of it

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use phantom_sync::pg::sandbox::Database;
use phantom_sync::testkit::scenario::{Scenario, build_state};

/// The repository's root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `phantom-sync args…` from the root, without `PHANTOM_DB_URL`.
pub fn phantom_sync(args: &[&str]) -> Output {
    command(args).output().expect("the binary runs")
}

/// The binary, ready to spawn from the root (no `PHANTOM_DB_URL` from the
/// environment, no stdin). `PHANTOM_SYNC_BIN` may name a copy of it: where
/// several worktrees share one target folder, the built binary can be
/// replaced by another's build while the tests run.
pub fn command(args: &[&str]) -> Command {
    let bin = std::env::var_os("PHANTOM_SYNC_BIN")
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_phantom-sync").into());
    let mut cmd = Command::new(bin);
    cmd.args(args)
        .current_dir(root())
        .env_remove("PHANTOM_DB_URL")
        .stdin(Stdio::null());
    cmd
}

/// stdout then stderr, as one text.
pub fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A fresh database on `major` built into `scenario`'s state, and its URL.
pub async fn database_in(
    scenario: &str,
    major: u8,
    label: &str,
) -> anyhow::Result<(Database, String)> {
    let scenario = Scenario::load(&root().join("scenarios").join(format!("{scenario}.toml")))?;
    let db = Database::fresh(major, label).await?;
    let mut conn = db.connect().await?;
    let built = build_state(&scenario, &scenario.project()?, &mut conn).await;
    drop(conn);
    if let Err(e) = built {
        db.drop_database().await?;
        return Err(e.into());
    }
    let url = db.server().url(&db.name);
    Ok((db, url))
}

/// Starts `repository:major` with the unmodified testcontainers Postgres
/// module (its default credentials), checks that it serves that major and
/// removes it. The container carries the harness's owner label, so that
/// `make test`'s sweep finds it should the test die before removing it.
pub async fn serves_major_with_the_unmodified_module(
    repository: &str,
    major: u8,
) -> anyhow::Result<()> {
    use sqlx::Connection;
    use testcontainers_modules::postgres::Postgres;
    use testcontainers_modules::testcontainers::ImageExt;
    use testcontainers_modules::testcontainers::runners::AsyncRunner;

    let container = Postgres::default()
        .with_name(repository)
        .with_tag(major.to_string())
        .with_label(
            phantom_sync::pg::sandbox::server::OWNER_LABEL,
            std::process::id().to_string(),
        )
        .start()
        .await?;
    let port = container.get_host_port_ipv4(5432).await?;
    let mut conn = sqlx::PgConnection::connect(&format!(
        "postgres://postgres:postgres@127.0.0.1:{port}/postgres"
    ))
    .await?;
    let version: String = sqlx::query_scalar("SHOW server_version")
        .fetch_one(&mut conn)
        .await?;
    assert!(
        version.starts_with(&format!("{major}.")),
        "server_version {version}"
    );
    conn.close().await?;
    container.rm().await?;
    Ok(())
}

/// Runs `each` for every major in `majors`, `at_once` of them at a time, on
/// tasks of their own (a test's runtime needs worker threads for them), and
/// returns the first failure after all have ended; a panic is raised again
/// as it was. Tests that loop over the majors spend most of their time
/// waiting on containers and client programs: two majors at a time keep
/// this project's two cores busier than one.
pub async fn on_majors<F, Fut>(majors: Vec<u8>, at_once: usize, each: F) -> anyhow::Result<()>
where
    F: Fn(u8) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let turns = std::sync::Arc::new(tokio::sync::Semaphore::new(at_once.max(1)));
    let mut runs = tokio::task::JoinSet::new();
    for major in majors {
        let turns = turns.clone();
        let run = each(major);
        runs.spawn(async move {
            let _turn = turns.acquire_owned().await?;
            run.await
        });
    }
    // Every major runs to its end (its own clean-up included) before a
    // failure is reported.
    let (mut first_error, mut first_panic) = (None, None);
    while let Some(ended) = runs.join_next().await {
        match ended {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                first_error.get_or_insert(e);
            }
            Err(e) if e.is_panic() => {
                first_panic.get_or_insert(e.into_panic());
            }
            Err(e) => {
                first_error.get_or_insert(e.into());
            }
        }
    }
    if let Some(panic) = first_panic {
        std::panic::resume_unwind(panic);
    }
    first_error.map_or(Ok(()), Err)
}
