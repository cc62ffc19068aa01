//! `diagnose` on plain data: a project, a ledger, a live catalog and the
//! replay's effects made by hand, so that each rule of the status table is
//! proved without a database (the scenarios prove the same on real ones).

use super::fixtures::{catalog, effect, ledger, migration, project};
use super::*;
use crate::engine::effects::Effects;
use crate::source::catalog::Catalog;
use pretty_assertions::assert_eq;

fn statuses(diagnosis: &Diagnosis) -> Vec<(String, Status)> {
    diagnosis
        .entries
        .iter()
        .map(|e| (e.version.clone(), e.status))
        .collect()
}

const A: &str = "create table public.a (id int)";
const B: &str = "create table public.b (id int)";
const C: &str = "create table public.c (id int)";

#[test]
fn recorded_but_missing_is_phantom_and_unrecorded_and_missing_is_pending() {
    let project = project(vec![
        migration("1", A),
        migration("2", B),
        migration("3", C),
    ]);
    let effects = Effects::new(
        Catalog::default(),
        vec![
            effect("1", &["public.a"], &[]),
            effect("2", &["public.b"], &[]),
            effect("3", &["public.c"], &[]),
        ],
        Default::default(),
    );
    let diagnosis = diagnose(
        &project,
        &ledger(&[("1", A), ("2", B)]),
        &catalog(&["public.a"]),
        &effects,
    );
    assert_eq!(
        statuses(&diagnosis),
        vec![
            ("1".to_string(), Status::Applied),
            ("2".to_string(), Status::Phantom),
            ("3".to_string(), Status::Pending),
        ]
    );
    assert_eq!(diagnosis.versions(Status::Phantom), vec!["2".to_string()]);
    assert_eq!(diagnosis.versions(Status::Pending), vec!["3".to_string()]);
    assert!(diagnosis.versions(Status::RemoteOnly).is_empty());
}

#[test]
fn a_ledger_row_with_a_files_statements_under_another_version_rekeys_one_file_only() {
    // Two files with the same statement; the ledger recorded it once, under
    // a version no file has (pushed by another tool).
    let project = project(vec![migration("10", A), migration("11", A)]);
    let effects = Effects::new(
        Catalog::default(),
        vec![effect("10", &["public.a"], &[]), effect("11", &[], &[])],
        Default::default(),
    );
    let diagnosis = diagnose(
        &project,
        &ledger(&[("9", A)]),
        &catalog(&["public.a"]),
        &effects,
    );
    let statuses = statuses(&diagnosis);
    assert_eq!(statuses[0], ("10".to_string(), Status::ReVersioned));
    assert_ne!(statuses[1].1, Status::ReVersioned, "{statuses:?}");
    assert_eq!(diagnosis.entries[0].recorded_as.as_deref(), Some("9"));
    // The row is the file's, so it is not also remote-only.
    assert!(
        diagnosis.versions(Status::RemoteOnly).is_empty(),
        "{statuses:?}"
    );
}

#[test]
fn a_row_no_file_explains_is_remote_only() {
    let project = project(vec![migration("1", A)]);
    let effects = Effects::new(
        Catalog::default(),
        vec![effect("1", &["public.a"], &[])],
        Default::default(),
    );
    let diagnosis = diagnose(
        &project,
        &ledger(&[("1", A), ("7", "create table public.z (id int)")]),
        &catalog(&["public.a"]),
        &effects,
    );
    assert_eq!(
        diagnosis.versions(Status::RemoteOnly),
        vec!["7".to_string()]
    );
    assert_eq!(diagnosis.versions(Status::Applied), vec!["1".to_string()]);
}

#[test]
fn an_unrecorded_drop_only_migration_whose_drops_are_done_was_applied_by_hand() {
    // `public.legacy` came with the platform (no migration made it); the
    // pending migration 1 creates something else.
    let project = project(vec![
        migration("1", A),
        migration("2", "drop table public.legacy"),
    ]);
    let effects = Effects::new(
        catalog(&["public.legacy"]),
        vec![
            effect("1", &["public.a"], &[]),
            effect("2", &[], &["public.legacy"]),
        ],
        Default::default(),
    );
    let gone = diagnose(&project, &ledger(&[]), &catalog(&[]), &effects);
    assert_eq!(
        statuses(&gone),
        vec![
            ("1".to_string(), Status::Pending),
            ("2".to_string(), Status::Unrecorded),
        ]
    );
    let still_there = diagnose(
        &project,
        &ledger(&[]),
        &catalog(&["public.legacy"]),
        &effects,
    );
    assert_eq!(
        still_there.versions(Status::Pending),
        vec!["1".to_string(), "2".to_string()]
    );
}

#[test]
fn the_fingerprint_changes_with_the_ledger_and_with_the_statuses() {
    let project = project(vec![migration("1", A)]);
    let effects = Effects::new(
        Catalog::default(),
        vec![effect("1", &["public.a"], &[])],
        Default::default(),
    );
    let applied = diagnose(
        &project,
        &ledger(&[("1", A)]),
        &catalog(&["public.a"]),
        &effects,
    );
    let again = diagnose(
        &project,
        &ledger(&[("1", A)]),
        &catalog(&["public.a"]),
        &effects,
    );
    let phantom = diagnose(&project, &ledger(&[("1", A)]), &catalog(&[]), &effects);
    let pending = diagnose(&project, &ledger(&[]), &catalog(&[]), &effects);
    assert_eq!(applied.fingerprint, again.fingerprint);
    assert_ne!(applied.fingerprint, phantom.fingerprint);
    assert_ne!(phantom.fingerprint, pending.fingerprint);
    assert_eq!(applied.fingerprint.len(), 64);
}

#[test]
fn an_unrecorded_migration_that_changes_only_data_is_still_to_come() {
    // Nothing in the schema tells whether it ran, and it drops nothing: it
    // is not taken for applied by hand.
    let project = project(vec![
        migration("1", A),
        migration("2", "insert into public.a values (1)"),
    ]);
    let effects = Effects::new(
        Catalog::default(),
        vec![effect("1", &["public.a"], &[]), effect("2", &[], &[])],
        Default::default(),
    );
    let diagnosis = diagnose(
        &project,
        &ledger(&[("1", A)]),
        &catalog(&["public.a"]),
        &effects,
    );
    assert_eq!(diagnosis.versions(Status::Pending), vec!["2".to_string()]);
}
