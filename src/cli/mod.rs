//! `phantom-sync`'s command line: arguments ([`args`]), exit codes
//! ([`exit`]) and the commands, which call the library and print what it
//! returns. The library never prints; this module owns stdout and stderr.

pub mod args;
pub mod exit;
mod output;
pub mod progress;

use std::path::Path;

use phantom_sync::bench;
use phantom_sync::engine::backup::{self, BackupSet};
use phantom_sync::engine::inspect::{inspect, server_major};
use phantom_sync::engine::plan::Plan;
use phantom_sync::engine::repair::{RepairOptions, make_plan, repair};
use phantom_sync::engine::rollback::{self, Procedure};
use phantom_sync::engine::verify;
use phantom_sync::files::write_atomic;
use phantom_sync::pg::sandbox::image;
use phantom_sync::pg::target::Target;
use phantom_sync::pg::tools::PgTools;
use phantom_sync::rehearse::{RehearseOptions, Source, rehearse};
use phantom_sync::source::catalog::CatalogOptions;
use phantom_sync::testkit::matrix;
use phantom_sync::{Error, report};

use args::{BenchCommand, Command, Common, ProcedureArg, RehearseArgs};
use output::{json, print_journal};

/// Runs one command; `Ok` carries the exit code of a command that ran.
pub async fn run(command: Command) -> Result<u8, Error> {
    match command {
        Command::Rehearse(args) => rehearse_command(args).await,
        Command::List(c) | Command::Diagnose(c) => list(c).await,
        Command::Plan {
            common,
            out,
            dry_run,
            revert_remote_only,
        } => {
            let target = Target::parse(&common.db_url)?;
            let mut options =
                RepairOptions::new(&common.migrations, Path::new(backup::DEFAULT_DIR));
            options.plan.revert_remote_only = revert_remote_only;
            let tools = tools_for(&target).await?;
            let (inspection, plan) = make_plan(&target, &tools, &options).await?;
            if let Some(path) = &out {
                write_atomic(path, &plan.to_json())?;
                eprintln!("plan written to {}", path.display());
            }
            if common.json {
                println!("{}", plan.to_json());
            } else {
                print!("{}", report::diagnosis_table(&inspection.diagnosis));
                print!("{}", report::plan_markdown(&plan, dry_run));
            }
            Ok(if plan.is_runnable() {
                exit::OK
            } else {
                exit::FOUND_PROBLEM
            })
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
            if !dry_run {
                check_confirm(&target, confirm.as_deref())?;
            }
            let mut options = RepairOptions::new(&common.migrations, &backup_dir);
            options.plan.revert_remote_only = revert_remote_only;
            options.verify.live_tables = live_tables;
            if let Some(path) = &plan {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    Error::Invalid(format!("--plan {}: cannot read it: {e}", path.display()))
                })?;
                options.planned = Some(Plan::from_json(&text, path)?);
            }
            let tools = tools_for(&target).await?;
            if dry_run {
                let (_, made) = make_plan(&target, &tools, &options).await?;
                print!(
                    "{}",
                    report::plan_markdown(options.planned.as_ref().unwrap_or(&made), true)
                );
                return Ok(exit::OK);
            }
            repair_command(&target, &tools, &options, common.json).await
        }
        Command::Verify { common, backup_dir } => {
            let target = Target::parse(&common.db_url)?;
            let options = CatalogOptions::default();
            let before = match &backup_dir {
                Some(dir) => Some(backup::load_data(dir)?),
                None => None,
            };
            let inspection = inspect(&target, &common.migrations, &options).await?;
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
            Ok(if result.passed() {
                exit::OK
            } else {
                exit::VERIFICATION_FAILED
            })
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
            let procedure = match procedure {
                ProcedureArg::FailedMigration => Procedure::FailedMigration,
                ProcedureArg::DroppedTables => Procedure::DroppedTables(tables),
                ProcedureArg::Ledger => Procedure::Ledger,
            };
            let set = BackupSet::load(&backup_dir)?;
            let tools = tools_for(&target).await?;
            let done =
                rollback::rollback(&target, &tools, &set, procedure, &CatalogOptions::default())
                    .await?;
            if common.json {
                println!("{}", json(&done));
            } else {
                print!("{}", report::rollback_markdown(&done));
            }
            Ok(if done.restored() {
                exit::OK
            } else {
                exit::VERIFICATION_FAILED
            })
        }
        Command::Bench { what } => bench_command(what).await,
        Command::Matrix {
            versions,
            scenarios,
            parallel,
        } => {
            let majors = image::parse_versions(&versions, "--versions")?;
            print!("{}", matrix::run_all(&scenarios, &majors, parallel).await?);
            Ok(exit::OK)
        }
        Command::Images { versions } => {
            for built in image::build(&image::parse_versions(&versions, "--versions")?).await? {
                let what = match built.outcome {
                    image::BuildOutcome::Built => "built",
                    image::BuildOutcome::UpToDate => "up to date",
                };
                println!("{} {what} (recipe {})", built.reference, built.recipe);
            }
            Ok(exit::OK)
        }
    }
}

