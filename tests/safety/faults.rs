//! Real faults in the middle of a migration's transaction — the binary
//! SIGKILLed, the server restarted, the connection cut — and signals
//! (SIGINT, SIGTERM). Each time the journal records the step that was hit,
//! and a rerun converges to the same end state: every migration recorded
//! once, each re-applied migration run exactly once, no row lost.

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use phantom_sync::engine::journal::StepOutcome;
use phantom_sync::engine::outcome::RunOutcome;
use phantom_sync::pg::sandbox::{Database, PgServer, ServerOptions};
use phantom_sync::pg::target::Target;
use sqlx::Connection;

use crate::support::{
    Work, assert_converged, backup_folders, build_state, command, journal, set_sleep,
    wait_for_sleeping_migration,
};

/// The repair of `url`, spawned, writing backups under `parent` and its
/// temporary files under `tmp`.
fn spawn_repair(url: &str, work: &Work, parent: &Path, tmp: &Path) -> anyhow::Result<Child> {
    std::fs::create_dir_all(tmp)?;
    let migrations = work.migrations().to_string_lossy().into_owned();
    Ok(command(&[
        "repair",
        "--db-url",
        url,
        "--migrations",
        &migrations,
        "--backup-dir",
        &parent.to_string_lossy(),
    ])
    .env("TMPDIR", tmp)
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()?)
}

/// Waits for the child, at most 120 s; its exit code and output.
fn finish(child: Child) -> anyhow::Result<(Option<i32>, String)> {
    let out = child.wait_with_output()?;
    Ok((out.status.code(), crate::support::text(&out)))
}

/// The one backup folder of the interrupted run, with the journal's entry
/// for the migration that was hit (step 3.2: migration 3).
fn hit_step(parent: &Path) -> anyhow::Result<(RunOutcome, StepOutcome, Vec<String>)> {
    let folders = backup_folders(parent);
    anyhow::ensure!(folders.len() == 1, "one backup folder: {folders:?}");
    let journal = journal(&folders[0])?;
    let entry = journal
        .entries
        .iter()
        .find(|e| e.step == "3.2")
        .ok_or_else(|| anyhow::anyhow!("no entry for step 3.2: {journal:?}"))?;
    Ok((journal.result, entry.outcome.clone(), entry.detail.clone()))
}

/// Runs the repair again (no sleep), into the same backup parent, and
/// checks the end state — and that the interrupted run's backup folder is
/// exactly as it was (a rerun never overwrites a backup).
async fn rerun_converges(
    target: &Target,
    url: &str,
    work: &Work,
    parent: &Path,
) -> anyhow::Result<()> {
    set_sleep(target, 0).await?;
    let before = backup_folders(parent);
    let contents = |dirs: &[std::path::PathBuf]| -> Vec<(String, Vec<u8>)> {
        let mut all = Vec::new();
        for dir in dirs {
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                if let Ok(bytes) = std::fs::read(entry.path()) {
                    all.push((entry.path().display().to_string(), bytes));
                }
            }
        }
        all.sort();
        all
    };
    let kept = contents(&before);
    let tmp = work.path("rerun-tmp");
    let (code, out) = finish(spawn_repair(url, work, parent, &tmp)?)?;
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("Result: **repaired**"), "{out}");
    assert_eq!(
        contents(&before),
        kept,
        "the interrupted run's backup is untouched"
    );
    assert_eq!(
        backup_folders(parent).len(),
        before.len() + 1,
        "the rerun wrote a new folder"
    );
    assert_converged(target).await
}

/// Migration 3 has not committed: its ledger row and audit row are absent,
/// migration 2's (committed before) are there once.
async fn assert_three_rolled_back(target: &Target) -> anyhow::Result<()> {
    let mut conn = target.connect().await?;
    let audit: Vec<String> = sqlx::query_scalar("select what from public.audit order by what")
        .fetch_all(&mut conn)
        .await?;
    assert_eq!(audit, vec!["20240201000000 ran"]);
    let recorded: i64 = sqlx::query_scalar(
        "select count(*) from supabase_migrations.schema_migrations where version = '20240301000000'",
    )
    .fetch_one(&mut conn)
    .await?;
    assert_eq!(recorded, 0);
    conn.close().await.ok();
    Ok(())
}

