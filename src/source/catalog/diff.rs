//! Comparing two catalogs: what the expected schema (a clean replay of the
//! migrations) has that the found one (the target) lacks, what the target
//! has on top, and what exists in both with another definition — each said
//! in words a person can act on.

use serde::{Deserialize, Serialize};

use super::canonical::{ColumnParts, short_type};
use super::{Catalog, ObjectKind};

/// How one object differs between the expected and the found catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case", tag = "change")]
pub enum Change {
    /// Expected but absent; `expected` is its expected definition.
    Missing { expected: String },
    /// Present but not expected; `found` is its definition.
    Unexpected { found: String },
    /// Present in both with different definitions.
    Changed { expected: String, found: String },
}

/// One object that differs, with its key and kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Difference {
    /// The object's key (e.g. `column public.prompts.title_en`).
    pub key: String,
    /// The object's kind.
    pub kind: ObjectKind,
    /// What differs.
    pub change: Change,
}

/// Every object whose presence or definition differs between `expected`
/// and `found`, sorted by key.
pub fn diff(expected: &Catalog, found: &Catalog) -> Vec<Difference> {
    let mut out = Vec::new();
    for (key, want) in &expected.objects {
        match found.objects.get(key) {
            None => out.push(Difference {
                key: key.clone(),
                kind: want.kind,
                change: Change::Missing {
                    expected: want.definition.clone(),
                },
            }),
            Some(have) if have.definition != want.definition => out.push(Difference {
                key: key.clone(),
                kind: want.kind,
                change: Change::Changed {
                    expected: want.definition.clone(),
                    found: have.definition.clone(),
                },
            }),
            Some(_) => {}
        }
    }
    for (key, have) in &found.objects {
        if !expected.objects.contains_key(key) {
            out.push(Difference {
                key: key.clone(),
                kind: have.kind,
                change: Change::Unexpected {
                    found: have.definition.clone(),
                },
            });
        }
    }
    out.sort_by(|a, b| a.key.cmp(&b.key));
    out
}

/// Definitions longer than this are cut in messages.
const SHOWN_CHARS: usize = 100;

impl Change {
    /// What `found` is to `expected` (`None`: the object is absent), as
    /// [`diff()`] says it; `None` when the two agree.
    pub fn between(expected: Option<&str>, found: Option<&str>) -> Option<Change> {
        match (expected, found) {
            (Some(e), None) => Some(Change::Missing {
                expected: e.to_string(),
            }),
            (None, Some(f)) => Some(Change::Unexpected {
                found: f.to_string(),
            }),
            (Some(e), Some(f)) if e != f => Some(Change::Changed {
                expected: e.to_string(),
                found: f.to_string(),
            }),
            _ => None,
        }
    }
}

impl Difference {
    /// Read as a change (`diff(after, before)`, as a migration's changes
    /// are): the definition before it, if the object existed.
    pub fn before(&self) -> Option<&str> {
        match &self.change {
            Change::Missing { .. } => None,
            Change::Unexpected { found } | Change::Changed { found, .. } => Some(found),
        }
    }

    /// Read as a change: the definition after it, if the object exists.
    pub fn after(&self) -> Option<&str> {
        match &self.change {
            Change::Missing { expected } | Change::Changed { expected, .. } => Some(expected),
            Change::Unexpected { .. } => None,
        }
    }

    /// One line for a person, e.g. `table public.organization_members: missing`,
    /// `constraint public.organizations.organizations_slug_key (UNIQUE (slug)): missing`,
    /// `column public.prompts.title_en: type text, expected varchar(200)`.
    pub fn describe(&self) -> String {
        match &self.change {
            Change::Missing { expected } => {
                format!("{}{}: missing", self.key, shown(self.kind, expected))
            }
            Change::Unexpected { found } => {
                format!("{}{}: unexpected", self.key, shown(self.kind, found))
            }
            Change::Changed { expected, found } => {
                format!(
                    "{}: {}",
                    self.key,
                    changed_words(self.kind, expected, found)
                )
            }
        }
    }
}

/// ` (<definition>)` when the definition tells a reader something the key
/// does not and is short enough to read; empty otherwise.
fn shown(kind: ObjectKind, definition: &str) -> String {
    let says_nothing = definition.is_empty()
        || definition == kind.label()
        || matches!(
            kind,
            ObjectKind::Function | ObjectKind::View | ObjectKind::MaterializedView
        );
    if says_nothing {
        return String::new();
    }
    format!(" ({})", truncate(definition))
}

