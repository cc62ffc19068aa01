//! Reading a ledger export back: the JSON is checked field by field so that a
//! damaged or hand-edited file is refused with the file, the field path
//! (`rows[2].statements[0]`) and what was found, instead of being half-read
//! into a rollback.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Map, Value};

use super::{Ledger, LedgerRow};
use crate::error::{Error, Result};
use crate::text::count;

const HINT: &str =
    "hint: restore the file from the export phantom-sync wrote, or fix the field by hand";

/// Parses and validates an export; rows come back sorted by version.
pub(super) fn parse(text: &str, source: &Path) -> Result<Ledger> {
    let file = source.display().to_string();
    let invalid = |field: &str, problem: String| {
        Error::Invalid(format!("{file}: field `{field}` {problem} ({HINT})"))
    };
    let value: Value = serde_json::from_str(text).map_err(|err| {
        Error::Invalid(format!("{file}: not a JSON ledger export: {err} ({HINT})"))
    })?;
    let Value::Object(top) = value else {
        return Err(Error::Invalid(format!(
            "{file}: expected a JSON object with fields `exists` and `rows`, found {} ({HINT})",
            kind(&value)
        )));
    };
    check_keys(&top, &["exists", "rows"], "", &invalid)?;
    let exists = match top.get("exists") {
        Some(Value::Bool(exists)) => *exists,
        Some(other) => {
            return Err(invalid(
                "exists",
                format!("must be true or false, found {}", kind(other)),
            ));
        }
        None => return Err(invalid("exists", "is missing".into())),
    };
    let items = match top.get("rows") {
        Some(Value::Array(items)) => items,
        Some(other) => {
            return Err(invalid(
                "rows",
                format!("must be an array, found {}", kind(other)),
            ));
        }
        None => return Err(invalid("rows", "is missing".into())),
    };
    if !exists && !items.is_empty() {
        return Err(invalid(
            "exists",
            format!(
                "is false but `rows` holds {}; a missing table has no rows",
                count(items.len(), "row")
            ),
        ));
    }
    let mut rows = Vec::with_capacity(items.len());
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for (index, item) in items.iter().enumerate() {
        let row = parse_row(item, index, &invalid)?;
        if let Some(first) = seen.get(row.version.as_str()) {
            return Err(invalid(
                &format!("rows[{index}].version"),
                format!(
                    "repeats version {} of rows[{first}]; a version is recorded once",
                    row.version
                ),
            ));
        }
        seen.insert(row.version.clone(), index);
        rows.push(row);
    }
    rows.sort_by(|a, b| a.version.cmp(&b.version));
    Ok(Ledger { exists, rows })
}

fn parse_row(
    item: &Value,
    index: usize,
    invalid: &impl Fn(&str, String) -> Error,
) -> Result<LedgerRow> {
    let path = format!("rows[{index}]");
    let Value::Object(fields) = item else {
        return Err(invalid(
            &path,
            format!("must be an object, found {}", kind(item)),
        ));
    };
    check_keys(fields, &["version", "name", "statements"], &path, invalid)?;
    let version = match fields.get("version") {
        Some(Value::String(version)) => version.clone(),
        Some(other) => {
            return Err(invalid(
                &format!("{path}.version"),
                format!("must be a string, found {}", kind(other)),
            ));
        }
        None => return Err(invalid(&format!("{path}.version"), "is missing".into())),
    };
    let name = match fields.get("name") {
        None | Some(Value::Null) => None,
        Some(Value::String(name)) => Some(name.clone()),
        Some(other) => {
            return Err(invalid(
                &format!("{path}.name"),
                format!("must be a string or null, found {}", kind(other)),
            ));
        }
    };
    let statements = match fields.get("statements") {
        None | Some(Value::Null) => None,
        Some(Value::Array(list)) => Some(parse_statements(list, &path, invalid)?),
        Some(other) => {
            return Err(invalid(
                &format!("{path}.statements"),
                format!("must be an array of strings or null, found {}", kind(other)),
            ));
        }
    };
    Ok(LedgerRow {
        version,
        name,
        statements,
    })
}

fn parse_statements(
    list: &[Value],
    path: &str,
    invalid: &impl Fn(&str, String) -> Error,
) -> Result<Vec<String>> {
    list.iter()
        .enumerate()
        .map(|(at, value)| match value {
            Value::String(statement) => Ok(statement.clone()),
            other => Err(invalid(
                &format!("{path}.statements[{at}]"),
                format!("must be a string, found {}", kind(other)),
            )),
        })
        .collect()
}

/// Refuses unknown fields: a misspelt `statement` must not silently become NULL.
fn check_keys(
    fields: &Map<String, Value>,
    allowed: &[&str],
    path: &str,
    invalid: &impl Fn(&str, String) -> Error,
) -> Result<()> {
    match fields.keys().find(|key| !allowed.contains(&key.as_str())) {
        None => Ok(()),
        Some(key) => {
            let field = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            Err(invalid(
                &field,
                format!(
                    "is not a ledger field (expected one of: {})",
                    allowed.join(", ")
                ),
            ))
        }
    }
}

/// A short description of a JSON value for error messages.
fn kind(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(flag) => format!("{flag}"),
        Value::Number(number) => format!("the number {number}"),
        Value::String(text) => format!("the string {text:?}"),
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
    }
}
