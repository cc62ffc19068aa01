//! The main job, end to end: a second container stands in for production,
//! in the incident plan's state, reached through a non-superuser login as on
//! a hosted project. Rehearsing from --db-url and from --dump must leave it
//! untouched, pass, and hand over a runbook; `repair --plan` then repairs
//! production, and refuses when production changed after the rehearsal.

mod common;
use common::{on_majors, phantom_sync, root};

use std::path::Path;

use phantom_sync::engine::backup::DataSnapshot;
use phantom_sync::pg::sandbox::{Database, PgServer, ServerOptions, versions_from_env};
use phantom_sync::pg::target::Target;
use phantom_sync::pg::tools::{DumpScope, PgTools};
use phantom_sync::rehearse::{RehearseOptions, Source, rehearse};
use phantom_sync::source::catalog::{Catalog, CatalogOptions};
use phantom_sync::source::ledger::Ledger;
use phantom_sync::testkit::scenario::{Scenario, build_state};
use pretty_assertions::assert_eq;

const LOGIN: &str = "prod_login";
const SECRET: &str = "prod-Secret-4711";

/// Production: its own container, the plan's state, a non-superuser login.
async fn production(server: &PgServer) -> anyhow::Result<(Database, String)> {
    let scenario = Scenario::load(&root().join("scenarios/plan-exact-state.toml"))?;
    let db = Database::create(server, "production").await?;
    let mut conn = db.connect().await?;
    build_state(&scenario, &scenario.project()?, &mut conn).await?;
    let grants = format!(
        "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{LOGIN}') THEN
             CREATE ROLE {LOGIN} LOGIN BYPASSRLS PASSWORD '{SECRET}'; END IF; END $$;
         GRANT CREATE, USAGE ON SCHEMA public TO {LOGIN};
         GRANT USAGE, CREATE ON SCHEMA supabase_migrations TO {LOGIN};
         GRANT USAGE ON SCHEMA auth, extensions TO {LOGIN};
         GRANT SELECT, REFERENCES ON auth.users TO {LOGIN};
         GRANT pg_read_all_data TO {LOGIN};
         GRANT ALL ON ALL TABLES IN SCHEMA supabase_migrations TO {LOGIN};
         GRANT anon, authenticated, service_role TO {LOGIN};
         -- As a hosted project's postgres role: what it creates in public is granted to the API roles.
         ALTER DEFAULT PRIVILEGES FOR ROLE {LOGIN} IN SCHEMA public GRANT ALL ON TABLES TO anon, authenticated, service_role;
         ALTER DEFAULT PRIVILEGES FOR ROLE {LOGIN} IN SCHEMA public GRANT ALL ON SEQUENCES TO anon, authenticated, service_role;
         ALTER DEFAULT PRIVILEGES FOR ROLE {LOGIN} IN SCHEMA public GRANT ALL ON FUNCTIONS TO anon, authenticated, service_role;"
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(grants))
        .execute(&mut conn)
        .await?;
    let url = format!(
        "postgres://{LOGIN}:{SECRET}@127.0.0.1:{}/{}",
        server.port, db.name
    );
    Ok((db, url))
}

/// Everything that must not change: schema, ledger, data.
async fn fingerprint(db: &Database) -> anyhow::Result<(String, Ledger, DataSnapshot)> {
    let mut conn = db.connect().await?;
    let catalog = Catalog::introspect(&mut conn, &CatalogOptions::default()).await?;
    let ledger = Ledger::read(&mut conn).await?;
    let data = DataSnapshot::capture(&mut conn, &catalog.tables()).await?;
    Ok((catalog.to_text(), ledger, data))
}

fn options(out: &Path, source: Source) -> RehearseOptions {
    RehearseOptions {
        source,
        migrations: Some(root().join("scenarios/prompt-manager/supabase/migrations")),
        schema_only: false,
        out: out.to_path_buf(),
        accept_existing_drift: false,
    }
}

/// Two majors at a time, each on its own production container (the five
/// one after the other took 103 s). The CLI runs block a worker thread each,
/// hence four.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rehearse_then_repair_production() -> anyhow::Result<()> {
    on_majors(versions_from_env()?, 2, |major| async move {
        let server = PgServer::start(major, ServerOptions::default()).await?;
        let result = rehearse_on(&server, major).await;
        server.stop().await?;
        result
    })
    .await
}

