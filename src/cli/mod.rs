//! `phantom-sync`'s command line: arguments ([`args`]), exit codes
//! ([`exit`]) and the commands, which call the library and print what it
//! returns. The library never prints; this module owns stdout and stderr.

pub mod args;
pub mod exit;
mod output;
pub mod progress;

use std::path::Path;

use phantom_sync::bench;
use phantom_sync::engine::backup::{self, manifest};
use phantom_sync::engine::execute::Cancel;
use phantom_sync::engine::inspect::{inspect, server_major};
use phantom_sync::engine::plan::{Plan, Tolerated};
use phantom_sync::engine::repair::{RepairOptions, make_plan, repair};
use phantom_sync::engine::restore_file::restore_file;
use phantom_sync::engine::rollback::{self, Procedure};
use phantom_sync::engine::verify;
use phantom_sync::files::write_atomic;
use phantom_sync::pg::sandbox::image;
use phantom_sync::pg::target::Target;
use phantom_sync::pg::tools::PgTools;
use phantom_sync::rehearse::{RehearseOptions, Source, rehearse};
use phantom_sync::source::catalog::CatalogOptions;
use phantom_sync::source::ledger::Ledger;
use phantom_sync::source::project::Project;
use phantom_sync::testkit::matrix;
use phantom_sync::{Error, report};

use args::{BenchCommand, Command, Common, ProcedureArg, RehearseArgs};
use output::{document, print_journal};

/// True for the commands that stop cleanly on a [`Cancel`] themselves
/// (the others are simply dropped on SIGINT / SIGTERM).
pub fn handles_cancel(command: &Command) -> bool {
    matches!(command, Command::Repair { .. } | Command::Rollback { .. })
}

