//! Parsing and validation of scenario files, on a two-migration fixture
//! written to a temporary folder, plus every real file in `scenarios/`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use pretty_assertions::assert_eq;

use super::*;

/// A temporary folder holding the fixture `mini` (two migrations); removed on drop.
struct Folder(PathBuf);

impl Folder {
    fn new(label: &str) -> Folder {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!(
            "phantom-scenario-{label}-{}-{n}",
            std::process::id()
        ));
        let migrations = dir.join("mini").join("supabase").join("migrations");
        std::fs::create_dir_all(&migrations).unwrap();
        std::fs::write(
            migrations.join("20240101000000_one.sql"),
            "create table public.t1 (id int);\ncomment on table public.t1 is 'one';\ncreate table public.t2 (id int);\n",
        )
        .unwrap();
        std::fs::write(
            migrations.join("20240102000000_two.sql"),
            "create table public.t3 (id int);\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("mini").join("data.sql"),
            "insert into public.t1 values (1);\n",
        )
        .unwrap();
        Folder(dir)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for Folder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const GOOD: &str = r#"
description = "one phantom, one pending"
fixture = "mini"

[state]
applied = []
origin = "commit-then-rollback"
phantom = ["20240101000000"]
partial = []
drift = ["drop table if exists public.nothing"]

[procedure]
run = "repair-twice"
faults = { drop_connection_in = "20240102000000" }

[expect]
outcome = "failed"
reason = "connection lost"
then = "repaired"
statuses = { phantom = ["20240101000000"], pending = ["20240102000000"] }
"#;

fn error_text(result: Result<Scenario>) -> String {
    match result {
        Ok(scenario) => panic!("expected an error, got scenario {}", scenario.name),
        Err(err) => err.to_string(),
    }
}

#[test]
fn a_good_file_parses_into_every_field() {
    let folder = Folder::new("good");
    let path = folder.write("one-phantom.toml", GOOD);
    let scenario = Scenario::load(&path).unwrap();
    assert_eq!(scenario.name, "one-phantom");
    assert_eq!(scenario.fixture_dir(), folder.0.join("mini"));
    assert_eq!(
        scenario.migrations_dir(),
        folder.0.join("mini/supabase/migrations")
    );
    assert_eq!(scenario.state.origin, Some(Origin::CommitThenRollback));
    assert_eq!(scenario.state.phantom, vec!["20240101000000".to_string()]);
    assert_eq!(scenario.state.drift.len(), 1);
    assert!(!scenario.state.no_ledger);
    assert_eq!(scenario.procedure.run, Run::RepairTwice);
    assert_eq!(
        scenario
            .procedure
            .faults
            .get("drop_connection_in")
            .and_then(|v| v.as_str()),
        Some("20240102000000")
    );
    assert_eq!(scenario.expect.outcome, Outcome::Failed);
    assert_eq!(scenario.expect.then, Some(Outcome::Repaired));
    assert_eq!(scenario.expect.reason.as_deref(), Some("connection lost"));
    let listed: Vec<&str> = scenario
        .expect
        .statuses
        .listed()
        .iter()
        .map(|(label, _)| *label)
        .collect();
    assert_eq!(listed, vec!["phantom", "pending"]);
}

#[test]
fn faults_convert_into_the_engines_type_or_name_the_field() {
    #[derive(Debug, Default, serde::Deserialize, PartialEq)]
    #[serde(default, deny_unknown_fields)]
    struct Faults {
        drop_connection_in: Option<String>,
        reverse_order: bool,
    }
    let folder = Folder::new("faults");
    let mut scenario = Scenario::load(&folder.write("f.toml", GOOD)).unwrap();
    let faults: Faults = scenario.faults().unwrap();
    assert_eq!(faults.drop_connection_in.as_deref(), Some("20240102000000"));
    scenario
        .procedure
        .faults
        .insert("revers_order".into(), toml::Value::Boolean(true));
    let message = error_text(scenario.faults::<Faults>().map(|_| scenario.clone()));
    assert!(message.contains("f.toml: procedure.faults"), "{message}");
    assert!(message.contains("revers_order"), "{message}");
}

#[test]
fn a_malformed_file_names_the_file_the_line_and_the_field() {
    let folder = Folder::new("malformed");
    let text = GOOD.replacen(
        "phantom = [\"20240101000000\"]",
        "phantom = \"20240101000000\"",
        1,
    );
    let path = folder.write("bad-type.toml", &text);
    let message = error_text(Scenario::load(&path));
    assert!(message.contains("bad-type.toml"), "{message}");
    assert!(message.contains("field `state.phantom`"), "{message}");
    // `phantom` is on line 8 of GOOD (it starts with a newline).
    assert!(message.contains("line 8,"), "{message}");
    assert!(message.contains("hint:"), "{message}");
}

#[test]
fn a_missing_field_names_the_table_it_is_missing_from() {
    let folder = Folder::new("missing-field");
    let message = error_text(Scenario::load(
        &folder.write("no-run.toml", &GOOD.replace("run = \"repair-twice\"", "")),
    ));
    assert!(message.contains("missing field `run`"), "{message}");
    assert!(message.contains("field `procedure`"), "{message}");
    let no_expect = &GOOD[..GOOD.find("[expect]").unwrap()];
    let message = error_text(Scenario::load(&folder.write("no-expect.toml", no_expect)));
    assert!(message.contains("no-expect.toml: "), "{message}");
    assert!(message.contains("missing field `expect`"), "{message}");
    assert!(!message.contains("field `description`"), "{message}");
}

#[test]
fn a_syntax_error_gives_line_and_column() {
    let folder = Folder::new("syntax");
    let path = folder.write("syntax.toml", "description = \"x\"\nfixture = mini\n");
    let message = error_text(Scenario::load(&path));
    assert!(
        message.contains("syntax.toml: line 2, column 11"),
        "{message}"
    );
}

#[test]
fn an_unknown_field_is_rejected_with_its_path() {
    let folder = Folder::new("unknown");
    let text = GOOD.replace("partial = []", "partials = []");
    let message = error_text(Scenario::load(&folder.write("typo.toml", &text)));
    assert!(message.contains("typo.toml"), "{message}");
    assert!(message.contains("unknown field `partials`"), "{message}");
    assert!(message.contains("`state.partials`"), "{message}");

    let nested = GOOD.replace(
        "partial = []",
        "partial = [{ version = \"20240102000000\", statement = [1] }]",
    );
    let message = error_text(Scenario::load(&folder.write("typo2.toml", &nested)));
    assert!(message.contains("unknown field `statement`"), "{message}");
    assert!(message.contains("line 9,"), "{message}");
    assert!(message.contains("`state.partial[0]"), "{message}");
}

#[test]
fn a_version_not_in_the_fixture_is_rejected() {
    let folder = Folder::new("version");
    let text = GOOD.replacen(
        "phantom = [\"20240101000000\"]",
        "phantom = [\"20991231000000\"]",
        1,
    );
    let message = error_text(Scenario::load(&folder.write("missing.toml", &text)));
    assert!(
        message.contains("missing.toml: state.phantom: version 20991231000000"),
        "{message}"
    );
    assert!(
        message.contains("20240101000000, 20240102000000"),
        "{message}"
    );

    let expected = GOOD.replace(
        "pending = [\"20240102000000\"]",
        "pending = [\"20240103000000\"]",
    );
    let message = error_text(Scenario::load(&folder.write("expected.toml", &expected)));
    assert!(
        message.contains("expect.statuses.pending: version 20240103000000"),
        "{message}"
    );
}

#[test]
fn a_version_with_two_roles_is_rejected() {
    let folder = Folder::new("twice");
    let text = GOOD.replace("applied = []", "applied = [\"20240101000000\"]");
    let message = error_text(Scenario::load(&folder.write("twice.toml", &text)));
    assert!(
        message.contains("state.phantom: version 20240101000000 is already named in state.applied"),
        "{message}"
    );
}

#[test]
fn remote_only_and_re_versioned_targets_must_not_be_local() {
    let folder = Folder::new("foreign");
    let text = GOOD.replace(
        "partial = []",
        "partial = []\nremote_only = [{ version = \"20240102000000\", name = \"x\", statements = [\"select 1\"] }]",
    );
    let message = error_text(Scenario::load(&folder.write("remote.toml", &text)));
    assert!(
        message.contains("state.remote_only[0].version: version 20240102000000 has a local file"),
        "{message}"
    );

    let moved = GOOD.replace(
        "partial = []",
        "re_versioned = [{ version = \"20240102000000\", as = \"20990101000000\" }]",
    );
    let scenario = Scenario::load(&folder.write("moved.toml", &moved)).unwrap();
    assert_eq!(scenario.state.re_versioned[0].recorded_as, "20990101000000");
}

#[test]
fn partial_statement_numbers_are_checked_against_the_file() {
    let folder = Folder::new("partial");
    let with = |list: &str| {
        GOOD.replace(
            "partial = []",
            &format!("partial = [{{ version = \"20240102000000\", statements = {list} }}]"),
        )
    };
    let message = error_text(Scenario::load(&folder.write("p1.toml", &with("[2]"))));
    assert!(
        message.contains(
            "state.partial[0].statements: migration 20240102000000 has statements 1 to 1, not 2"
        ),
        "{message}"
    );
    let message = error_text(Scenario::load(&folder.write("p2.toml", &with("[1]"))));
    assert!(message.contains("lists every statement"), "{message}");
}

#[test]
fn combinations_that_make_no_sense_are_rejected() {
    let folder = Folder::new("combos");
    let cases = [
        (
            GOOD.replace("origin = \"commit-then-rollback\"\n", ""),
            "state.origin: missing",
        ),
        (
            GOOD.replace("then = \"repaired\"\n", ""),
            "expect.then: missing",
        ),
        (
            GOOD.replace("reason = \"connection lost\"\n", ""),
            "expect.reason: missing",
        ),
        (
            GOOD.replace("drift = [", "no_ledger = true\ndrift = ["),
            "state.phantom: records ledger rows",
        ),
        (
            GOOD.replace(
                "drift = [",
                "data = \"data.sql\"\ndata_after = \"20240101000000\"\ndrift = [",
            ),
            "state.data_after: version 20240101000000 is not applied",
        ),
        (
            GOOD.replace(
                "drift = [",
                "data = \"nope.sql\"\ndata_after = \"20240101000000\"\ndrift = [",
            ),
            "state.data: ",
        ),
        (
            GOOD.replace("run = \"repair-twice\"", "run = \"rollback-ledger\""),
            "procedure.mistake: missing",
        ),
        (
            GOOD.replace("drift = [", "data_bulk = true\ndrift = ["),
            "state.data_bulk: given without state.data",
        ),
    ];
    for (index, (text, expected)) in cases.iter().enumerate() {
        let message = error_text(Scenario::load(
            &folder.write(&format!("c{index}.toml"), text),
        ));
        assert!(message.contains(expected), "case {index}: {message}");
    }
}

#[test]
fn load_all_fails_on_a_folder_without_scenarios() {
    let folder = Folder::new("empty");
    let message = error_text(load_all(&folder.0.join("mini")).map(|mut all| all.remove(0)));
    assert!(
        message.contains("no scenario files (*.toml) found"),
        "{message}"
    );
}

#[test]
fn load_all_reads_files_in_name_order() {
    let folder = Folder::new("order");
    folder.write("b.toml", GOOD);
    folder.write("a.toml", GOOD);
    folder.write("notes.md", "not a scenario");
    let names: Vec<String> = load_all(&folder.0)
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, vec!["a".to_string(), "b".to_string()]);
}

