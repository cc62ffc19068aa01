//! Scenario files: one TOML file per broken state in `scenarios/`, each naming
//! a fixture project, the state to build on a fresh database ([`State`]), the
//! procedure to run against it with its injected faults ([`Procedure`]) and
//! what must come out ([`Expect`]). [`Scenario::load`] parses and validates a
//! file against its fixture's migrations (every error names the file, the
//! field and what to do); [`build_state`] produces the starting state on a
//! fresh database with the Supabase shim, by the real mechanism where the file
//! asks for one. The format is documented field by field in
//! `scenarios/README.md`.

mod build;
mod bulk;
mod parse;
mod validate;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::source::project::Project;

pub use build::build_state;

/// One scenario: a starting state, a procedure and its expected outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scenario {
    /// The file stem, e.g. `plan-exact-state`: the scenario's name in tests and snapshots.
    pub name: String,
    /// The file it was read from.
    pub path: PathBuf,
    /// One sentence on what the state stands for.
    pub description: String,
    /// The fixture project: a folder next to the scenario file.
    pub fixture: String,
    /// The starting state to build.
    pub state: State,
    /// What to run against it.
    pub procedure: Procedure,
    /// What must come out.
    pub expect: Expect,
}

/// The starting state, built in the fixture's migration order. Every local
/// version has at most one role; a version named nowhere is pending (neither
/// applied nor recorded).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct State {
    /// SQL run first, before any migration: the platform's environment
    /// (e.g. `ALTER DEFAULT PRIVILEGES …` of a project whose defaults differ from Supabase's).
    pub environment: Vec<String>,
    /// Applied and recorded, as `db push` does it (statements and ledger row in one transaction).
    pub applied: Vec<String>,
    /// How the `phantom` rows came to be; required when there are phantoms.
    pub origin: Option<Origin>,
    /// Recorded in the ledger, never applied.
    pub phantom: Vec<String>,
    /// Recorded, with only some of the file's statements applied.
    pub partial: Vec<Partial>,
    /// SQL run last, to leave objects with another shape (or rows missing).
    pub drift: Vec<String>,
    /// Applied (e.g. in the SQL editor), never recorded.
    pub unrecorded: Vec<String>,
    /// Ledger rows with no local file (applied from another checkout).
    pub remote_only: Vec<RemoteOnly>,
    /// Applied, but recorded with other statements than the file's.
    pub edited: Vec<Edited>,
    /// Applied, but recorded under another version.
    pub re_versioned: Vec<ReVersioned>,
    /// Ledger rows whose stored statements are replaced after the state is
    /// built (e.g. a phantom whose recorded version carried a seed the file dropped).
    pub recorded: Vec<Recorded>,
    /// The ledger table does not exist at all.
    pub no_ledger: bool,
    /// A data script in the fixture folder (e.g. `existing-data.sql`).
    pub data: Option<String>,
    /// The version after which `data` runs; default: the last of `applied`.
    pub data_after: Option<String>,
    /// Session settings for the data script, e.g. `"fixture.collections" = 1000000`.
    pub data_scale: BTreeMap<String, u64>,
    /// Loads the data script in bulk: triggers, rules and the row-by-row
    /// foreign-key checks stay off while it runs (`session_replication_role
    /// = replica`), and every foreign key is then checked once, one query per
    /// constraint. For a script that only inserts into tables without insert
    /// triggers (a million rows: about 30 % faster); the state is the same,
    /// and what would make it differ is refused (see `bulk`).
    pub data_bulk: bool,
}

/// How recorded-but-absent (phantom) rows are produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Origin {
    /// The rows are inserted directly, as `migration repair --status applied` would.
    LedgerOnly,
    /// The real incident: the ledger row commits on its own, then the migration
    /// runs in a transaction that times out and rolls back.
    CommitThenRollback,
    /// The migrations are pushed, the ledger read (the newer ledger), the schema
    /// put back as it was before the push (the older backup), and the newer
    /// ledger restored over it.
    RestoreNewerLedger,
    /// A person types `INSERT INTO … (version, name) VALUES (…)`: no statements.
    HandEdited,
}

