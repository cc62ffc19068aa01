//! `plan` on diagnoses made from plain data (see `diagnose::fixtures`): which
//! steps, refusals and warnings each situation gets, without a database.

use super::*;
use crate::engine::diagnose::fixtures::{catalog, effect, ledger, migration, project};
use crate::engine::diagnose::{Diagnosis, Drift, diagnose};
use crate::engine::effects::Effects;
use crate::source::catalog::{Catalog, Change, Difference, ObjectKind};
use pretty_assertions::assert_eq;

const A: &str = "create table public.a (id int)";
const B: &str = "create table public.b (id int)";

/// Migration 1 applied, 2 as the ledger and catalog make it.
fn two(
    ledger_rows: &[(&str, &str)],
    live: &[&str],
) -> (crate::source::project::Project, Diagnosis) {
    let project = project(vec![migration("1", A), migration("2", B)]);
    let effects = Effects::new(
        Catalog::default(),
        vec![
            effect("1", &["public.a"], &[]),
            effect("2", &["public.b"], &[]),
        ],
        Default::default(),
    );
    let diagnosis = diagnose(&project, &ledger(ledger_rows), &catalog(live), &effects);
    (project, diagnosis)
}

fn actions(plan: &Plan) -> Vec<Action> {
    plan.steps.iter().map(|s| s.action.clone()).collect()
}

fn drift() -> Drift {
    Drift {
        difference: Difference {
            key: "column public.a.note".into(),
            kind: ObjectKind::Column,
            change: Change::Unexpected {
                found: "text".into(),
            },
        },
        description: "column public.a.note: present, not made by any migration".into(),
        table: Some("public.a".into()),
        rows: Some(3),
    }
}

#[test]
fn a_phantom_is_reverted_then_applied_after_the_backup() {
    let (project, diagnosis) = two(&[("1", A), ("2", B)], &["public.a"]);
    let plan = plan(&project, &diagnosis, &PlanOptions::default());
    assert!(plan.is_runnable(), "{:?}", plan.refusals);
    assert_eq!(
        actions(&plan),
        vec![
            Action::ExportLedger,
            Action::RecordData,
            Action::Dump,
            Action::RepairLedger {
                revert: vec!["2".into()],
                record: Vec::new(),
                rekey: Vec::new(),
            },
            Action::Apply {
                version: "2".into()
            },
            Action::Verify,
        ]
    );
}

#[test]
fn a_pending_migration_alone_needs_no_ledger_repair() {
    let (project, diagnosis) = two(&[("1", A)], &["public.a"]);
    let plan = plan(&project, &diagnosis, &PlanOptions::default());
    assert!(
        !actions(&plan)
            .iter()
            .any(|a| matches!(a, Action::RepairLedger { .. })),
        "{:?}",
        actions(&plan)
    );
    assert!(actions(&plan).contains(&Action::Apply {
        version: "2".into()
    }));
}

#[test]
fn pre_existing_drift_refuses_unless_accepted_and_is_then_tolerated() {
    let (project, mut diagnosis) = two(&[("1", A), ("2", B)], &["public.a"]);
    diagnosis.differences.pre_existing = vec![drift()];
    let refused = plan(&project, &diagnosis, &PlanOptions::default());
    assert!(!refused.is_runnable());
    assert!(refused.tolerated.pre_existing.is_empty());
    // The refusal names the drift and the rows of its table.
    let Some(crate::Error::Refused { reasons }) = refused.refused() else {
        panic!(
            "a plan with refusals stops its run: {:?}",
            refused.refused()
        );
    };
    assert!(
        reasons.contains(
            "column public.a.note: present, not made by any migration (public.a: 3 rows)"
        ),
        "{reasons}"
    );
    let accepted = plan(
        &project,
        &diagnosis,
        &PlanOptions {
            accept_existing_drift: true,
            ..PlanOptions::default()
        },
    );
    assert!(accepted.is_runnable(), "{:?}", accepted.refusals);
    assert!(accepted.refused().is_none());
    assert_eq!(accepted.tolerated.pre_existing, vec![drift()]);
    assert!(accepted.tolerated.covers(&drift().description));
    assert!(!accepted.tolerated.covers("table public.b: missing"));
    // Accepting with nothing to accept changes nothing.
    let (project, clean) = two(&[("1", A), ("2", B)], &["public.a"]);
    let plain = plan(
        &project,
        &clean,
        &PlanOptions {
            accept_existing_drift: true,
            ..PlanOptions::default()
        },
    );
    assert!(plain.tolerated.pre_existing.is_empty() && plain.is_runnable());
}