/// Every drill started from the state the rehearsal's repair backed up, so
/// its Phase 1 linked that backup (the same files, not a second dump or a
/// second reading of every table) and its journal says so.
fn drills_reused_the_repairs_backup(out: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let dump = |dir: &str| std::fs::metadata(out.join(dir).join("dump.pgcustom"));
    let original = dump("backup")?;
    for slug in ["failed-migration", "dropped-tables", "ledger"] {
        let dir = format!("drill-{slug}");
        let linked = dump(&dir)?;
        assert_eq!(
            (linked.dev(), linked.ino()),
            (original.dev(), original.ino()),
            "{dir}: its dump is not the repair's"
        );
        let journal = std::fs::read_to_string(out.join(&dir).join("journal.json"))?;
        assert!(
            journal.contains("counts and checksums linked from")
                && journal.contains("dump linked from")
                && journal.contains("plan fingerprint checked"),
            "{dir}: {journal}"
        );
        assert!(out.join(&dir).join("manifest.json").exists(), "{dir}");
    }
    Ok(())
}

async fn rehearse_on(server: &PgServer, major: u8) -> anyhow::Result<()> {
    let (prod, url) = production(server).await?;
    let work = phantom_sync::files::temp_dir("rehearse-test")?; // removed pass or fail
    let out = work.path().to_path_buf();
    let before = fingerprint(&prod).await?;

    // From --db-url, read-only.
    let from_url = options(
        &out.join("url"),
        Source::Database(Box::new(Target::parse(&url)?)),
    );
    let rehearsal = rehearse(&from_url).await?;
    assert!(
        rehearsal.passed,
        "PostgreSQL {major}: {:?}",
        rehearsal.error
    );
    assert_eq!(rehearsal.major, major);
    assert_eq!(rehearsal.drills.len(), 3, "three rollback drills");
    assert!(
        rehearsal.drills.iter().all(|d| d.restored()),
        "{:?}",
        rehearsal.drills
    );
    assert_eq!(
        fingerprint(&prod).await?,
        before,
        "PostgreSQL {major}: the rehearsal changed production"
    );
    drills_reused_the_repairs_backup(&out.join("url"))?;

    let runbook = std::fs::read_to_string(out.join("url/runbook.md"))?;
    assert!(!runbook.contains(SECRET), "the runbook shows the password");
    let stable = phantom_sync::testkit::redact::redact(
        &runbook
            .replace(&out.join("url").display().to_string(), "<out>")
            .replace(&prod.name, "<database>"),
    );
    insta::with_settings!({ snapshot_path => "../snapshots", prepend_module_to_snapshot => false, omit_expression => true }, {
        insta::assert_snapshot!("rehearsal-runbook", stable);
    });
    assert!(std::fs::read_to_string(out.join("url/runbook.html"))?.contains("<table>"));

    // From a dump the team made themselves: the whole database, auth included.
    let dump = out.join("team.dump");
    let whole = DumpScope {
        exclude_schemas: Vec::new(),
        ..phantom_sync::engine::backup::dump_scope()
    };
    PgTools::for_major(major)
        .await?
        .dump(&Target::parse(&url)?, &dump, &whole)
        .await?;
    let from_dump = options(&out.join("dump"), Source::Dump { file: dump, major });
    let rehearsal = rehearse(&from_dump).await?;
    assert!(
        rehearsal.passed,
        "PostgreSQL {major} from a dump: {:?}",
        rehearsal.error
    );
    assert_eq!(
        fingerprint(&prod).await?,
        before,
        "rehearsing from a dump changed production"
    );

    // The rehearsed plan, for real; then the same plan again must refuse (production changed).
    let plan = out.join("url/plan.json").display().to_string();
    let backup = out.join("prod-backup").display().to_string();
    let migrations = "scenarios/prompt-manager/supabase/migrations";
    let repair = phantom_sync(&[
        "repair",
        "--plan",
        &plan,
        "--db-url",
        &url,
        "--migrations",
        migrations,
        "--backup-dir",
        &backup,
    ]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&repair.stdout),
        String::from_utf8_lossy(&repair.stderr)
    );
    assert_eq!(repair.status.code(), Some(0), "PostgreSQL {major}: {text}");
    assert!(
        text.contains("Result: **repaired**") && !text.contains(SECRET),
        "{text}"
    );
    let again = phantom_sync(&[
        "repair",
        "--plan",
        &plan,
        "--db-url",
        &url,
        "--migrations",
        migrations,
        "--backup-dir",
        &format!("{backup}-2"),
    ]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&again.stdout),
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(
        again.status.code(),
        Some(6),
        "a stale plan must be refused: {text}"
    );
    assert!(text.contains("changed since the plan was made"), "{text}");

    prod.drop_database().await?;
    Ok(())
}
