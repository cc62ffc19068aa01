//! `phantom-sync rehearse`, the main job: capture a database read-only (or
//! take a dump, or build the built-in incident), restore it in an ephemeral
//! container of the same major, run the whole procedure there and every
//! rollback drill on fresh copies, and write the runbook to follow in
//! production.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use crate::engine::backup::BackupSet;
use crate::engine::execute::Faults;
use crate::engine::journal::write_atomic;
use crate::engine::repair::{RepairOptions, Repaired, repair};
use crate::engine::rollback::{Procedure, RollbackReport, rollback};
use crate::pg::sandbox::Database;
use crate::pg::target::Target;
use crate::pg::tools::{DumpScope, PgTools};
use crate::{Error, Result};

/// `phantom-sync rehearse` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct RehearseArgs {
    /// Capture this database (read-only) instead of the built-in incident.
    #[arg(
        long,
        env = "PHANTOM_DB_URL",
        hide_env_values = true,
        conflicts_with = "dump"
    )]
    pub db_url: Option<String>,
    /// Rehearse from a pg_dump file (custom format) instead.
    #[arg(long)]
    pub dump: Option<PathBuf>,
    /// Major of the dump's server (with --dump).
    #[arg(long, default_value_t = 17)]
    pub major: u8,
    /// The migrations folder (default: the built-in fixture when no database is given).
    #[arg(long)]
    pub migrations: Option<PathBuf>,
    /// Capture the schema only (no data).
    #[arg(long)]
    pub schema_only: bool,
    /// Where the runbook, plan and journals go.
    #[arg(long, default_value = ".phantom/rehearsal")]
    pub out: PathBuf,
    /// Print only the summary line.
    #[arg(long)]
    pub quiet: bool,
    /// Print the rehearsal as JSON.
    #[arg(long)]
    pub json: bool,
}

/// What a rehearsal found.
#[derive(Debug, Serialize)]
pub struct Rehearsal {
    pub source: String,
    pub major: u8,
    pub passed: bool,
    pub diagnosis_before: crate::engine::diagnose::Diagnosis,
    pub diagnosis_after: Option<crate::engine::diagnose::Diagnosis>,
    pub plan: Option<crate::engine::plan::Plan>,
    pub journal: Option<crate::engine::journal::Journal>,
    pub error: Option<String>,
    pub drills: Vec<RollbackReport>,
    pub timings_ms: Vec<(String, u128)>,
    pub out: PathBuf,
}

const BUILT_IN: &str = "plan-exact-state";

/// Runs the CLI command; exit 0 when the rehearsal passed, 1 when it found a problem.
pub async fn run_cli(args: RehearseArgs) -> Result<u8> {
    let rehearsal = rehearse(&args).await?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&rehearsal).unwrap_or_default()
        );
    } else if !args.quiet {
        print!(
            "{}",
            crate::report::diagnosis_table(&rehearsal.diagnosis_before)
        );
    }
    let verdict = if rehearsal.passed {
        "PASSED"
    } else {
        "FOUND A PROBLEM"
    };
    eprintln!(
        "rehearsal {verdict}: runbook {}",
        rehearsal.out.join("runbook.md").display()
    );
    Ok(if rehearsal.passed { 0 } else { 1 })
}

