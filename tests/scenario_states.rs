//! `scenario::build_state` produces what the scenario files say, checked with
//! plain SQL on a fresh PostgreSQL 17 database with the Supabase shim.

use std::path::Path;

use phantom_sync::engine::backup::DataSnapshot;
use phantom_sync::pg::sandbox::Database;
use phantom_sync::source::ledger::Ledger;
use phantom_sync::source::project::Project;
use phantom_sync::testkit::scenario::{Scenario, build_state};
use pretty_assertions::assert_eq;
use sqlx::PgConnection;

type TestResult = anyhow::Result<()>;

const V1: &str = "20250328135512";
const V2: &str = "20250328201010";
const V3: &str = "20250402082709";
const V4: &str = "20250411083417";
const V5: &str = "20250413093000";
const V6: &str = "20251001211923";
const V7: &str = "20251002100000";

/// Loads `scenarios/<name>.toml`, builds its state on a fresh database, and
/// hands a connection to `check`; the database is dropped afterwards.
async fn with_state<F>(name: &str, check: F) -> TestResult
where
    F: AsyncFnOnce(&mut PgConnection, &Project) -> TestResult,
{
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(format!("{name}.toml"));
    with_scenario(&Scenario::load(&path)?, name, check).await
}

/// Builds `scenario`'s state on a fresh database named after `label`, and
/// hands a new session to `check`; the database is dropped afterwards.
async fn with_scenario<F, T>(scenario: &Scenario, label: &str, check: F) -> anyhow::Result<T>
where
    F: AsyncFnOnce(&mut PgConnection, &Project) -> anyhow::Result<T>,
{
    let project = scenario.project()?;
    let db = Database::fresh(17, label).await?;
    let result = async {
        let mut conn = db.connect().await?;
        build_state(scenario, &project, &mut conn).await?;
        drop(conn);
        // A new session sees only what was committed.
        let mut conn = db.connect().await?;
        check(&mut conn, &project).await
    }
    .await;
    db.drop_database().await?;
    result
}

async fn exists(conn: &mut PgConnection, relation: &str) -> anyhow::Result<bool> {
    Ok(sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
        .bind(relation)
        .fetch_one(&mut *conn)
        .await?)
}

async fn count(conn: &mut PgConnection, sql: &'static str) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar(sql).fetch_one(&mut *conn).await?)
}

async fn ledger_versions(conn: &mut PgConnection) -> anyhow::Result<Vec<String>> {
    Ok(Ledger::read(conn)
        .await?
        .versions()
        .into_iter()
        .map(str::to_string)
        .collect())
}

fn statements_of(project: &Project, version: &str) -> Option<Vec<String>> {
    project.get(version).map(|m| m.statements.clone())
}

#[tokio::test]
async fn plan_exact_state_has_two_phantoms_two_pending_and_the_data() -> TestResult {
    with_state("plan-exact-state", async |conn, project| {
        assert_eq!(ledger_versions(conn).await?, [V1, V2, V3, V4, V5, V6]);
        let ledger = Ledger::read(conn).await?;
        for version in [V1, V5, V6] {
            let row = ledger.get(version).expect("recorded");
            assert_eq!(
                row.statements,
                statements_of(project, version),
                "{version} stores the file's statements"
            );
            assert_eq!(
                row.name.as_deref(),
                project.get(version).map(|m| m.name.as_str())
            );
        }
        assert!(exists(conn, "public.collections").await?);
        assert!(exists(conn, "public.user_consents").await?);
        // 5 and 6 rolled back: none of their tables or functions exist.
        for absent in [
            "public.organizations",
            "public.organization_members",
            "public.prompt_collections",
            "public.prompts",
        ] {
            assert!(!exists(conn, absent).await?, "{absent} must be absent");
        }
        assert_eq!(
            count(
                conn,
                "SELECT count(*) FROM pg_proc WHERE proname = 'set_updated_at'"
            )
            .await?,
            0
        );
        // existing-data.sql at its default sizes.
        assert_eq!(
            count(conn, "SELECT count(*) FROM public.collections").await?,
            48
        );
        assert_eq!(
            count(conn, "SELECT count(*) FROM public.user_consents").await?,
            300
        );
        assert_eq!(count(conn, "SELECT count(*) FROM auth.users").await?, 40);
        // Migration 3's policies replaced migration 1's.
        let policies: Vec<String> = sqlx::query_scalar(
            "SELECT policyname::text FROM pg_policies WHERE tablename = 'collections' ORDER BY 1",
        )
        .fetch_all(&mut *conn)
        .await?;
        assert_eq!(
            policies,
            [
                "collections_delete_authenticated",
                "collections_insert_authenticated",
                "collections_select_anon",
                "collections_select_authenticated",
                "collections_update_authenticated",
            ]
        );
        Ok(())
    })
    .await
}

