//! Ledger versus schema: one [`Status`] per migration, with evidence. The
//! identity check is three-way — the local file, the statements stored in the
//! ledger row, and the live catalog judged against the clean replay's
//! [`Effects`].

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::engine::effects::Effects;
use crate::source::catalog::{Catalog, Change, Difference, ObjectKind};
use crate::source::ledger::Ledger;
use crate::source::project::Project;
use crate::text::count;

/// What the ledger and the schema say about one migration (DESIGN.md's table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
}

/// The diagnosis of a whole project against one database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diagnosis {
    pub ledger_exists: bool,
    pub entries: Vec<Entry>,
    /// sha256 of everything above: a plan made from this diagnosis carries it.
    pub fingerprint: String,
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
        let (status, recorded_as, mut evidence) = match row {
            Some(row) => {
                let mut evidence = judgement.evidence();
                let edited = row
                    .statements
                    .as_ref()
                    .is_some_and(|s| *s != migration.statements);
                let status = judgement.recorded_status();
                if edited {
                    evidence.push(statement_difference(
                        row.statements.as_deref().unwrap_or(&[]),
                        &migration.statements,
                    ));
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
                _ => {
                    let status = judgement.unrecorded_status();
                    (status, None, judgement.evidence())
                }
            },
        };
        if judgement.is_empty() && status != Status::Pending {
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
        });
    }
    entries.sort_by(|a, b| a.version.cmp(&b.version));
    let fingerprint = fingerprint(ledger, &entries);
    Diagnosis {
        ledger_exists: ledger.exists,
        entries,
        fingerprint,
    }
}

fn fingerprint(ledger: &Ledger, entries: &[Entry]) -> String {
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
    format!("{:x}", hasher.finalize())
}

fn statement_difference(recorded: &[String], local: &[String]) -> String {
    let first = recorded
        .iter()
        .zip(local)
        .position(|(a, b)| a != b)
        .unwrap_or(recorded.len().min(local.len()));
    format!(
        "ledger statements differ from the file: {} recorded, {} in the file, first difference at statement {}",
        recorded.len(),
        local.len(),
        first + 1
    )
}

/// How the live schema compares with one migration's effects.
#[derive(Debug, Default)]
struct Judgement {
    present: Vec<String>,
    missing: Vec<String>,
    drifted: Vec<String>,
}

impl Judgement {
    fn is_empty(&self) -> bool {
        self.present.is_empty() && self.missing.is_empty() && self.drifted.is_empty()
    }

    /// Missing top-level objects next to present ones mean the migration
    /// stopped half way (partial); objects that are all there but with
    /// another shape, or without parts the same migration gave them, mean
    /// drift.
    fn recorded_status(&self) -> Status {
        match (
            self.missing.is_empty(),
            self.drifted.is_empty(),
            self.present.is_empty(),
        ) {
            (true, true, _) => Status::Applied,
            (true, false, _) => Status::Drifted,
            (false, true, true) => Status::Phantom,
            _ => Status::Partial,
        }
    }

    fn unrecorded_status(&self) -> Status {
        if !self.present.is_empty() && self.missing.is_empty() && self.drifted.is_empty() {
            Status::Unrecorded
        } else {
            Status::Pending
        }
    }

    fn evidence(&self) -> Vec<String> {
        let mut out: Vec<String> = self.drifted.clone();
        out.extend(self.missing.iter().cloned());
        if !self.present.is_empty() && (!self.missing.is_empty() || !self.drifted.is_empty()) {
            out.push(format!("present: {}", summarise(&self.present)));
        }
        out
    }
}

fn summarise(keys: &[String]) -> String {
    const SHOWN: usize = 4;
    let mut text = keys
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if keys.len() > SHOWN {
        text.push_str(&format!(" and {} more", keys.len() - SHOWN));
    }
    text
}

