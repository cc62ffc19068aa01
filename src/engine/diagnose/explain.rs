//! Explanations beyond a status: how a ledger row's recorded statements
//! differ from today's file.

pub(super) fn statement_difference(recorded: &[String], local: &[String]) -> String {
    let first = recorded
        .iter()
        .zip(local)
        .position(|(a, b)| a != b)
        .unwrap_or(recorded.len().min(local.len()));
    format!(
        "ledger statements differ from the file: {} recorded, {} in the file, first difference at statement {}",
        recorded.len(),
        local.len(),
        first + 1
    )
}

/// Data statements (INSERT, UPDATE, DELETE, MERGE, COPY, TRUNCATE, or a
/// `WITH` that writes) that the ledger recorded for a migration and that
/// today's file no longer has: re-applying the file will not repeat them.
pub(super) fn recorded_data_statements(recorded: &[String], file: &[String]) -> Vec<String> {
    recorded
        .iter()
        .filter(|s| !file.contains(s))
        .filter(|s| writes_data(s))
        .cloned()
        .collect()
}

fn writes_data(statement: &str) -> bool {
    let words: Vec<String> = statement
        .lines()
        .map(|l| l.split("--").next().unwrap_or(""))
        .flat_map(|l| l.split(|c: char| !c.is_ascii_alphanumeric() && c != '_'))
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_uppercase)
        .collect();
    match words.first().map(String::as_str) {
        Some("INSERT" | "UPDATE" | "DELETE" | "MERGE" | "COPY" | "TRUNCATE") => true,
        Some("WITH") => words
            .iter()
            .any(|w| matches!(w.as_str(), "INSERT" | "UPDATE" | "DELETE" | "MERGE")),
        _ => false,
    }
}

/// The explanation lines for data statements the file lost.
pub(super) fn lost_data_lines(statements: &[String], reapplied: bool) -> Vec<String> {
    if statements.is_empty() {
        return Vec::new();
    }
    let (them, their) = if statements.len() == 1 {
        ("it", "its")
    } else {
        ("them", "their")
    };
    let consequence = if reapplied {
        format!("re-applying today's file will not run {them}, so {their} rows will not come back")
    } else {
        format!("today's file no longer has {them}")
    };
    let mut lines = vec![format!(
        "the ledger recorded {} data statement{} that today's file lacks ({consequence}):",
        statements.len(),
        if statements.len() == 1 { "" } else { "s" }
    )];
    lines.extend(statements.iter().map(|s| format!("  {}", one_line(s))));
    lines
}

fn one_line(statement: &str) -> String {
    let text = statement.split_whitespace().collect::<Vec<_>>().join(" ");
    match text.char_indices().nth(400) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statements(all: &[&str]) -> Vec<String> {
        all.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_difference_names_both_counts_and_the_first_statement_that_differs() {
        let recorded = statements(&["a", "b", "c"]);
        assert_eq!(
            statement_difference(&recorded, &statements(&["a", "x"])),
            "ledger statements differ from the file: 3 recorded, 2 in the file, first difference at statement 2"
        );
        // One is the other's beginning: the first statement only one of them has.
        assert_eq!(
            statement_difference(&statements(&["a"]), &recorded),
            "ledger statements differ from the file: 1 recorded, 3 in the file, first difference at statement 2"
        );
        assert!(
            statement_difference(&statements(&["z", "b"]), &statements(&["a", "b"]))
                .ends_with("first difference at statement 1")
        );
    }

    #[test]
    fn data_statements_the_file_lost_are_found() {
        let recorded = vec![
            "CREATE TABLE t (id int)".to_string(),
            "INSERT INTO t VALUES (1)".to_string(),
            "-- seed\nupdate t set id = 2".to_string(),
            "WITH x AS (SELECT 1) DELETE FROM t".to_string(),
            "WITH x AS (SELECT 1) SELECT * FROM x".to_string(),
        ];
        let file = vec!["CREATE TABLE t (id int)".to_string()];
        let lost = recorded_data_statements(&recorded, &file);
        assert_eq!(lost.len(), 3, "{lost:?}");
        let lines = lost_data_lines(&lost, true);
        assert!(lines[0].contains("3 data statements") && lines[0].contains("will not come back"));
        assert_eq!(lines[1], "  INSERT INTO t VALUES (1)");
        assert!(recorded_data_statements(&file, &file).is_empty());
    }
}
