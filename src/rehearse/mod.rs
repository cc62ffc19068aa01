//! The main job: capture a database read-only (or take a dump, or build the
//! built-in incident), restore it in an ephemeral database of the same major,
//! run the whole procedure there and every rollback drill on fresh copies,
//! and write the runbook to follow in production.
//!
//! `capture` takes the capture, `copy` restores it into a fresh
//! database — once: the repair and each drill run on a clone of that
//! database (`CREATE DATABASE … TEMPLATE`, a file copy) — `drills` runs the
//! three rollback drills; the built-in
//! incident lives in [`builtin`]. What the rehearsal found comes back as a
//! [`Rehearsal`] and is written to the output folder (runbook, plan file,
//! journals, backups).

pub mod builtin;
mod capture;
mod copy;
mod drills;

use std::path::{Path, PathBuf};
use std::time::Instant;

use tracing::Instrument;

use crate::engine::inspect::inspect;
use crate::engine::repair::{RepairOptions, Repaired, repair};
use crate::files::write_atomic;
use crate::pg::sandbox::image;
use crate::pg::target::Target;
use crate::pg::tools::PgTools;
pub use crate::report::Rehearsal;
use crate::report::{runbook_html, runbook_markdown};
use crate::{Error, Result};

use capture::check_archive;

/// Where the rehearsal writes its outputs unless told otherwise.
pub const DEFAULT_OUT: &str = ".phantom/rehearsal";

/// The migrations folder a project keeps (the default for `--db-url` and `--dump`).
pub const DEFAULT_MIGRATIONS: &str = "supabase/migrations";

/// What to rehearse.
#[derive(Debug, Clone)]
pub enum Source {
    /// The incident plan's state, built on a stand-in production database.
    BuiltIn,
    /// A live database, captured read-only.
    Database(Box<Target>),
    /// A custom-format pg_dump file made from a server of this major.
    Dump { file: PathBuf, major: u8 },
}

/// How to rehearse.
#[derive(Debug, Clone)]
pub struct RehearseOptions {
    pub source: Source,
    /// The project's migrations folder (ignored for the built-in incident,
    /// which brings its own); default [`DEFAULT_MIGRATIONS`].
    pub migrations: Option<PathBuf>,
    /// Capture the schema only (no data).
    pub schema_only: bool,
    /// Where the runbook, plan, journals and backups go.
    pub out: PathBuf,
    /// Rehearse the repair although the target has pre-existing drift that no step touches.
    pub accept_existing_drift: bool,
}

impl RehearseOptions {
    /// The migrations folder to rehearse with.
    pub fn migrations_dir(&self) -> PathBuf {
        self.migrations
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_MIGRATIONS))
    }

    /// Checks every input before anything connects or captures: the
    /// migrations folder exists, a dump file is a custom-format archive of a
    /// supported major, and the built-in incident is not given a folder.
    pub fn validate(&self) -> Result<()> {
        match &self.source {
            Source::BuiltIn => {
                if let Some(dir) = &self.migrations {
                    return Err(Error::Invalid(format!(
                        "--migrations {}: the built-in incident brings its own migrations (hint: add --db-url URL or --dump FILE to rehearse your project)",
                        dir.display()
                    )));
                }
                Ok(())
            }
            Source::Database(_) => {
                crate::source::project::Project::load(&self.migrations_dir()).map(|_| ())
            }
            Source::Dump { file, major } => {
                image::check_major(*major)?;
                check_archive(file)?;
                crate::source::project::Project::load(&self.migrations_dir()).map(|_| ())
            }
        }
    }
}

impl Rehearsal {
    /// The runbook's path.
    pub fn runbook_path(&self) -> PathBuf {
        self.out.join("runbook.md")
    }

    /// The plan file's path (for `repair --plan`).
    pub fn plan_path(&self) -> PathBuf {
        self.out.join("plan.json")
    }

    /// Reads the `rehearsal.json` a rehearsal wrote into `out` (to render
    /// its runbook again); `out` becomes its output folder.
    pub fn load(out: &Path) -> Result<Rehearsal> {
        let path = out.join(REHEARSAL_FILE);
        let text = std::fs::read_to_string(&path).map_err(Error::io("read", &path))?;
        let mut rehearsal: Rehearsal = serde_json::from_str(&text).map_err(|e| {
            Error::Invalid(format!(
                "{}: not a rehearsal written by this phantom-sync: {e} (hint: run `phantom-sync rehearse --out {}` again)",
                path.display(),
                out.display()
            ))
        })?;
        rehearsal.out = out.to_path_buf();
        Ok(rehearsal)
    }

    /// Writes `runbook.md` and `runbook.html` into the output folder.
    pub fn write_runbook(&self) -> Result<()> {
        let view = self.runbook();
        write_atomic(&self.runbook_path(), &runbook_markdown(&view))?;
        write_atomic(&self.out.join(RUNBOOK_HTML), &runbook_html(&view))
    }
}

/// The rehearsal's results as JSON, in its output folder.
pub const REHEARSAL_FILE: &str = "rehearsal.json";

/// The runbook as a page, in the rehearsal's output folder.
pub const RUNBOOK_HTML: &str = "runbook.html";

