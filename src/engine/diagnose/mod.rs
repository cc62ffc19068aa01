//! Ledger versus schema: one [`Status`] per migration, with evidence. The
//! identity check is three-way — the local file, the statements stored in the
//! ledger row, and the live catalog judged against the clean replay's
//! [`Effects`].

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::engine::effects::Effects;

mod differences;
mod explain;
mod judge;

use crate::source::catalog::{Catalog, Difference};
use crate::source::ledger::Ledger;
use crate::source::project::{Project, Skipped};
use explain::{lost_data_lines, recorded_data_statements, statement_difference};
use judge::judge;

/// What the ledger and the schema say about one migration (DESIGN.md's table).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Recorded, and its effects are present.
    Applied,
    /// Recorded, but none of its effects are present.
    Phantom,
    /// Recorded, some effects present and some missing.
    Partial,
    /// Recorded, and objects it made are present with another shape.
    Drifted,
    /// Not recorded, but its effects are present (applied by hand).
    Unrecorded,
    /// Not recorded and not applied.
    Pending,
    /// Recorded under a version with no local file.
    RemoteOnly,
    /// Recorded and applied, but the file's statements differ from the ledger's.
    Edited,
    /// Recorded under another version with exactly this file's statements.
    ReVersioned,
}

impl Status {
    /// The word used in tables and reports.
    pub fn label(self) -> &'static str {
        match self {
            Status::Applied => "applied",
            Status::Phantom => "phantom",
            Status::Partial => "partial",
            Status::Drifted => "drifted",
            Status::Unrecorded => "unrecorded",
            Status::Pending => "pending",
            Status::RemoteOnly => "remote-only",
            Status::Edited => "edited",
            Status::ReVersioned => "re-versioned",
        }
    }
}

/// One line of the diagnosis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Entry {
    pub version: String,
    pub name: String,
    /// A local file exists for it.
    pub local: bool,
    /// The ledger row's version, when the ledger has one (for re-versioned
    /// migrations it differs from `version`).
    pub recorded_as: Option<String>,
    pub status: Status,
    /// Why: objects present, missing or of another shape, statement differences.
    pub evidence: Vec<String>,
    /// What a person needs beyond the status: how an edited migration's
    /// recorded statements differ from its file, data statements the ledger
    /// recorded that the file no longer has. Not part of the fingerprint.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub explanation: Vec<String>,
}

/// The diagnosis of a whole project against one database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Diagnosis {
    pub ledger_exists: bool,
    pub entries: Vec<Entry>,
    /// Every difference between the target and a clean replay, in the three
    /// sets that must be kept apart (see [`Differences`]).
    #[serde(default)]
    pub differences: Differences,
    /// Entries of the migrations folder that are not migrations, and why
    /// (the Supabase CLI skips them too). Not part of the fingerprint.
    #[serde(default)]
    pub skipped: Vec<Skipped>,
    /// The folder had no migration at all (so every ledger row reads as remote-only).
    #[serde(default)]
    pub no_migrations: bool,
    /// sha256 of the ledger, the entries and the differences: a plan made
    /// from this diagnosis carries it.
    pub fingerprint: String,
}

/// The differences between the target and a clean replay of every
/// migration, sorted into what explains them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Differences {
    /// Grants the target's environment gives or withholds (default
    /// privileges): never evidence against a migration.
    pub environment: Vec<String>,
    /// Differences on objects of the migrations the repair applies: the
    /// repair is expected to close them (the prediction checks it does).
    pub to_close: Vec<String>,
    /// Differences that exist before the repair on objects no repair step
    /// touches (an applied migration edited after it ran, a hand-made
    /// column): reported, kept as they are, never blocking.
    pub pre_existing: Vec<Drift>,
}

/// One pre-existing difference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Drift {
    /// The object and how it differs from a clean replay.
    pub difference: Difference,
    /// The difference in words (as the schema check words it).
    pub description: String,
    /// The table it belongs to, if any.
    pub table: Option<String>,
    /// That table's rows at inspection (filled in by [`crate::engine::inspect`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<i64>,
}

impl Diagnosis {
    /// Entries with `status`.
    pub fn with_status(&self, status: Status) -> Vec<&Entry> {
        self.entries.iter().filter(|e| e.status == status).collect()
    }

    /// Versions with `status`.
    pub fn versions(&self, status: Status) -> Vec<String> {
        self.with_status(status)
            .into_iter()
            .map(|e| e.version.clone())
            .collect()
    }

    /// Number of entries per status, in status order.
    pub fn counts(&self) -> BTreeMap<Status, usize> {
        let mut counts = BTreeMap::new();
        for e in &self.entries {
            *counts.entry(e.status).or_insert(0) += 1;
        }
        counts
    }

    /// True when every migration is applied (edited ones count: their schema is there).
    pub fn is_in_sync(&self) -> bool {
        self.entries
            .iter()
            .all(|e| matches!(e.status, Status::Applied | Status::Edited))
    }
}

