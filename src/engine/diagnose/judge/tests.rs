//! `judge` on plain data: one migration's effects, made by hand, against a
//! live catalog made by hand — which objects count as present, missing or
//! drifted, what the evidence says, and which status follows.

use super::*;
use crate::engine::effects::MigrationEffects;
use crate::source::catalog::TableNames;
use pretty_assertions::assert_eq;

fn missing(key: &str, kind: ObjectKind, expected: &str) -> Difference {
    Difference {
        key: key.into(),
        kind,
        change: Change::Missing {
            expected: expected.into(),
        },
    }
}

fn changed(key: &str, kind: ObjectKind, from: &str, to: &str) -> Difference {
    Difference {
        key: key.into(),
        kind,
        change: Change::Changed {
            expected: to.into(),
            found: from.into(),
        },
    }
}

fn dropped(key: &str, kind: ObjectKind, was: &str) -> Difference {
    Difference {
        key: key.into(),
        kind,
        change: Change::Unexpected { found: was.into() },
    }
}

fn migration(version: &str, changes: Vec<Difference>) -> MigrationEffects {
    MigrationEffects {
        version: version.into(),
        changes,
    }
}

fn effects(migrations: Vec<MigrationEffects>) -> Effects {
    Effects::new(Catalog::default(), migrations, Default::default())
}

