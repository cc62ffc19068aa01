//! Diagnosis → repair plan: the incident plan's phases, generalised.
//! Phase 1 backs up (ledger export, row counts and checksums, a dump);
//! Phase 2 repairs the ledger in one transaction; Phase 3 re-applies the
//! pending set in version order (`db push --include-all`); Phase 4 verifies.
//! A plan carries the fingerprint of the diagnosis it was made from, the
//! refusals that stop it from running at all, the data its migrations would
//! destroy ([`data_loss`]) and, in a plan file, a digest of all of it
//! ([`Plan::to_json`]), so that an edited file is refused.

pub mod data_loss;
mod seal;

use serde::{Deserialize, Serialize};

use crate::engine::diagnose::{Diagnosis, Drift, Status};
use crate::source::catalog::{group, parts_phrase};
use crate::source::ledger;
use crate::source::project::Project;
use crate::text::count;
pub use data_loss::{DataAtRisk, LossKind};

/// The four phases of the plan.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
pub enum Phase {
    Backup = 1,
    LedgerRepair = 2,
    Reapply = 3,
    Verify = 4,
}

impl Phase {
    /// The four phases in the order they run.
    pub const ALL: [Phase; 4] = [
        Phase::Backup,
        Phase::LedgerRepair,
        Phase::Reapply,
        Phase::Verify,
    ];

    /// "Phase 1: Backup & Safety", as the incident plan titles them.
    pub fn title(self) -> &'static str {
        match self {
            Phase::Backup => "Phase 1: Backup & Safety",
            Phase::LedgerRepair => "Phase 2: Repair Migration History",
            Phase::Reapply => "Phase 3: Re-apply Missing Migrations",
            Phase::Verify => "Phase 4: Verification",
        }
    }
}

/// What a step does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Action {
    /// Write the ledger to `ledger.json` and `ledger.txt`.
    ExportLedger,
    /// Row counts and content checksums of every table.
    RecordData,
    /// pg_dump of the database with the server's own major.
    Dump,
    /// One transaction: delete `revert` rows (expecting exactly that many),
    /// record `record` versions as applied, re-key `rekey` pairs.
    RepairLedger {
        revert: Vec<String>,
        record: Vec<String>,
        rekey: Vec<(String, String)>,
    },
    /// One migration and its ledger row, in one transaction.
    Apply { version: String },
    /// The success checklist.
    Verify,
}

/// One step of the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Step {
    /// "1.1", "2.1", "3.2" … as in the incident plan.
    pub id: String,
    pub phase: Phase,
    pub title: String,
    #[serde(flatten)]
    pub action: Action,
    /// The SQL the step runs (shown by `--dry-run`).
    pub sql: Vec<String>,
}

/// Why a plan must not run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Refusal {
    pub version: String,
    pub reason: String,
    /// The offending statement, when one is to blame.
    pub statement: Option<String>,
    /// What the user can do.
    pub options: Vec<String>,
}

/// A repair plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Plan {
    /// Fingerprint of the diagnosis this plan was made for.
    pub fingerprint: String,
    /// SHA-256 of the plan's canonical JSON with this field empty: written
    /// by [`Plan::to_json`], checked by [`Plan::from_json`]. Empty in memory.
    #[serde(default)]
    pub digest: String,
    /// The choices it was made with (a plan file is re-derived with them).
    #[serde(default)]
    pub options: PlanOptions,
    /// Rows the pending statements destroy; the repair refuses them unless
    /// told `--allow-data-loss`. Filled in from the target's row counts.
    #[serde(default)]
    pub data_at_risk: Vec<DataAtRisk>,
    pub steps: Vec<Step>,
    pub refusals: Vec<Refusal>,
    pub warnings: Vec<String>,
    /// Differences from a clean replay the plan leaves as they are, and
    /// which verification must find unchanged.
    #[serde(default)]
    pub tolerated: Tolerated,
}

