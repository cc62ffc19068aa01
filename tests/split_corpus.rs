//! The splitter against the Supabase CLI's real output: `tests/data/splitter-corpus/`
//! holds migration texts with the statements the CLI's own parser produced for them
//! (see the README there). Every case must come out byte for byte the same.

use std::path::PathBuf;

use phantom_sync::source::split::split_and_trim;
use serde::Deserialize;

/// One line of a corpus file.
#[derive(Deserialize)]
struct Case {
    name: String,
    input: String,
    statements: Vec<String>,
}

/// How many differing cases get a full diff in the failure message.
const DIFFS_SHOWN: usize = 5;

fn corpus(file: &str) -> Vec<Case> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/splitter-corpus")
        .join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("cannot read the corpus {}: {err}", path.display()));
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(index, line)| {
            serde_json::from_str(line).unwrap_or_else(|err| {
                panic!(
                    "{} line {}: not a corpus case: {err}",
                    path.display(),
                    index + 1
                )
            })
        })
        .collect()
}

/// Fails listing every case whose split differs from the CLI's, with a diff for the
/// first few.
fn assert_all_match(file: &str, cases: &[Case]) {
    let mut differing = Vec::new();
    let mut diffs = String::new();
    for case in cases {
        let ours = split_and_trim(&case.input);
        if ours != case.statements {
            if differing.len() < DIFFS_SHOWN {
                diffs.push_str(&format!(
                    "\n=== {} (input {:?})\n{}\n",
                    case.name,
                    case.input,
                    pretty_assertions::Comparison::new(&ours, &case.statements)
                ));
            }
            differing.push(case.name.as_str());
        }
    }
    assert!(
        differing.is_empty(),
        "{file}: {} of {} cases differ from the Supabase CLI (left: ours, right: the CLI's):\n{}\n{diffs}",
        differing.len(),
        cases.len(),
        differing.join("\n")
    );
}

#[test]
fn every_corpus_case_splits_like_the_cli() {
    let cases = corpus("cases.jsonl");
    assert!(
        cases.len() >= 700,
        "cases.jsonl has only {} cases, expected at least 700",
        cases.len()
    );
    assert_all_match("cases.jsonl", &cases);
}

#[test]
fn every_extra_case_splits_like_the_cli() {
    let cases = corpus("extra.jsonl");
    assert!(
        cases.len() >= 20,
        "extra.jsonl has only {} cases, expected at least 20",
        cases.len()
    );
    assert_all_match("extra.jsonl", &cases);
}
