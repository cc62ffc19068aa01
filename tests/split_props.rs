//! Properties of the statement splitter that the rest of phantom-sync relies on, over
//! random SQL-ish texts built from the tokens that drive the CLI's lexer: quotes, dollar
//! tags (non-ASCII ones too), comments, parentheses, `BEGIN ATOMIC` / `END` / `CASE`,
//! `;`, backslashes, identifiers with `$`, and whitespace including CRLF, a byte-order
//! mark and Unicode spaces.
//!
//! * `split_raw`'s pieces concatenate to the input, and every piece but the last ends
//!   with its separating `;`;
//! * the statements of `split_and_trim` are the non-empty pieces, each with only
//!   surrounding whitespace and trailing `;`s (before that whitespace) taken off, so no
//!   other byte is ever lost;
//! * a text shorter than 256 KiB is never one the CLI rejects.

use phantom_sync::source::split::{ScannerBuffer, cli_rejects, split_and_trim, split_raw};
use proptest::prelude::*;

/// The tokens texts are built from.
#[rustfmt::skip]
const TOKENS: &[&str] = &[
    // Quotes.
    "'", "\"", "''", "'x;y'", "\"a;b\"", "E'\\''", "'end'",
    // Dollar quotes and tags.
    "$", "$$", "$a$", "$tag$", "$é$", "$中$", "$_b1$", "$end$", "$1", "a$", "x$$", "a$b", "é$",
    // Comments and their look-alikes.
    "-", "--", "-- c\n", "/", "*", "/*", "*/", "/*/", "/* ; */",
    // Groups.
    "(", ")", "f(", "BEGIN ATOMIC", "begin atomic", "BEGIN", "ATOMIC", "Atomic", "END",
    "end", "CASE", "WHEN", "legend", "backend", "endpoint", "BEGIN\u{3000}ATOMIC",
    "BEGIN\u{a0}ATOMIC", "éBEGIN ATOMIC", "→begin atomic", "atomically", "ⅫBEGIN ATOMIC",
    "ªBEGIN ATOMIC",
    // Separators and escapes.
    ";", ";;", "\\", "\\;",
    // Whitespace.
    " ", "  ", "\t", "\n", "\r\n", "\u{feff}", "\u{a0}", "\u{3000}", "\u{85}", "\u{b}",
    // Words.
    "SELECT", "1", "x", "_y", "t1", "é", "中", "ü", "😀", "\u{301}", "→",
];

/// A text of random tokens, now and then mixed with arbitrary characters.
fn sql_text() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        9 => proptest::sample::select(TOKENS).prop_map(str::to_owned),
        1 => any::<char>().prop_map(String::from),
    ];
    proptest::collection::vec(token, 0..48).prop_map(|tokens| tokens.concat())
}

/// Checks the properties on one text.
fn check(sql: &str) -> Result<(), TestCaseError> {
    let pieces = split_raw(sql);
    prop_assert_eq!(pieces.concat(), sql, "pieces concatenate to the input");
    for (index, piece) in pieces.iter().enumerate() {
        prop_assert!(!piece.is_empty(), "piece {} is empty", index);
        if index + 1 < pieces.len() {
            prop_assert!(
                piece.ends_with(';'),
                "piece {index} {piece:?} has no separator"
            );
        }
    }

    let statements = split_and_trim(sql);
    let kept: Vec<&str> = pieces
        .iter()
        .copied()
        .filter(|piece| !piece.trim_end_matches(';').trim().is_empty())
        .collect();
    prop_assert_eq!(
        statements.len(),
        kept.len(),
        "one statement per non-empty piece"
    );
    for (statement, piece) in statements.iter().zip(kept) {
        let start = piece.len() - piece.trim_start().len();
        prop_assert!(
            piece[start..].starts_with(statement.as_str()),
            "{statement:?} is not {piece:?} without its leading whitespace"
        );
        let removed = &piece[start + statement.len()..];
        prop_assert!(
            removed
                .trim_end_matches(';')
                .chars()
                .all(char::is_whitespace),
            "{piece:?} lost {removed:?}, more than whitespace and trailing `;`s"
        );
    }

    prop_assert_eq!(cli_rejects(sql, &ScannerBuffer::Default), None);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn pieces_and_statements_keep_every_byte(sql in sql_text()) {
        check(&sql)?;
    }
}

#[test]
fn properties_hold_on_edge_texts() {
    for sql in [
        "",
        ";",
        ";;",
        " ; ",
        "\u{feff};",
        "a",
        "'",
        "$",
        "(",
        "begin atomic",
        "x;",
    ] {
        check(sql).unwrap();
    }
}