/// Compares the live catalog with migration `index`'s effects.
fn judge(index: usize, effects: &Effects, live: &Catalog) -> Judgement {
    let mut j = Judgement::default();
    let changes = &effects.migrations[index].changes;
    let later = &effects.prefixes[index + 1..];
    let final_catalog = effects.final_catalog();
    let created_tables: BTreeSet<String> = changes
        .iter()
        .filter(|d| d.kind == ObjectKind::Table && matches!(d.change, Change::Missing { .. }))
        .filter_map(|d| table_name(&d.key))
        .collect();
    let mut missing_tables: BTreeSet<String> = BTreeSet::new();
    let mut detail: Vec<(Option<String>, String, bool)> = Vec::new(); // (parent table, text, is drift)

    for d in changes {
        match &d.change {
            Change::Missing { .. } | Change::Changed { .. } => {
                let shapes: BTreeSet<&str> = later
                    .iter()
                    .filter_map(|c| c.get(&d.key))
                    .map(|o| o.definition.as_str())
                    .collect();
                match live.get(&d.key) {
                    Some(obj) if shapes.contains(obj.definition.as_str()) => {
                        j.present.push(d.key.clone())
                    }
                    Some(obj) if matches!(&d.change, Change::Changed { found, .. } if *found == obj.definition) =>
                    {
                        detail.push((None, format!("{}: not changed yet", d.key), false));
                    }
                    Some(obj) => {
                        let expected = later[0]
                            .get(&d.key)
                            .map(|o| o.definition.clone())
                            .unwrap_or_default();
                        let shown = Difference {
                            key: d.key.clone(),
                            kind: d.kind,
                            change: Change::Changed {
                                expected,
                                found: obj.definition.clone(),
                            },
                        };
                        detail.push((None, shown.describe(), true));
                    }
                    None if final_catalog.get(&d.key).is_none() => {}
                    None => {
                        let parent = parent_table(d, final_catalog);
                        if d.kind == ObjectKind::Table
                            && let Some(t) = table_name(&d.key)
                        {
                            missing_tables.insert(t);
                        }
                        let drift = parent
                            .as_ref()
                            .is_some_and(|p| created_tables.contains(p) && live_has_table(live, p));
                        let shown = Difference {
                            key: d.key.clone(),
                            kind: d.kind,
                            change: Change::Missing {
                                expected: later[0]
                                    .get(&d.key)
                                    .map(|o| o.definition.clone())
                                    .unwrap_or_default(),
                            },
                        };
                        detail.push((parent, shown.describe(), drift));
                    }
                }
            }
            // A dropped object that is gone proves nothing (it may never have
            // been created); one that is still there is a missing effect.
            Change::Unexpected { .. } => {
                let recreated = later.iter().any(|c| c.get(&d.key).is_some());
                if !recreated && live.get(&d.key).is_some() {
                    detail.push((
                        None,
                        format!("{}: still present, this migration drops it", d.key),
                        false,
                    ));
                }
            }
        }
    }
    // Children of a missing table are implied by it: keep them out of the
    // evidence, count them. So are the grants and comments of a missing function.
    let missing_functions: Vec<String> = detail
        .iter()
        .filter_map(|(_, text, _)| {
            text.strip_prefix("function ")
                .and_then(|t| t.split_once(": missing"))
                .map(|(f, _)| f.to_string())
        })
        .collect();
    let mut hidden: BTreeMap<String, usize> = BTreeMap::new();
    for (parent, text, drift) in detail {
        let of_missing_function = missing_functions.iter().any(|f| {
            text.starts_with(&format!("grant {f} "))
                || text.starts_with(&format!("comment function {f}"))
        });
        if of_missing_function {
            continue;
        }
        match parent {
            Some(p) if missing_tables.contains(&p) => *hidden.entry(p).or_insert(0) += 1,
            _ if drift => j.drifted.push(text),
            _ => j.missing.push(text),
        }
    }
    for (table, n) in hidden {
        if let Some(line) = j
            .missing
            .iter_mut()
            .find(|l| l.starts_with(&format!("table {table}:")))
        {
            line.push_str(&format!(
                " (with its {}, constraints, indexes, policies and grants)",
                count(n, "column")
            ));
        }
    }
    j
}

/// `schema.table` of a `table schema.table` key.
fn table_name(key: &str) -> Option<String> {
    key.strip_prefix("table ").map(|t| t.to_string())
}

fn live_has_table(live: &Catalog, table: &str) -> bool {
    live.get(&format!("table {table}")).is_some()
}

/// The table an object belongs to (a column, constraint, index, policy, …), if any.
fn parent_table(d: &Difference, catalog: &Catalog) -> Option<String> {
    if d.kind == ObjectKind::Table {
        return None;
    }
    let definition = catalog
        .get(&d.key)
        .map(|o| o.definition.as_str())
        .unwrap_or("");
    crate::source::catalog::owner_table(&d.key, definition, &catalog.tables())
}
