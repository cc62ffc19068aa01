//! Quoting for the SQL phantom-sync writes itself (names of schemas, tables,
//! databases and roles; string literals). One place, so every module quotes
//! the same way.

/// An identifier in double quotes, inner double quotes doubled.
pub(crate) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A string literal in single quotes, inner single quotes doubled
/// (`standard_conforming_strings` is on in every supported version).
pub(crate) fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// The SQLSTATE of a database error (`None` for I/O and protocol errors).
pub(crate) fn sql_state(e: &sqlx::Error) -> Option<String> {
    e.as_database_error()
        .and_then(|d| d.code())
        .map(|c| c.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_are_doubled() {
        assert_eq!(quote_ident("Users \"main\""), "\"Users \"\"main\"\"\"");
        assert_eq!(quote_literal("it's"), "'it''s'");
    }
}