/// The rehearsal itself.
pub async fn rehearse(options: &RehearseOptions) -> Result<Rehearsal> {
    options.validate()?;
    let out = &options.out;
    std::fs::create_dir_all(out).map_err(Error::io("create", out))?;
    let dump = out.join("capture.dump");
    let mut timings = Vec::new();

    let clock = Instant::now();
    let capture = capture::capture(options, &dump)
        .instrument(phase(format!("capturing {}", describe(&options.source))))
        .await?;
    timings.push(("capture".to_string(), clock.elapsed().as_millis()));

    // The capture is restored once; the repair and every drill work on a
    // clone of that database (a file copy, not another restore).
    let clock = Instant::now();
    let pristine = copy::restore_copy(&capture, &dump, "capture")
        .instrument(phase(format!(
            "restoring the capture into a PostgreSQL {} copy",
            capture.major
        )))
        .await?;
    timings.push(("restore".to_string(), clock.elapsed().as_millis()));
    let result = rehearse_on(&pristine, &capture, options, &mut timings).await;
    pristine.drop_database().await?;
    let mut rehearsal = result?;
    rehearsal.timings_ms = timings;
    write_outputs(&rehearsal)?;
    Ok(rehearsal)
}

/// The repair and the drills, each on a clone of `pristine` (the restored capture).
async fn rehearse_on(
    pristine: &crate::pg::sandbox::Database,
    capture: &capture::Capture,
    options: &RehearseOptions,
    timings: &mut Vec<(String, u128)>,
) -> Result<Rehearsal> {
    let out = &options.out;
    let clock = Instant::now();
    let copy = pristine.clone_as("rehearsal").await?;
    let copy_name = copy.name.clone();
    let repaired = repair_copy(&copy, capture, out, options.accept_existing_drift)
        .instrument(phase(
            "repairing the copy: diagnose, plan, predict, back up, repair, verify".into(),
        ))
        .await;
    timings.push(("repair".to_string(), clock.elapsed().as_millis()));
    copy.drop_database().await?;
    let mut rehearsal = repaired?;

    if rehearsal.passed {
        let clock = Instant::now();
        // Each drill starts where the repair started: a clone under the
        // copy's name, whose Phase 1 links the repair's backup.
        let start = drills::Start {
            pristine,
            name: &copy_name,
            backup: &out.join("backup"),
        };
        for procedure in drills::all() {
            let task = phase(format!("drill on a fresh copy — {}", procedure.title()));
            let report = drills::drill(&start, capture, out, procedure)
                .instrument(task)
                .await?;
            rehearsal.passed &= report.restored();
            rehearsal.drills.push(report);
        }
        timings.push(("rollback drills".to_string(), clock.elapsed().as_millis()));
    }
    Ok(rehearsal)
}

/// A span the binary shows as one of the rehearsal's phases.
fn phase(task: String) -> tracing::Span {
    tracing::info_span!(target: "phantom_sync::progress", "phase", task = %task)
}

fn describe(source: &Source) -> String {
    match source {
        Source::BuiltIn => {
            "the built-in incident (building it on a stand-in production database)".into()
        }
        Source::Database(target) => format!("{target} read-only with pg_dump"),
        Source::Dump { file, .. } => format!("dump {}", file.display()),
    }
}

/// Runs the procedure on the copy; a refusal or failure is a finding, not an error.
async fn repair_copy(
    copy: &crate::pg::sandbox::Database,
    capture: &capture::Capture,
    out: &Path,
    accept_existing_drift: bool,
) -> Result<Rehearsal> {
    let backup_dir = out.join("backup");
    // The backup of an earlier rehearsal's throw-away copy makes way.
    match std::fs::remove_dir_all(&backup_dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(Error::io("remove", backup_dir)(e));
        }
        _ => {}
    }
    let mut options = RepairOptions::new(&capture.migrations, &backup_dir);
    // A copy: the plan's data at risk is shown in the runbook, and lost here.
    options.allow_data_loss = true;
    options.plan.accept_existing_drift = accept_existing_drift;
    let tools = PgTools::for_database(copy);
    let mut outcome = repair(&copy.target(), &tools, &options).await;
    // The journal's target is a throw-away copy; name what it stands for.
    let copy_name = format!("the rehearsal copy of {}", capture.source);
    match &mut outcome {
        Ok(done) => done.journal.target = copy_name,
        Err(stopped) => stopped.failure.journal.target = copy_name,
    }
    let blank = |diagnosis_before| Rehearsal {
        source: capture.source.clone(),
        major: capture.major,
        passed: false,
        diagnosis_before,
        diagnosis_after: None,
        plan: None,
        journal: None,
        error: None,
        drills: Vec::new(),
        timings_ms: Vec::new(),
        out: out.to_path_buf(),
    };
    match outcome {
        Ok(Repaired {
            inspection,
            plan,
            journal,
        }) => {
            let after = inspect(&copy.target(), &capture.migrations, &options.catalog).await?;
            Ok(Rehearsal {
                passed: true,
                diagnosis_after: Some(after.diagnosis),
                plan: Some(plan),
                journal: Some(journal),
                ..blank(inspection.diagnosis)
            })
        }
        Err(stopped) => {
            let Some(inspection) = &stopped.inspection else {
                return Err(stopped.failure.error);
            };
            Ok(Rehearsal {
                plan: stopped.plan.clone(),
                journal: Some(stopped.failure.journal.clone()),
                error: Some(stopped.failure.error.to_string()),
                ..blank(inspection.diagnosis.clone())
            })
        }
    }
}

fn write_outputs(r: &Rehearsal) -> Result<()> {
    if let Some(plan) = &r.plan {
        write_atomic(&r.plan_path(), &plan.to_json())?;
    }
    r.write_runbook()?;
    write_atomic(
        &r.out.join(REHEARSAL_FILE),
        &serde_json::to_string_pretty(r).unwrap_or_default(),
    )
}
