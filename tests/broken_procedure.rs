//! The checks catch a broken procedure: the plan's own state, repaired with
//! Phase 2 skipped, with the migrations applied in the wrong order, or with
//! the backup skipped, must not pass as the correct procedure does.

use std::path::PathBuf;

use phantom_sync::testkit::matrix::run_scenario;
use phantom_sync::testkit::scenario::{Outcome, Scenario};

fn plan_state_with(fault: &str) -> anyhow::Result<Scenario> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios/plan-exact-state.toml");
    let mut scenario = Scenario::load(&path)?;
    scenario
        .procedure
        .faults
        .insert(fault.to_string(), toml::Value::Boolean(true));
    Ok(scenario)
}

#[tokio::test]
async fn skipping_the_ledger_repair_fails_with_already_applied() -> anyhow::Result<()> {
    let run = run_scenario(&plan_state_with("skip_ledger_repair")?, 17).await?;
    assert_eq!(run.outcome, Outcome::Failed);
    assert!(
        run.reason
            .as_deref()
            .unwrap_or("")
            .contains("already recorded"),
        "{:?}",
        run.reason
    );
    Ok(())
}

#[tokio::test]
async fn applying_in_the_wrong_order_fails() -> anyhow::Result<()> {
    let run = run_scenario(&plan_state_with("reverse_order")?, 17).await?;
    assert_ne!(run.outcome, Outcome::Repaired, "{}", run.snapshot);
    Ok(())
}

#[tokio::test]
async fn skipping_the_backup_violates_an_invariant() -> anyhow::Result<()> {
    let run = run_scenario(&plan_state_with("skip_backup")?, 17).await?;
    assert!(
        run.violations.iter().any(|v| v.contains("without Phase 1")),
        "violations: {:?}",
        run.violations
    );
    Ok(())
}
