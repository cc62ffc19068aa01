use std::path::Path;

use pretty_assertions::assert_eq;
use rstest::rstest;

use super::*;

fn row(version: &str, name: Option<&str>, statements: Option<&[&str]>) -> LedgerRow {
    LedgerRow {
        version: version.into(),
        name: name.map(String::from),
        statements: statements.map(|list| list.iter().map(|s| s.to_string()).collect()),
    }
}

/// The plan's ledger before the repair, with one damaged row (NULLs).
fn plan_ledger() -> Ledger {
    Ledger {
        exists: true,
        rows: vec![
            row(
                "20250328135512",
                Some("collections"),
                Some(&["a", "b", "c"]),
            ),
            row(
                "20250328201010",
                Some("drop-rls"),
                Some(&["alter table collections disable row level security"]),
            ),
            row(
                "20250402082709",
                Some("add_rls_to_collections"),
                Some(&["x"; 12]),
            ),
            row("20250413093000", None, None),
        ],
    }
}

#[test]
fn json_layout_is_fixed() {
    let ledger = Ledger {
        exists: true,
        rows: vec![
            row("1", Some("init"), Some(&["select 1"])),
            row("2", None, None),
        ],
    };
    let expected = r#"{
  "exists": true,
  "rows": [
    {
      "version": "1",
      "name": "init",
      "statements": [
        "select 1"
      ]
    },
    {
      "version": "2",
      "name": null,
      "statements": null
    }
  ]
}
"#;
    assert_eq!(ledger.to_json(), expected);
}

#[rstest]
#[case::plan(plan_ledger())]
#[case::missing_table(Ledger { exists: false, rows: vec![] })]
#[case::empty_table(Ledger { exists: true, rows: vec![] })]
#[case::awkward_text(Ledger {
    exists: true,
    rows: vec![
        row("0001", Some(""), Some(&[])),
        row("0002", Some("zażółć \"quoted\" \\ back"), Some(&["do $$ begin\n\traise notice '{,}'; end $$", ""])),
    ],
})]
fn json_round_trips(#[case] ledger: Ledger) {
    let text = ledger.to_json();
    let back = Ledger::from_json(&text, Path::new("backup/ledger.json")).unwrap();
    assert_eq!(back, ledger);
    assert_eq!(back.to_json(), text);
}

#[test]
fn from_json_sorts_rows_by_version() {
    let text = r#"{"exists": true, "rows": [{"version": "20251001211923"}, {"version": "20250413093000"}]}"#;
    let ledger = Ledger::from_json(text, Path::new("l.json")).unwrap();
    assert_eq!(ledger.versions(), vec!["20250413093000", "20251001211923"]);
    assert_eq!(ledger.rows[0].name, None);
    assert_eq!(ledger.rows[0].statements, None);
}

#[rstest]
#[case::not_json("{\"exists\": tru", "not a JSON ledger export")]
#[case::not_object(
    "[]",
    "expected a JSON object with fields `exists` and `rows`, found an array"
)]
#[case::exists_missing(r#"{"rows": []}"#, "field `exists` is missing")]
#[case::exists_wrong_type(
    r#"{"exists": "yes", "rows": []}"#,
    "field `exists` must be true or false, found the string \"yes\""
)]
#[case::rows_missing(r#"{"exists": true}"#, "field `rows` is missing")]
#[case::rows_not_array(
    r#"{"exists": true, "rows": {}}"#,
    "field `rows` must be an array, found an object"
)]
#[case::unknown_top_field(
    r#"{"exists": true, "rows": [], "extra": 1}"#,
    "field `extra` is not a ledger field"
)]
#[case::row_not_object(
    r#"{"exists": true, "rows": ["20250101"]}"#,
    "field `rows[0]` must be an object"
)]
#[case::version_missing(
    r#"{"exists": true, "rows": [{"name": "x"}]}"#,
    "field `rows[0].version` is missing"
)]
#[case::version_number(
    r#"{"exists": true, "rows": [{"version": 20250101000000}]}"#,
    "field `rows[0].version` must be a string, found the number 20250101000000"
)]
#[case::name_number(
    r#"{"exists": true, "rows": [{"version": "1", "name": 7}]}"#,
    "field `rows[0].name` must be a string or null"
)]
#[case::statements_string(
    r#"{"exists": true, "rows": [{"version": "1", "statements": "select 1"}]}"#,
    "field `rows[0].statements` must be an array of strings or null"
)]
#[case::statement_not_string(
    r#"{"exists": true, "rows": [{"version": "1"}, {"version": "2", "statements": ["a", "b", null]}]}"#,
    "field `rows[1].statements[2]` must be a string, found null"
)]
#[case::misspelt_field(
    r#"{"exists": true, "rows": [{"version": "1", "statement": []}]}"#,
    "field `rows[0].statement` is not a ledger field (expected one of: version, name, statements)"
)]
#[case::rows_without_table(
    r#"{"exists": false, "rows": [{"version": "1"}]}"#,
    "field `exists` is false but `rows` holds 1 row;"
)]
#[case::duplicate_version(
    r#"{"exists": true, "rows": [{"version": "1"}, {"version": "2"}, {"version": "1"}]}"#,
    "field `rows[2].version` repeats version 1 of rows[0]"
)]
fn from_json_names_file_and_field(#[case] text: &str, #[case] expected: &str) {
    let err = Ledger::from_json(text, Path::new("backups/ledger-2025.json")).unwrap_err();
    let Error::Invalid(message) = err else {
        panic!("expected Error::Invalid, got {err:?}")
    };
    assert!(
        message.starts_with("backups/ledger-2025.json: "),
        "{message}"
    );
    assert!(
        message.contains(expected),
        "{message}\n  does not contain\n{expected}"
    );
    assert!(message.contains("(hint: "), "{message}");
}

