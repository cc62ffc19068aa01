//! TOML → scenario fields, with errors a person can act on: the file, the
//! line and column, the key path (`state.partial[0].statements`) and toml's
//! own message. toml's error knows the byte span but keeps the key path to
//! itself once it has the text, so the path is found again here by walking
//! the spanned document to the deepest key or value covering the error.

use std::ops::Range;
use std::path::Path;

use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::error::{Error, Result};

/// Parses `text` (read from `path`) into `T`.
pub(super) fn from_toml<T: DeserializeOwned>(text: &str, path: &Path) -> Result<T> {
    toml::from_str(text).map_err(|err| {
        let message = err.message().trim_end().replace('\n', "; ");
        let place = match err.span() {
            Some(span) => {
                let (line, column) = line_column(text, span.start);
                match key_path(text, span.clone()) {
                    Some(key) => format!("line {line}, column {column}, field `{key}`"),
                    None => format!("line {line}, column {column}"),
                }
            }
            None => "somewhere in the file".to_string(),
        };
        Error::Invalid(format!(
            "{}: {place}: {message} (hint: fix the field as scenarios/README.md describes it)",
            path.display()
        ))
    })
}

/// 1-based line and column (in characters) of byte `offset`.
pub(super) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset.min(text.len())).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |at| at + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// The dotted path of the deepest key whose key or value covers the whole
/// `error` span. `None` when no key does (e.g. a field missing from the
/// document itself, whose span is the whole document).
pub(super) fn key_path(text: &str, error: Range<usize>) -> Option<String> {
    let (document, _errors) = DeTable::parse_recoverable(text);
    let mut best: Option<(usize, String)> = None;
    walk_table(document.get_ref(), "", 0, &error, &mut best);
    best.map(|(_, path)| path)
}

/// Records `path` in `best` when it is deeper than what is there.
fn consider(best: &mut Option<(usize, String)>, depth: usize, path: &str) {
    if best.as_ref().is_none_or(|(deepest, _)| depth >= *deepest) {
        *best = Some((depth, path.to_string()));
    }
}

fn covers(span: Range<usize>, error: &Range<usize>) -> bool {
    span.start <= error.start
        && error.end <= span.end
        && (error.start < span.end || span.is_empty())
}

fn walk_table(
    table: &DeTable<'_>,
    prefix: &str,
    depth: usize,
    error: &Range<usize>,
    best: &mut Option<(usize, String)>,
) {
    for (key, value) in table.iter() {
        let name: &str = key.get_ref();
        let path = if prefix.is_empty() {
            name.to_string()
        } else {
            format!("{prefix}.{name}")
        };
        if covers(key.span(), error) || covers(value.span(), error) {
            consider(best, depth + 1, &path);
        }
        walk_value(value, &path, depth + 1, error, best);
    }
}

fn walk_value(
    value: &Spanned<DeValue<'_>>,
    path: &str,
    depth: usize,
    error: &Range<usize>,
    best: &mut Option<(usize, String)>,
) {
    match value.get_ref() {
        DeValue::Table(table) => walk_table(table, path, depth, error, best),
        DeValue::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                let item_path = format!("{path}[{index}]");
                if covers(item.span(), error) {
                    consider(best, depth + 1, &item_path);
                }
                walk_value(item, &item_path, depth + 1, error, best);
            }
        }
        _ => {}
    }
}