#[test]
fn environment_differences_are_tolerated_by_their_words() {
    let tolerated = Tolerated {
        environment: vec!["grant x".into()],
        pre_existing: Vec::new(),
    };
    assert!(tolerated.covers("grant x"));
    assert!(!tolerated.covers("grant y"));
    assert!(!Tolerated::default().covers("grant x"));
}

#[test]
fn statements_that_cannot_run_in_a_transaction_are_refused() {
    for (sql, refused) in [
        ("create index concurrently a_id on public.a (id)", true),
        ("vacuum public.a", true),
        ("create database other", true),
        ("drop database other", true),
        ("alter system set work_mem = '8MB'", true),
        ("create tablespace t location '/x'", true),
        ("commit", true),
        ("create table public.vacuum_log (id int)", false),
        ("create table public.a (id int)", false),
    ] {
        let refusals = non_transactional(&migration("5", sql));
        assert_eq!(!refusals.is_empty(), refused, "{sql}: {refusals:?}");
    }
}

#[test]
fn an_edited_migration_whose_record_did_more_offers_the_ways_out() {
    let (project, mut diagnosis) = two(&[("1", A), ("2", B)], &["public.a", "public.b"]);
    diagnosis.entries[0].status = Status::Edited;
    let quiet = plan(&project, &diagnosis, &PlanOptions::default());
    assert!(
        quiet
            .warnings
            .iter()
            .any(|w| w.contains("the live schema matches today's file")),
        "{:?}",
        quiet.warnings
    );
    diagnosis.entries[0].explanation =
        vec!["the recorded version also creates column public.a.x".into()];
    let explained = plan(&project, &diagnosis, &PlanOptions::default());
    assert!(
        explained
            .warnings
            .iter()
            .any(|w| w.contains("phantom-sync restore-file 1")
                && !w.contains("the live schema matches")),
        "{:?}",
        explained.warnings
    );
}

#[test]
fn phases_carry_the_incident_plans_titles() {
    let titles: Vec<&str> = Phase::ALL.iter().map(|p| p.title()).collect();
    assert_eq!(
        titles,
        vec![
            "Phase 1: Backup & Safety",
            "Phase 2: Repair Migration History",
            "Phase 3: Re-apply Missing Migrations",
            "Phase 4: Verification",
        ]
    );
}

#[test]
fn only_a_drifted_migration_is_warned_about_its_objects_shape() {
    let (project, mut diagnosis) = two(&[("1", A), ("2", B)], &["public.a"]);
    let phantom = plan(&project, &diagnosis, &PlanOptions::default());
    assert!(
        !phantom.warnings.iter().any(|w| w.contains("another shape")),
        "{:?}",
        phantom.warnings
    );
    let entry = diagnosis
        .entries
        .iter_mut()
        .find(|e| e.version == "2")
        .unwrap();
    entry.status = Status::Drifted;
    entry.evidence = vec!["table public.b: columns differ".into()];
    let drifted = plan(&project, &diagnosis, &PlanOptions::default());
    assert!(
        drifted.warnings.iter().any(|w| w.starts_with("2 ")
            && w.contains("objects exist with another shape (table public.b: columns differ)")),
        "{:?}",
        drifted.warnings
    );
    assert!(drifted.to_apply().contains(&"2".to_string()));
}