/// The rehearsal itself.
pub async fn rehearse(args: &RehearseArgs) -> Result<Rehearsal> {
    let mut timings = Vec::new();
    let clock = Instant::now();
    std::fs::create_dir_all(&args.out).map_err(Error::io("create", &args.out))?;
    let dump = args.out.join("capture.dump");
    let say = |step: &str| {
        if !args.quiet && !args.json {
            eprintln!("rehearse: {step}");
        }
    };
    say("capturing (read-only)…");
    let capture = capture(args, &dump).await?;
    let (source, major, migrations) = (
        capture.source.clone(),
        capture.major,
        capture.migrations.clone(),
    );
    timings.push(("capture".to_string(), clock.elapsed().as_millis()));

    let clock = Instant::now();
    say(&format!(
        "restoring the capture into a PostgreSQL {} copy…",
        capture.major
    ));
    let copy = restore_copy(&capture, &dump, "rehearsal").await?;
    timings.push(("restore".to_string(), clock.elapsed().as_millis()));

    let clock = Instant::now();
    let options = RepairOptions::new(&migrations, &args.out.join("backup"));
    let tools = PgTools::for_database(&copy);
    say("diagnose → plan → predict → backup → repair → verify on the copy…");
    let mut outcome = repair(&copy.target(), &tools, &options).await;
    timings.push(("repair".to_string(), clock.elapsed().as_millis()));
    // The journal's target is a throw-away copy; name what it stands for.
    let copy_name = format!("the rehearsal copy of {source}");
    match &mut outcome {
        Ok(done) => done.journal.target = copy_name,
        Err(stopped) => stopped.failure.journal.target = copy_name,
    }
    let mut rehearsal = match outcome {
        Ok(Repaired {
            inspection,
            plan,
            journal,
        }) => {
            let after =
                crate::engine::inspect::inspect(&copy.target(), &migrations, &options.catalog)
                    .await?;
            Rehearsal {
                source,
                major,
                passed: true,
                diagnosis_before: inspection.diagnosis,
                diagnosis_after: Some(after.diagnosis),
                plan: Some(plan),
                journal: Some(journal),
                error: None,
                drills: Vec::new(),
                timings_ms: Vec::new(),
                out: args.out.clone(),
            }
        }
        Err(stopped) => Rehearsal {
            source,
            major,
            passed: false,
            diagnosis_before: match &stopped.inspection {
                Some(i) => i.diagnosis.clone(),
                None => return Err(stopped.failure.error),
            },
            diagnosis_after: None,
            plan: stopped.plan.clone(),
            journal: Some(stopped.failure.journal.clone()),
            error: Some(stopped.failure.error.to_string()),
            drills: Vec::new(),
            timings_ms: Vec::new(),
            out: args.out.clone(),
        },
    };
    copy.drop_database().await?;
    if rehearsal.passed {
        let clock = Instant::now();
        for procedure in [
            Procedure::FailedMigration,
            Procedure::DroppedTables(Vec::new()),
            Procedure::Ledger,
        ] {
            say(&format!("drill: {}…", procedure.title()));
            let report = drill(&capture, &dump, &args.out, procedure).await?;
            rehearsal.passed &= report.restored();
            rehearsal.drills.push(report);
        }
        timings.push(("rollback drills".to_string(), clock.elapsed().as_millis()));
    }
    rehearsal.timings_ms = timings;
    write_outputs(&rehearsal, &args.out)?;
    Ok(rehearsal)
}

/// What was captured, besides the dump file.
struct Capture {
    source: String,
    major: u8,
    migrations: PathBuf,
    /// Ids of `auth.users` (what foreign keys into the platform schema need
    /// on the copy); `None` for a dump file, which is read for them instead.
    users: Option<Vec<String>>,
}

/// Takes the capture: the built-in incident, a live database, or a dump file.
async fn capture(args: &RehearseArgs, dump: &Path) -> Result<Capture> {
    if let Some(url) = &args.db_url {
        let target = Target::parse(url)?;
        let mut conn = target.connect().await?;
        let major = crate::engine::inspect::server_major(&mut conn).await?;
        crate::pg::sandbox::image::check_major(major)?;
        let users = user_ids(&mut conn).await?;
        drop(conn);
        let scope = DumpScope {
            schema_only: args.schema_only,
            ..DumpScope::default()
        };
        PgTools::for_major(major)
            .await?
            .dump(&target, dump, &scope)
            .await?;
        let migrations = args
            .migrations
            .clone()
            .unwrap_or_else(|| PathBuf::from("supabase/migrations"));
        return Ok(Capture {
            source: target.redacted().to_string(),
            major,
            migrations,
            users: Some(users),
        });
    }
    if let Some(file) = &args.dump {
        crate::pg::sandbox::image::check_major(args.major)?;
        check_archive(file)?;
        std::fs::copy(file, dump).map_err(Error::io("copy", file))?;
        let migrations = args
            .migrations
            .clone()
            .unwrap_or_else(|| PathBuf::from("supabase/migrations"));
        return Ok(Capture {
            source: format!("dump {}", file.display()),
            major: args.major,
            migrations,
            users: None,
        });
    }
    // The built-in incident: the plan's state, built for real on a stand-in "production".
    let major = 17;
    let scenarios = PathBuf::from("scenarios");
    let built_in = scenarios.join(format!("{BUILT_IN}.toml"));
    if !built_in.is_file() {
        return Err(Error::Invalid(format!(
            "{}: the built-in incident is not here (hint: run `phantom-sync rehearse` from the phantom-sync repository's root, or rehearse your own database with --db-url URL or --dump FILE)",
            built_in.display()
        )));
    }
    let scenario = crate::testkit::scenario::Scenario::load(&built_in)?;
    let migrations = scenario.migrations_dir();
    let project = crate::source::project::Project::load(&migrations)?;
    let production = Database::fresh(major, "production").await?;
    let mut conn = production.connect().await?;
    crate::testkit::scenario::build_state(&scenario, &project, &mut conn).await?;
    let users = user_ids(&mut conn).await?;
    drop(conn);
    PgTools::for_database(&production)
        .dump(&production.target(), dump, &DumpScope::default())
        .await?;
    production.drop_database().await?;
    let source = format!("built-in incident ({})", scenario.description);
    Ok(Capture {
        source,
        major,
        migrations,
        users: Some(users),
    })
}

