//! Printing what the library returns: JSON for machines, Markdown for people.

use phantom_sync::engine::journal::Journal;
use phantom_sync::files::write_atomic;
use phantom_sync::report;

/// The journal on stdout, as JSON or as the execution log.
pub fn print_journal(journal: &Journal, as_json: bool) {
    if as_json {
        println!("{}", document("journal", journal));
    } else {
        print!("{}", report::journal_markdown(journal));
    }
}

/// `journal.md` beside the journal's `journal.json`, for people to read.
pub fn save_journal_markdown(journal: &Journal) {
    if let Some(path) = &journal.path
        && let Err(e) = write_atomic(
            &path.with_extension("md"),
            &report::journal_markdown(journal),
        )
    {
        eprintln!("warning: {e}");
    }
}

/// Where to wrap text for stdout: the terminal's width (at most 120), else 100.
pub fn width() -> usize {
    let term = console::Term::stdout();
    match term.is_term().then(|| term.size_checked()).flatten() {
        Some((_, columns)) => usize::from(columns).clamp(40, 120),
        None => 100,
    }
}

/// The version of the JSON documents below; bumped when a field changes
/// meaning or disappears (new fields do not bump it).
pub const SCHEMA_VERSION: u64 = 1;

/// A JSON document: the value's fields plus `schema_version` and `kind`.
pub fn document<T: serde::Serialize>(kind: &str, value: &T) -> String {
    let mut value = serde_json::to_value(value).unwrap_or_default();
    if let Some(object) = value.as_object_mut() {
        object.insert("schema_version".into(), SCHEMA_VERSION.into());
        object.insert("kind".into(), kind.into());
    }
    serde_json::to_string_pretty(&value).unwrap_or_default()
}

/// The JSON Schema (draft 2020-12) of every document `document` prints,
/// generated from the library's types.
pub fn json_schema() -> serde_json::Value {
    use phantom_sync::engine::{
        diagnose::Diagnosis, journal::Journal, plan::Plan, restore_file::RestoredFile,
        rollback::RollbackReport, verify::Verification,
    };
    use phantom_sync::rehearse::Rehearsal;
    let mut generator =
        schemars::SchemaGenerator::new(schemars::generate::SchemaSettings::draft2020_12());
    let roots = [
        ("diagnosis", generator.subschema_for::<Diagnosis>()),
        ("plan", generator.subschema_for::<Plan>()),
        ("journal", generator.subschema_for::<Journal>()),
        ("verification", generator.subschema_for::<Verification>()),
        ("rollback", generator.subschema_for::<RollbackReport>()),
        ("rehearsal", generator.subschema_for::<Rehearsal>()),
        ("restored-file", generator.subschema_for::<RestoredFile>()),
    ];
    let one_of: Vec<serde_json::Value> = roots
        .into_iter()
        .map(|(kind, schema)| {
            serde_json::json!({
                "allOf": [
                    schema,
                    {
                        "type": "object",
                        "properties": {
                            "kind": { "const": kind },
                            "schema_version": { "const": SCHEMA_VERSION }
                        },
                        "required": ["kind", "schema_version"]
                    }
                ]
            })
        })
        .collect();
    serde_json::json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://phantom-sync.invalid/output.schema.json",
        "title": format!("phantom-sync --json output, schema_version {SCHEMA_VERSION}"),
        "description": "Every document carries schema_version and kind; kind says which of the shapes below it has (list/diagnose: diagnosis, plan: plan, repair: journal, verify: verification, rollback: rollback, rehearse: rehearsal, restore-file: restored-file).",
        "oneOf": one_of,
        "$defs": generator.take_definitions(true)
    })
}
