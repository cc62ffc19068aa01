//! The versions a scenario names, checked against its fixture's migrations:
//! local versions must exist and have one role each, remote-only rows and
//! re-versioned targets must not be local, statement numbers must fit the
//! file, and the expected statuses must name real versions.

use std::collections::{BTreeMap, BTreeSet};

use super::invalid;
use crate::Result;
use crate::error::Error;
use crate::source::project::Project;
use crate::testkit::scenario::Scenario;

/// Checks every version the scenario names against the fixture's migrations.
pub(in crate::testkit::scenario) fn against(scenario: &Scenario, project: &Project) -> Result<()> {
    let local: BTreeSet<&str> = project.versions().collect();
    let roles = roles(scenario)?;
    for (version, field) in &roles {
        if !local.contains(version.as_str()) {
            return Err(not_in_fixture(scenario, field, version, project));
        }
    }
    partial_statements(scenario, project)?;
    edited_statements(scenario, project)?;
    foreign_versions(scenario, &local)?;
    recorded_rows(scenario, &roles)?;
    data_after(scenario, &roles)?;
    expected_statuses(scenario, &local, project)
}

/// Each local version the state names, with the field naming it; a version
/// named twice is an error.
fn roles(scenario: &Scenario) -> Result<BTreeMap<String, String>> {
    let state = &scenario.state;
    let mut named: Vec<(String, &str)> = Vec::new();
    named.extend(state.applied.iter().map(|v| (v.clone(), "state.applied")));
    named.extend(state.phantom.iter().map(|v| (v.clone(), "state.phantom")));
    named.extend(
        state
            .partial
            .iter()
            .map(|p| (p.version.clone(), "state.partial")),
    );
    named.extend(
        state
            .unrecorded
            .iter()
            .map(|v| (v.clone(), "state.unrecorded")),
    );
    named.extend(
        state
            .edited
            .iter()
            .map(|e| (e.version.clone(), "state.edited")),
    );
    named.extend(
        state
            .re_versioned
            .iter()
            .map(|r| (r.version.clone(), "state.re_versioned")),
    );
    let mut roles = BTreeMap::new();
    for (version, field) in named {
        if let Some(first) = roles.insert(version.clone(), field.to_string()) {
            return Err(invalid(
                scenario,
                field,
                format!("version {version} is already named in {first}"),
                "give each version one role (a version named nowhere is pending)",
            ));
        }
    }
    Ok(roles)
}

fn not_in_fixture(scenario: &Scenario, field: &str, version: &str, project: &Project) -> Error {
    let known: Vec<&str> = project.versions().collect();
    invalid(
        scenario,
        field,
        format!(
            "version {version} is not a migration of fixture {:?} (it has {})",
            scenario.fixture,
            known.join(", ")
        ),
        "use a version from the fixture's supabase/migrations folder",
    )
}

fn partial_statements(scenario: &Scenario, project: &Project) -> Result<()> {
    for (index, partial) in scenario.state.partial.iter().enumerate() {
        let field = format!("state.partial[{index}].statements");
        let count = project
            .get(&partial.version)
            .map_or(0, |m| m.statements.len());
        let ascending = partial.statements.windows(2).all(|pair| pair[0] < pair[1]);
        if partial.statements.is_empty() || !ascending {
            return Err(invalid(
                scenario,
                &field,
                "must list statement numbers in ascending order, without repeats",
                "e.g. statements = [1, 2]",
            ));
        }
        if let Some(bad) = partial.statements.iter().find(|&&n| n == 0 || n > count) {
            return Err(invalid(
                scenario,
                &field,
                format!(
                    "migration {} has statements 1 to {count}, not {bad}",
                    partial.version
                ),
                "number statements from 1, as the ledger's statements array lists them",
            ));
        }
        if partial.statements.len() == count {
            return Err(invalid(
                scenario,
                &field,
                format!("lists every statement of {}", partial.version),
                "put the version in state.applied instead",
            ));
        }
    }
    Ok(())
}

