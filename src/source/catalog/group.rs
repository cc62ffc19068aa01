//! Differences as a person reads them: a table or function that appeared or
//! disappeared as a whole is one line, its columns, constraints, indexes,
//! policies, grants and comments counted in it ("table public.t: missing,
//! with 4 columns, 2 constraints, 3 grants").

use std::collections::BTreeMap;

use super::{Change, Difference, ObjectKind, TableNames, owner_function, owner_table};
use crate::text::count;

/// One line: the difference at `head` and the parts folded into it, counted by kind label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// Index of the heading difference in the slice given to [`group`].
    pub head: usize,
    /// Folded parts: kind label (`column`, `index` …) → how many.
    pub parts: BTreeMap<&'static str, usize>,
}

/// Groups `differences` (in their order): a part folds into its table or
/// function when both appeared (or both disappeared) whole.
pub fn group(differences: &[Difference]) -> Vec<Group> {
    let whole: BTreeMap<&str, (usize, bool)> = differences
        .iter()
        .enumerate()
        .filter(|(_, d)| matches!(d.kind, ObjectKind::Table | ObjectKind::Function))
        .filter_map(|(i, d)| Some((d.key.as_str(), (i, appeared(&d.change)?))))
        .collect();
    let names = |prefix: &str| -> Vec<String> {
        whole
            .keys()
            .filter_map(|k| k.strip_prefix(prefix).map(str::to_string))
            .collect()
    };
    let tables: TableNames = names("table ").into_iter().collect();
    let functions = names("function ");
    let mut parts: BTreeMap<usize, BTreeMap<&'static str, usize>> = BTreeMap::new();
    let mut heads = Vec::new();
    for (i, d) in differences.iter().enumerate() {
        let owner = match d.kind {
            ObjectKind::Table | ObjectKind::Function => None,
            _ => owner_table(&d.key, definition(&d.change), &tables)
                .map(|t| format!("table {t}"))
                .or_else(|| owner_function(&d.key, &functions).map(|f| format!("function {f}"))),
        };
        let folded_into = owner
            .and_then(|o| whole.get(o.as_str()).copied())
            .filter(|(_, sign)| Some(*sign) == appeared(&d.change));
        match folded_into {
            Some((head, _)) => {
                *parts
                    .entry(head)
                    .or_default()
                    .entry(d.kind.label())
                    .or_insert(0) += 1
            }
            None => heads.push(i),
        }
    }
    heads
        .into_iter()
        .map(|head| Group {
            head,
            parts: parts.remove(&head).unwrap_or_default(),
        })
        .collect()
}

/// `4 columns, 1 index, 2 policies`.
pub fn parts_phrase(parts: &BTreeMap<&'static str, usize>) -> String {
    parts
        .iter()
        .map(|(label, n)| count(*n, label))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `Some(true)` for an object only in the found catalog, `Some(false)` for
/// one only in the expected one, `None` for a changed one.
fn appeared(change: &Change) -> Option<bool> {
    match change {
        Change::Unexpected { .. } => Some(true),
        Change::Missing { .. } => Some(false),
        Change::Changed { .. } => None,
    }
}

fn definition(change: &Change) -> &str {
    match change {
        Change::Missing { expected } => expected,
        Change::Unexpected { found } | Change::Changed { found, .. } => found,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(key: &str, kind: ObjectKind, appeared: bool) -> Difference {
        Difference {
            key: key.into(),
            kind,
            change: if appeared {
                Change::Unexpected { found: "x".into() }
            } else {
                Change::Missing {
                    expected: "x".into(),
                }
            },
        }
    }

    #[test]
    fn parts_of_a_whole_table_or_function_fold_into_it() {
        let diffs = vec![
            d("column public.a.note", ObjectKind::Column, true),
            d("column public.b.id", ObjectKind::Column, true),
            d("column public.b.name", ObjectKind::Column, true),
            d("function public.f()", ObjectKind::Function, false),
            d("grant public.f() anon", ObjectKind::Grant, false),
            d("index public.b_idx", ObjectKind::Index, false),
            d("table public.b", ObjectKind::Table, true),
        ];
        let groups = group(&diffs);
        let heads: Vec<usize> = groups.iter().map(|g| g.head).collect();
        assert_eq!(
            heads,
            vec![0, 3, 5, 6],
            "the index disappeared, the table appeared: no fold"
        );
        assert_eq!(parts_phrase(&groups[3].parts), "2 columns");
        assert_eq!(parts_phrase(&groups[1].parts), "1 grant");
    }
}