#[tokio::test]
async fn partial_has_organizations_without_members() -> TestResult {
    with_state("partial", async |conn, project| {
        assert_eq!(ledger_versions(conn).await?, [V1, V2, V3, V4, V5, V6]);
        let ledger = Ledger::read(conn).await?;
        assert_eq!(
            ledger.get(V5).and_then(|r| r.statements.clone()),
            statements_of(project, V5),
            "the ledger stores the whole file"
        );
        assert!(exists(conn, "public.organizations").await?);
        let comment: Option<String> = sqlx::query_scalar(
            "SELECT obj_description('public.organizations'::regclass, 'pg_class')",
        )
        .fetch_one(&mut *conn)
        .await?;
        assert!(comment.is_some_and(|c| c.starts_with("Prompt manager tenants")));
        assert!(!exists(conn, "public.organization_members").await?);
        assert!(!exists(conn, "public.prompt_collections").await?);
        // The seed statement (later in the file) did not run.
        assert_eq!(
            count(conn, "SELECT count(*) FROM public.organizations").await?,
            0
        );
        assert_eq!(
            count(conn, "SELECT count(*) FROM public.collections").await?,
            48
        );
        Ok(())
    })
    .await
}

#[tokio::test]
async fn no_ledger_leaves_a_fresh_database_without_the_history_table() -> TestResult {
    with_state("no-ledger", async |conn, _| {
        assert!(!exists(conn, "supabase_migrations.schema_migrations").await?);
        assert!(!Ledger::read(conn).await?.exists);
        assert_eq!(
            count(
                conn,
                "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
            )
            .await?,
            0
        );
        assert_eq!(count(conn, "SELECT count(*) FROM auth.users").await?, 0);
        Ok(())
    })
    .await
}

#[tokio::test]
async fn hand_edited_rows_have_no_statements() -> TestResult {
    with_state("origin-hand-edited", async |conn, project| {
        let ledger = Ledger::read(conn).await?;
        assert_eq!(ledger.versions(), [V1, V2, V3, V4, V5, V6]);
        for version in [V5, V6] {
            let row = ledger.get(version).expect("recorded");
            assert_eq!(row.statements, None);
            assert_eq!(
                row.name.as_deref(),
                project.get(version).map(|m| m.name.as_str())
            );
        }
        assert!(!exists(conn, "public.organizations").await?);
        Ok(())
    })
    .await
}

#[tokio::test]
async fn restore_newer_ledger_keeps_the_newer_rows_over_the_older_schema() -> TestResult {
    with_state("origin-restore-newer-ledger", async |conn, project| {
        let ledger = Ledger::read(conn).await?;
        assert_eq!(ledger.versions(), [V1, V2, V3, V4, V5, V6, V7]);
        assert_eq!(
            ledger.get(V7).and_then(|r| r.statements.clone()),
            statements_of(project, V7)
        );
        for absent in ["public.organizations", "public.prompts"] {
            assert!(!exists(conn, absent).await?, "{absent} must be absent");
        }
        assert_eq!(
            count(conn, "SELECT count(*) FROM public.user_consents").await?,
            300
        );
        Ok(())
    })
    .await
}

#[tokio::test]
async fn re_versioned_is_recorded_under_the_other_version() -> TestResult {
    with_state("re-versioned", async |conn, project| {
        let ledger = Ledger::read(conn).await?;
        assert_eq!(ledger.versions(), [V1, V2, V3, "20250411090000"]);
        assert_eq!(
            ledger
                .get("20250411090000")
                .and_then(|r| r.statements.clone()),
            statements_of(project, V4)
        );
        assert!(exists(conn, "public.user_consents").await?);
        assert_eq!(
            count(conn, "SELECT count(*) FROM public.user_consents").await?,
            300
        );
        Ok(())
    })
    .await
}

