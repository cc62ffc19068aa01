//! Two repairs of one database at once: exactly one repairs; the other
//! fails at once with exit 9 (Busy, naming the holder) or, if it starts
//! after the first finished, finds nothing to do. No migration runs twice,
//! no row is lost.

use phantom_sync::pg::lock::LOCK_KEY;
use phantom_sync::pg::sandbox::Database;
use sqlx::Connection;

use crate::support::{Work, assert_converged, build_state, command, phantom_sync, text};

#[tokio::test(flavor = "multi_thread")]
async fn two_repairs_at_once_one_repairs_the_other_is_busy_or_finds_nothing() -> anyhow::Result<()>
{
    let work = Work::new("race")?;
    let migrations = work.migrations().to_string_lossy().into_owned();
    let mut busy = 0;
    for round in 0..10 {
        let db = Database::fresh(17, "race").await?;
        let mut conn = db.connect().await?;
        build_state(&mut conn, &work.migrations()).await?;
        let url = db.server().url(&db.name);
        let spawn = |who: &str| {
            let backups = work.arg(&format!("backups-{round}-{who}"));
            command(&[
                "repair",
                "--db-url",
                &url,
                "--migrations",
                &migrations,
                "--backup-dir",
                &backups,
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
        };
        let (a, b) = (spawn("a")?, spawn("b")?);
        let (a, b) = (a.wait_with_output()?, b.wait_with_output()?);
        let mut codes = [a.status.code(), b.status.code()];
        codes.sort();
        let (ta, tb) = (text(&a), text(&b));
        match codes {
            [Some(0), Some(9)] => {
                busy += 1;
                let loser = if a.status.code() == Some(9) { &ta } else { &tb };
                assert!(
                    loser.contains("another repair or rollback is running")
                        && loser.contains("pid "),
                    "round {round}: {loser}"
                );
            }
            [Some(0), Some(0)] => {
                let noop = [&ta, &tb]
                    .iter()
                    .filter(|t| t.contains("nothing to do"))
                    .count();
                assert_eq!(
                    noop, 1,
                    "round {round}: one repairs, one finds nothing\n{ta}\n{tb}"
                );
            }
            other => panic!("round {round}: exit codes {other:?}\n--- a\n{ta}\n--- b\n{tb}"),
        }
        assert_converged(&db.target()).await?;
        conn.close().await.ok();
        db.drop_database().await?;
    }
    eprintln!(
        "two repairs at once: the second was Busy in {busy} of 10 rounds, found nothing to do in the others"
    );
    assert!(busy > 0, "in 10 rounds the two runs never overlapped");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_held_lock_is_named_and_nothing_is_touched() -> anyhow::Result<()> {
    let work = Work::new("busy")?;
    let db = Database::fresh(17, "busy").await?;
    let mut conn = db.connect().await?;
    build_state(&mut conn, &work.migrations()).await?;
    let before = crate::support::state(&db.target()).await?;
    // Another session holds the key, as a running repair would.
    let mut holder = db
        .target()
        .with_application_name("someone else's repair")
        .connect()
        .await?;
    let taken: bool = sqlx::query_scalar("select pg_try_advisory_lock($1)")
        .bind(LOCK_KEY)
        .fetch_one(&mut holder)
        .await?;
    assert!(taken);
    let url = db.server().url(&db.name);
    let migrations = work.migrations().to_string_lossy().into_owned();
    for args in [
        vec!["repair", "--db-url", &url, "--migrations", &migrations],
        vec!["rollback", "--db-url", &url, "--procedure", "ledger"],
    ] {
        let mut args = args.clone();
        let backups = work.arg("backups");
        args.extend(["--backup-dir", &backups]);
        let out = phantom_sync(&args);
        let all = text(&out);
        assert_eq!(out.status.code(), Some(9), "{all}");
        for needle in [
            "another repair or rollback is running",
            "application \"someone else's repair\"",
            "pid ",
            "client ",
            "connected since ",
            "nothing was touched",
        ] {
            assert!(all.contains(needle), "missing {needle:?}:\n{all}");
        }
        assert!(!all.contains(":postgres@"), "{all}");
    }
    assert_eq!(crate::support::state(&db.target()).await?, before);
    drop(holder);
    conn.close().await.ok();
    db.drop_database().await?;
    Ok(())
}