/// A recorded migration of which only some statements were applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Partial {
    /// The local migration's version.
    pub version: String,
    /// 1-based numbers of the statements that were applied, ascending.
    pub statements: Vec<usize>,
}

/// A ledger row without a local file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteOnly {
    /// A version no local file has.
    pub version: String,
    /// The ledger's `name` column.
    pub name: String,
    /// Run, then stored in the ledger's `statements` column.
    pub statements: Vec<String>,
}

/// A migration whose ledger row stores other statements than its file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Edited {
    /// The local migration's version.
    pub version: String,
    /// What the ledger stores instead (the file before it was edited).
    pub statements: Vec<String>,
    /// Which statements ran: today's `file` (default; only the wording
    /// changed since) or the `recorded` ones (the file was edited to do less).
    #[serde(default)]
    pub ran: Ran,
}

/// Which version of an edited migration ran.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Ran {
    #[default]
    File,
    Recorded,
}

/// Statements to store in a ledger row instead of the file's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recorded {
    /// A version the state records (phantom, applied, partial …).
    pub version: String,
    /// What the row's `statements` column holds instead of the file's.
    #[serde(default)]
    pub statements: Vec<String>,
    /// Or: the file's statements followed by these (what the recorded
    /// version had on top of today's file).
    #[serde(default)]
    pub append: Vec<String>,
}

/// A migration applied by another tool that stamped its own version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReVersioned {
    /// The local migration's version.
    pub version: String,
    /// The version its ledger row carries instead (no local file may have it).
    #[serde(rename = "as")]
    pub recorded_as: String,
}

/// What runs against the built state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Procedure {
    /// Which procedure.
    pub run: Run,
    /// Passed as they are to the engine's faults (`crate::engine::execute::Faults`); see [`Scenario::faults`].
    #[serde(default)]
    pub faults: toml::Table,
    /// SQL run after the repair and before a rollback: the operator's mistake the rollback must undo.
    #[serde(default)]
    pub mistake: Vec<String>,
    /// Application writes running while the repair runs.
    pub concurrent_writes: Option<ConcurrentWrites>,
    /// A lock another transaction holds for the whole repair.
    pub hold_lock: Option<HoldLock>,
    /// Stop the repair after every step in turn, then run it again to the end.
    #[serde(default)]
    pub kill_at_every_step: bool,
    /// The repair's `lock_timeout` in milliseconds (default 10,000, as the CLI's).
    pub lock_timeout_ms: Option<u64>,
    /// `--accept-existing-drift`: repair although pre-existing drift remains.
    #[serde(default)]
    pub accept_existing_drift: bool,
    /// `--revert-remote-only`: delete ledger rows without a local file.
    #[serde(default)]
    pub revert_remote_only: bool,
    /// Run even though the plan destroys rows (`repair --allow-data-loss`).
    #[serde(default)]
    pub allow_data_loss: bool,
}

fn one_writer() -> u32 {
    1
}

/// The procedures a scenario can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Run {
    /// Diagnose, plan, execute and verify once.
    Repair,
    /// The repair, then the repair again (the second one without faults).
    RepairTwice,
    /// The repair fails (a fault), then rollback 1: ledger and database from the backup.
    RollbackFailedMigration,
    /// The repair, the `mistake` (tables dropped), then rollback 2.
    RollbackDroppedTables,
    /// The repair, the `mistake` (ledger damaged), then rollback 3.
    RollbackLedger,
    /// Diagnose and plan only; nothing is executed.
    PlanOnly,
}

impl Run {
    /// True for the three rollback procedures.
    pub fn is_rollback(self) -> bool {
        matches!(
            self,
            Run::RollbackFailedMigration | Run::RollbackDroppedTables | Run::RollbackLedger
        )
    }
}

