//! `phantom-sync`: the command line. Parses arguments, calls the library,
//! prints, and maps errors to the exit codes documented in the README:
//! 0 ok · 1 found a problem (out of sync, refused plan, failed rehearsal) ·
//! 2 bad input · 3 cannot connect · 4 environment (Docker, tools, files) ·
//! 5 database error · 6 plan refused or stale · 7 repair step failed ·
//! 8 verification failed.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use phantom_sync::bench::provision as bench;
use phantom_sync::engine::plan::Plan;
use phantom_sync::engine::repair::{RepairOptions, make_plan, repair};
use phantom_sync::engine::{backup, inspect, rollback, verify};
use phantom_sync::pg::sandbox::image;
use phantom_sync::pg::target::{Target, redact_url};
use phantom_sync::pg::tools::PgTools;
use phantom_sync::source::catalog::CatalogOptions;
use phantom_sync::{Error, rehearse, report};

#[derive(Parser)]
#[command(
    name = "phantom-sync",
    version,
    about = "Diagnose, plan, rehearse and repair a Supabase migration ledger that lists migrations the database never received"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The `migration list` table with a status per migration.
    List(Common),
    /// Like list, with the evidence behind every status.
    Diagnose(Common),
    /// The repair plan; --dry-run prints every SQL statement.
    Plan {
        #[command(flatten)]
        common: Common,
        /// Write the plan file here (for `repair --plan`).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Print every statement the plan would run.
        #[arg(long)]
        dry_run: bool,
        /// Delete ledger rows that have no local file instead of refusing.
        #[arg(long)]
        revert_remote_only: bool,
    },
    /// Back up, repair the ledger, re-apply, verify.
    Repair {
        #[command(flatten)]
        common: Common,
        /// Execute this rehearsed plan; refused if the database changed since.
        #[arg(long)]
        plan: Option<PathBuf>,
        /// Required for a non-local host: the database name, repeated.
        #[arg(long)]
        confirm: Option<String>,
        /// Where Phase 1 writes the backup and the journal.
        #[arg(long, default_value = ".phantom/backup")]
        backup_dir: PathBuf,
        /// Print the plan's SQL and stop.
        #[arg(long)]
        dry_run: bool,
        /// Delete ledger rows that have no local file instead of refusing.
        #[arg(long)]
        revert_remote_only: bool,
        /// A table the application keeps writing to during the repair (may gain rows, never lose any).
        #[arg(long = "live-table")]
        live_tables: Vec<String>,
    },
    /// The success checklist against a database (with --backup-dir: data preservation too).
    Verify {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        backup_dir: Option<PathBuf>,
    },
    /// One of the plan's three rollback procedures, from a backup folder.
    Rollback {
        #[command(flatten)]
        common: Common,
        #[arg(long, default_value = ".phantom/backup")]
        backup_dir: PathBuf,
        /// failed-migration | dropped-tables | ledger
        #[arg(long)]
        procedure: String,
        /// For dropped-tables: which tables (schema.table); default every table that is gone.
        #[arg(long, value_delimiter = ',')]
        tables: Vec<String>,
        #[arg(long)]
        confirm: Option<String>,
    },
    /// Rehearse the whole procedure on an ephemeral copy and write the runbook.
    Rehearse(rehearse::RehearseArgs),
    /// Benchmarks.
    Bench {
        #[command(subcommand)]
        what: BenchCommand,
    },
    /// Every scenario on every major, with wall times (`make matrix`).
    Matrix {
        #[arg(long, default_value = "17")]
        versions: String,
        #[arg(long, default_value = "scenarios")]
        scenarios: PathBuf,
        /// Scenarios run at the same time on a major.
        #[arg(long, default_value_t = 2)]
        parallel: usize,
    },
    /// Build the offline PostgreSQL images.
    Images {
        #[arg(long, default_value = "14,15,16,17,18")]
        versions: String,
    },
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Container start, template clone, shim from scratch.
    Provision {
        #[arg(long, default_value = "17")]
        versions: String,
        #[arg(long, default_value_t = 20)]
        runs: usize,
    },
    /// The rehearsal's wall time by phase, on the built-in incident and with many rows.
    Rehearsal {
        #[arg(long, default_value = "17")]
        versions: String,
        /// Rows in `collections` for the large run.
        #[arg(long, default_value_t = 1_000_000)]
        rows: u64,
    },
}

