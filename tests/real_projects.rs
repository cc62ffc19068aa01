//! A real project's shape, through the command line: an applied migration
//! edited after it ran (the ledger recorded `ip_address` and `user_agent`,
//! today's file lacks them, the live table has them with data). `diagnose`
//! explains the edit and lists the drift with its rows; `plan` refuses and
//! names `--accept-existing-drift`; `restore-file` writes the recorded version,
//! and with it in the migrations folder the migration reads `applied` and no
//! drift is left.

mod common;
use common::{phantom_sync, root, text};

use std::path::Path;

use phantom_sync::pg::sandbox::Database;
use phantom_sync::testkit::scenario::{Scenario, build_state};

const EDITED: &str = "20250411083417";

fn copy_folder(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        std::fs::copy(entry.path(), to.join(entry.file_name()))?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn an_edited_migration_is_explained_refused_and_restored() -> anyhow::Result<()> {
    let scenario = Scenario::load(&root().join("scenarios/edited-dropped-columns.toml"))?;
    let db = Database::fresh(17, "real_projects").await?;
    let result = check(&db, &scenario).await;
    db.drop_database().await?;
    result
}

async fn check(db: &Database, scenario: &Scenario) -> anyhow::Result<()> {
    let mut conn = db.connect().await?;
    build_state(scenario, &scenario.project()?, &mut conn).await?;
    drop(conn);
    let url = db.server().url(&db.name);
    let work = phantom_sync::files::temp_dir("real-projects")?;
    let migrations = work.path().join("migrations");
    copy_folder(&scenario.migrations_dir(), &migrations)?;
    let migrations_arg = migrations.display().to_string();

    let diagnose = phantom_sync(&[
        "diagnose",
        "--db-url",
        &url,
        "--migrations",
        &migrations_arg,
    ]);
    // Wrapped for a terminal: compare words, not line breaks.
    let out = text(&diagnose)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert_eq!(diagnose.status.code(), Some(1), "out of sync\n{out}");
    assert!(
        out.contains("the recorded version also creates column public.user_consents.ip_address (text); the live database has it; today's file does not create it"),
        "{out}"
    );
    assert!(out.contains("public.user_consents holds 300 rows"), "{out}");

    let plan = phantom_sync(&["plan", "--db-url", &url, "--migrations", &migrations_arg]);
    let out = text(&plan);
    assert_eq!(plan.status.code(), Some(1), "refused\n{out}");
    assert!(
        out.contains("pre-date the repair") && out.contains("repair --accept-existing-drift"),
        "{out}"
    );

    let restored_dir = work.path().join("restored");
    let restored_arg = restored_dir.display().to_string();
    let restore = phantom_sync(&[
        "restore-file",
        EDITED,
        "--db-url",
        &url,
        "--migrations",
        &migrations_arg,
        "--out",
        &restored_arg,
    ]);
    let out = text(&restore);
    assert_eq!(restore.status.code(), Some(0), "{out}");
    let file = restored_dir.join(format!("{EDITED}_create_user_consents.sql"));
    assert!(
        out.contains("8 statements") && out.contains("it differs from"),
        "{out}"
    );
    let again = phantom_sync(&[
        "restore-file",
        EDITED,
        "--db-url",
        &url,
        "--out",
        &restored_arg,
    ]);
    assert_eq!(
        again.status.code(),
        Some(2),
        "no overwrite without --force\n{}",
        text(&again)
    );

    // The recorded version, in the project: the ledger and the file agree, the schema matches.
    std::fs::copy(&file, migrations.join(file.file_name().unwrap()))?;
    let list = phantom_sync(&[
        "list",
        "--json",
        "--db-url",
        &url,
        "--migrations",
        &migrations_arg,
    ]);
    let diagnosis: serde_json::Value = serde_json::from_slice(&list.stdout)
        .map_err(|e| anyhow::anyhow!("{e}: {}", text(&list)))?;
    let status = diagnosis["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["version"] == EDITED)
        .map(|e| e["status"].as_str().unwrap().to_string());
    assert_eq!(status.as_deref(), Some("applied"));
    assert_eq!(
        diagnosis["differences"]["pre_existing"]
            .as_array()
            .map(Vec::len),
        Some(0)
    );
    Ok(())
}