fn edited_statements(scenario: &Scenario, project: &Project) -> Result<()> {
    for (index, edited) in scenario.state.edited.iter().enumerate() {
        let same = project
            .get(&edited.version)
            .is_some_and(|m| m.statements == edited.statements);
        if edited.statements.is_empty() || same {
            return Err(invalid(
                scenario,
                &format!("state.edited[{index}].statements"),
                format!(
                    "must differ from the statements of {}'s file and not be empty",
                    edited.version
                ),
                "write the statements the ledger stores (the file before the edit)",
            ));
        }
    }
    Ok(())
}

/// Versions that must NOT be local: remote-only rows and re-versioned targets.
fn foreign_versions(scenario: &Scenario, local: &BTreeSet<&str>) -> Result<()> {
    let state = &scenario.state;
    let mut foreign: Vec<(String, String)> = Vec::new();
    for (index, remote) in state.remote_only.iter().enumerate() {
        foreign.push((
            remote.version.clone(),
            format!("state.remote_only[{index}].version"),
        ));
    }
    for (index, moved) in state.re_versioned.iter().enumerate() {
        foreign.push((
            moved.recorded_as.clone(),
            format!("state.re_versioned[{index}].as"),
        ));
    }
    let mut seen = BTreeSet::new();
    for (version, field) in foreign {
        if version.is_empty() || !version.chars().all(|c| c.is_ascii_digit()) {
            return Err(invalid(
                scenario,
                &field,
                format!("{version:?} is not a version"),
                "use digits only, like the CLI's 14-digit timestamps",
            ));
        }
        if local.contains(version.as_str()) {
            return Err(invalid(
                scenario,
                &field,
                format!(
                    "version {version} has a local file in fixture {:?}",
                    scenario.fixture
                ),
                "pick a version that no migration file has",
            ));
        }
        if !seen.insert(version.clone()) {
            return Err(invalid(
                scenario,
                &field,
                format!("version {version} is recorded twice"),
                "give every ledger row its own version",
            ));
        }
    }
    Ok(())
}

fn data_after(scenario: &Scenario, roles: &BTreeMap<String, String>) -> Result<()> {
    let Some(version) = &scenario.state.data_after else {
        return Ok(());
    };
    match roles.get(version).map(String::as_str) {
        Some("state.phantom") | None => Err(invalid(
            scenario,
            "state.data_after",
            format!("version {version} is not applied in this state"),
            "name a version listed in state.applied, state.unrecorded, state.partial, state.edited or state.re_versioned",
        )),
        Some(_) => Ok(()),
    }
}

fn expected_statuses(scenario: &Scenario, local: &BTreeSet<&str>, project: &Project) -> Result<()> {
    let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
    for (label, versions) in scenario.expect.statuses.by_label() {
        let field = format!("expect.statuses.{label}");
        for version in versions {
            let is_local = local.contains(version.as_str());
            if label == "remote-only" && is_local {
                return Err(invalid(
                    scenario,
                    &field,
                    format!("version {version} has a local file"),
                    "list only versions without a file as remote-only",
                ));
            }
            if label != "remote-only" && !is_local {
                return Err(not_in_fixture(scenario, &field, version, project));
            }
            if let Some(other) = seen.insert(version, label) {
                return Err(invalid(
                    scenario,
                    &field,
                    format!("version {version} is also expected to be {other}"),
                    "give each version one expected status",
                ));
            }
        }
    }
    Ok(())
}

/// `state.recorded` may only replace rows the state records.
fn recorded_rows(scenario: &Scenario, roles: &BTreeMap<String, String>) -> Result<()> {
    for row in &scenario.state.recorded {
        if row.statements.is_empty() == row.append.is_empty() {
            return Err(invalid(
                scenario,
                "state.recorded",
                format!(
                    "version {}: give exactly one of statements and append",
                    row.version
                ),
                "statements replaces the file's statements; append adds to them",
            ));
        }
        let role = roles.get(&row.version).map(String::as_str);
        if !matches!(
            role,
            Some("state.applied" | "state.phantom" | "state.partial")
        ) {
            return Err(invalid(
                scenario,
                "state.recorded",
                format!(
                    "version {} is not recorded by state.applied, state.phantom or state.partial",
                    row.version
                ),
                "replace the statements of a row the state records (state.edited sets its own)",
            ));
        }
    }
    Ok(())
}
