//! What a ledger row's recorded statements did that today's file does not —
//! found by replay, like every effect: on a scratch database set up like the
//! target, the migrations run in order; where the ledger recorded other
//! statements than a file, those run first inside a transaction that is
//! rolled back after what they touched is read, then the file runs
//! (`effects::replay_trying`). The difference between the two catalogs —
//! found among the keys either changed — set against the live one, explains
//! an edited migration in words ("the recorded version also creates column
//! `public.user_consents.ip_address` (text); the live database has it;
//! today's file does not create it").

use std::collections::BTreeMap;

use sqlx::Connection;

use crate::Result;
use crate::engine::effects::{Instead, ReplayMode, Tried, replay_trying};
use crate::pg::sandbox::Database;
use crate::source::catalog::{Catalog, CatalogOptions, Change, Difference, ObjectKind};
use crate::source::environment::Environment;
use crate::source::ledger::Ledger;
use crate::source::project::Project;

/// How one migration's recorded statements differ from its file in effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variant {
    /// `diff(file's catalog, recorded statements' catalog)` at that point of the replay.
    pub differences: Vec<Difference>,
    /// The recorded statements failed on the replay (the message), if they did.
    pub failed: Option<String>,
    /// Why the recorded statements were not tried, if they were not.
    pub not_tried: Option<String>,
}

/// The variants of every local migration whose ledger row recorded other
/// statements than its file; empty (and no scratch database) when none did.
pub async fn recorded_variants(
    project: &Project,
    ledger: &Ledger,
    major: u8,
    options: &CatalogOptions,
    environment: &Environment,
) -> Result<BTreeMap<String, Variant>> {
    recorded_variants_with(
        project,
        ledger,
        major,
        options,
        environment,
        ReplayMode::Targeted,
    )
    .await
}

/// [`recorded_variants`], reading the catalog the way `mode` says (the whole
/// catalog is the reference the targeted reads are tested against).
pub async fn recorded_variants_with(
    project: &Project,
    ledger: &Ledger,
    major: u8,
    options: &CatalogOptions,
    environment: &Environment,
    mode: ReplayMode,
) -> Result<BTreeMap<String, Variant>> {
    let edited: BTreeMap<String, Vec<String>> = project
        .migrations
        .iter()
        .filter_map(|m| {
            let recorded = ledger.get(&m.version)?.statements.as_deref()?;
            (recorded != m.statements.as_slice()).then(|| (m.version.clone(), recorded.to_vec()))
        })
        .collect();
    if edited.is_empty() {
        return Ok(BTreeMap::new());
    }
    let scratch = Database::fresh(major, "variants").await?;
    let result = async {
        let mut conn = scratch.connect().await?;
        let tried = replay_trying(project, &mut conn, options, environment, mode, &edited).await;
        conn.close().await.ok();
        tried
    }
    .await;
    scratch.drop_database().await?;
    Ok(result?
        .into_iter()
        .map(|(version, tried)| (version, Variant::of(tried)))
        .collect())
}

impl Variant {
    /// The recorded statements' catalog against the file's, from what each
    /// changed: only keys one of them changed can differ.
    fn of(tried: Tried) -> Variant {
        let unanswered = |failed, not_tried| Variant {
            differences: Vec::new(),
            failed,
            not_tried,
        };
        let recorded = match tried.instead {
            Instead::Changed(changes) => changes,
            Instead::Failed(message) => return unanswered(Some(message), None),
            Instead::NotTried(why) => return unanswered(None, Some(why)),
        };
        let by_key = |changes: &[Difference]| -> BTreeMap<String, Difference> {
            changes.iter().map(|d| (d.key.clone(), d.clone())).collect()
        };
        let (file, recorded) = (by_key(&tried.file), by_key(&recorded));
        let keys: std::collections::BTreeSet<&String> =
            file.keys().chain(recorded.keys()).collect();
        let differences = keys
            .into_iter()
            .filter_map(|key| {
                let (f, r) = (file.get(key), recorded.get(key));
                let before = f.or(r).and_then(|d| d.before());
                let want = f.map_or(before, Difference::after);
                let have = r.map_or(before, Difference::after);
                let kind = f.or(r)?.kind;
                let change = Change::between(want, have)?;
                Some(Difference {
                    key: key.clone(),
                    kind,
                    change,
                })
            })
            .collect();
        Variant {
            differences,
            failed: None,
            not_tried: None,
        }
    }
}

