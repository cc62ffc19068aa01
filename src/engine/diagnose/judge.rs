//! One migration against the live catalog: which of the objects its replay
//! created or changed are present, missing, or present with another shape —
//! judged against every shape later migrations give them.

use std::collections::{BTreeMap, BTreeSet};

use super::Status;
use crate::engine::effects::Effects;
use crate::source::catalog::{Catalog, Change, Difference, ObjectKind, parts_phrase};

/// How the live schema compares with one migration's effects.
#[derive(Debug, Default)]
pub(super) struct Judgement {
    present: Vec<String>,
    missing: Vec<String>,
    drifted: Vec<String>,
    /// Objects this migration drops that existed before it and are gone now.
    pub(super) drops_done: Vec<String>,
}

impl Judgement {
    pub(super) fn is_empty(&self) -> bool {
        self.present.is_empty() && self.missing.is_empty() && self.drifted.is_empty()
    }

    /// Missing top-level objects next to present ones mean the migration
    /// stopped half way (partial); objects that are all there but with
    /// another shape, or without parts the same migration gave them, mean
    /// drift.
    pub(super) fn recorded_status(&self) -> Status {
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

    pub(super) fn unrecorded_status(&self) -> Status {
        if !self.present.is_empty() && self.missing.is_empty() && self.drifted.is_empty() {
            Status::Unrecorded
        } else {
            Status::Pending
        }
    }

    pub(super) fn evidence(&self) -> Vec<String> {
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
pub(super) fn judge(index: usize, effects: &Effects, live: &Catalog) -> Judgement {
    let mut j = Judgement::default();
    let changes = &effects.migrations[index].changes;
    let final_catalog = effects.final_catalog();
    let created_tables: BTreeSet<String> = changes
        .iter()
        .filter(|d| d.kind == ObjectKind::Table && matches!(d.change, Change::Missing { .. }))
        .filter_map(|d| table_name(&d.key))
        .collect();
    let mut missing_tables: BTreeSet<String> = BTreeSet::new();
    let mut detail: Vec<(Option<String>, ObjectKind, String, bool)> = Vec::new(); // (parent table, kind, text, is drift)

    for d in changes {
        // What default privileges give is the environment's, not this migration's.
        if d.kind == ObjectKind::Grant && effects.grants.is_environment(&d.key) {
            continue;
        }
        match &d.change {
            Change::Missing { .. } | Change::Changed { .. } => {
                let shapes = effects.shapes_after(index, &d.key);
                match live.get(&d.key) {
                    Some(obj) if shapes.contains(obj.definition.as_str()) => {
                        j.present.push(d.key.clone())
                    }
                    Some(obj) if matches!(&d.change, Change::Changed { found, .. } if *found == obj.definition) =>
                    {
                        detail.push((None, d.kind, format!("{}: not changed yet", d.key), false));
                    }
                    Some(obj) => {
                        let expected = effects
                            .definition_after(index, &d.key)
                            .unwrap_or_default()
                            .to_string();
                        let shown = Difference {
                            key: d.key.clone(),
                            kind: d.kind,
                            change: Change::Changed {
                                expected,
                                found: obj.definition.clone(),
                            },
                        };
                        detail.push((None, d.kind, shown.describe(), true));
                    }
                    None if final_catalog.get(&d.key).is_none() => {}
                    None => {
                        let parent = parent_table(d, final_catalog, effects.final_tables());
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
                                expected: effects
                                    .definition_after(index, &d.key)
                                    .unwrap_or_default()
                                    .to_string(),
                            },
                        };
                        detail.push((parent, d.kind, shown.describe(), drift));
                    }
                }
            }
            // A dropped object that is gone proves nothing (it may never have
            // been created); one that is still there is a missing effect.
            Change::Unexpected { .. } => {
                let recreated = effects.exists_after(index, &d.key);
                if !recreated && live.get(&d.key).is_none() {
                    j.drops_done.push(d.key.clone());
                }
                if !recreated && live.get(&d.key).is_some() {
                    detail.push((
                        None,
                        d.kind,
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
        .filter_map(|(_, _, text, _)| {
            text.strip_prefix("function ")
                .and_then(|t| t.split_once(": missing"))
                .map(|(f, _)| f.to_string())
        })
        .collect();
    // The line of a missing table or function → its hidden parts by kind.
    let mut hidden: BTreeMap<String, BTreeMap<&'static str, usize>> = BTreeMap::new();
    for (parent, kind, text, drift) in detail {
        let of_missing_function = missing_functions.iter().find(|f| {
            text.starts_with(&format!("grant {f} "))
                || text.starts_with(&format!("comment function {f}"))
        });
        let head = match (of_missing_function, &parent) {
            (Some(f), _) => Some(format!("function {f}:")),
            (None, Some(p)) if missing_tables.contains(p) => Some(format!("table {p}:")),
            _ => None,
        };
        match head {
            Some(head) => {
                *hidden
                    .entry(head)
                    .or_default()
                    .entry(kind.label())
                    .or_insert(0) += 1
            }
            None if drift => j.drifted.push(text),
            None => j.missing.push(text),
        }
    }
    for (head, parts) in hidden {
        if let Some(line) = j.missing.iter_mut().find(|l| l.starts_with(&head)) {
            line.push_str(&format!(", with {}", parts_phrase(&parts)));
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
fn parent_table(
    d: &Difference,
    catalog: &Catalog,
    tables: &crate::source::catalog::TableNames,
) -> Option<String> {
    if d.kind == ObjectKind::Table {
        return None;
    }
    let definition = catalog
        .get(&d.key)
        .map(|o| o.definition.as_str())
        .unwrap_or("");
    crate::source::catalog::owner_table(&d.key, definition, tables)
}

#[cfg(test)]
mod tests;
