//! Every difference between the target and a clean replay, sorted into the
//! three sets a repair must keep apart: the environment's (grants from
//! default privileges), what the repair will close (objects of the
//! migrations it applies), and pre-existing drift (everything else: there
//! before the repair, untouched by any step).

use std::collections::BTreeSet;

use super::{Differences, Drift, Entry, Status};
use crate::engine::effects::Effects;
use crate::source::catalog::{
    Catalog, Change, TableNames, diff, grant_object, owner_function, owner_table,
};

/// Statuses whose migrations the plan re-applies.
pub(crate) const REAPPLIED: [Status; 4] = [
    Status::Phantom,
    Status::Partial,
    Status::Drifted,
    Status::Pending,
];

/// Sorts `diff(clean replay, live)` into the three sets.
pub(super) fn classify(entries: &[Entry], effects: &Effects, live: &Catalog) -> Differences {
    let clean = effects.final_catalog();
    let touched = Touched::by(entries, effects);
    let tables: TableNames = clean.tables().into_iter().chain(live.tables()).collect();
    let mut out = Differences::default();
    for d in diff(clean, live) {
        let definition = match &d.change {
            Change::Missing { expected } => expected,
            Change::Unexpected { found } | Change::Changed { found, .. } => found,
        };
        let table = owner_table(&d.key, definition, &tables);
        // What a step creates, alters or drops is the repair's, grants
        // included; the environment's are grants on the other objects the
        // target already has (a missing object's come with it).
        if touched.covers(&d.key, table.as_deref()) {
            out.to_close.push(d.describe());
        } else if effects.grants.is_environment(&d.key) && grant_object_exists(&d.key, live) {
            out.environment.push(d.describe());
        } else {
            out.pre_existing.push(Drift {
                description: d.describe(),
                difference: d,
                table,
                rows: None,
            });
        }
    }
    out
}

/// What the repair's re-applied migrations create or change.
struct Touched {
    keys: BTreeSet<String>,
    tables: BTreeSet<String>,
    functions: Vec<String>,
}

impl Touched {
    fn by(entries: &[Entry], effects: &Effects) -> Touched {
        let clean = effects.final_catalog();
        let tables = clean.table_names();
        let mut touched = Touched {
            keys: BTreeSet::new(),
            tables: BTreeSet::new(),
            functions: Vec::new(),
        };
        for entry in entries.iter().filter(|e| REAPPLIED.contains(&e.status)) {
            let Some((_, m)) = effects.of(&entry.version) else {
                continue;
            };
            for change in &m.changes {
                let definition = match &change.change {
                    Change::Missing { expected } | Change::Changed { expected, .. } => expected,
                    Change::Unexpected { found } => found,
                };
                if let Some(t) = owner_table(&change.key, definition, &tables) {
                    touched.tables.insert(t);
                }
                if let Some(f) = change.key.strip_prefix("function ") {
                    touched.functions.push(f.to_string());
                }
                touched.keys.insert(change.key.clone());
            }
        }
        touched
    }

    fn covers(&self, key: &str, table: Option<&str>) -> bool {
        self.keys.contains(key)
            || table.is_some_and(|t| self.tables.contains(t))
            || owner_function(key, &self.functions).is_some()
    }
}

/// True when the object a grant key is about exists in `live`.
fn grant_object_exists(key: &str, live: &Catalog) -> bool {
    grant_object(key).is_some_and(|object| {
        [
            "table",
            "view",
            "materialized view",
            "sequence",
            "function",
            "column",
        ]
        .iter()
        .any(|kind| live.get(&format!("{kind} {object}")).is_some())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::effects::MigrationEffects;
    use crate::engine::environment::GrantOrigins;
    use crate::source::catalog::{Difference, Object, ObjectKind};

    /// A replay that created `public.t` and granted SELECT on it to anon.
    fn effects(environment_roles: &[&str]) -> Effects {
        let made = |kind, name: &str, definition: &str| {
            let object = Object::new(kind, name, definition);
            Difference {
                key: object.key,
                kind,
                change: Change::Missing {
                    expected: definition.into(),
                },
            }
        };
        let mut effects = Effects::new(
            Catalog::default(),
            vec![MigrationEffects {
                version: "1".into(),
                changes: vec![
                    made(ObjectKind::Table, "public.t", "table"),
                    made(ObjectKind::Grant, "public.t anon", "SELECT"),
                ],
            }],
            Default::default(),
        );
        effects.grants = GrantOrigins {
            explicit: BTreeSet::new(),
            environment_roles: environment_roles.iter().map(|r| r.to_string()).collect(),
        };
        effects
    }

    fn live(tables: &[&str]) -> Catalog {
        let mut live = Catalog::default();
        for t in tables {
            live.insert(Object::new(ObjectKind::Table, t, "table"));
        }
        live
    }

    #[test]
    fn a_missing_grant_a_migration_chose_is_pre_existing_drift() {
        // anon is no role of the environment: the grant was the migration's.
        let out = classify(&[], &effects(&[]), &live(&["public.t"]));
        assert!(out.environment.is_empty(), "{:?}", out.environment);
        let drift: Vec<&str> = out
            .pre_existing
            .iter()
            .map(|d| d.difference.key.as_str())
            .collect();
        assert_eq!(drift, ["grant public.t anon"]);
    }

    #[test]
    fn an_environment_grant_is_the_environments_only_on_an_object_the_target_has() {
        let on_existing = classify(&[], &effects(&["anon"]), &live(&["public.t"]));
        assert_eq!(on_existing.environment.len(), 1, "{on_existing:?}");
        assert!(on_existing.pre_existing.is_empty());
        // Without the table, its grant goes with it: drift, not environment.
        let on_missing = classify(&[], &effects(&["anon"]), &live(&[]));
        assert!(on_missing.environment.is_empty(), "{on_missing:?}");
        let drift: Vec<&str> = on_missing
            .pre_existing
            .iter()
            .map(|d| d.difference.key.as_str())
            .collect();
        assert_eq!(drift, ["grant public.t anon", "table public.t"]);
    }
}