async fn list(c: Common) -> Result<u8, Error> {
    let target = Target::parse(&c.db_url)?;
    let inspection = inspect(&target, &c.migrations, &CatalogOptions::default()).await?;
    if c.json {
        println!("{}", json(&inspection.diagnosis));
    } else {
        print!("{}", report::diagnosis_table(&inspection.diagnosis));
    }
    Ok(if inspection.diagnosis.is_in_sync() {
        exit::OK
    } else {
        exit::FOUND_PROBLEM
    })
}

async fn repair_command(
    target: &Target,
    tools: &PgTools,
    options: &RepairOptions,
    as_json: bool,
) -> Result<u8, Error> {
    match repair(target, tools, options).await {
        Ok(done) => {
            print_journal(&done.journal, as_json);
            output::save_journal_markdown(&done.journal);
            eprintln!("journal and backup in {}", options.backup_dir.display());
            Ok(exit::of_outcome(done.outcome()))
        }
        Err(stopped) => {
            if let Some(plan) = &stopped.plan
                && !plan.refusals.is_empty()
                && !as_json
            {
                print!("{}", report::plan_markdown(plan, false));
            }
            print_journal(&stopped.failure.journal, as_json);
            output::save_journal_markdown(&stopped.failure.journal);
            Err(stopped.failure.error)
        }
    }
}

async fn rehearse_command(args: RehearseArgs) -> Result<u8, Error> {
    // The environment's URL is the default only when no dump is given.
    let url = args.db_url.clone().or_else(|| match args.dump {
        None => std::env::var("PHANTOM_DB_URL")
            .ok()
            .filter(|u| !u.is_empty()),
        Some(_) => None,
    });
    let source = match (&url, &args.dump) {
        (Some(url), _) => Source::Database(Box::new(Target::parse(url)?)),
        (None, Some(file)) => Source::Dump {
            file: file.clone(),
            major: args.major,
        },
        (None, None) => Source::BuiltIn,
    };
    let options = RehearseOptions {
        source,
        migrations: args.migrations.clone(),
        schema_only: args.schema_only,
        out: args.out.clone(),
    };
    let rehearsal = rehearse(&options).await?;
    if args.json {
        println!("{}", json(&rehearsal));
    } else if !args.quiet {
        print!("{}", report::diagnosis_table(&rehearsal.diagnosis_before));
    }
    let verdict = if rehearsal.passed {
        "PASSED"
    } else {
        "FOUND A PROBLEM"
    };
    eprintln!(
        "rehearsal {verdict}: runbook {}",
        rehearsal.runbook_path().display()
    );
    Ok(if rehearsal.passed {
        exit::OK
    } else {
        exit::FOUND_PROBLEM
    })
}

async fn bench_command(what: BenchCommand) -> Result<u8, Error> {
    match what {
        BenchCommand::Provision { versions, runs } => {
            let majors = image::parse_versions(&versions, "--versions")?;
            let figures = bench::provision::provision(&majors, runs).await?;
            print!("{}", bench::provision::render(&figures));
        }
        BenchCommand::Rehearsal { versions, rows } => {
            println!("| major | collections rows | phase | wall ms |\n|---|---|---|---|");
            for major in image::parse_versions(&versions, "--versions")? {
                for n in [48, rows] {
                    for (phase, ms) in bench::rehearsal::rehearsal(major, n).await? {
                        println!("| {major} | {n} | {phase} | {ms} |");
                    }
                }
            }
        }
    }
    Ok(exit::OK)
}

/// Tools of the target's own major, in a throw-away container.
async fn tools_for(target: &Target) -> Result<PgTools, Error> {
    let mut conn = target.connect().await?;
    let major = server_major(&mut conn).await?;
    PgTools::for_major(major).await
}

/// A database not on this machine needs `--confirm <database name>`.
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
