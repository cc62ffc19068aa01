//! What a scenario did to the schema, in words a reviewer reads in a
//! snapshot: the difference between two catalogs, one line per object, with
//! the columns, constraints, indexes, policies, grants … of a table — and the
//! grants and comment of a function — that appeared or disappeared as a
//! whole folded into that table's (function's) line.

use std::collections::BTreeMap;

use crate::source::catalog::{Catalog, Change, ObjectKind, diff, owner_function, owner_table};
use crate::text::plural;

/// How `to` differs from `from`: `+` for objects only in `to`, `-` for
/// objects only in `from`, `~` for objects in both with another definition.
pub(crate) fn describe(from: &Catalog, to: &Catalog) -> Vec<String> {
    let differences = diff(from, to);
    // Tables and functions that appeared (+) or disappeared (-) as a whole, by key.
    let whole: BTreeMap<String, char> = differences
        .iter()
        .filter(|d| matches!(d.kind, ObjectKind::Table | ObjectKind::Function))
        .filter_map(|d| Some((d.key.clone(), sign(&d.change)?)))
        .collect();
    let names = |prefix: &str| -> Vec<String> {
        whole
            .keys()
            .filter_map(|k| k.strip_prefix(prefix).map(str::to_string))
            .collect()
    };
    let (tables, functions) = (names("table "), names("function "));
    let mut folded: BTreeMap<String, BTreeMap<&'static str, usize>> = BTreeMap::new();
    let mut lines = Vec::new();
    for d in &differences {
        let definition = match &d.change {
            Change::Missing { expected } => expected,
            Change::Unexpected { found } | Change::Changed { found, .. } => found,
        };
        let owner = match d.kind {
            ObjectKind::Table | ObjectKind::Function => None,
            _ => owner_table(&d.key, definition, &tables)
                .map(|t| format!("table {t}"))
                .or_else(|| owner_function(&d.key, &functions).map(|f| format!("function {f}"))),
        };
        match (owner, sign(&d.change)) {
            (Some(owner), Some(s)) if whole.get(&owner) == Some(&s) => {
                *folded
                    .entry(owner)
                    .or_default()
                    .entry(d.kind.label())
                    .or_insert(0) += 1;
            }
            _ => lines.push((d.key.clone(), line(d.kind, &d.key, &d.change))),
        }
    }
    for (key, text) in &mut lines {
        if let Some(parts) = folded.get(key.as_str()) {
            let counted: Vec<String> = parts
                .iter()
                .map(|(kind, n)| format!("{n} {}", plural(kind, *n)))
                .collect();
            text.push_str(&format!(" with {}", counted.join(", ")));
        }
    }
    lines.into_iter().map(|(_, text)| text).collect()
}

/// `+` for an object only in the second catalog, `-` for one only in the first.
fn sign(change: &Change) -> Option<char> {
    match change {
        Change::Unexpected { .. } => Some('+'),
        Change::Missing { .. } => Some('-'),
        Change::Changed { .. } => None,
    }
}

fn line(kind: ObjectKind, key: &str, change: &Change) -> String {
    let short = |text: &str| -> String {
        let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
        match one_line.char_indices().nth(90) {
            Some((at, _)) => format!("{}…", &one_line[..at]),
            None => one_line,
        }
    };
    // A function's or view's definition is its body: the key says enough.
    let says_nothing = |text: &str| {
        text.is_empty()
            || text == kind.label()
            || matches!(
                kind,
                ObjectKind::Function | ObjectKind::View | ObjectKind::MaterializedView
            )
    };
    match change {
        Change::Unexpected { found } if says_nothing(found) => format!("+ {key}"),
        Change::Unexpected { found } => format!("+ {key}: {}", short(found)),
        Change::Missing { .. } => format!("- {key}"),
        Change::Changed { expected, found } => {
            format!("~ {key}: was {}; now {}", short(expected), short(found))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::catalog::Object;

    fn catalog(objects: &[(&str, ObjectKind, &str)]) -> Catalog {
        let mut c = Catalog::default();
        for (key, kind, definition) in objects {
            c.objects.insert(
                key.to_string(),
                Object {
                    key: key.to_string(),
                    kind: *kind,
                    definition: definition.to_string(),
                },
            );
        }
        c
    }

    #[test]
    fn a_new_table_is_one_line_with_its_parts_counted() {
        let before = catalog(&[("table public.a", ObjectKind::Table, "table")]);
        let after = catalog(&[
            ("table public.a", ObjectKind::Table, "table"),
            ("column public.a.note", ObjectKind::Column, "text"),
            ("table public.b", ObjectKind::Table, "table"),
            ("column public.b.id", ObjectKind::Column, "uuid not null"),
            ("column public.b.name", ObjectKind::Column, "text"),
            ("rls public.b", ObjectKind::RowSecurity, "enabled"),
        ]);
        assert_eq!(
            describe(&before, &after),
            vec![
                "+ column public.a.note: text".to_string(),
                "+ table public.b with 2 columns, 1 rls".to_string(),
            ]
        );
        assert_eq!(
            describe(&after, &before),
            vec![
                "- column public.a.note".to_string(),
                "- table public.b with 2 columns, 1 rls".to_string(),
            ]
        );
    }

    #[test]
    fn a_new_function_carries_its_grants() {
        let after = catalog(&[
            (
                "function public.f(uuid)",
                ObjectKind::Function,
                "function (x uuid) returns int …",
            ),
            ("grant public.f(uuid) anon", ObjectKind::Grant, "EXECUTE"),
            (
                "grant public.f(uuid) authenticated",
                ObjectKind::Grant,
                "EXECUTE",
            ),
            ("grant public.g() anon", ObjectKind::Grant, "EXECUTE"),
        ]);
        assert_eq!(
            describe(&Catalog::default(), &after),
            vec![
                "+ function public.f(uuid) with 2 grants".to_string(),
                "+ grant public.g() anon: EXECUTE".to_string(),
            ]
        );
    }

    #[test]
    fn a_changed_definition_says_what_it_was_and_is() {
        let before = catalog(&[("column public.a.n", ObjectKind::Column, "text")]);
        let after = catalog(&[("column public.a.n", ObjectKind::Column, "text not null")]);
        assert_eq!(
            describe(&before, &after),
            vec!["~ column public.a.n: was text; now text not null".to_string()]
        );
    }
}
