//! Plan files are not trusted beyond what the database says now: the
//! reviewer's two tampered plans (no steps; no backup and an applied version
//! added to the revert list) are refused with exit 6 whether or not the
//! attacker recomputed the digest, and nothing is touched. The data-loss
//! guard refuses a migration that drops a table holding rows unless
//! `--allow-data-loss` is given.

use sqlx::Connection;
use std::path::PathBuf;

use phantom_sync::engine::plan::Plan;
use phantom_sync::pg::sandbox::Database;
use phantom_sync::testkit::scenario::{Scenario, build_state as build_scenario};

use crate::support::{Work, assert_converged, build_state, phantom_sync, state, text};

/// Writes `edit(plan)` to `name`, with the digest left as it was (`reseal`
/// false) or recomputed as an attacker who read the source would (`true`).
fn tampered(
    work: &Work,
    original: &str,
    name: &str,
    reseal: bool,
    edit: impl Fn(&mut serde_json::Value),
) -> anyhow::Result<String> {
    let mut value: serde_json::Value = serde_json::from_str(original)?;
    edit(&mut value);
    let text = if reseal {
        let plan: Plan = serde_json::from_value(value)?;
        plan.to_json()
    } else {
        serde_json::to_string_pretty(&value)?
    };
    std::fs::write(work.path(name), text)?;
    Ok(work.arg(name))
}

