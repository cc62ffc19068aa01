//! Backups are new folders that are never overwritten, and a rollback
//! checks one before it touches anything: a swapped dump, an edited
//! `ledger.json`, a missing file, another database's backup and a partial
//! folder are each refused (exit 6) with the database left exactly as it
//! was. A good backup is found by itself (the newest of this database) and
//! restored after a safety backup of the current state.

use sqlx::Connection;
use std::path::Path;

use phantom_sync::pg::sandbox::Database;

use crate::support::{Work, backup_folders, build_state, phantom_sync, state, text};

fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        if entry.path().is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name()))?;
        }
    }
    Ok(())
}

/// A database in the broken state, repaired once by the binary: its backup folder.
async fn repaired(
    work: &Work,
    label: &str,
) -> anyhow::Result<(Database, String, std::path::PathBuf)> {
    let db = Database::fresh(17, label).await?;
    let mut conn = db.connect().await?;
    build_state(&mut conn, &work.migrations()).await?;
    let url = db.server().url(&db.name);
    let parent = work.path(&format!("backups-{label}"));
    let migrations = work.migrations().to_string_lossy().into_owned();
    let parent_arg = parent.to_string_lossy().into_owned();
    let out = phantom_sync(&[
        "repair",
        "--db-url",
        &url,
        "--migrations",
        &migrations,
        "--backup-dir",
        &parent_arg,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let folders = backup_folders(&parent);
    assert_eq!(folders.len(), 1, "{folders:?}");
    assert!(folders[0].join("manifest.json").exists());
    Ok((db, url, folders[0].clone()))
}

#[tokio::test(flavor = "multi_thread")]
async fn rollback_refuses_every_untrustworthy_backup_and_touches_nothing() -> anyhow::Result<()> {
    let work = Work::new("backups")?;
    let (a, url_a, backup_a) = repaired(&work, "backup_a").await?;
    let (b, _, backup_b) = repaired(&work, "backup_b").await?;

    // A second repair of A writes a second folder and leaves the first as it was.
    let manifest_before = std::fs::read(backup_a.join("manifest.json"))?;
    let ledger_before = std::fs::read(backup_a.join("ledger.json"))?;
    let parent_a = backup_a.parent().unwrap().to_path_buf();
    let migrations = work.migrations().to_string_lossy().into_owned();
    let again = phantom_sync(&[
        "repair",
        "--db-url",
        &url_a,
        "--migrations",
        &migrations,
        "--backup-dir",
        &parent_a.to_string_lossy(),
    ]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    assert_eq!(backup_folders(&parent_a).len(), 2);
    assert_eq!(
        std::fs::read(backup_a.join("manifest.json"))?,
        manifest_before
    );
    assert_eq!(std::fs::read(backup_a.join("ledger.json"))?, ledger_before);

    // Break the repaired ledger so that a rollback would change something.
    let mut conn = a.connect().await?;
    sqlx::raw_sql(
        "delete from supabase_migrations.schema_migrations where version = '20240101000000'",
    )
    .execute(&mut conn)
    .await?;
    let untouched = state(&a.target()).await?;

    let variant = |name: &str| -> anyhow::Result<std::path::PathBuf> {
        let dir = work.path(&format!("variants/{name}"));
        copy_dir(&backup_a, &dir)?;
        Ok(dir)
    };
    let swapped = variant("swapped-dump")?;
    std::fs::copy(
        backup_b.join("dump.pgcustom"),
        swapped.join("dump.pgcustom"),
    )?;
    let edited = variant("edited-ledger")?;
    let mut ledger: serde_json::Value =
        serde_json::from_slice(&std::fs::read(edited.join("ledger.json"))?)?;
    ledger["rows"].as_array_mut().unwrap().pop();
    std::fs::write(
        edited.join("ledger.json"),
        serde_json::to_string_pretty(&ledger)?,
    )?;
    let missing = variant("missing-file")?;
    std::fs::remove_file(missing.join("data.json"))?;
    let partial = variant("partial")?;
    std::fs::remove_file(partial.join("manifest.json"))?;

    let cases: [(&Path, &[&str]); 5] = [
        (&swapped, &["dump.pgcustom does not match manifest.json"]),
        (&edited, &["ledger.json does not match manifest.json"]),
        (&missing, &["data.json is missing"]),
        (
            &backup_b,
            &[
                "it is a backup of database",
                "pass the --db-url of the database",
            ],
        ),
        (&partial, &["has no manifest.json", "partial"]),
    ];
    for (dir, needles) in cases {
        for procedure in ["failed-migration", "ledger"] {
            let out = phantom_sync(&[
                "rollback",
                "--db-url",
                &url_a,
                "--procedure",
                procedure,
                "--backup-dir",
                &dir.to_string_lossy(),
            ]);
            let all = text(&out);
            assert_eq!(out.status.code(), Some(6), "{}: {all}", dir.display());
            assert!(
                all.contains("refused") && all.contains("nothing was touched"),
                "{all}"
            );
            for needle in needles {
                assert!(all.contains(needle), "missing {needle:?}:\n{all}");
            }
            assert_eq!(state(&a.target()).await?, untouched, "{}", dir.display());
        }
    }
    // No safety backup was left behind by the refusals.
    assert_eq!(backup_folders(&parent_a).len(), 2);

    // The folder of backups: the newest complete one of this database is used.
    let out = phantom_sync(&[
        "rollback",
        "--db-url",
        &url_a,
        "--procedure",
        "ledger",
        "--backup-dir",
        &parent_a.to_string_lossy(),
    ]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    let newest = backup_folders(&parent_a)[1].clone();
    assert!(
        all.contains(&format!("using the backup {}", newest.display())) && all.contains("2 found"),
        "{all}"
    );
    assert!(
        all.contains("[x] Ledger equals the Phase 1 export"),
        "{all}"
    );
    let folders = backup_folders(&parent_a);
    assert_eq!(
        folders.len(),
        3,
        "a safety backup was taken first: {folders:?}"
    );
    let safety = folders
        .iter()
        .find(|f| f.to_string_lossy().ends_with("-pre-rollback"))
        .unwrap();
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(safety.join("manifest.json"))?)?;
    assert_eq!(manifest["kind"], "pre-rollback");
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(safety.join("ledger.json"))?)?;
    assert_eq!(
        saved["rows"].as_array().unwrap().len(),
        2,
        "the broken ledger was saved"
    );

    conn.close().await.ok();
    a.drop_database().await?;
    b.drop_database().await?;
    Ok(())
}