/// A `--dump` file must be a pg_dump custom-format archive ("PGDMP" magic).
fn check_archive(file: &Path) -> Result<()> {
    use std::io::Read;
    let mut head = [0u8; 512];
    let n = std::fs::File::open(file)
        .and_then(|mut f| f.read(&mut head))
        .map_err(Error::io("read", file))?;
    let head = &head[..n];
    if head.starts_with(b"PGDMP") {
        return Ok(());
    }
    let text = String::from_utf8_lossy(head);
    let what = if text.contains("PostgreSQL database dump") {
        "a plain-format (SQL) dump, which phantom-sync cannot restore selectively yet"
    } else {
        "not a pg_dump archive"
    };
    Err(Error::Invalid(format!(
        "--dump {}: {what} (hint: make a custom-format dump of the whole database: pg_dump -Fc \"$PHANTOM_DB_URL\" > prod.dump)",
        file.display()
    )))
}

/// Ids of `auth.users`, read-only; empty when there is no such table.
async fn user_ids(conn: &mut sqlx::PgConnection) -> Result<Vec<String>> {
    let exists: bool = sqlx::query_scalar("SELECT to_regclass('auth.users') IS NOT NULL")
        .fetch_one(&mut *conn)
        .await
        .map_err(Error::db("looking for auth.users"))?;
    if !exists {
        return Ok(Vec::new());
    }
    sqlx::query_scalar("SELECT id::text FROM auth.users ORDER BY id")
        .fetch_all(&mut *conn)
        .await
        .map_err(Error::db("reading the ids of auth.users"))
}

/// A fresh database with the shim, holding the capture.
async fn restore_copy(capture: &Capture, dump: &Path, label: &str) -> Result<Database> {
    let copy = Database::fresh(capture.major, label).await?;
    let tools = PgTools::for_database(&copy);
    copy.create_roles(&tools.archive_roles(dump).await?).await?;
    let users = match &capture.users {
        Some(users) => users.clone(),
        None => tools.archive_user_ids(dump).await?.unwrap_or_default(),
    };
    let mut conn = copy.connect().await?;
    sqlx::query("INSERT INTO auth.users (id) SELECT unnest($1::text[])::uuid")
        .bind(&users)
        .execute(&mut conn)
        .await
        .map_err(Error::db("copying the ids of auth.users"))?;
    drop(conn);
    tools.restore_database(&copy.target(), dump, &DumpScope::default()).await.map_err(|e| match (&capture.users, e) {
        (None, Error::Tool { tool, detail }) if detail.contains("auth") || detail.contains("\"users\"") => Error::Tool {
            tool,
            detail: format!("{detail}\n(hint: make the dump of the whole database — pg_dump -Fc with the auth schema — so that the copy gets the auth.users rows its foreign keys need)"),
        },
        (_, e) => e,
    })?;
    Ok(copy)
}