#[test]
fn every_scenario_file_in_the_repository_is_valid() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let scenarios = load_all(&dir).unwrap();
    let names: Vec<&str> = scenarios.iter().map(|s| s.name.as_str()).collect();
    for expected in [
        "plan-exact-state",
        "partial",
        "no-ledger",
        "large-tables",
        "repair-twice",
    ] {
        assert!(
            names.contains(&expected),
            "scenarios/{expected}.toml is missing; found {names:?}"
        );
    }
    let large = scenarios.iter().find(|s| s.name == "large-tables").unwrap();
    assert_eq!(
        large.state.data_scale.get("fixture.collections"),
        Some(&1_000_000)
    );
    assert!(large.state.data_bulk);
}

#[test]
fn line_and_column_count_characters_from_one() {
    assert_eq!(parse::line_column("ab\ncdé\nf", 0), (1, 1));
    assert_eq!(parse::line_column("ab\ncdé\nf", 3), (2, 1));
    assert_eq!(parse::line_column("ab\ncdé\nf", 8), (3, 1));
}

#[test]
fn key_paths_index_into_arrays() {
    let text = "[state]\npartial = [{ version = \"1\", statements = [1, 2] }]\n";
    let start = text.find("[1, 2]").unwrap() + 4;
    assert_eq!(
        parse::key_path(text, start..start + 1).as_deref(),
        Some("state.partial[0].statements[1]")
    );
    assert_eq!(parse::key_path(text, 0..text.len()), None);
}