fn truncate(text: &str) -> String {
    match text.char_indices().nth(SHOWN_CHARS) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

/// What changed, in words: column attribute by attribute, grants privilege
/// by privilege, function body or view query as "differs", anything else as
/// `<found>, expected <expected>`.
fn changed_words(kind: ObjectKind, expected: &str, found: &str) -> String {
    match kind {
        ObjectKind::Column => {
            column_changes(&ColumnParts::parse(expected), &ColumnParts::parse(found))
        }
        ObjectKind::View | ObjectKind::MaterializedView => "definition differs".to_string(),
        ObjectKind::Function => function_changes(expected, found),
        ObjectKind::Grant => grant_changes(expected, found),
        _ => format!("{}, expected {}", truncate(found), truncate(expected)),
    }
}

fn column_changes(expected: &ColumnParts, found: &ColumnParts) -> String {
    let none = || "none".to_string();
    let mut items = Vec::new();
    if expected.data_type != found.data_type {
        items.push(format!(
            "type {}, expected {}",
            short_type(&found.data_type),
            short_type(&expected.data_type)
        ));
    }
    if expected.collation != found.collation {
        let name = |c: &Option<String>| c.clone().unwrap_or_else(|| "default".to_string());
        items.push(format!(
            "collation {}, expected {}",
            name(&found.collation),
            name(&expected.collation)
        ));
    }
    if expected.not_null != found.not_null {
        let word = |not_null: bool| if not_null { "not null" } else { "nullable" };
        items.push(format!(
            "{}, expected {}",
            word(found.not_null),
            word(expected.not_null)
        ));
    }
    let optional = [
        ("identity", &expected.identity, &found.identity),
        ("default", &expected.default, &found.default),
        ("generated", &expected.generated, &found.generated),
    ];
    for (label, want, have) in optional {
        if want != have {
            let show = |v: &Option<String>| v.as_deref().map(truncate).unwrap_or_else(none);
            items.push(format!("{label} {}, expected {}", show(have), show(want)));
        }
    }
    if items.is_empty() {
        // Parsing lost the difference (an exotic definition): show both texts.
        return format!("{}, expected {}", found.render(), expected.render());
    }
    items.join("; ")
}

/// Privileges are listed `A, B (with grant option), C`: name the ones that differ.
fn grant_changes(expected: &str, found: &str) -> String {
    let want: Vec<&str> = expected.split(", ").collect();
    let have: Vec<&str> = found.split(", ").collect();
    let missing: Vec<&str> = want.iter().filter(|p| !have.contains(p)).copied().collect();
    let extra: Vec<&str> = have.iter().filter(|p| !want.contains(p)).copied().collect();
    let mut items = Vec::new();
    if !missing.is_empty() {
        items.push(format!("missing {}", missing.join(", ")));
    }
    if !extra.is_empty() {
        items.push(format!("unexpected {}", extra.join(", ")));
    }
    items.join("; ")
}

fn function_changes(expected: &str, found: &str) -> String {
    let (want_head, want_body) = expected.rsplit_once(" body ").unwrap_or((expected, ""));
    let (have_head, have_body) = found.rsplit_once(" body ").unwrap_or((found, ""));
    match (want_head == have_head, want_body == have_body) {
        (true, _) => "body differs".to_string(),
        (false, true) => format!("{}, expected {}", truncate(have_head), truncate(want_head)),
        (false, false) => format!(
            "{}, expected {}; body differs",
            truncate(have_head),
            truncate(want_head)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::catalog::Object;
    use pretty_assertions::assert_eq;

    fn catalog(objects: &[(ObjectKind, &str, &str)]) -> Catalog {
        let mut catalog = Catalog::default();
        for (kind, name, definition) in objects {
            catalog.insert(Object::new(*kind, name, *definition));
        }
        catalog
    }

    fn expected() -> Catalog {
        catalog(&[
            (ObjectKind::Table, "public.organizations", "table"),
            (ObjectKind::Table, "public.organization_members", "table"),
            (
                ObjectKind::Constraint,
                "public.organizations.organizations_slug_key",
                "UNIQUE (slug)",
            ),
            (
                ObjectKind::Column,
                "public.prompts.title_en",
                "character varying(200)",
            ),
            (ObjectKind::RowSecurity, "public.organizations", "enabled"),
        ])
    }

    fn found() -> Catalog {
        catalog(&[
            (ObjectKind::Table, "public.organizations", "table"),
            (ObjectKind::Column, "public.prompts.title_en", "text"),
            (
                ObjectKind::RowSecurity,
                "public.organizations",
                "enabled, forced",
            ),
            (ObjectKind::Table, "public.legacy", "table"),
        ])
    }

    #[test]
    fn diff_classifies_missing_unexpected_and_changed_sorted_by_key() {
        let got: Vec<(String, ObjectKind, Change)> = diff(&expected(), &found())
            .into_iter()
            .map(|d| (d.key, d.kind, d.change))
            .collect();
        let want = vec![
            (
                "column public.prompts.title_en".to_string(),
                ObjectKind::Column,
                Change::Changed {
                    expected: "character varying(200)".into(),
                    found: "text".into(),
                },
            ),
            (
                "constraint public.organizations.organizations_slug_key".to_string(),
                ObjectKind::Constraint,
                Change::Missing {
                    expected: "UNIQUE (slug)".into(),
                },
            ),
            (
                "rls public.organizations".to_string(),
                ObjectKind::RowSecurity,
                Change::Changed {
                    expected: "enabled".into(),
                    found: "enabled, forced".into(),
                },
            ),
            (
                "table public.legacy".to_string(),
                ObjectKind::Table,
                Change::Unexpected {
                    found: "table".into(),
                },
            ),
            (
                "table public.organization_members".to_string(),
                ObjectKind::Table,
                Change::Missing {
                    expected: "table".into(),
                },
            ),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn diff_of_equal_catalogs_is_empty() {
        assert_eq!(diff(&expected(), &expected()), vec![]);
        assert_eq!(diff(&Catalog::default(), &Catalog::default()), vec![]);
    }

    #[test]
    fn describe_says_what_a_person_needs() {
        let lines: Vec<String> = diff(&expected(), &found())
            .iter()
            .map(Difference::describe)
            .collect();
        assert_eq!(
            lines,
            vec![
                "column public.prompts.title_en: type text, expected varchar(200)",
                "constraint public.organizations.organizations_slug_key (UNIQUE (slug)): missing",
                "rls public.organizations: enabled, forced, expected enabled",
                "table public.legacy: unexpected",
                "table public.organization_members: missing",
            ]
        );
    }

    #[test]
    fn describe_lists_every_changed_column_attribute() {
        let difference = Difference {
            key: "column public.collections.name".into(),
            kind: ObjectKind::Column,
            change: Change::Changed {
                expected: "text not null default ''::text".into(),
                found: "text collate \"C\"".into(),
            },
        };
        assert_eq!(
            difference.describe(),
            "column public.collections.name: collation \"C\", expected default; nullable, expected not null; default none, expected ''::text"
        );
    }

    #[test]
    fn describe_says_a_function_body_differs_without_printing_hashes() {
        let difference = Difference {
            key: "function public.set_updated_at()".into(),
            kind: ObjectKind::Function,
            change: Change::Changed {
                expected: "function () returns trigger language plpgsql volatile body sha256:aaaa"
                    .into(),
                found: "function () returns trigger language plpgsql volatile body sha256:bbbb"
                    .into(),
            },
        };
        assert_eq!(
            difference.describe(),
            "function public.set_updated_at(): body differs"
        );
        let missing = Difference {
            key: "function public.set_updated_at()".into(),
            kind: ObjectKind::Function,
            change: Change::Missing {
                expected: "function () returns trigger body sha256:aaaa".into(),
            },
        };
        assert_eq!(
            missing.describe(),
            "function public.set_updated_at(): missing"
        );
    }

    #[test]
    fn describe_names_the_privileges_that_differ() {
        let difference = Difference {
            key: "grant public.collections anon".into(),
            kind: ObjectKind::Grant,
            change: Change::Changed {
                expected: "INSERT, SELECT".into(),
                found: "INSERT, TRUNCATE, UPDATE".into(),
            },
        };
        assert_eq!(
            difference.describe(),
            "grant public.collections anon: missing SELECT; unexpected TRUNCATE, UPDATE"
        );
    }

    #[test]
    fn describe_shortens_long_definitions() {
        let long = "x".repeat(150);
        let difference = Difference {
            key: "policy public.t.p".into(),
            kind: ObjectKind::Policy,
            change: Change::Unexpected { found: long },
        };
        let text = difference.describe();
        assert!(text.starts_with("policy public.t.p ("), "{text}");
        assert!(text.ends_with("…): unexpected"), "{text}");
        let shown = text
            .split_once('(')
            .and_then(|(_, rest)| rest.split_once('…'))
            .map(|(kept, _)| kept);
        assert_eq!(shown, Some("x".repeat(SHOWN_CHARS).as_str()));
    }
}
