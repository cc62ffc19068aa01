//! The ledger as a text table for people: what `psql` prints for the plan's
//! Step 1.2 export, with the statements column reduced to a count.
//!
//! ```text
//!  version        | name        | statements
//! ----------------+-------------+------------
//!  20250328135512 | collections |          3
//! (1 row)
//! ```
//!
//! Text is left-aligned, the count right-aligned; NULL prints as an empty
//! cell, as in `psql`.

use super::Ledger;

const HEADERS: [&str; 3] = ["version", "name", "statements"];

pub(super) fn render(ledger: &Ledger) -> String {
    if !ledger.exists {
        return format!(
            "{}.{} does not exist (no migrations recorded)\n",
            super::SCHEMA,
            super::TABLE
        );
    }
    let cells: Vec<[String; 3]> = ledger
        .rows
        .iter()
        .map(|row| {
            [
                row.version.clone(),
                row.name.clone().unwrap_or_default(),
                row.statements
                    .as_ref()
                    .map(|list| list.len().to_string())
                    .unwrap_or_default(),
            ]
        })
        .collect();
    let mut widths = HEADERS.map(width);
    for line in &cells {
        for (column, cell) in line.iter().enumerate() {
            widths[column] = widths[column].max(width(cell));
        }
    }
    let mut out = String::new();
    out.push_str(&line(&HEADERS.map(String::from), &widths, false));
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(w + 2)).collect();
    out.push_str(&rule.join("+"));
    out.push('\n');
    for cells in &cells {
        out.push_str(&line(cells, &widths, true));
    }
    let count = cells.len();
    out.push_str(&format!(
        "({count} {})\n",
        if count == 1 { "row" } else { "rows" }
    ));
    out
}

/// One table line; the last column is right-aligned for data lines.
fn line(cells: &[String; 3], widths: &[usize; 3], data: bool) -> String {
    let mut parts = Vec::with_capacity(3);
    for (column, cell) in cells.iter().enumerate() {
        let pad = " ".repeat(widths[column] - width(cell));
        let right_align = data && column == 2;
        parts.push(if right_align {
            format!(" {pad}{cell} ")
        } else {
            format!(" {cell}{pad} ")
        });
    }
    let joined = parts.join("|");
    format!("{}\n", joined.trim_end())
}

/// Display width, counted in characters (not bytes).
fn width(text: &str) -> usize {
    text.chars().count()
}
