//! The data-loss guard on plain data: which tables and columns a replay
//! shows dropped, which statements say they destroy rows, and how a risk
//! reads in a report. Counting rows needs a database (the scenarios).

use super::*;
use pretty_assertions::assert_eq;

#[test]
fn statements_that_destroy_rows_are_recognised() {
    let one = |s: &str| analyse(s);
    assert_eq!(
        one("drop table if exists public.legacy_notes cascade;"),
        vec![(LossKind::DropsTable, "public.legacy_notes".into(), None)]
    );
    assert_eq!(
        one("TRUNCATE TABLE a, public.\"B c\" RESTART IDENTITY"),
        vec![
            (LossKind::Truncates, "a".into(), None),
            (LossKind::Truncates, "public.\"B c\"".into(), None)
        ]
    );
    assert_eq!(
        one("-- tidy up\ndelete from public.notes where archived"),
        vec![(
            LossKind::DeletesRows,
            "public.notes".into(),
            Some("archived".into())
        )]
    );
    assert_eq!(
        one("DELETE FROM notes"),
        vec![(LossKind::DeletesRows, "notes".into(), None)]
    );
    assert_eq!(
        one("update public.notes set body = ''"),
        vec![(LossKind::UpdatesEveryRow, "public.notes".into(), None)]
    );
    assert!(one("update public.notes set body = '' where id = 1").is_empty());
    assert!(one("create table public.notes (id int)").is_empty());
    assert!(
        one("delete from (select 1) x").is_empty(),
        "not a plain name"
    );
    assert_eq!(
        split_last("public.t.\"a.b\""),
        Some(("public.t".into(), "\"a.b\"".into()))
    );
}

fn at_risk(kind: LossKind, object: &str, rows: i64) -> DataAtRisk {
    DataAtRisk {
        version: "20250501000000".into(),
        migration: "20250501000000_drop_legacy.sql".into(),
        kind,
        table: "public.legacy".into(),
        object: object.into(),
        rows,
        statement: None,
    }
}

#[test]
fn a_risk_reads_as_file_verb_object_and_rows() {
    assert_eq!(
        at_risk(LossKind::DropsTable, "public.legacy", 300).describe(),
        "20250501000000_drop_legacy.sql drops table public.legacy (300 rows)"
    );
    assert_eq!(
        at_risk(LossKind::DropsColumn, "public.legacy.note", -1).describe(),
        "20250501000000_drop_legacy.sql drops column public.legacy.note (rows not countable)"
    );
    assert_eq!(
        at_risk(LossKind::Truncates, "public.legacy", 0).rows_text(),
        "0 rows"
    );
    assert_eq!(
        [
            LossKind::Truncates,
            LossKind::DeletesRows,
            LossKind::UpdatesEveryRow
        ]
        .map(LossKind::label),
        ["truncates", "deletes rows of", "updates every row of"]
    );
}

#[test]
fn tables_and_columns_the_replay_removes_are_dropped_once_each() {
    let before = Catalog::from_entries(&[
        ("table public.a", ObjectKind::Table, "table"),
        ("column public.a.id", ObjectKind::Column, "integer"),
        ("column public.a.note", ObjectKind::Column, "text"),
        (
            "index public.a_note_idx",
            ObjectKind::Index,
            "CREATE INDEX …",
        ),
        ("table public.b", ObjectKind::Table, "table"),
        ("column public.b.x", ObjectKind::Column, "integer"),
        ("table public.c", ObjectKind::Table, "table"),
    ]);
    let after = Catalog::from_entries(&[
        ("table public.a", ObjectKind::Table, "table"),
        ("column public.a.id", ObjectKind::Column, "integer"),
        ("table public.c", ObjectKind::Table, "table"),
        ("table public.d", ObjectKind::Table, "table"),
    ]);
    // Table b and its column go as one drop; the index holds no rows; c
    // stays; d is new.
    assert_eq!(
        dropped(&before, &after),
        vec![
            (LossKind::DropsTable, "public.b".to_string(), None),
            (
                LossKind::DropsColumn,
                "public.a".to_string(),
                Some("note".to_string())
            ),
        ]
    );
    assert!(dropped(&before, &before).is_empty());
}

#[test]
fn only_a_drop_of_a_table_is_a_drop() {
    assert!(analyse("drop view public.v").is_empty());
    assert!(analyse("DROP INDEX public.a_idx").is_empty());
    assert_eq!(
        analyse("DROP TABLE a, b RESTRICT;"),
        vec![
            (LossKind::DropsTable, "a".into(), None),
            (LossKind::DropsTable, "b".into(), None)
        ]
    );
}

#[test]
fn truncate_only_names_the_table_after_only() {
    assert_eq!(
        analyse("truncate only public.a"),
        vec![(LossKind::Truncates, "public.a".into(), None)]
    );
    assert_eq!(
        analyse("TRUNCATE TABLE ONLY public.a CONTINUE IDENTITY"),
        vec![(LossKind::Truncates, "public.a".into(), None)]
    );
}

#[test]
fn a_delete_using_other_tables_has_no_condition_of_its_own() {
    assert_eq!(
        analyse("delete from only public.a where id > 3;"),
        vec![(
            LossKind::DeletesRows,
            "public.a".into(),
            Some("id > 3;".into())
        )]
    );
    assert_eq!(
        analyse("delete from public.a using public.b where a.id = b.id"),
        vec![(LossKind::DeletesRows, "public.a".into(), None)]
    );
}

#[test]
fn update_only_without_where_updates_every_row() {
    assert_eq!(
        analyse("update only public.a set x = 1"),
        vec![(LossKind::UpdatesEveryRow, "public.a".into(), None)]
    );
}

#[test]
fn a_table_name_is_plain_characters_or_closed_quotes() {
    assert_eq!(table_name(" public.a; "), Some("public.a".into()));
    assert_eq!(table_name("s$1.t_2"), Some("s$1.t_2".into()));
    assert_eq!(table_name("\"a b\".c"), Some("\"a b\".c".into()));
    assert_eq!(table_name("\"unclosed"), None);
    assert_eq!(table_name(""), None);
    assert_eq!(table_name(";"), None);
    assert_eq!(table_name("a-b"), None);
}

#[test]
fn names_stop_at_the_first_keyword() {
    assert_eq!(names(&["a,", "b", "CASCADE", "c"]), vec!["a", "b"]);
    assert_eq!(names(&["a", "restart", "identity"]), vec!["a"]);
    assert_eq!(names(&["a", "cascade;"]), vec!["a"]);
}

#[test]
fn a_name_without_a_dot_outside_quotes_has_no_last_part() {
    assert_eq!(split_last("plain"), None);
    assert_eq!(split_last("\"a.b\""), None);
    assert_eq!(
        split_last("public.t.c"),
        Some(("public.t".into(), "c".into()))
    );
}

#[test]
fn comments_are_cut_line_by_line() {
    assert_eq!(
        without_comments("delete from a -- all of it\nwhere x -- some\n"),
        "delete from a  where x "
    );
}