/// Judges every migration of `project` against `ledger` and the `live` catalog.
pub fn diagnose(
    project: &Project,
    ledger: &Ledger,
    live: &Catalog,
    effects: &Effects,
) -> Diagnosis {
    let local: BTreeSet<&str> = project
        .migrations
        .iter()
        .map(|m| m.version.as_str())
        .collect();
    let foreign: Vec<_> = ledger
        .rows
        .iter()
        .filter(|r| !local.contains(r.version.as_str()))
        .collect();
    let mut rekeyed: BTreeSet<String> = BTreeSet::new();
    let mut entries = Vec::new();

    for (index, migration) in project.migrations.iter().enumerate() {
        let judgement = judge(index, effects, live);
        let row = ledger.get(&migration.version);
        let mut explanation = Vec::new();
        let (status, recorded_as, mut evidence) = match row {
            Some(row) => {
                let mut evidence = judgement.evidence();
                let edited = row
                    .statements
                    .as_ref()
                    .is_some_and(|s| *s != migration.statements);
                let status = judgement.recorded_status();
                if edited {
                    let recorded = row.statements.as_deref().unwrap_or(&[]);
                    evidence.push(statement_difference(recorded, &migration.statements));
                    let lost = recorded_data_statements(recorded, &migration.statements);
                    let reapplied = differences::REAPPLIED.contains(&status);
                    explanation.extend(lost_data_lines(&lost, reapplied));
                }
                let status = if edited && status == Status::Applied {
                    Status::Edited
                } else {
                    status
                };
                (status, Some(row.version.clone()), evidence)
            }
            None => match foreign
                .iter()
                .find(|r| r.statements.as_ref() == Some(&migration.statements))
            {
                Some(twin) if !rekeyed.contains(&twin.version) => {
                    rekeyed.insert(twin.version.clone());
                    let mut evidence = vec![format!(
                        "recorded as {} with this file's exact statements (applied through another tool)",
                        twin.version
                    )];
                    evidence.extend(judgement.evidence());
                    (Status::ReVersioned, Some(twin.version.clone()), evidence)
                }
                _ if judgement.is_empty() && !judgement.drops_done.is_empty() => {
                    drop_only(index, &judgement.drops_done, effects, &entries)
                }
                _ => {
                    let status = judgement.unrecorded_status();
                    (status, None, judgement.evidence())
                }
            },
        };
        if judgement.is_empty() && !judgement.drops_done.is_empty() && row.is_some() {
            evidence.push(format!(
                "its drops are done: {} gone (it only drops objects)",
                judgement.drops_done.join(", ")
            ));
        } else if judgement.is_empty()
            && judgement.drops_done.is_empty()
            && status != Status::Pending
        {
            evidence.push(
                "nothing to check in the schema (it only drops objects or changes data)".into(),
            );
        }
        entries.push(Entry {
            version: migration.version.clone(),
            name: migration.name.clone(),
            local: true,
            recorded_as,
            status,
            evidence,
            explanation,
        });
    }
    for row in foreign.iter().filter(|r| !rekeyed.contains(&r.version)) {
        entries.push(Entry {
            version: row.version.clone(),
            name: row.name.clone().unwrap_or_default(),
            local: false,
            recorded_as: Some(row.version.clone()),
            status: Status::RemoteOnly,
            evidence: vec![
                "recorded in the ledger, but no local file has this version or these statements"
                    .into(),
            ],
            explanation: Vec::new(),
        });
    }
    entries.sort_by(|a, b| a.version.cmp(&b.version));
    let differences = differences::classify(&entries, effects, live);
    let fingerprint = fingerprint(ledger, &entries, &differences);
    Diagnosis {
        ledger_exists: ledger.exists,
        entries,
        differences,
        skipped: project.skipped.clone(),
        no_migrations: project.migrations.is_empty(),
        fingerprint,
    }
}

/// A migration that only drops objects, not recorded: its drops are done,
/// so it was applied by hand, when the objects existed before it — their
/// creators are present — and are gone now; otherwise it is still to come.
fn drop_only(
    index: usize,
    dropped: &[String],
    effects: &Effects,
    earlier: &[Entry],
) -> (Status, Option<String>, Vec<String>) {
    let creator_present = |key: &str| {
        let creator = effects.migrations[..index].iter().rposition(|m| {
            m.changes.iter().any(|c| {
                c.key == key
                    && !matches!(c.change, crate::source::catalog::Change::Unexpected { .. })
            })
        });
        match creator {
            // Made outside the migrations (the platform's): it existed.
            None => true,
            Some(i) => earlier.get(i).is_some_and(|e| {
                matches!(
                    e.status,
                    Status::Applied
                        | Status::Edited
                        | Status::Unrecorded
                        | Status::ReVersioned
                        | Status::Drifted
                )
            }),
        }
    };
    if dropped.iter().all(|k| creator_present(k)) {
        let evidence = vec![format!(
            "its drops are done: {} gone (it only drops objects)",
            dropped.join(", ")
        )];
        (Status::Unrecorded, None, evidence)
    } else {
        (Status::Pending, None, Vec::new())
    }
}

fn fingerprint(ledger: &Ledger, entries: &[Entry], differences: &Differences) -> String {
    let mut hasher = Sha256::new();
    hasher.update(ledger.fingerprint().as_bytes());
    for e in entries {
        hasher.update(
            format!(
                "{}|{}|{:?}|{}\n",
                e.version,
                e.status.label(),
                e.recorded_as,
                e.evidence.join(";")
            )
            .as_bytes(),
        );
    }
    for (set, lines) in [
        ("environment", differences.environment.clone()),
        ("to close", differences.to_close.clone()),
        (
            "pre-existing",
            differences
                .pre_existing
                .iter()
                .map(|d| d.description.clone())
                .collect(),
        ),
    ] {
        hasher.update(format!("{set}: {}\n", lines.join(";")).as_bytes());
    }
    format!("{:x}", hasher.finalize())
}

#[cfg(test)]
pub(crate) mod fixtures;
#[cfg(test)]
mod tests;