/// Writes an application makes while the repair runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConcurrentWrites {
    /// The schema-qualified table written to: it alone may change, by exactly `rows` rows.
    pub table: String,
    /// How many times `insert` runs in all, each in its own transaction.
    pub rows: u32,
    /// Sessions writing at once, each making its share of `rows` (default 1).
    #[serde(default = "one_writer")]
    pub writers: u32,
    /// One statement that inserts one row into `table`.
    pub insert: String,
}

/// A table lock held by another session for the whole repair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HoldLock {
    /// The schema-qualified table.
    pub table: String,
    /// The `LOCK TABLE … IN <mode> MODE` mode.
    pub mode: LockMode,
}

/// PostgreSQL's table lock modes, spelled as in `LOCK TABLE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum LockMode {
    #[serde(rename = "ACCESS SHARE")]
    AccessShare,
    #[serde(rename = "ROW SHARE")]
    RowShare,
    #[serde(rename = "ROW EXCLUSIVE")]
    RowExclusive,
    #[serde(rename = "SHARE UPDATE EXCLUSIVE")]
    ShareUpdateExclusive,
    #[serde(rename = "SHARE")]
    Share,
    #[serde(rename = "SHARE ROW EXCLUSIVE")]
    ShareRowExclusive,
    #[serde(rename = "EXCLUSIVE")]
    Exclusive,
    #[serde(rename = "ACCESS EXCLUSIVE")]
    AccessExclusive,
}

impl LockMode {
    /// The words for `LOCK TABLE t IN <mode> MODE`.
    pub fn sql(self) -> &'static str {
        match self {
            LockMode::AccessShare => "ACCESS SHARE",
            LockMode::RowShare => "ROW SHARE",
            LockMode::RowExclusive => "ROW EXCLUSIVE",
            LockMode::ShareUpdateExclusive => "SHARE UPDATE EXCLUSIVE",
            LockMode::Share => "SHARE",
            LockMode::ShareRowExclusive => "SHARE ROW EXCLUSIVE",
            LockMode::Exclusive => "EXCLUSIVE",
            LockMode::AccessExclusive => "ACCESS EXCLUSIVE",
        }
    }
}

/// What must come out of the procedure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// How the (first) run ends.
    pub outcome: Outcome,
    /// A substring of the refusal or error; required for `refused` and `failed`.
    pub reason: Option<String>,
    /// How the second run of `repair-twice` ends.
    pub then: Option<Outcome>,
    /// The diagnosis of the built state, before anything runs (statuses not listed are not checked).
    #[serde(default)]
    pub statuses: Statuses,
}

/// How a procedure ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// The repair ran and verification passed.
    Repaired,
    /// A rollback ran and its proof passed.
    RolledBack,
    /// The plan refused; nothing was touched.
    Refused,
    /// The run stopped with an error.
    Failed,
    /// There was nothing to do.
    NoOp,
}

/// Expected diagnosis: versions per status (the diagnosis's kebab-case labels).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Statuses {
    pub applied: Vec<String>,
    pub phantom: Vec<String>,
    pub partial: Vec<String>,
    pub drifted: Vec<String>,
    pub unrecorded: Vec<String>,
    pub pending: Vec<String>,
    pub remote_only: Vec<String>,
    pub edited: Vec<String>,
    pub re_versioned: Vec<String>,
}

impl Statuses {
    /// Every status label with its expected versions, in the diagnosis's status
    /// order, including the empty lists.
    pub fn by_label(&self) -> [(&'static str, &[String]); 9] {
        [
            ("applied", &self.applied),
            ("phantom", &self.phantom),
            ("partial", &self.partial),
            ("drifted", &self.drifted),
            ("unrecorded", &self.unrecorded),
            ("pending", &self.pending),
            ("remote-only", &self.remote_only),
            ("edited", &self.edited),
            ("re-versioned", &self.re_versioned),
        ]
    }

    /// The labels with at least one version listed: the ones a test checks.
    pub fn listed(&self) -> Vec<(&'static str, &[String])> {
        self.by_label()
            .into_iter()
            .filter(|(_, versions)| !versions.is_empty())
            .collect()
    }
}

/// The fields of a scenario file, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScenarioFile {
    description: String,
    fixture: String,
    #[serde(default)]
    state: State,
    procedure: Procedure,
    expect: Expect,
}

