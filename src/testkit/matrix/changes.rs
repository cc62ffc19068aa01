//! What a scenario did to the schema, in words a reviewer reads in a
//! snapshot: the difference between two catalogs, one line per object, with
//! the columns, constraints, indexes, policies, grants … of a table — and the
//! grants and comment of a function — that appeared or disappeared as a
//! whole folded into that table's (function's) line.

use crate::source::catalog::{Catalog, Change, ObjectKind, diff, group, parts_phrase};

/// How `to` differs from `from`: `+` for objects only in `to`, `-` for
/// objects only in `from`, `~` for objects in both with another definition.
pub(crate) fn describe(from: &Catalog, to: &Catalog) -> Vec<String> {
    let differences = diff(from, to);
    group(&differences)
        .into_iter()
        .map(|g| {
            let d = &differences[g.head];
            let mut text = line(d.kind, &d.key, &d.change);
            if !g.parts.is_empty() {
                text.push_str(&format!(" with {}", parts_phrase(&g.parts)));
            }
            text
        })
        .collect()
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

    fn catalog(objects: &[(&str, ObjectKind, &str)]) -> Catalog {
        Catalog::from_entries(objects)
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