#[derive(Args)]
struct Common {
    /// The database, e.g. postgres://postgres:PASSWORD@db.example.supabase.co:5432/postgres
    #[arg(long, env = "PHANTOM_DB_URL", hide_env_values = true)]
    db_url: String,
    /// The migrations folder.
    #[arg(long, default_value = "supabase/migrations")]
    migrations: PathBuf,
    /// Machine-readable output.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(4);
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {}", redact_url(&e.to_string()));
            ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(1))
        }
    }
}

async fn run(command: Command) -> Result<u8, Error> {
    match command {
        Command::List(c) | Command::Diagnose(c) => {
            let target = Target::parse(&c.db_url)?;
            let inspection =
                inspect::inspect(&target, &c.migrations, &CatalogOptions::default()).await?;
            if c.json {
                println!("{}", json(&inspection.diagnosis));
            } else {
                print!("{}", report::diagnosis_table(&inspection.diagnosis));
            }
            Ok(if inspection.diagnosis.is_in_sync() {
                0
            } else {
                1
            })
        }
        Command::Plan {
            common,
            out,
            dry_run,
            revert_remote_only,
        } => {
            let target = Target::parse(&common.db_url)?;
            let mut options =
                RepairOptions::new(&common.migrations, std::path::Path::new(".phantom/backup"));
            options.plan.revert_remote_only = revert_remote_only;
            let tools = tools_for(&target).await?;
            let (inspection, plan) = make_plan(&target, &tools, &options).await?;
            if let Some(path) = &out {
                phantom_sync::engine::journal::write_atomic(path, &plan.to_json())?;
                eprintln!("plan written to {}", path.display());
            }
            if common.json {
                println!("{}", plan.to_json());
            } else {
                print!("{}", report::diagnosis_table(&inspection.diagnosis));
                print!("{}", report::plan_markdown(&plan, dry_run));
            }
            Ok(if plan.is_runnable() { 0 } else { 1 })
        }
        Command::Repair {
            common,
            plan,
            confirm,
            backup_dir,
            dry_run,
            revert_remote_only,
            live_tables,
        } => {
            let target = Target::parse(&common.db_url)?;
            check_confirm(&target, confirm.as_deref())?;
            let mut options = RepairOptions::new(&common.migrations, &backup_dir);
            options.plan.revert_remote_only = revert_remote_only;
            options.verify.live_tables = live_tables;
            if let Some(path) = &plan {
                let text = std::fs::read_to_string(path).map_err(Error::io("read", path))?;
                options.planned = Some(Plan::from_json(&text, path)?);
            }
            let tools = tools_for(&target).await?;
            if dry_run {
                let (_, made) = make_plan(&target, &tools, &options).await?;
                print!(
                    "{}",
                    report::plan_markdown(options.planned.as_ref().unwrap_or(&made), true)
                );
                return Ok(0);
            }
            match repair(&target, &tools, &options).await {
                Ok(done) => {
                    print_journal(&done.journal, common.json);
                    eprintln!("journal and backup in {}", backup_dir.display());
                    Ok(0)
                }
                Err(stopped) => {
                    if let Some(plan) = &stopped.plan
                        && !plan.refusals.is_empty()
                        && !common.json
                    {
                        print!("{}", report::plan_markdown(plan, false));
                    }
                    print_journal(&stopped.failure.journal, common.json);
                    Err(stopped.failure.error)
                }
            }
        }
        Command::Verify { common, backup_dir } => {
            let target = Target::parse(&common.db_url)?;
            let options = CatalogOptions::default();
            let inspection = inspect::inspect(&target, &common.migrations, &options).await?;
            let before = match &backup_dir {
                Some(dir) => Some(backup::load_data(dir)?),
                None => None,
            };
            let mut conn = target.connect().await?;
            let result = verify::verify(
                &mut conn,
                &inspection.project,
                &inspection.effects,
                before.as_ref(),
                &options,
                &verify::VerifyOptions::default(),
            )
            .await?;
            if common.json {
                println!("{}", json(&result));
            } else {
                print!("{}", report::verification_markdown(&result));
            }
            Ok(if result.passed() { 0 } else { 8 })
        }
        Command::Rollback {
            common,
            backup_dir,
            procedure,
            tables,
            confirm,
        } => {
            let target = Target::parse(&common.db_url)?;
            check_confirm(&target, confirm.as_deref())?;
            let procedure = match procedure.as_str() {
                "failed-migration" => rollback::Procedure::FailedMigration,
                "dropped-tables" => rollback::Procedure::DroppedTables(tables),
                "ledger" => rollback::Procedure::Ledger,
                other => {
                    return Err(Error::Invalid(format!(
                        "--procedure {other}: unknown (hint: failed-migration, dropped-tables or ledger)"
                    )));
                }
            };
            let set = backup::BackupSet::load(&backup_dir)?;
            let tools = tools_for(&target).await?;
            let done =
                rollback::rollback(&target, &tools, &set, procedure, &CatalogOptions::default())
                    .await?;
            if common.json {
                println!("{}", json(&done));
            } else {
                println!("{}", done.procedure.title());
                for step in &done.steps {
                    println!("- {step}");
                }
                for check in &done.proof {
                    println!(
                        "- [{}] {} {}",
                        if check.passed { "x" } else { " " },
                        check.name,
                        check.evidence.join("; ")
                    );
                }
            }
            Ok(if done.restored() { 0 } else { 8 })
        }
        Command::Rehearse(args) => rehearse::run_cli(args).await,
        Command::Bench {
            what: BenchCommand::Provision { versions, runs },
        } => {
            let majors = image::parse_versions(&versions)?;
            let figures = bench::provision(&majors, runs).await?;
            print!("{}", bench::render(&figures));
            Ok(0)
        }
        Command::Bench {
            what: BenchCommand::Rehearsal { versions, rows },
        } => {
            println!("| major | collections rows | phase | wall ms |\n|---|---|---|---|");
            for major in image::parse_versions(&versions)? {
                for n in [48, rows] {
                    for (phase, ms) in rehearse::benchmark(major, n).await? {
                        println!("| {major} | {n} | {phase} | {ms} |");
                    }
                }
            }
            Ok(0)
        }
        Command::Matrix {
            versions,
            scenarios,
            parallel,
        } => {
            let majors = image::parse_versions(&versions)?;
            print!(
                "{}",
                phantom_sync::testkit::matrix::run_all(&scenarios, &majors, parallel).await?
            );
            Ok(0)
        }
        Command::Images { versions } => {
            image::build(&image::parse_versions(&versions)?).await?;
            Ok(0)
        }
    }
}

/// Tools of the target's own major, in a throw-away container.
async fn tools_for(target: &Target) -> Result<PgTools, Error> {
    let mut conn = target.connect().await?;
    let major = inspect::server_major(&mut conn).await?;
    PgTools::for_major(major).await
}

/// A non-local target needs `--confirm <database name>`.
fn check_confirm(target: &Target, confirm: Option<&str>) -> Result<(), Error> {
    if target.is_local() || confirm == Some(target.database()) {
        return Ok(());
    }
    Err(Error::Invalid(format!(
        "{} is not on this machine: repeat its database name with --confirm {} to proceed",
        target.redacted(),
        target.database()
    )))
}

fn print_journal(journal: &phantom_sync::engine::journal::Journal, as_json: bool) {
    if as_json {
        println!("{}", json(journal));
    } else {
        print!("{}", report::journal_markdown(journal));
    }
}

fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}