async fn sleeping_state(label: &str) -> anyhow::Result<(Work, Database, String)> {
    let work = Work::new(label)?;
    let db = Database::fresh(17, label).await?;
    let mut conn = db.connect().await?;
    build_state(&mut conn, &work.migrations()).await?;
    conn.close().await.ok();
    set_sleep(&db.target(), 60).await?;
    let url = db.server().url(&db.name);
    Ok((work, db, url))
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_inside_a_migration_then_the_rerun_converges() -> anyhow::Result<()> {
    let (work, db, url) = sleeping_state("sigkill").await?;
    let parent = work.path("backups");
    let mut child = spawn_repair(&url, &work, &parent, &work.path("tmp"))?;
    wait_for_sleeping_migration(&db.target()).await?;
    child.kill()?; // SIGKILL
    let (code, _) = finish(child)?;
    assert_eq!(code, None, "killed by a signal");
    let (result, outcome, _) = hit_step(&parent)?;
    assert_eq!(result, RunOutcome::Running, "a killed run cannot say more");
    assert_eq!(
        outcome,
        StepOutcome::Started,
        "the journal names the step it died in"
    );
    // The server notices the dead client within a second and rolls back.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_three_rolled_back(&db.target()).await?;
    rerun_converges(&db.target(), &url, &work, &parent).await?;
    db.drop_database().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cut_connection_inside_a_migration_then_the_rerun_converges() -> anyhow::Result<()> {
    let (work, db, url) = sleeping_state("cut").await?;
    let parent = work.path("backups");
    let child = spawn_repair(&url, &work, &parent, &work.path("tmp"))?;
    let pid = wait_for_sleeping_migration(&db.target()).await?;
    let mut conn = db.connect().await?;
    let ended: bool = sqlx::query_scalar("select pg_terminate_backend($1)")
        .bind(pid)
        .fetch_one(&mut conn)
        .await?;
    assert!(ended);
    conn.close().await.ok();
    let (code, out) = finish(child)?;
    assert_eq!(code, Some(7), "a step failed: {out}");
    assert!(
        out.contains("connection lost while applying 20240301000000"),
        "{out}"
    );
    let (result, outcome, detail) = hit_step(&parent)?;
    assert_eq!((result, outcome), (RunOutcome::Failed, StepOutcome::Failed));
    assert!(detail.join(" ").contains("connection lost"), "{detail:?}");
    assert_three_rolled_back(&db.target()).await?;
    rerun_converges(&db.target(), &url, &work, &parent).await?;
    db.drop_database().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_restart_inside_a_migration_then_the_rerun_converges() -> anyhow::Result<()> {
    // A server of its own (data on disk, so it survives the restart).
    let server = PgServer::start(
        17,
        ServerOptions {
            disk_data: true,
            ..ServerOptions::default()
        },
    )
    .await?;
    let result = async {
        let work = Work::new("restart")?;
        let db = Database::create(&server, "restart").await?;
        let mut conn = db.connect().await?;
        build_state(&mut conn, &work.migrations()).await?;
        conn.close().await.ok();
        set_sleep(&db.target(), 60).await?;
        let parent = work.path("backups");
        let child = spawn_repair(&server.url(&db.name), &work, &parent, &work.path("tmp"))?;
        wait_for_sleeping_migration(&db.target()).await?;
        let restarted = std::process::Command::new("docker")
            .args(["restart", "--time", "5", &server.container_id])
            .output()?;
        anyhow::ensure!(restarted.status.success(), "{restarted:?}");
        let (code, out) = finish(child)?;
        assert_eq!(code, Some(7), "a step failed: {out}");
        assert!(out.contains("20240301000000"), "{out}");
        let (result, outcome, _) = hit_step(&parent)?;
        assert_eq!((result, outcome), (RunOutcome::Failed, StepOutcome::Failed));
        // The host port may change with the restart.
        let port = docker_port(&server.container_id)?;
        let moved = PgServer {
            port,
            ..server.clone()
        };
        let target = moved.target(&db.name);
        wait_until_up(&target).await?;
        assert_three_rolled_back(&target).await?;
        rerun_converges(&target, &moved.url(&db.name), &work, &parent).await
    }
    .await;
    server.stop().await?;
    result
}

fn docker_port(container: &str) -> anyhow::Result<u16> {
    let out = std::process::Command::new("docker")
        .args(["port", container, "5432/tcp"])
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .filter_map(|l| l.rsplit(':').next())
        .find_map(|p| p.trim().parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no port: {text}"))
}

async fn wait_until_up(target: &Target) -> anyhow::Result<()> {
    for _ in 0..120 {
        if let Ok(conn) = target.connect().await {
            conn.close().await.ok();
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    anyhow::bail!("the server did not come back within 60 s")
}

#[rstest::rstest]
#[case::sigint("INT")]
#[case::sigterm("TERM")]
#[tokio::test(flavor = "multi_thread")]
async fn a_signal_inside_a_migration_stops_cleanly_with_exit_130(
    #[case] signal: &str,
) -> anyhow::Result<()> {
    let (work, db, url) = sleeping_state(&format!("sig{}", signal.to_lowercase())).await?;
    let parent = work.path("backups");
    let tmp = work.path("tmp");
    let child = spawn_repair(&url, &work, &parent, &tmp)?;
    wait_for_sleeping_migration(&db.target()).await?;
    let sent = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()?;
    assert!(sent.success());
    let clock = std::time::Instant::now();
    let (code, out) = finish(child)?;
    assert!(
        clock.elapsed() < Duration::from_secs(30),
        "it stopped at once, not after the sleep"
    );
    assert_eq!(code, Some(130), "{out}");
    assert!(out.contains(&format!("SIG{signal}")), "{out}");
    let (result, outcome, detail) = hit_step(&parent)?;
    assert_eq!(
        (result, outcome),
        (RunOutcome::Interrupted, StepOutcome::Interrupted)
    );
    assert!(detail.join(" ").contains("rolled back"), "{detail:?}");
    let folder = &backup_folders(&parent)[0];
    assert!(folder.join("journal.md").exists(), "journal.md written");
    let md = std::fs::read_to_string(folder.join("journal.md"))?;
    assert!(md.contains("interrupted"), "{md}");
    let left: Vec<_> = std::fs::read_dir(&tmp)?
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(left.is_empty(), "temporary files left behind: {left:?}");
    // The migration's session was ended, so its transaction is gone now.
    assert_three_rolled_back(&db.target()).await?;
    rerun_converges(&db.target(), &url, &work, &parent).await?;
    db.drop_database().await?;
    Ok(())
}
