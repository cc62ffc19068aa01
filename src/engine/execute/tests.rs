//! The run's plain decisions: which steps a broken-procedure fault skips,
//! and the reversed order of the re-applies (the faults the scenario matrix
//! injects to prove the checks catch a broken procedure).

use pretty_assertions::assert_eq;

use super::*;

fn step(id: &str, phase: Phase, action: Action) -> Step {
    Step {
        id: id.into(),
        phase,
        title: format!("step {id}"),
        action,
        sql: Vec::new(),
    }
}

fn apply(id: &str, version: &str) -> Step {
    step(
        id,
        Phase::Reapply,
        Action::Apply {
            version: version.into(),
        },
    )
}

/// One step of each action, in the order a plan runs them.
fn every_action() -> Vec<Step> {
    vec![
        step("1.1", Phase::Backup, Action::ExportLedger),
        step("1.2", Phase::Backup, Action::RecordData),
        step("1.3", Phase::Backup, Action::Dump),
        step(
            "2.1",
            Phase::LedgerRepair,
            Action::RepairLedger {
                revert: vec!["2".into()],
                record: Vec::new(),
                rekey: Vec::new(),
            },
        ),
        apply("3.1", "2"),
        step("4.1", Phase::Verify, Action::Verify),
    ]
}

fn skipped(faults: &Faults) -> Vec<String> {
    every_action()
        .iter()
        .filter(|s| skipped_by_fault(s, faults))
        .map(|s| s.id.clone())
        .collect()
}

#[test]
fn without_faults_no_step_is_skipped() {
    assert!(skipped(&Faults::default()).is_empty());
}

#[test]
fn skipping_the_backup_skips_every_phase_1_step_and_nothing_else() {
    let faults = Faults {
        skip_backup: true,
        ..Faults::default()
    };
    assert_eq!(skipped(&faults), vec!["1.1", "1.2", "1.3"]);
}

#[test]
fn skipping_the_ledger_repair_skips_phase_2_only() {
    let faults = Faults {
        skip_ledger_repair: true,
        ..Faults::default()
    };
    assert_eq!(skipped(&faults), vec!["2.1"]);
}

#[test]
fn reversing_the_order_swaps_the_applies_and_keeps_every_other_step_in_place() {
    let mut plan = every_action();
    plan.insert(5, apply("3.2", "3"));
    plan.insert(6, apply("3.3", "4"));
    let mut steps: Vec<&Step> = plan.iter().collect();
    reverse_applies(&mut steps);
    let ids: Vec<&str> = steps.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(
        ids,
        vec!["1.1", "1.2", "1.3", "2.1", "3.3", "3.2", "3.1", "4.1"]
    );
}