fn live(entries: &[(&str, ObjectKind, &str)]) -> Catalog {
    Catalog::from_entries(entries)
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

const TABLE_A: (&str, ObjectKind, &str) = ("table public.a", ObjectKind::Table, "table");
const ID_OF_A: (&str, ObjectKind, &str) = ("column public.a.id", ObjectKind::Column, "integer");
const INDEX_OF_A: (&str, ObjectKind, &str) = (
    "index public.a_id_idx",
    ObjectKind::Index,
    "CREATE INDEX a_id_idx ON public.a USING btree (id)",
);

/// Migration "1" creates table `public.a` with a column and an index.
fn creates_a() -> MigrationEffects {
    migration(
        "1",
        [TABLE_A, ID_OF_A, INDEX_OF_A]
            .iter()
            .map(|(key, kind, definition)| missing(key, *kind, definition))
            .collect(),
    )
}

#[test]
fn a_migration_whose_objects_are_all_there_is_applied_and_shows_no_evidence() {
    let effects = effects(vec![creates_a()]);
    let j = judge(0, &effects, &live(&[TABLE_A, ID_OF_A, INDEX_OF_A]));
    assert_eq!(
        j.present,
        strings(&[
            "table public.a",
            "column public.a.id",
            "index public.a_id_idx"
        ])
    );
    assert!(j.missing.is_empty() && j.drifted.is_empty(), "{j:?}");
    assert!(!j.is_empty());
    assert_eq!(j.recorded_status(), Status::Applied);
    assert_eq!(j.unrecorded_status(), Status::Unrecorded);
    assert!(j.evidence().is_empty(), "{:?}", j.evidence());
}

#[test]
fn a_missing_table_is_one_line_that_counts_its_columns_and_indexes() {
    let effects = effects(vec![creates_a()]);
    let j = judge(0, &effects, &live(&[]));
    assert_eq!(
        j.missing,
        strings(&["table public.a: missing, with 1 column, 1 index"])
    );
    assert!(j.present.is_empty() && j.drifted.is_empty(), "{j:?}");
    assert_eq!(j.recorded_status(), Status::Phantom);
    assert_eq!(j.unrecorded_status(), Status::Pending);
    assert_eq!(j.evidence(), j.missing);
}

#[test]
fn a_missing_column_of_a_table_the_same_migration_created_is_drift() {
    let effects = effects(vec![creates_a()]);
    let j = judge(0, &effects, &live(&[TABLE_A, INDEX_OF_A]));
    assert_eq!(
        j.drifted,
        strings(&["column public.a.id (integer): missing"])
    );
    assert!(j.missing.is_empty(), "{j:?}");
    assert_eq!(j.recorded_status(), Status::Drifted);
    assert_eq!(j.unrecorded_status(), Status::Pending);
    assert_eq!(
        j.evidence(),
        strings(&[
            "column public.a.id (integer): missing",
            "present: table public.a, index public.a_id_idx",
        ])
    );
}

#[test]
fn a_missing_column_added_to_an_older_table_is_missing_not_drift() {
    let effects = effects(vec![
        creates_a(),
        migration(
            "2",
            vec![missing("column public.a.note", ObjectKind::Column, "text")],
        ),
    ]);
    let j = judge(1, &effects, &live(&[TABLE_A, ID_OF_A, INDEX_OF_A]));
    assert_eq!(
        j.missing,
        strings(&["column public.a.note (text): missing"])
    );
    assert!(j.drifted.is_empty() && j.present.is_empty(), "{j:?}");
    assert_eq!(j.recorded_status(), Status::Phantom);
}

#[test]
fn a_missing_column_of_an_older_table_the_same_migration_alters_is_missing_not_drift() {
    // `ALTER TABLE public.a SET UNLOGGED, ADD COLUMN note text`: the table
    // is changed, not created, by this migration.
    let effects = effects(vec![
        creates_a(),
        migration(
            "2",
            vec![
                changed(
                    "table public.a",
                    ObjectKind::Table,
                    "table",
                    "unlogged table",
                ),
                missing("column public.a.note", ObjectKind::Column, "text"),
            ],
        ),
    ]);
    let j = judge(
        1,
        &effects,
        &live(&[
            ("table public.a", ObjectKind::Table, "unlogged table"),
            ID_OF_A,
        ]),
    );
    assert_eq!(j.present, strings(&["table public.a"]));
    assert_eq!(
        j.missing,
        strings(&["column public.a.note (text): missing"])
    );
    assert!(j.drifted.is_empty(), "{j:?}");
    assert_eq!(j.recorded_status(), Status::Partial);
}

#[test]
fn a_change_not_made_yet_is_missing_and_one_made_otherwise_is_drift() {
    let effects = creates_a_then_widens_its_id();
    let not_yet = judge(1, &effects, &live(&[TABLE_A, ID_OF_A]));
    assert_eq!(
        not_yet.missing,
        strings(&["column public.a.id: not changed yet"])
    );
    assert!(not_yet.drifted.is_empty(), "{not_yet:?}");
    assert_eq!(not_yet.recorded_status(), Status::Phantom);

    let other = judge(
        1,
        &effects,
        &live(&[TABLE_A, ("column public.a.id", ObjectKind::Column, "text")]),
    );
    assert_eq!(
        other.drifted,
        strings(&["column public.a.id: type text, expected bigint"])
    );
    assert!(other.missing.is_empty(), "{other:?}");
    assert_eq!(other.recorded_status(), Status::Drifted);

    let done = judge(
        1,
        &effects,
        &live(&[
            TABLE_A,
            ("column public.a.id", ObjectKind::Column, "bigint"),
        ]),
    );
    assert_eq!(done.present, strings(&["column public.a.id"]));
    assert_eq!(done.recorded_status(), Status::Applied);
}

#[test]
fn an_object_in_the_shape_a_later_migration_gives_it_counts_as_present() {
    let effects = creates_a_then_widens_its_id();
    let j = judge(
        0,
        &effects,
        &live(&[
            TABLE_A,
            ("column public.a.id", ObjectKind::Column, "bigint"),
            INDEX_OF_A,
        ]),
    );
    assert!(j.missing.is_empty() && j.drifted.is_empty(), "{j:?}");
    assert_eq!(j.present.len(), 3, "{j:?}");
}

#[test]
fn an_object_a_later_migration_drops_proves_nothing_when_it_is_gone() {
    let effects = creates_t_then_drops_it();
    let j = judge(0, &effects, &live(&[]));
    assert!(j.is_empty(), "{j:?}");
    assert!(j.drops_done.is_empty(), "{j:?}");
}

#[test]
fn a_drop_is_done_when_the_object_is_gone_and_missing_when_it_is_still_there() {
    let effects = creates_t_then_drops_it();
    let gone = judge(1, &effects, &live(&[]));
    assert_eq!(gone.drops_done, strings(&["table public.t"]));
    assert!(gone.is_empty(), "{gone:?}");

    let still = judge(
        1,
        &effects,
        &live(&[("table public.t", ObjectKind::Table, "table")]),
    );
    assert!(still.drops_done.is_empty(), "{still:?}");
    assert_eq!(
        still.missing,
        strings(&["table public.t: still present, this migration drops it"])
    );
}

#[test]
fn a_drop_that_a_later_migration_undoes_is_neither_done_nor_missing() {
    let effects = effects(vec![
        migration(
            "1",
            vec![dropped("table public.t", ObjectKind::Table, "table")],
        ),
        migration(
            "2",
            vec![missing("table public.t", ObjectKind::Table, "table")],
        ),
    ]);
    for catalog in [
        live(&[]),
        live(&[("table public.t", ObjectKind::Table, "table")]),
    ] {
        let j = judge(0, &effects, &catalog);
        assert!(j.is_empty() && j.drops_done.is_empty(), "{j:?}");
    }
}

#[test]
fn a_grant_the_environment_gives_is_not_the_migrations_evidence() {
    let mut effects = effects(vec![migration(
        "1",
        vec![
            missing("table public.a", ObjectKind::Table, "table"),
            missing("grant public.a anon", ObjectKind::Grant, "SELECT"),
            missing("grant public.a reporter", ObjectKind::Grant, "SELECT"),
        ],
    )]);
    effects.grants.environment_roles.insert("anon".into());
    let j = judge(0, &effects, &live(&[TABLE_A]));
    // The anon grant (default privileges) is skipped; the reporter grant is
    // the migration's own, missing on a table it created: drift.
    assert_eq!(j.present, strings(&["table public.a"]));
    assert!(j.missing.is_empty(), "{j:?}");
    assert_eq!(
        j.drifted,
        strings(&["grant public.a reporter (SELECT): missing"])
    );
    assert_eq!(j.recorded_status(), Status::Drifted);
}

#[test]
fn a_missing_function_counts_its_grant_and_comment_in_its_line() {
    let effects = effects(vec![migration(
        "1",
        vec![
            missing("function public.f()", ObjectKind::Function, "begin end"),
            missing(
                "grant public.f() authenticated",
                ObjectKind::Grant,
                "EXECUTE",
            ),
            missing("comment function public.f()", ObjectKind::Comment, "does f"),
        ],
    )]);
    let j = judge(0, &effects, &live(&[]));
    assert_eq!(
        j.missing,
        strings(&["function public.f(): missing, with 1 comment, 1 grant"])
    );
}

#[test]
fn statuses_follow_from_what_is_present_missing_and_drifted() {
    let made = |present: &[&str], missing: &[&str], drifted: &[&str]| Judgement {
        present: strings(present),
        missing: strings(missing),
        drifted: strings(drifted),
        drops_done: Vec::new(),
    };
    let cases = [
        // (present, missing, drifted) → recorded, unrecorded
        (made(&["p"], &[], &[]), Status::Applied, Status::Unrecorded),
        (made(&[], &[], &[]), Status::Applied, Status::Pending),
        (made(&["p"], &[], &["d"]), Status::Drifted, Status::Pending),
        (made(&[], &[], &["d"]), Status::Drifted, Status::Pending),
        (made(&[], &["m"], &[]), Status::Phantom, Status::Pending),
        (made(&["p"], &["m"], &[]), Status::Partial, Status::Pending),
        (made(&[], &["m"], &["d"]), Status::Partial, Status::Pending),
    ];
    for (j, recorded, unrecorded) in cases {
        assert_eq!(j.recorded_status(), recorded, "{j:?}");
        assert_eq!(j.unrecorded_status(), unrecorded, "{j:?}");
    }
    assert!(made(&[], &[], &[]).is_empty());
    assert!(!made(&[], &["m"], &[]).is_empty());
    assert!(!made(&[], &[], &["d"]).is_empty());
}

#[test]
fn evidence_lists_drift_then_missing_then_what_is_present() {
    let j = Judgement {
        present: strings(&["p1", "p2"]),
        missing: strings(&["m1"]),
        drifted: strings(&["d1"]),
        drops_done: Vec::new(),
    };
    assert_eq!(j.evidence(), strings(&["d1", "m1", "present: p1, p2"]));
    let only_missing = Judgement {
        present: strings(&["p1"]),
        missing: strings(&["m1"]),
        ..Judgement::default()
    };
    assert_eq!(only_missing.evidence(), strings(&["m1", "present: p1"]));
}

#[test]
fn a_long_list_of_present_objects_shows_four_and_counts_the_rest() {
    assert_eq!(summarise(&strings(&["a", "b", "c", "d"])), "a, b, c, d");
    assert_eq!(
        summarise(&strings(&["a", "b", "c", "d", "e", "f"])),
        "a, b, c, d and 2 more"
    );
    assert_eq!(summarise(&strings(&["a"])), "a");
}

#[test]
fn a_table_key_names_its_table_and_other_keys_name_none() {
    assert_eq!(table_name("table public.a"), Some("public.a".to_string()));
    assert_eq!(table_name("column public.a.id"), None);
    let catalog = live(&[TABLE_A]);
    assert!(live_has_table(&catalog, "public.a"));
    assert!(!live_has_table(&catalog, "public.b"));
}

#[test]
fn an_objects_parent_is_the_table_its_key_or_definition_names() {
    let tables: TableNames = strings(&["public.a"]).into_iter().collect();
    let catalog = live(&[TABLE_A, ID_OF_A, INDEX_OF_A]);
    let parent = |(key, kind, definition): (&str, ObjectKind, &str)| {
        parent_table(&missing(key, kind, definition), &catalog, &tables)
    };
    assert_eq!(parent(ID_OF_A), Some("public.a".to_string()));
    // The index's key does not name the table; its definition does.
    assert_eq!(parent(INDEX_OF_A), Some("public.a".to_string()));
    assert_eq!(parent(TABLE_A), None, "a table has no parent table");
    assert_eq!(
        parent(("index public.z_idx", ObjectKind::Index, "")),
        None,
        "not in the catalog, named by no table"
    );
}

/// Migration 1 creates `public.a` with an integer id; migration 2 makes it bigint.
fn creates_a_then_widens_its_id() -> Effects {
    effects(vec![
        creates_a(),
        migration(
            "2",
            vec![changed(
                "column public.a.id",
                ObjectKind::Column,
                "integer",
                "bigint",
            )],
        ),
    ])
}

/// Migration 1 creates `public.t`; migration 2 drops it.
fn creates_t_then_drops_it() -> Effects {
    effects(vec![
        migration(
            "1",
            vec![missing("table public.t", ObjectKind::Table, "table")],
        ),
        migration(
            "2",
            vec![dropped("table public.t", ObjectKind::Table, "table")],
        ),
    ])
}