/// What a repair leaves different from a clean replay, on purpose.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Tolerated {
    /// Grant differences the target's environment explains (described as
    /// the schema check describes them).
    pub environment: Vec<String>,
    /// Pre-existing drift the user accepted (`--accept-existing-drift`).
    pub pre_existing: Vec<Drift>,
}

impl Tolerated {
    /// True when `description` (a schema difference in words) is tolerated.
    pub fn covers(&self, description: &str) -> bool {
        self.environment.iter().any(|d| d == description)
            || self
                .pre_existing
                .iter()
                .any(|d| d.description == description)
    }
}

/// Choices the user makes when planning.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct PlanOptions {
    /// Delete ledger rows that have no local file (the CLI refuses to push with them).
    pub revert_remote_only: bool,
    /// `SET lock_timeout` before each migration, in milliseconds.
    pub lock_timeout_ms: u64,
    /// Proceed although the target has pre-existing drift that no step
    /// touches; verification then proves it unchanged.
    pub accept_existing_drift: bool,
}

impl Plan {
    /// True when nothing stops the plan.
    pub fn is_runnable(&self) -> bool {
        self.refusals.is_empty()
    }

    /// The error a run of this plan stops with, when it has refusals.
    pub fn refused(&self) -> Option<crate::Error> {
        (!self.is_runnable()).then(|| crate::Error::Refused {
            reasons: self
                .refusals
                .iter()
                .map(|r| format!("{}: {}", r.version, r.reason))
                .collect::<Vec<_>>()
                .join("; "),
        })
    }

    /// Steps of a phase.
    pub fn phase(&self, phase: Phase) -> impl Iterator<Item = &Step> {
        self.steps.iter().filter(move |s| s.phase == phase)
    }

    /// Versions applied in Phase 3, in order.
    pub fn to_apply(&self) -> Vec<String> {
        self.steps
            .iter()
            .filter_map(|s| match &s.action {
                Action::Apply { version } => Some(version.clone()),
                _ => None,
            })
            .collect()
    }

    /// True when the database needs nothing (only backup and verify would run).
    pub fn is_noop(&self) -> bool {
        self.steps
            .iter()
            .all(|s| s.phase == Phase::Backup || s.phase == Phase::Verify)
    }
}

/// The first 12 hex digits of a fingerprint, as plans and journals show it.
pub fn short_fingerprint(fingerprint: &str) -> String {
    fingerprint.chars().take(12).collect()
}