#[tokio::test]
async fn drifted_organizations_lost_the_unique_slug() -> TestResult {
    with_state("drifted", async |conn, _| {
        assert!(exists(conn, "public.organizations").await?);
        let unique = count(
            conn,
            "SELECT count(*) FROM pg_constraint WHERE conrelid = 'public.organizations'::regclass AND contype = 'u'",
        )
        .await?;
        assert_eq!(unique, 0);
        assert_eq!(count(conn, "SELECT count(*) FROM public.organizations WHERE slug = '10xdevs'").await?, 1);
        assert!(!exists(conn, "public.prompts").await?, "6 is phantom");
        Ok(())
    })
    .await
}

#[tokio::test]
async fn non_rerunnable_partial_has_tags_but_not_note_tags() -> TestResult {
    with_state("non-rerunnable-partial", async |conn, _| {
        assert!(exists(conn, "public.tags").await?);
        assert!(!exists(conn, "public.note_tags").await?);
        // The data ran before migration 3 renamed body to content.
        assert_eq!(
            count(
                conn,
                "SELECT count(*) FROM public.notes WHERE content IS NOT NULL"
            )
            .await?,
            20
        );
        assert_eq!(
            ledger_versions(conn).await?,
            [
                "20240105093000",
                "20240112140000",
                "20240120101500",
                "20240203120000"
            ]
        );
        Ok(())
    })
    .await
}

/// The ledger rows a state must have: every recorded role, under the version
/// the file says, in the ledger's (byte) order.
fn expected_ledger(scenario: &Scenario) -> Vec<String> {
    let state = &scenario.state;
    let mut versions: Vec<String> = state
        .applied
        .iter()
        .chain(&state.phantom)
        .cloned()
        .collect();
    versions.extend(state.partial.iter().map(|p| p.version.clone()));
    versions.extend(state.edited.iter().map(|e| e.version.clone()));
    versions.extend(state.re_versioned.iter().map(|r| r.recorded_as.clone()));
    versions.extend(state.remote_only.iter().map(|r| r.version.clone()));
    versions.sort();
    versions
}

/// Every scenario file builds, and its ledger holds exactly the rows it
/// names. Files that scale the data up are left to the scenario matrix.
#[tokio::test]
async fn every_scenario_state_builds_with_the_ledger_it_names() -> TestResult {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let scenarios = phantom_sync::testkit::scenario::load_all(&dir)?;
    assert!(
        scenarios.len() >= 20,
        "found only {} scenario files",
        scenarios.len()
    );
    for scenario in scenarios.iter().filter(|s| s.state.data_scale.is_empty()) {
        let project = scenario.project()?;
        let db = Database::fresh(17, &scenario.name).await?;
        let result = async {
            let mut conn = db.connect().await?;
            build_state(scenario, &project, &mut conn).await?;
            let ledger = Ledger::read(&mut conn).await?;
            assert_eq!(
                ledger.exists, !scenario.state.no_ledger,
                "{}",
                scenario.name
            );
            assert_eq!(
                ledger.versions(),
                expected_ledger(scenario),
                "{}",
                scenario.name
            );
            anyhow::Ok(())
        }
        .await;
        db.drop_database().await?;
        result.map_err(|e| e.context(format!("scenario {}", scenario.name)))?;
    }
    Ok(())
}

/// Builds `scenario`'s state on a fresh database and returns every table's
/// count and checksum, or the build's error.
async fn built_data(scenario: &Scenario, label: &str) -> anyhow::Result<DataSnapshot> {
    with_scenario(scenario, label, async |conn, _| {
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT format('%s.%s', schemaname, relname) FROM pg_stat_user_tables ORDER BY 1",
        )
        .fetch_all(&mut *conn)
        .await?;
        Ok(DataSnapshot::capture(conn, &tables).await?)
    })
    .await
}

/// `large-tables` at 5,000 collections, loaded in bulk and row by row.
fn large_tables(bulk: bool) -> anyhow::Result<Scenario> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/large-tables.toml");
    let mut scenario = Scenario::load(&path)?;
    scenario
        .state
        .data_scale
        .insert("fixture.collections".into(), 5000);
    scenario.state.data_bulk = bulk;
    Ok(scenario)
}

