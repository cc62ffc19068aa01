//! The command line against a database in the incident plan's state: list
//! names two phantom and two pending migrations, repair brings it to the
//! verified end state, a second repair changes nothing, and errors come with
//! their documented exit codes and without passwords.

mod common;
use common::{phantom_sync, text};

use phantom_sync::pg::sandbox::Database;

async fn plan_state() -> anyhow::Result<(Database, String)> {
    common::database_in("plan-exact-state", 17, "cli").await
}

#[tokio::test(flavor = "multi_thread")]
async fn list_repair_and_repair_again() -> anyhow::Result<()> {
    let (db, url) = plan_state().await?;
    let migrations = "scenarios/prompt-manager/supabase/migrations";
    let work = phantom_sync::files::temp_dir("cli-test")?; // removed pass or fail
    let backup = work.path().join("backup").to_string_lossy().to_string();

    let list = phantom_sync(&["list", "--db-url", &url, "--migrations", migrations]);
    let out = text(&list);
    assert_eq!(list.status.code(), Some(1), "out of sync → exit 1\n{out}");
    assert!(
        out.contains("2 phantom") && out.contains("2 pending"),
        "{out}"
    );
    assert!(!out.contains(":postgres@"), "password printed:\n{out}");

    let repair = phantom_sync(&[
        "repair",
        "--db-url",
        &url,
        "--migrations",
        migrations,
        "--backup-dir",
        &backup,
    ]);
    let out = text(&repair);
    assert_eq!(repair.status.code(), Some(0), "{out}");
    assert!(
        out.contains("Result: **repaired**") && out.contains("DELETE 2"),
        "{out}"
    );

    let again = phantom_sync(&[
        "repair",
        "--db-url",
        &url,
        "--migrations",
        migrations,
        "--backup-dir",
        &format!("{backup}/again"),
    ]);
    let out = text(&again);
    assert_eq!(again.status.code(), Some(0), "{out}");
    assert!(out.contains("nothing to do"), "{out}");

    let list = phantom_sync(&[
        "list",
        "--db-url",
        &url,
        "--migrations",
        migrations,
        "--json",
    ]);
    assert_eq!(
        list.status.code(),
        Some(0),
        "in sync → exit 0\n{}",
        text(&list)
    );
    let diagnosis: serde_json::Value = serde_json::from_slice(&list.stdout)?;
    let statuses: Vec<&str> = diagnosis["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, vec!["applied"; 8]);

    db.drop_database().await?;
    Ok(())
}

#[test]
fn unreachable_database_exits_3_without_the_password() {
    let out = phantom_sync(&[
        "list",
        "--db-url",
        "postgres://app:s3cret-pw@127.0.0.1:1/app",
        "--migrations",
        "scenarios/prompt-manager/supabase/migrations",
    ]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(3), "{all}");
    assert!(
        all.contains("cannot connect to postgres://app:***@127.0.0.1:1/app"),
        "{all}"
    );
    assert!(!all.contains("s3cret-pw"), "{all}");
}

#[test]
fn a_bad_url_exits_2_and_says_what_to_do() {
    let out = phantom_sync(&["list", "--db-url", "mysql://root:pw@h/db"]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(2), "{all}");
    assert!(
        all.contains("not a PostgreSQL URL") && all.contains("hint"),
        "{all}"
    );
}

#[test]
fn repair_of_a_remote_host_needs_confirm() {
    let out = phantom_sync(&[
        "repair",
        "--db-url",
        "postgres://app:pw@db.example.com:5432/prod",
    ]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(2), "{all}");
    assert!(all.contains("--confirm prod"), "{all}");
}

#[test]
fn a_missing_migrations_folder_is_named() {
    let out = phantom_sync(&[
        "list",
        "--db-url",
        "postgres://app:pw@127.0.0.1:1/app",
        "--migrations",
        "no/such/dir",
    ]);
    // The folder is read before anything connects.
    let all = text(&out);
    assert_eq!(out.status.code(), Some(2), "{all}");
    assert!(all.contains("no/such/dir"), "{all}");
}

#[rstest::rstest]
#[case::not_a_dump(&["--dump", "README.md"], &["--dump README.md: not a pg_dump archive", "pg_dump -Fc"])]
#[case::unsupported_major(
    &["--dump", "README.md", "--major", "13"],
    &["PostgreSQL 13 is not supported", "14, 15, 16, 17 and 18"]
)]
fn rehearse_refuses_bad_input_with_exit_2(#[case] args: &[&str], #[case] expected: &[&str]) {
    let dir = std::env::temp_dir().join(format!(
        "phantom-cli-rehearse-{}-{}",
        std::process::id(),
        args.len()
    ));
    let dir_arg = dir.to_string_lossy().to_string();
    let mut all_args = vec!["rehearse", "--out", dir_arg.as_str()];
    all_args.extend_from_slice(args);
    let out = phantom_sync(&all_args);
    let all = text(&out);
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(out.status.code(), Some(2), "{all}");
    for needle in expected {
        assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
    }
}

/// `bench diagnose` on a small synthetic project: the binary diagnoses it
/// cold, warm, against an empty ledger and with every ledger row reworded,
/// checks each diagnosis (2 phantom and 10 pending; every migration pending;
/// every recorded one but the phantoms edited) and prints one row per size.
#[test]
fn bench_diagnose_prints_every_figure_of_a_small_project() {
    let out = phantom_sync(&[
        "-q",
        "bench",
        "diagnose",
        "--versions",
        "17",
        "--migrations",
        "20,40",
    ]);
    let printed = text(&out);
    assert_eq!(out.status.code(), Some(0), "{printed}");
    let rows: Vec<Vec<&str>> = printed
        .lines()
        .filter(|l| l.starts_with("| 17 |"))
        .map(|l| {
            l.split('|')
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .collect()
        })
        .collect();
    assert_eq!(rows.len(), 2, "{printed}");
    for (row, n) in rows.iter().zip(["20", "40"]) {
        assert_eq!(
            row.len(),
            10,
            "major, size, four times and their growth: {row:?}"
        );
        assert_eq!(row[1], n);
        for time in [row[2], row[4], row[6], row[8]] {
            let ms = time.strip_suffix(" ms").and_then(|t| t.parse::<u64>().ok());
            assert!(
                ms.is_some_and(|ms| ms > 0),
                "not a time: {time:?} in {row:?}"
            );
        }
    }
    assert!(rows[1][3].starts_with("n^"), "{:?}", rows[1]);
}
