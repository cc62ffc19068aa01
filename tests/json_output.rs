//! Every command's `--json` output is a versioned document — `schema_version`
//! and `kind` beside the fields — described by the JSON Schema committed in
//! `src/cli/output.schema.json`, which CI jobs can rely on. The committed
//! schema must be what the code generates, and real outputs of every command
//! must validate against it.

mod common;
use common::{phantom_sync, root};

use std::process::Output;

use phantom_sync::pg::sandbox::Database;
use phantom_sync::testkit::scenario::{Scenario, build_state};

fn committed_schema() -> serde_json::Value {
    let text = std::fs::read_to_string(root().join("src/cli/output.schema.json"))
        .expect("src/cli/output.schema.json is committed");
    serde_json::from_str(&text).expect("the committed schema is JSON")
}

#[test]
fn the_committed_schema_is_what_the_code_generates() {
    let generated = phantom_sync(&["json-schema"]);
    assert_eq!(generated.status.code(), Some(0));
    let generated: serde_json::Value = serde_json::from_slice(&generated.stdout).unwrap();
    assert!(
        generated == committed_schema(),
        "src/cli/output.schema.json is out of date: regenerate it with \
         `cargo run --quiet -- json-schema > src/cli/output.schema.json`, review the diff, \
         and bump SCHEMA_VERSION in src/cli/output.rs if a field changed meaning or disappeared"
    );
}

/// Parses `output`'s stdout as a document of `kind` and validates it.
fn valid(output: &Output, kind: &str) -> serde_json::Value {
    let text = String::from_utf8_lossy(&output.stdout);
    let document: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "{kind}: not JSON ({e}):\n{text}\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    assert_eq!(document["kind"], kind);
    assert_eq!(document["schema_version"], 1);
    let schema = committed_schema();
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(&document)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .take(5)
        .collect();
    assert!(errors.is_empty(), "{kind} does not validate: {errors:#?}");
    document
}

#[tokio::test(flavor = "multi_thread")]
async fn every_command_prints_a_valid_document() -> anyhow::Result<()> {
    let scenario = Scenario::load(&root().join("scenarios/plan-exact-state.toml"))?;
    let db = Database::fresh(17, "json_output").await?;
    let result = async {
        let mut conn = db.connect().await?;
        build_state(&scenario, &scenario.project()?, &mut conn).await?;
        drop(conn);
        let url = db.server().url(&db.name);
        let migrations = scenario.migrations_dir().display().to_string();
        let work = phantom_sync::files::temp_dir("json-output")?;
        let backup = work.path().join("backup").display().to_string();
        let common = [
            "--json",
            "--db-url",
            url.as_str(),
            "--migrations",
            migrations.as_str(),
        ];
        let run = |command: &[&str]| {
            let mut args: Vec<&str> = command.to_vec();
            args.extend(common);
            phantom_sync(&args)
        };
        let list = valid(&run(&["list"]), "diagnosis");
        assert_eq!(list["entries"].as_array().map(Vec::len), Some(8));
        valid(&run(&["diagnose"]), "diagnosis");
        valid(&run(&["plan"]), "plan");
        valid(&run(&["repair", "--backup-dir", &backup]), "journal");
        let verification = valid(&run(&["verify", "--backup-dir", &backup]), "verification");
        assert!(
            verification["checks"]
                .as_array()
                .is_some_and(|c| !c.is_empty())
        );
        valid(
            &run(&["rollback", "--procedure", "ledger", "--backup-dir", &backup]),
            "rollback",
        );
        let out = work.path().join("restored").display().to_string();
        valid(
            &run(&["restore-file", "20250411083417", "--out", &out]),
            "restored-file",
        );
        let rehearsal_out = work.path().join("rehearsal").display().to_string();
        let rehearsal = phantom_sync(&["rehearse", "--json", "--out", &rehearsal_out]);
        let rehearsal = valid(&rehearsal, "rehearsal");
        assert_eq!(rehearsal["passed"], true);
        anyhow::Ok(())
    }
    .await;
    db.drop_database().await?;
    result
}

#[test]
fn a_document_that_breaks_its_shape_does_not_validate() {
    let schema = committed_schema();
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    let good = serde_json::json!({
        "schema_version": 1, "kind": "restored-file", "version": "1",
        "path": "/x/1_a.sql", "statements": 2, "replaces": null
    });
    assert!(
        validator.is_valid(&good),
        "{:?}",
        validator
            .iter_errors(&good)
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
    );
    for broken in [
        serde_json::json!({ "schema_version": 1, "kind": "restored-file", "version": "1", "path": "/x", "statements": "two", "replaces": null }),
        serde_json::json!({ "schema_version": 2, "kind": "restored-file", "version": "1", "path": "/x", "statements": 2, "replaces": null }),
        serde_json::json!({ "schema_version": 1, "kind": "diagnosis", "entries": 3 }),
        serde_json::json!({ "schema_version": 1, "version": "1", "path": "/x", "statements": 2, "replaces": null }),
    ] {
        assert!(!validator.is_valid(&broken), "accepted {broken}");
    }
}