/// One rollback drill on a fresh copy.
async fn drill(
    capture: &Capture,
    dump: &Path,
    out: &Path,
    procedure: Procedure,
) -> Result<RollbackReport> {
    let migrations = capture.migrations.as_path();
    let copy = restore_copy(capture, dump, "drill").await?;
    let backup_dir = out.join(format!("drill-{}", slug(procedure.title())));
    let mut options = RepairOptions::new(migrations, &backup_dir);
    options.predict = false;
    let tools = PgTools::for_database(&copy);
    let target = copy.target();
    match &procedure {
        Procedure::FailedMigration => {
            let plan = crate::engine::repair::make_plan(&target, &tools, &options)
                .await?
                .1;
            options.faults = Faults {
                fail_in: plan.to_apply().last().cloned(),
                ..Faults::default()
            };
            let _ = repair(&target, &tools, &options).await; // expected to fail
        }
        Procedure::DroppedTables(_) => {
            let _ = repair(&target, &tools, &options).await;
            let set = BackupSet::load(&backup_dir)?;
            let mut conn = target.connect().await?;
            for table in set.data.tables.keys() {
                let (schema, name) = table.split_once('.').unwrap_or(("public", table));
                let sql = format!(
                    "DROP TABLE IF EXISTS {}.{} CASCADE",
                    crate::pg::sql::quote_ident(schema),
                    crate::pg::sql::quote_ident(name)
                );
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                    .execute(&mut conn)
                    .await
                    .map_err(Error::db("dropping tables for the drill"))?;
            }
        }
        Procedure::Ledger => {
            let _ = repair(&target, &tools, &options).await;
            let mut conn = target.connect().await?;
            sqlx::raw_sql("DELETE FROM supabase_migrations.schema_migrations WHERE version IN (SELECT version FROM supabase_migrations.schema_migrations ORDER BY version LIMIT 3); INSERT INTO supabase_migrations.schema_migrations (version, name) VALUES ('99999999999999', 'corrupted')")
                .execute(&mut conn)
                .await
                .map_err(Error::db("corrupting the ledger for the drill"))?;
        }
    }
    let set = BackupSet::load(&backup_dir)?;
    let report = rollback(&target, &tools, &set, procedure, &options.catalog).await?;
    copy.drop_database().await?;
    Ok(report)
}

fn slug(text: &str) -> String {
    text.split(':')
        .next()
        .unwrap_or(text)
        .to_lowercase()
        .replace(' ', "-")
}

fn write_outputs(r: &Rehearsal, out: &Path) -> Result<()> {
    if let Some(plan) = &r.plan {
        write_atomic(&out.join("plan.json"), &plan.to_json())?;
    }
    let markdown = crate::report::runbook_markdown(r);
    write_atomic(&out.join("runbook.md"), &markdown)?;
    write_atomic(
        &out.join("runbook.html"),
        &crate::report::html_page("phantom-sync runbook", &markdown),
    )?;
    write_atomic(
        &out.join("rehearsal.json"),
        &serde_json::to_string_pretty(r).unwrap_or_default(),
    )
}

/// `phantom-sync bench rehearsal`: the rehearsal's wall time by phase, on
/// the built-in incident with `collections` rows in `collections`, captured
/// from a stand-in production container through `--db-url`.
pub async fn benchmark(major: u8, collections: u64) -> Result<Vec<(String, u128)>> {
    let path = PathBuf::from("scenarios").join(format!("{BUILT_IN}.toml"));
    let mut scenario = crate::testkit::scenario::Scenario::load(&path)?;
    scenario
        .state
        .data_scale
        .insert("fixture.collections".into(), collections);
    let project = scenario.project()?;
    let server =
        crate::pg::sandbox::PgServer::start(major, crate::pg::sandbox::ServerOptions::default())
            .await?;
    let result = async {
        let production = Database::create(&server, "production").await?;
        let mut conn = production.connect().await?;
        crate::testkit::scenario::build_state(&scenario, &project, &mut conn).await?;
        drop(conn);
        let out = crate::engine::predict::tempdir("bench-rehearsal")?;
        let args = RehearseArgs {
            db_url: Some(server.url(&production.name)),
            dump: None,
            major,
            migrations: Some(scenario.migrations_dir()),
            schema_only: false,
            out: out.clone(),
            quiet: true,
            json: false,
        };
        let rehearsal = rehearse(&args).await;
        let _ = std::fs::remove_dir_all(&out);
        let rehearsal = rehearsal?;
        if !rehearsal.passed {
            return Err(Error::Invalid(format!(
                "the benchmark's rehearsal failed: {:?}",
                rehearsal.error
            )));
        }
        let mut phases = rehearsal.timings_ms;
        if let Some(journal) = &rehearsal.journal {
            use crate::engine::plan::Phase;
            let sum = |phase: Phase| journal.phase(phase).map(|e| e.duration_ms).sum::<u128>();
            phases.push(("  repair: Phase 1 (backup)".into(), sum(Phase::Backup)));
            phases.push((
                "  repair: Phases 2-3 (ledger repair, re-apply)".into(),
                sum(Phase::LedgerRepair) + sum(Phase::Reapply),
            ));
            phases.push((
                "  repair: Phase 4 (verify, re-checksums preserved tables)".into(),
                sum(Phase::Verify),
            ));
        }
        Ok(phases)
    }
    .await;
    server.stop().await?;
    result
}