/// The variant in words, each line set against the live database.
pub fn explain(
    variant: &Variant,
    live: &Catalog,
    is_environment: impl Fn(&str) -> bool,
) -> Vec<String> {
    if let Some(message) = &variant.failed {
        return vec![format!(
            "the recorded statements no longer run after the migrations before them ({message}), so what they did cannot be compared"
        )];
    }
    if let Some(why) = &variant.not_tried {
        return vec![format!(
            "the recorded statements were not tried in the file's place ({why}), so what they did cannot be compared"
        )];
    }
    let live_says = |key: &str| {
        if live.get(key).is_some() {
            "the live database has it"
        } else {
            "the live database does not have it"
        }
    };
    let mut lines = Vec::new();
    for d in variant
        .differences
        .iter()
        .filter(|d| !is_environment(&d.key))
    {
        let what = shown(d);
        let line = match &d.change {
            Change::Unexpected { .. } => format!(
                "the recorded version also creates {what}; {}; today's file does not create it",
                live_says(&d.key)
            ),
            Change::Missing { .. } => format!(
                "today's file creates {what}, which the recorded version did not; {}",
                live_says(&d.key)
            ),
            Change::Changed { expected, found } => {
                let now = match live.get(&d.key) {
                    Some(o) if o.definition == *found => {
                        "the live database has the recorded form".to_string()
                    }
                    Some(o) if o.definition == *expected => {
                        "the live database has today's form".to_string()
                    }
                    Some(_) => "the live database has a third form".to_string(),
                    None => "the live database does not have it".to_string(),
                };
                format!(
                    "the recorded version defines {} as `{}`, today's file as `{}`; {now}",
                    d.key,
                    short(found),
                    short(expected)
                )
            }
        };
        lines.push(line);
    }
    lines
}

/// `column public.t.c (text)`; a definition only where it says something short.
fn shown(d: &Difference) -> String {
    let definition = match &d.change {
        Change::Missing { expected } => expected,
        Change::Unexpected { found } | Change::Changed { found, .. } => found,
    };
    let says_nothing = definition.is_empty()
        || definition == d.kind.label()
        || matches!(
            d.kind,
            ObjectKind::Function | ObjectKind::View | ObjectKind::MaterializedView
        )
        || definition.len() > 80;
    if says_nothing {
        d.key.clone()
    } else {
        format!("{} ({definition})", d.key)
    }
}

fn short(text: &str) -> String {
    match text.char_indices().nth(80) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::catalog::{Object, diff};
    use proptest::prelude::*;

    fn catalog(definitions: &[Option<u8>]) -> Catalog {
        let mut catalog = Catalog::default();
        for (i, definition) in definitions.iter().enumerate() {
            if let Some(d) = definition {
                let key = format!("column public.t.c{i}");
                catalog.objects.insert(
                    key.clone(),
                    Object {
                        key,
                        kind: ObjectKind::Column,
                        definition: format!("type{d}"),
                    },
                );
            }
        }
        catalog
    }

    proptest! {
        /// From what the file and the recorded statements each changed in
        /// the same catalog, the variant is what a diff of the two whole
        /// catalogs gives.
        #[test]
        fn a_variant_from_two_sets_of_changes_is_the_diff_of_the_two_catalogs(
            keys in proptest::collection::vec(
                (proptest::option::of(0u8..3), proptest::option::of(0u8..3), proptest::option::of(0u8..3)),
                0..8,
            )
        ) {
            let before = catalog(&keys.iter().map(|k| k.0).collect::<Vec<_>>());
            let file = catalog(&keys.iter().map(|k| k.1).collect::<Vec<_>>());
            let recorded = catalog(&keys.iter().map(|k| k.2).collect::<Vec<_>>());
            let variant = Variant::of(Tried {
                instead: Instead::Changed(diff(&recorded, &before)),
                file: diff(&file, &before),
            });
            prop_assert_eq!(variant.differences, diff(&file, &recorded));
            prop_assert_eq!(variant.failed, None);
            prop_assert_eq!(variant.not_tried, None);
        }
    }

    #[test]
    fn recorded_statements_that_failed_are_a_variant_without_differences() {
        let variant = Variant::of(Tried {
            instead: Instead::Failed(
                "relation \"nowhere.t\" does not exist [SQLSTATE 42P01]".into(),
            ),
            file: diff(&catalog(&[Some(1)]), &Catalog::default()),
        });
        assert!(variant.differences.is_empty());
        assert_eq!(
            variant.failed.as_deref(),
            Some("relation \"nowhere.t\" does not exist [SQLSTATE 42P01]")
        );
    }

    #[test]
    fn recorded_statements_that_were_not_tried_say_why() {
        let variant = Variant::of(Tried {
            instead: Instead::NotTried(
                "`commit` would end the transaction they are tried in".into(),
            ),
            file: Vec::new(),
        });
        assert_eq!(
            explain(&variant, &Catalog::default(), |_| false),
            vec!["the recorded statements were not tried in the file's place (`commit` would end the transaction they are tried in), so what they did cannot be compared".to_string()]
        );
    }

    #[test]
    fn a_recorded_column_the_file_lost_is_explained_against_the_live_table() {
        let mut live = Catalog::default();
        live.objects.insert(
            "column public.user_consents.ip_address".into(),
            Object {
                key: "column public.user_consents.ip_address".into(),
                kind: ObjectKind::Column,
                definition: "text".into(),
            },
        );
        let variant = Variant {
            differences: vec![
                Difference {
                    key: "column public.user_consents.ip_address".into(),
                    kind: ObjectKind::Column,
                    change: Change::Unexpected {
                        found: "text".into(),
                    },
                },
                Difference {
                    key: "grant public.user_consents anon".into(),
                    kind: ObjectKind::Grant,
                    change: Change::Unexpected {
                        found: "SELECT".into(),
                    },
                },
            ],
            failed: None,
            not_tried: None,
        };
        let lines = explain(&variant, &live, |k| k.starts_with("grant "));
        assert_eq!(
            lines,
            vec!["the recorded version also creates column public.user_consents.ip_address (text); the live database has it; today's file does not create it".to_string()]
        );
    }
}