#[tokio::test]
async fn a_bulk_load_leaves_the_rows_a_row_by_row_load_leaves() -> TestResult {
    let bulk = built_data(&large_tables(true)?, "bulk").await?;
    let by_row = built_data(&large_tables(false)?, "by-row").await?;
    assert_eq!(
        bulk.tables.get("public.collections").map(|t| t.rows),
        Some(5000)
    );
    assert_eq!(bulk, by_row);
    Ok(())
}

/// A scenario folder in a temporary directory: the prompt-manager fixture
/// with `data.sql` holding `data`, and `scenario.toml` whose `[state]` adds
/// `extra` to the plan's four applied migrations and the data script.
fn scratch_scenario(data: &str, extra: &str) -> anyhow::Result<(tempfile::TempDir, Scenario)> {
    let dir = tempfile::tempdir()?;
    let status = std::process::Command::new("cp")
        .arg("-r")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/prompt-manager"))
        .arg(dir.path())
        .status()?;
    anyhow::ensure!(status.success(), "copying the fixture failed");
    std::fs::write(dir.path().join("prompt-manager/data.sql"), data)?;
    let toml = format!(
        "description = \"bulk load check\"\nfixture = \"prompt-manager\"\n\n[state]\n\
         applied = [\"{V1}\", \"{V2}\", \"{V3}\", \"{V4}\"]\ndata = \"data.sql\"\n{extra}\n\n\
         [procedure]\nrun = \"repair\"\n\n[expect]\noutcome = \"repaired\"\n"
    );
    let path = dir.path().join("scenario.toml");
    std::fs::write(&path, toml)?;
    let scenario = Scenario::load(&path)?;
    Ok((dir, scenario))
}

const STAMP: &str = "create function public.stamp() returns trigger language plpgsql as $$ begin return new; end $$";
const STAMP_USERS: &str = "create trigger stamp_users before insert on auth.users for each row execute function public.stamp()";
const UPDATES: &str = "insert into auth.users (id, email) values (md5('u')::uuid, 'u@example.com'); \
     insert into public.collections (user_id, name) values (md5('u')::uuid, 'one'); \
     update public.collections set name = 'two';";

/// Each case: its data script, the `[state]` lines it adds, and what the
/// refusal must say after `state.data_bulk: `.
#[tokio::test]
async fn a_bulk_load_refuses_what_it_cannot_stand_in_for() -> TestResult {
    let cases = [
        (
            "bulk-orphan",
            "insert into public.collections (user_id, name) values (md5('nobody')::uuid, 'orphan');"
                .to_string(),
            String::new(),
            "the data script left rows in public.collections that break its foreign key collections_user_id_fkey to auth.users",
        ),
        (
            "bulk-trigger",
            "select 1;".to_string(),
            format!("environment = [{STAMP:?}, {STAMP_USERS:?}]"),
            "auth.users has the insert trigger stamp_users, which does not fire in a bulk load",
        ),
        (
            "bulk-own-trigger",
            format!("{STAMP}; {STAMP_USERS};"),
            String::new(),
            "auth.users has the insert trigger stamp_users, which does not fire in a bulk load",
        ),
        (
            "bulk-update",
            UPDATES.to_string(),
            String::new(),
            "the data script updated or deleted rows of public.collections",
        ),
        (
            "bulk-not-valid",
            "select 1;".to_string(),
            "environment = [\"create table public.pets (id int primary key, owner uuid)\", \
             \"alter table public.pets add constraint pets_owner_fkey foreign key (owner) references auth.users (id) not valid\"]"
                .to_string(),
            "public.pets has the foreign key pets_owner_fkey NOT VALID, which checks new rows only",
        ),
    ];
    for (label, script, state, expected) in cases {
        let (_dir, scenario) = scratch_scenario(&script, &format!("{state}\ndata_bulk = true"))?;
        let err = built_data(&scenario, label)
            .await
            .err()
            .ok_or_else(|| anyhow::anyhow!("{label}: the bulk load was not refused"))?
            .to_string();
        assert!(
            err.contains(&format!("state.data_bulk: {expected}")),
            "{label}: {err}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn a_script_refused_in_bulk_for_its_updates_builds_row_by_row() -> TestResult {
    let (_dir, scenario) = scratch_scenario(UPDATES, "")?;
    let data = built_data(&scenario, "by-row-update").await?;
    assert_eq!(
        data.tables.get("public.collections").map(|t| t.rows),
        Some(1)
    );
    Ok(())
}