/// Makes the plan for `diagnosis`.
pub fn plan(project: &Project, diagnosis: &Diagnosis, options: &PlanOptions) -> Plan {
    let mut steps = backup_steps();
    let mut refusals = Vec::new();
    let mut warnings = Vec::new();
    let mut revert = Vec::new();
    let mut record = Vec::new();
    let mut rekey = Vec::new();
    let mut apply = Vec::new();

    for entry in &diagnosis.entries {
        match entry.status {
            Status::Applied => {}
            Status::Edited if entry.explanation.is_empty() => warnings.push(format!(
                "{} {}: the file was edited after it was applied; the live schema matches today's file, so nothing is re-applied",
                entry.version, entry.name
            )),
            Status::Edited => warnings.push(format!(
                "{} {}: the file was edited after it was applied, and what the ledger recorded did more than today's file (see the diagnosis); nothing is re-applied. Options: write the recorded statements back into the file for review (`phantom-sync restore-file {}`), write a follow-up migration that makes the file's intent explicit, or accept the difference (`--accept-existing-drift`)",
                entry.version, entry.name, entry.version
            )),
            Status::Phantom | Status::Partial | Status::Drifted => {
                revert.push(entry.version.clone());
                apply.push(entry.version.clone());
                if entry.status == Status::Drifted {
                    warnings.push(format!(
                        "{} {}: objects exist with another shape ({}); re-applying may leave them so — the prediction decides",
                        entry.version,
                        entry.name,
                        entry.evidence.first().cloned().unwrap_or_default()
                    ));
                }
            }
            Status::Unrecorded => record.push(entry.version.clone()),
            Status::Pending => apply.push(entry.version.clone()),
            Status::ReVersioned => {
                if let Some(from) = &entry.recorded_as {
                    rekey.push((from.clone(), entry.version.clone()));
                }
            }
            Status::RemoteOnly if options.revert_remote_only => revert.push(entry.version.clone()),
            Status::RemoteOnly => refusals.push(Refusal {
                version: entry.version.clone(),
                reason: "the ledger records a version that has no local migration file (the CLI refuses to push: \"Remote migration versions not found in local migrations directory\")".into(),
                statement: None,
                options: vec![
                    format!("restore the file from what the ledger recorded: `phantom-sync restore-file {} --out supabase/migrations` (or `supabase migration fetch`, or version control), then plan again", entry.version),
                    "plan again with --revert-remote-only --accept-existing-drift to delete the row and keep what it created as it is".into(),
                ],
            }),
        }
    }
    if !revert.is_empty() || !record.is_empty() || !rekey.is_empty() {
        steps.push(repair_step(project, revert, record, rekey));
    }
    apply.sort();
    for (i, version) in apply.iter().enumerate() {
        if let Some(m) = project.get(version) {
            refusals.extend(non_transactional(m));
            let mut sql = vec![
                "RESET ALL".to_string(),
                format!("SET lock_timeout = '{}ms'", options.lock_timeout_ms.max(1)),
            ];
            sql.extend(m.statements.iter().cloned());
            sql.push(format!(
                "INSERT INTO {}.{} (version, name, statements) VALUES ('{}', '{}', $statements)",
                ledger::SCHEMA,
                ledger::TABLE,
                m.version,
                m.name.replace('\'', "''")
            ));
            steps.push(Step {
                id: format!("3.{}", i + 1),
                phase: Phase::Reapply,
                title: format!("Apply {}", m.file_name()),
                action: Action::Apply {
                    version: version.clone(),
                },
                sql,
            });
        }
    }
    steps.push(Step {
        id: "4.1".into(),
        phase: Phase::Verify,
        title: "Verify ledger, schema, seed data and preserved tables".into(),
        action: Action::Verify,
        sql: Vec::new(),
    });
    let mut tolerated = Tolerated {
        environment: diagnosis.differences.environment.clone(),
        pre_existing: Vec::new(),
    };
    let drift = &diagnosis.differences.pre_existing;
    if !drift.is_empty() && options.accept_existing_drift {
        tolerated.pre_existing = drift.clone();
    } else if !drift.is_empty() {
        refusals.push(drift_refusal(drift, options));
    }
    Plan {
        fingerprint: diagnosis.fingerprint.clone(),
        digest: String::new(),
        options: options.clone(),
        data_at_risk: Vec::new(),
        steps,
        refusals,
        warnings,
        tolerated,
    }
}

/// The refusal for pre-existing drift: what it is, that it pre-dates the
/// repair, and the exact command that proceeds anyway.
fn drift_refusal(drift: &[Drift], options: &PlanOptions) -> Refusal {
    let differences: Vec<_> = drift.iter().map(|d| d.difference.clone()).collect();
    let groups = group(&differences);
    let shown: Vec<String> = groups
        .iter()
        .take(8)
        .map(|g| {
            let d = &drift[g.head];
            let parts = if g.parts.is_empty() {
                String::new()
            } else {
                format!(", with {}", parts_phrase(&g.parts))
            };
            match (&d.table, d.rows) {
                (Some(t), Some(n)) => {
                    format!("{}{parts} ({t}: {})", d.description, count(n, "row"))
                }
                _ => format!("{}{parts}", d.description),
            }
        })
        .collect();
    let more = groups.len().saturating_sub(shown.len());
    let revert = if options.revert_remote_only {
        " --revert-remote-only"
    } else {
        ""
    };
    Refusal {
        version: "pre-existing drift".into(),
        reason: format!(
            "the target differs from a clean replay in {} place{} that pre-date{} the repair and that no step touches: {}{}",
            drift.len(),
            if drift.len() == 1 { "" } else { "s" },
            if drift.len() == 1 { "s" } else { "" },
            shown.join("; "),
            if more > 0 { format!("; and {more} more") } else { String::new() }
        ),
        statement: None,
        options: vec![
            format!("repair anyway, keeping them exactly as they are (verification proves them unchanged): `phantom-sync repair --accept-existing-drift{revert} --db-url \"$PHANTOM_DB_URL\"`"),
            "bring them into the migrations: for an applied migration edited after it ran, `phantom-sync restore-file VERSION` writes what the ledger recorded; or write a follow-up migration that creates or drops them on purpose".into(),
        ],
    }
}

