//! Recognising a statement's command by its words — not parsing it: a
//! statement's text reduced to its upper-cased words, for the few questions
//! that can be answered that way (is it a transaction command? does it say
//! `CONCURRENTLY`?).

/// `statement`'s words, upper-cased and single-spaced, line comments
/// dropped, with one space at each end (so that `" WORD "` finds a word).
pub(crate) fn words(statement: &str) -> String {
    let without_comments: String = statement
        .lines()
        .map(|l| l.split("--").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join(" ");
    format!(
        " {} ",
        without_comments
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_uppercase()
    )
}

/// Whether `statement` is a transaction command (`BEGIN`, `COMMIT`, …):
/// run inside a migration's transaction, it would end that transaction early.
pub(crate) fn is_transaction_command(statement: &str) -> bool {
    let words = words(statement);
    ["COMMIT", "BEGIN", "START TRANSACTION", "ROLLBACK", "END"]
        .iter()
        .any(|w| words.trim() == *w)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transaction_commands_are_recognised_whatever_their_case_and_comments() {
        for statement in [
            "commit",
            "-- done\nCOMMIT",
            "begin",
            "Start  Transaction",
            "end",
        ] {
            assert!(is_transaction_command(statement), "{statement}");
        }
        for statement in [
            "create table t (id int)",
            "create function f() returns int begin atomic select 1; end",
            "rollback to savepoint s",
        ] {
            assert!(!is_transaction_command(statement), "{statement}");
        }
        assert_eq!(
            words("create  index\n-- why\nconcurrently i"),
            " CREATE INDEX CONCURRENTLY I "
        );
    }
}
