//! Checks a parsed scenario beyond what serde can: fields that need or
//! exclude each other ([`fields`]). The versions it names are checked against
//! the fixture in [`versions`]. Every error names the file and the field, and
//! says what to do.

mod versions;

pub(super) use versions::against;

use std::fmt::Display;

use super::{Outcome, Run, Scenario, State};
use crate::Result;
use crate::error::Error;

/// `Error::Invalid("<file>: <field>: <problem> (hint: <hint>)")`.
pub(super) fn invalid(
    scenario: &Scenario,
    field: &str,
    problem: impl Display,
    hint: &str,
) -> Error {
    Error::Invalid(format!(
        "{}: {field}: {problem} (hint: {hint})",
        scenario.path.display()
    ))
}

/// Checks that need no fixture: required and forbidden combinations.
pub(super) fn fields(scenario: &Scenario) -> Result<()> {
    fixture_name(scenario)?;
    state_fields(scenario)?;
    procedure_fields(scenario)?;
    expect_fields(scenario)
}

fn fixture_name(scenario: &Scenario) -> Result<()> {
    let name = &scenario.fixture;
    let plain = !name.is_empty() && !name.starts_with('.') && !name.contains(['/', '\\']);
    if !plain {
        return Err(invalid(
            scenario,
            "fixture",
            format!("{name:?} is not a folder name"),
            "name a folder next to the scenario file, e.g. \"prompt-manager\"",
        ));
    }
    Ok(())
}

fn state_fields(scenario: &Scenario) -> Result<()> {
    let state = &scenario.state;
    match (&state.origin, state.phantom.is_empty()) {
        (None, false) => {
            return Err(invalid(
                scenario,
                "state.origin",
                "missing: state.phantom lists versions",
                "say how the phantom rows came to be: \"ledger-only\", \"commit-then-rollback\", \"restore-newer-ledger\" or \"hand-edited\"",
            ));
        }
        (Some(_), true) => {
            return Err(invalid(
                scenario,
                "state.origin",
                "given, but state.phantom is empty",
                "remove state.origin, or list the phantom versions",
            ));
        }
        _ => {}
    }
    if state.no_ledger {
        let recorded = [
            ("state.applied", state.applied.len()),
            ("state.phantom", state.phantom.len()),
            ("state.partial", state.partial.len()),
            ("state.remote_only", state.remote_only.len()),
            ("state.edited", state.edited.len()),
            ("state.re_versioned", state.re_versioned.len()),
        ];
        if let Some((field, _)) = recorded.iter().find(|(_, count)| *count > 0) {
            return Err(invalid(
                scenario,
                field,
                "records ledger rows, but state.no_ledger = true",
                "without a ledger only state.unrecorded can apply migrations; set no_ledger = false or move the versions",
            ));
        }
    }
    data_fields(scenario, state)?;
    for (field, list) in [
        ("state.drift", &state.drift),
        ("state.environment", &state.environment),
    ] {
        for (index, sql) in list.iter().enumerate() {
            if sql.trim().is_empty() {
                return Err(invalid(
                    scenario,
                    &format!("{field}[{index}]"),
                    "is empty",
                    "write the SQL, or remove the entry",
                ));
            }
        }
    }
    if state.no_ledger && !state.recorded.is_empty() {
        return Err(invalid(
            scenario,
            "state.recorded",
            "replaces ledger rows, but state.no_ledger = true",
            "remove state.recorded, or give the state a ledger",
        ));
    }
    Ok(())
}

fn data_fields(scenario: &Scenario, state: &State) -> Result<()> {
    let Some(file) = &state.data else {
        if state.data_after.is_some() || !state.data_scale.is_empty() || state.data_bulk {
            let field = if state.data_after.is_some() {
                "state.data_after"
            } else if !state.data_scale.is_empty() {
                "state.data_scale"
            } else {
                "state.data_bulk"
            };
            return Err(invalid(
                scenario,
                field,
                "given without state.data",
                "name the data script with state.data, e.g. \"existing-data.sql\"",
            ));
        }
        return Ok(());
    };
    let plain = !file.is_empty() && !file.starts_with('.') && !file.contains(['/', '\\']);
    if !plain {
        return Err(invalid(
            scenario,
            "state.data",
            format!("{file:?} is not a file name"),
            "name a file inside the fixture folder, e.g. \"existing-data.sql\"",
        ));
    }
    if let Some(path) = scenario.data_path().filter(|path| !path.is_file()) {
        return Err(invalid(
            scenario,
            "state.data",
            format!("{} does not exist", path.display()),
            "put the script in the fixture folder or fix the name",
        ));
    }
    if state.data_after.is_none() && state.applied.is_empty() {
        return Err(invalid(
            scenario,
            "state.data_after",
            "missing, and state.applied is empty (the default is its last version)",
            "name the version after which the data script runs",
        ));
    }
    for key in state.data_scale.keys() {
        let valid = key.strip_prefix("fixture.").is_some_and(|rest| {
            !rest.is_empty()
                && rest
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        });
        if !valid {
            return Err(invalid(
                scenario,
                &format!("state.data_scale.{key:?}"),
                "is not a setting of the form fixture.<name>",
                "use the settings the data script reads, e.g. \"fixture.collections\" (see scenarios/FIXTURES.md)",
            ));
        }
    }
    Ok(())
}

