//! The scenario matrix: every file in scenarios/ is one test, run on every
//! major in PHANTOM_PG_VERSIONS. Each builds its broken state for real, runs
//! the procedure with its faults, checks the invariants in code and compares
//! the redacted record with snapshots/<scenario>.snap — the same snapshot for
//! every major.

mod common;
use common::on_majors;

use std::path::PathBuf;

use phantom_sync::pg::sandbox::versions_from_env;
use phantom_sync::testkit::matrix::run_scenario;
use phantom_sync::testkit::scenario::{Scenario, load_all};
use pretty_assertions::assert_eq;
use rstest::rstest;

/// Two majors at a time (with cargo's two test threads, four scenario runs
/// at once): `phantom-sync matrix --versions 17` ran the catalogue in 94 s
/// two at a time, 83 s three and 75 s four at a time, every invariant held.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenario(#[files("scenarios/*.toml")] path: PathBuf) -> anyhow::Result<()> {
    let scenario = std::sync::Arc::new(Scenario::load(&path)?);
    on_majors(versions_from_env()?, 2, |major| {
        let scenario = scenario.clone();
        async move { check(&scenario, major).await }
    })
    .await
}

/// One scenario on one major: invariants, outcome, snapshot.
async fn check(scenario: &Scenario, major: u8) -> anyhow::Result<()> {
    let run = run_scenario(scenario, major).await?;
    assert_eq!(
        run.violations,
        Vec::<String>::new(),
        "{} on PostgreSQL {major}: invariants violated\n\n{}",
        scenario.name,
        run.snapshot
    );
    assert_eq!(
        run.outcome, scenario.expect.outcome,
        "{} on PostgreSQL {major}: {:?}\n\n{}",
        scenario.name, run.reason, run.snapshot
    );
    insta::with_settings!({
        snapshot_path => "../snapshots",
        prepend_module_to_snapshot => false,
        omit_expression => true,
        description => scenario.description.clone(),
    }, {
        insta::assert_snapshot!(scenario.name.clone(), run.snapshot);
    });
    Ok(())
}

#[test]
fn the_catalogue_is_there() -> anyhow::Result<()> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let scenarios = load_all(&dir)?;
    assert!(
        scenarios.len() >= 20,
        "only {} scenario files in {}",
        scenarios.len(),
        dir.display()
    );
    Ok(())
}