#[tokio::test(flavor = "multi_thread")]
async fn tampered_plans_are_refused_and_the_true_plan_runs() -> anyhow::Result<()> {
    let work = Work::new("plans")?;
    let db = Database::fresh(17, "plans").await?;
    let mut conn = db.connect().await?;
    build_state(&mut conn, &work.migrations()).await?;
    let url = db.server().url(&db.name);
    let migrations = work.migrations().to_string_lossy().into_owned();
    let plan_file = work.arg("plan.json");
    let made = phantom_sync(&[
        "plan",
        "--db-url",
        &url,
        "--migrations",
        &migrations,
        "--out",
        &plan_file,
    ]);
    assert_eq!(made.status.code(), Some(0), "{}", text(&made));
    let original = std::fs::read_to_string(&plan_file)?;
    let before = state(&db.target()).await?;

    let no_steps = |v: &mut serde_json::Value| v["steps"] = serde_json::json!([]);
    let no_backup_revert_applied = |v: &mut serde_json::Value| {
        let steps = v["steps"].as_array_mut().unwrap();
        steps.retain(|s| s["phase"] != "Backup");
        let repair = steps
            .iter_mut()
            .find(|s| s["action"] == "repair-ledger")
            .unwrap();
        repair["revert"]
            .as_array_mut()
            .unwrap()
            .insert(0, "20240101000000".into());
    };
    let cases = [
        (
            tampered(&work, &original, "no-steps.json", false, no_steps)?,
            "does not match its digest",
        ),
        (
            tampered(&work, &original, "no-steps-resealed.json", true, no_steps)?,
            "first at plan.steps",
        ),
        (
            tampered(
                &work,
                &original,
                "no-backup.json",
                false,
                no_backup_revert_applied,
            )?,
            "does not match its digest",
        ),
        (
            tampered(
                &work,
                &original,
                "no-backup-resealed.json",
                true,
                no_backup_revert_applied,
            )?,
            "first at plan.steps[0]",
        ),
    ];
    for (file, needle) in &cases {
        let out = phantom_sync(&[
            "repair",
            "--plan",
            file,
            "--db-url",
            &url,
            "--migrations",
            &migrations,
            "--backup-dir",
            &work.arg("backups"),
        ]);
        let all = text(&out);
        assert_eq!(out.status.code(), Some(6), "{file}: {all}");
        assert!(
            all.contains(needle) && all.contains("nothing was touched"),
            "{file}: {all}"
        );
        assert!(!all.contains("DELETE"), "{all}");
        assert_eq!(state(&db.target()).await?, before, "{file}");
    }

    let out = phantom_sync(&[
        "repair",
        "--plan",
        &plan_file,
        "--db-url",
        &url,
        "--migrations",
        &migrations,
        "--backup-dir",
        &work.arg("backups"),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("DELETE 1"), "{}", text(&out));
    assert_converged(&db.target()).await?;
    conn.close().await.ok();
    db.drop_database().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_migration_that_drops_rows_needs_allow_data_loss() -> anyhow::Result<()> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let scenario = Scenario::load(&root.join("scenarios/data-loss.toml"))?;
    let db = Database::fresh(17, "data_loss").await?;
    let mut conn = db.connect().await?;
    build_scenario(&scenario, &scenario.project()?, &mut conn).await?;
    let work = phantom_sync::files::temp_dir("data-loss")?;
    let backups = work.path().join("backups").to_string_lossy().into_owned();
    let url = db.server().url(&db.name);
    let migrations = scenario.migrations_dir().to_string_lossy().into_owned();
    let before = state(&db.target()).await?;

    let plan = phantom_sync(&["plan", "--db-url", &url, "--migrations", &migrations]);
    let shown = text(&plan);
    assert!(shown.contains("**DATA AT RISK**"), "{shown}");
    assert!(
        shown.contains(
            "20240301000000_drop_legacy_notes.sql **drops table public.legacy_notes**: 300 rows"
        ),
        "{shown}"
    );
    assert!(
        shown.contains("**deletes rows of public.notes**: 5 rows"),
        "{shown}"
    );

    let refused = phantom_sync(&[
        "repair",
        "--db-url",
        &url,
        "--migrations",
        &migrations,
        "--backup-dir",
        &backups,
    ]);
    let all = text(&refused);
    assert_eq!(refused.status.code(), Some(6), "{all}");
    assert!(
        all.contains("the plan destroys data")
            && all.contains("drops table public.legacy_notes (300 rows)")
            && all.contains("--allow-data-loss"),
        "{all}"
    );
    assert_eq!(state(&db.target()).await?, before, "nothing was touched");

    let allowed = phantom_sync(&[
        "repair",
        "--db-url",
        &url,
        "--migrations",
        &migrations,
        "--backup-dir",
        &backups,
        "--allow-data-loss",
    ]);
    assert_eq!(allowed.status.code(), Some(0), "{}", text(&allowed));
    let notes: i64 = sqlx::query_scalar("select count(*) from public.notes")
        .fetch_one(&mut conn)
        .await?;
    assert_eq!(notes, 20 - 5 + 300);
    let legacy: Option<String> =
        sqlx::query_scalar("select to_regclass('public.legacy_notes')::text")
            .fetch_one(&mut conn)
            .await?;
    assert_eq!(legacy, None);
    conn.close().await.ok();
    db.drop_database().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn no_step_writes_before_this_runs_backup_is_complete() -> anyhow::Result<()> {
    use phantom_sync::engine::execute::{Cancel, Context, Faults, execute};
    use phantom_sync::engine::plan::Phase;
    use phantom_sync::engine::repair::{RepairOptions, make_plan};
    use phantom_sync::pg::tools::PgTools;

    let work = Work::new("unbacked")?;
    let db = Database::fresh(17, "unbacked").await?;
    let mut conn = db.connect().await?;
    build_state(&mut conn, &work.migrations()).await?;
    let before = state(&db.target()).await?;
    let options = RepairOptions::new(&work.migrations(), &work.path("backup"));
    let tools = PgTools::for_database(&db);
    let (inspection, mut plan) = make_plan(&db.target(), &tools, &options).await?;
    // A plan (in memory, past every file check) without its backup phase.
    plan.steps.retain(|s| s.phase != Phase::Backup);
    let ctx = Context {
        target: db.target(),
        project: &inspection.project,
        effects: &inspection.effects,
        catalog_options: options.catalog.clone(),
        backup_dir: work.path("backup"),
        tools,
        faults: Faults::default(),
        lock_timeout_ms: 10_000,
        check_fingerprint: true,
        verify: options.verify.clone(),
        cancel: Cancel::new(),
        reuse_backup: None,
    };
    let failure = execute(&plan, &ctx).await.expect_err("refused");
    let text = failure.error.to_string();
    assert!(
        text.contains("step 2.1 would write to the database before Phase 1 backed it up"),
        "{text}"
    );
    assert_eq!(state(&db.target()).await?, before);
    conn.close().await.ok();
    db.drop_database().await?;
    Ok(())
}