pub(crate) fn backup_steps() -> Vec<Step> {
    let step = |id: &str, title: &str, action: Action| Step {
        id: id.into(),
        phase: Phase::Backup,
        title: title.into(),
        action,
        sql: Vec::new(),
    };
    vec![
        step(
            "1.1",
            "Export migration history (ledger.json, ledger.txt)",
            Action::ExportLedger,
        ),
        step(
            "1.2",
            "Record row counts and checksums of every table",
            Action::RecordData,
        ),
        step(
            "1.3",
            "Dump the database with the server's own pg_dump",
            Action::Dump,
        ),
    ]
}

fn repair_step(
    project: &Project,
    revert: Vec<String>,
    record: Vec<String>,
    rekey: Vec<(String, String)>,
) -> Step {
    let table = format!("{}.{}", ledger::SCHEMA, ledger::TABLE);
    let mut sql = vec!["BEGIN".to_string()];
    if !revert.is_empty() {
        let list = revert
            .iter()
            .map(|v| format!("'{v}'"))
            .collect::<Vec<_>>()
            .join(", ");
        sql.push(format!(
            "-- expect DELETE {}\nDELETE FROM {table} WHERE version IN ({list})",
            revert.len()
        ));
    }
    for version in &record {
        let name = project
            .get(version)
            .map(|m| m.name.clone())
            .unwrap_or_default();
        sql.push(format!("INSERT INTO {table} (version, name, statements) VALUES ('{version}', '{name}', $statements)"));
    }
    for (from, to) in &rekey {
        sql.push(format!(
            "UPDATE {table} SET version = '{to}' WHERE version = '{from}'"
        ));
    }
    sql.push("COMMIT".into());
    Step {
        id: "2.1".into(),
        phase: Phase::LedgerRepair,
        title: "Repair the migration history in one transaction".into(),
        action: Action::RepairLedger {
            revert,
            record,
            rekey,
        },
        sql,
    }
}

/// Statements that cannot run inside the migration's transaction.
fn non_transactional(m: &crate::source::project::Migration) -> Vec<Refusal> {
    let mut out = Vec::new();
    for statement in &m.statements {
        let words = crate::source::split::words(statement);
        let reason = if words.contains(" CONCURRENTLY ") {
            Some("CONCURRENTLY cannot run inside a transaction block")
        } else if crate::source::split::is_transaction_command(statement) {
            Some("an embedded transaction command would end the migration's transaction early")
        } else if words.starts_with(" VACUUM ")
            || words.starts_with(" CREATE DATABASE ")
            || words.starts_with(" DROP DATABASE ")
            || words.starts_with(" ALTER SYSTEM ")
            || words.starts_with(" CREATE TABLESPACE ")
        {
            Some("this command cannot run inside a transaction block")
        } else {
            None
        };
        if let Some(reason) = reason {
            out.push(Refusal {
                version: m.version.clone(),
                reason: format!("{}: {reason}", m.file_name()),
                statement: Some(statement.clone()),
                options: vec![
                    "move the statement into a migration of its own and apply it by hand, outside a transaction".into(),
                    "drop CONCURRENTLY if a short lock on the table is acceptable".into(),
                ],
            });
        }
    }
    out
}

#[cfg(test)]
mod tests;