#[test]
fn table_layout_matches_psql() {
    let expected = concat!(
        " version        | name                   | statements\n",
        "----------------+------------------------+------------\n",
        " 20250328135512 | collections            |          3\n",
        " 20250328201010 | drop-rls               |          1\n",
        " 20250402082709 | add_rls_to_collections |         12\n",
        " 20250413093000 |                        |\n",
        "(4 rows)\n",
    );
    assert_eq!(plan_ledger().to_table(), expected);
}

#[test]
fn table_of_one_row_and_of_no_table() {
    let one = Ledger {
        exists: true,
        rows: vec![row("7", Some("é"), Some(&[]))],
    };
    let expected = concat!(
        " version | name | statements\n",
        "---------+------+------------\n",
        " 7       | é    |          0\n",
        "(1 row)\n",
    );
    assert_eq!(one.to_table(), expected);
    let none = Ledger {
        exists: false,
        rows: vec![],
    };
    assert_eq!(
        none.to_table(),
        "supabase_migrations.schema_migrations does not exist (no migrations recorded)\n"
    );
}

#[test]
fn fingerprint_is_the_documented_digest() {
    // Expected values computed outside Rust: `printf '<encoding>' | sha256sum`.
    let ledger = Ledger {
        exists: true,
        rows: vec![
            row(
                "20250328135512",
                Some("collections"),
                Some(&[
                    "create table collections (id int)",
                    "alter table collections enable row level security",
                ]),
            ),
            row("20250413093000", None, None),
        ],
    };
    assert_eq!(
        ledger.fingerprint(),
        "d1a33ffbaecb16efae296203d40a8aa022b55211ea3f969a146104c361383da8"
    );
    let missing = Ledger {
        exists: false,
        rows: vec![],
    };
    assert_eq!(
        missing.fingerprint(),
        "e4695be8b6f48bba9bea604d811e8222e7486d183b082c1194a19d2cffba6020"
    );
}

#[test]
fn fingerprint_ignores_row_order_but_sees_every_field() {
    let base = plan_ledger();
    let mut reversed = base.clone();
    reversed.rows.reverse();
    assert_eq!(reversed.fingerprint(), base.fingerprint());

    let variants = [
        Ledger {
            exists: true,
            rows: vec![],
        },
        Ledger {
            exists: false,
            rows: vec![],
        },
        Ledger {
            exists: true,
            rows: vec![row("1", None, None)],
        },
        Ledger {
            exists: true,
            rows: vec![row("1", Some(""), None)],
        },
        Ledger {
            exists: true,
            rows: vec![row("1", None, Some(&[]))],
        },
        Ledger {
            exists: true,
            rows: vec![row("1", None, Some(&[""]))],
        },
        Ledger {
            exists: true,
            rows: vec![row("1", None, Some(&["ab"]))],
        },
        Ledger {
            exists: true,
            rows: vec![row("1", None, Some(&["a", "b"]))],
        },
        Ledger {
            exists: true,
            rows: vec![row("1", Some("a"), Some(&["b"]))],
        },
        Ledger {
            exists: true,
            rows: vec![row("1a", None, None)],
        },
    ];
    let digests: std::collections::BTreeSet<String> =
        variants.iter().map(Ledger::fingerprint).collect();
    assert_eq!(
        digests.len(),
        variants.len(),
        "two different ledgers share a fingerprint"
    );
}

#[test]
fn get_and_versions() {
    let ledger = plan_ledger();
    assert_eq!(
        ledger.get("20250328201010").and_then(|r| r.name.as_deref()),
        Some("drop-rls")
    );
    assert_eq!(ledger.get("20251002100000"), None);
    assert_eq!(
        ledger.versions(),
        vec![
            "20250328135512",
            "20250328201010",
            "20250402082709",
            "20250413093000"
        ]
    );
}

#[test]
fn read_query_fills_absent_columns_with_null() {
    let full = select_sql(Shape {
        has_name: true,
        has_statements: true,
    });
    assert!(full.contains("name::text, statements::text[]"), "{full}");
    let bare = select_sql(Shape {
        has_name: false,
        has_statements: false,
    });
    assert!(bare.contains("NULL::text, NULL::text[]"), "{bare}");
    for sql in [full, bare] {
        assert!(
            sql.ends_with("ORDER BY version::text COLLATE \"C\""),
            "{sql}"
        );
    }
}

#[test]
fn ddl_is_the_clis() {
    assert_eq!(
        LEDGER_DDL[0],
        "CREATE SCHEMA IF NOT EXISTS supabase_migrations"
    );
    assert!(LEDGER_DDL[1].ends_with("schema_migrations (version text NOT NULL PRIMARY KEY)"));
    assert!(LEDGER_DDL[2].ends_with("ADD COLUMN IF NOT EXISTS statements text[]"));
    assert!(LEDGER_DDL[3].ends_with("ADD COLUMN IF NOT EXISTS name text"));
}