impl Scenario {
    /// Reads and validates a scenario file: its TOML, its fixture's migrations
    /// folder, and every version and field it names. Errors name the file, the
    /// field (with line and column for TOML errors) and what to do.
    pub fn load(path: &Path) -> Result<Scenario> {
        let text =
            std::fs::read_to_string(path).map_err(Error::io("reading scenario file", path))?;
        let file: ScenarioFile = parse::from_toml(&text, path)?;
        let name = path
            .file_stem()
            .and_then(|stem| stem.to_str())
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "{}: the file name is not UTF-8 (hint: rename it)",
                    path.display()
                ))
            })?
            .to_string();
        let scenario = Scenario {
            name,
            path: path.to_path_buf(),
            description: file.description,
            fixture: file.fixture,
            state: file.state,
            procedure: file.procedure,
            expect: file.expect,
        };
        validate::fields(&scenario)?;
        let project = scenario.project()?;
        validate::against(&scenario, &project)?;
        Ok(scenario)
    }

    /// The fixture folder: `<folder of the scenario file>/<fixture>`.
    pub fn fixture_dir(&self) -> PathBuf {
        self.path
            .parent()
            .unwrap_or(Path::new("."))
            .join(&self.fixture)
    }

    /// The fixture's migrations folder, `<fixture>/supabase/migrations`.
    pub fn migrations_dir(&self) -> PathBuf {
        self.fixture_dir().join("supabase").join("migrations")
    }

    /// The data script, when the state has one.
    pub fn data_path(&self) -> Option<PathBuf> {
        self.state
            .data
            .as_ref()
            .map(|file| self.fixture_dir().join(file))
    }

    /// Reads the fixture's migrations; an error names the scenario file and its `fixture` field.
    pub fn project(&self) -> Result<Project> {
        Project::load(&self.migrations_dir()).map_err(|err| {
            Error::Invalid(format!(
                "{}: fixture = {:?}: {err} (hint: `fixture` names a folder next to the scenario file that holds supabase/migrations)",
                self.path.display(),
                self.fixture
            ))
        })
    }

    /// `procedure.faults` as the engine's type (e.g. `crate::engine::execute::Faults`);
    /// an error names the file and the field.
    pub fn faults<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        self.procedure.faults.clone().try_into().map_err(|err: toml::de::Error| {
            Error::Invalid(format!(
                "{}: procedure.faults: {} (hint: the fault names are the fields of phantom_sync::engine::execute::Faults)",
                self.path.display(),
                err.message().trim_end()
            ))
        })
    }
}

/// Loads every `*.toml` file of `dir`, sorted by file name. Fails on the first
/// invalid file, and when there is none at all.
pub fn load_all(dir: &Path) -> Result<Vec<Scenario>> {
    let entries = std::fs::read_dir(dir).map_err(Error::io("listing scenario folder", dir))?;
    let mut paths = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(Error::io("listing scenario folder", dir))?
            .path();
        if path.is_file() && path.extension().is_some_and(|ext| ext == "toml") {
            paths.push(path);
        }
    }
    paths.sort();
    if paths.is_empty() {
        return Err(Error::Invalid(format!(
            "{}: no scenario files (*.toml) found (hint: point at the scenarios/ folder; its README.md describes the format)",
            dir.display()
        )));
    }
    paths.iter().map(|path| Scenario::load(path)).collect()
}

#[cfg(test)]
mod tests;