fn procedure_fields(scenario: &Scenario) -> Result<()> {
    let procedure = &scenario.procedure;
    let needs_mistake = matches!(
        procedure.run,
        Run::RollbackDroppedTables | Run::RollbackLedger
    );
    if needs_mistake && procedure.mistake.is_empty() {
        return Err(invalid(
            scenario,
            "procedure.mistake",
            format!(
                "missing: run = {:?} needs the mistake to roll back",
                kebab(procedure.run)
            ),
            "write the SQL of the mistake, e.g. [\"DROP TABLE public.user_consents\"]",
        ));
    }
    if !needs_mistake && !procedure.mistake.is_empty() {
        return Err(invalid(
            scenario,
            "procedure.mistake",
            format!(
                "only rollback-dropped-tables and rollback-ledger use it, not {:?}",
                kebab(procedure.run)
            ),
            "remove it or change procedure.run",
        ));
    }
    if procedure.kill_at_every_step && procedure.run != Run::Repair {
        return Err(invalid(
            scenario,
            "procedure.kill_at_every_step",
            "needs run = \"repair\"",
            "change procedure.run to \"repair\"",
        ));
    }
    if let Some(writes) = &procedure.concurrent_writes {
        qualified_table(scenario, "procedure.concurrent_writes.table", &writes.table)?;
        if writes.rows == 0 || writes.writers == 0 || writes.insert.trim().is_empty() {
            return Err(invalid(
                scenario,
                "procedure.concurrent_writes",
                "needs rows > 0, writers > 0 and an insert statement",
                "e.g. { table = \"public.collections\", rows = 200, insert = \"insert into …\" }",
            ));
        }
    }
    if let Some(lock) = &procedure.hold_lock {
        qualified_table(scenario, "procedure.hold_lock.table", &lock.table)?;
    }
    Ok(())
}

fn qualified_table(scenario: &Scenario, field: &str, table: &str) -> Result<()> {
    let parts: Vec<&str> = table.split('.').collect();
    if parts.len() != 2 || parts.iter().any(|part| part.is_empty()) {
        return Err(invalid(
            scenario,
            field,
            format!("{table:?} is not schema.table"),
            "qualify the table, e.g. \"public.collections\"",
        ));
    }
    Ok(())
}

fn expect_fields(scenario: &Scenario) -> Result<()> {
    let expect = &scenario.expect;
    let run = scenario.procedure.run;
    let needs_reason = matches!(expect.outcome, Outcome::Refused | Outcome::Failed);
    match (&expect.reason, needs_reason) {
        (None, true) => {
            return Err(invalid(
                scenario,
                "expect.reason",
                format!("missing: outcome {:?} needs it", kebab(expect.outcome)),
                "give a substring of the refusal or error message",
            ));
        }
        (Some(_), false) => {
            return Err(invalid(
                scenario,
                "expect.reason",
                format!(
                    "only refused and failed outcomes have a reason, not {:?}",
                    kebab(expect.outcome)
                ),
                "remove it",
            ));
        }
        (Some(reason), true) if reason.trim().is_empty() => {
            return Err(invalid(
                scenario,
                "expect.reason",
                "is empty",
                "give a substring of the refusal or error message",
            ));
        }
        _ => {}
    }
    match (expect.then, run == Run::RepairTwice) {
        (None, true) => {
            return Err(invalid(
                scenario,
                "expect.then",
                "missing: run = \"repair-twice\" needs the second run's outcome",
                "add then = \"no-op\" or \"repaired\"",
            ));
        }
        (Some(_), false) => {
            return Err(invalid(
                scenario,
                "expect.then",
                "only run = \"repair-twice\" has a second run",
                "remove it or change procedure.run",
            ));
        }
        _ => {}
    }
    if expect.outcome == Outcome::RolledBack && !run.is_rollback() {
        return Err(invalid(
            scenario,
            "expect.outcome",
            "\"rolled-back\" needs one of the rollback runs",
            "use run = \"rollback-failed-migration\", \"rollback-dropped-tables\" or \"rollback-ledger\"",
        ));
    }
    Ok(())
}

/// The serde spelling of a kebab-case enum value.
fn kebab(value: impl serde::Serialize) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}