/// Runs one command; `Ok` carries the exit code of a command that ran.
pub async fn run(command: Command, quiet: bool, cancel: Cancel) -> Result<u8, Error> {
    if no_cache(&command) {
        phantom_sync::engine::effects::cache::set_enabled(false);
    }
    match command {
        Command::Rehearse(args) => rehearse_command(args, quiet).await,
        Command::List(c) => list(c, false).await,
        Command::Diagnose(c) => list(c, true).await,
        Command::Plan {
            common,
            out,
            dry_run,
            revert_remote_only,
            accept_existing_drift,
        } => {
            let target = Target::parse(&common.db_url)?;
            let mut options =
                RepairOptions::new(&common.migrations, Path::new(backup::DEFAULT_PARENT));
            options.plan.revert_remote_only = revert_remote_only;
            options.plan.accept_existing_drift = accept_existing_drift;
            let tools = tools_for(&target).await?;
            let (inspection, plan) = make_plan(&target, &tools, &options).await?;
            if let Some(path) = &out {
                write_atomic(path, &plan.to_json())?;
                eprintln!("plan written to {}", path.display());
            }
            if common.json {
                println!("{}", document("plan", &plan));
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
            allow_data_loss,
            dry_run,
            revert_remote_only,
            live_tables,
            accept_existing_drift,
        } => {
            let target = Target::parse(&common.db_url)?;
            if !dry_run {
                check_confirm(&target, confirm.as_deref())?;
            }
            let mut options = RepairOptions::new(&common.migrations, &backup_dir);
            options.new_backup_folder = true;
            options.allow_data_loss = allow_data_loss;
            options.cancel = cancel;
            options.plan.revert_remote_only = revert_remote_only;
            options.plan.accept_existing_drift = accept_existing_drift;
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
        Command::Verify {
            common,
            backup_dir,
            accept_existing_drift,
        } => {
            let target = Target::parse(&common.db_url)?;
            let options = CatalogOptions::default();
            // A backup folder, or the newest complete one of this database under a parent.
            let before = match &backup_dir {
                Some(dir) => Some(backup::load_data(
                    &backup_to_use(&target, Some(dir.as_path())).await?,
                )?),
                None => None,
            };
            let inspection = inspect(&target, &common.migrations, &options).await?;
            let differences = &inspection.diagnosis.differences;
            let scope = verify::VerifyOptions {
                tolerated: Tolerated {
                    environment: differences.environment.clone(),
                    pre_existing: if accept_existing_drift {
                        differences.pre_existing.clone()
                    } else {
                        Vec::new()
                    },
                },
                ..Default::default()
            };
            let mut conn = target.connect().await?;
            let result = verify::verify(
                &mut conn,
                &inspection.project,
                &inspection.effects,
                before.as_ref(),
                &options,
                &scope,
            )
            .await?;
            if common.json {
                println!("{}", document("verification", &result));
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
            let tools = tools_for(&target).await?;
            let dir = backup_to_use(&target, backup_dir.as_deref()).await?;
            let parent = dir.parent().unwrap_or(Path::new(".")).to_path_buf();
            let stamp = phantom_sync::files::utc_stamp(phantom_sync::files::now_ms()).0;
            let safety = parent.join(format!("{stamp}-pre-rollback"));
            let catalog = CatalogOptions::default();
            let rolling = rollback::rollback(&target, &tools, &dir, procedure, &catalog, &safety);
            let done = tokio::select! {
                done = rolling => done?,
                by = cancel.cancelled() => {
                    return Err(Error::Interrupted {
                        step: "inside the rollback (each restore is one transaction, rolled back when cut off)".into(),
                        by,
                    });
                }
            };
            if common.json {
                println!("{}", document("rollback", &done));
            } else {
                print!("{}", report::rollback_markdown(&done));
            }
            Ok(if done.restored() {
                exit::OK
            } else {
                exit::VERIFICATION_FAILED
            })
        }
        Command::RestoreFile {
            common,
            version,
            out,
            force,
        } => {
            let target = Target::parse(&common.db_url)?;
            let project = Project::load(&common.migrations).ok();
            let mut conn = target.connect().await?;
            let ledger = Ledger::read(&mut conn).await?;
            let done = restore_file(&ledger, project.as_ref(), &version, &out, force)?;
            if common.json {
                println!("{}", document("restored-file", &done));
            } else {
                println!(
                    "wrote {} ({} statements, as the ledger recorded them)",
                    done.path.display(),
                    done.statements
                );
                if let Some(local) = &done.replaces {
                    println!(
                        "it differs from {}: review both, then move the restored file over it if the recorded version is the one you want",
                        local.display()
                    );
                }
            }
            Ok(exit::OK)
        }
        Command::Bench { what } => bench_command(what).await,
        Command::JsonSchema => {
            println!(
                "{}",
                serde_json::to_string_pretty(&output::json_schema()).unwrap_or_default()
            );
            Ok(exit::OK)
        }
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

/// The backup folder a rollback uses: `dir` when it is one (it holds
/// `manifest.json`, or nothing else looks like a folder of backups), else the
/// newest complete backup of the target's database in `dir` (default
/// [`backup::DEFAULT_PARENT`]), named on stderr.
async fn backup_to_use(target: &Target, dir: Option<&Path>) -> Result<std::path::PathBuf, Error> {
    let parent = match dir {
        Some(d) if d.join(manifest::MANIFEST_FILE).exists() => return Ok(d.to_path_buf()),
        Some(d) if !holds_backups(d) => return Ok(d.to_path_buf()),
        Some(d) => d.to_path_buf(),
        None => std::path::PathBuf::from(backup::DEFAULT_PARENT),
    };
    let mut conn = target.connect().await?;
    let live = manifest::DatabaseIdentity::read(&mut conn).await?;
    let (newest, count) = manifest::newest_for(&parent, &live)?;
    eprintln!(
        "using the backup {} — the newest complete backup of database {:?} in {} ({count} found; pick another with --backup-dir)",
        newest.display(),
        live.database,
        parent.display()
    );
    Ok(newest)
}

/// True when a subfolder of `dir` holds a manifest.
fn holds_backups(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.path().join(manifest::MANIFEST_FILE).exists())
    })
}

async fn list(c: Common, full: bool) -> Result<u8, Error> {
    let target = Target::parse(&c.db_url)?;
    let inspection = inspect(&target, &c.migrations, &CatalogOptions::default()).await?;
    if c.json {
        println!("{}", document("diagnosis", &inspection.diagnosis));
    } else if full {
        print!(
            "{}",
            report::diagnosis_text(&inspection.diagnosis, output::width())
        );
    } else {
        print!("{}", report::migration_list(&inspection.diagnosis));
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
            if let Some(dir) = done.journal.path.as_ref().and_then(|p| p.parent()) {
                eprintln!("journal and backup in {}", dir.display());
            }
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

async fn rehearse_command(args: RehearseArgs, quiet: bool) -> Result<u8, Error> {
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
        accept_existing_drift: args.accept_existing_drift,
    };
    let rehearsal = rehearse(&options).await?;
    if args.json {
        println!("{}", document("rehearsal", &rehearsal));
    } else if !quiet {
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
        BenchCommand::Diagnose {
            versions,
            migrations,
            exe,
        } => {
            let exe = match exe {
                Some(exe) if exe.is_file() => exe,
                Some(exe) => {
                    return Err(Error::Invalid(format!(
                        "--exe {}: no such file (hint: the path of a phantom-sync binary, e.g. target/debug/phantom-sync)",
                        exe.display()
                    )));
                }
                None => std::env::current_exe()
                    .map_err(|e| Error::Invalid(format!("cannot find this program's path: {e}")))?,
            };
            for major in image::parse_versions(&versions, "--versions")? {
                let figures = bench::diagnose::diagnose(&exe, major, &migrations).await?;
                print!("{}", bench::diagnose::render(major, &figures));
            }
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

/// Whether the command asked to bypass the effects cache (`--no-cache`).
fn no_cache(command: &Command) -> bool {
    match command {
        Command::Rehearse(args) => args.no_cache,
        Command::List(c) | Command::Diagnose(c) => c.no_cache,
        Command::Plan { common, .. }
        | Command::Repair { common, .. }
        | Command::Verify { common, .. }
        | Command::Rollback { common, .. } => common.no_cache,
        _ => false,
    }
}
