//! Cuts a migration file into statements exactly as the Supabase CLI does before it
//! runs them and stores them in `supabase_migrations.schema_migrations.statements`
//! (its Go function `parser.SplitAndTrim` in `pkg/parser`). The ledger comparison in
//! [`crate::engine::diagnose`] ("edited", "re-versioned") is only sound if our arrays are
//! byte-for-byte the CLI's, so this module reproduces its state machine, quirks included.
//!
//! # Rules
//!
//! A `;` ends a statement unless it is inside one of these, each entered and left
//! exactly as the CLI's lexer does:
//!
//! * single quotes `'…'` and double-quoted identifiers `"…"`; a doubled delimiter
//!   (`''`, `""`) stays inside. Backslashes inside quotes mean nothing, so the CLI
//!   mis-reads `E'it\'s'`: the `'` after the backslash closes the literal (reproduced);
//! * dollar quotes `$$…$$` / `$tag$…$tag$` (tag: letters, digits, `_`, any non-ASCII
//!   character). A `$` right after an identifier character (`a$`, `x$$`) opens nothing;
//! * line comments `--…` up to the next `\n`, and block comments `/* … */`, nested;
//! * parentheses `( … )`;
//! * a `BEGIN ATOMIC … END` body (`BEGIN` and `ATOMIC` as whole words separated by
//!   SQL whitespace; the body ends at an `END` that is the first word of an inner
//!   statement and is followed by a non-identifier character or the end of the file);
//! * the character after a backslash outside quotes (`\;` does not split).
//!
//! Each statement keeps its leading comments and inner whitespace (CRLF included).
//! The text up to and including each separating `;` is one piece, and the rest after
//! the last `;` is one more; every piece loses its trailing `;` characters and *then*
//! its surrounding Unicode whitespace (Go's `strings.TrimSpace`, the same set as
//! [`str::trim`]; a byte-order mark is not whitespace and stays), and empty pieces are
//! dropped. So comments after the last `;` form a statement of their own, and a file
//! without a final `;` still yields its last statement.
//!
//! Quirks of the CLI we reproduce on purpose (PostgreSQL lexes these differently):
//! the first `)` closes every open parenthesis level, so in `DO ALSO (SELECT f(1); …)`
//! the `;` splits; `/*/` opens and closes a block comment at once; `$$$` opens and
//! closes a dollar quote; an unterminated quote, comment or dollar quote swallows the
//! rest of the file into one statement.
//!
//! # Which CLI, and deliberate deviations
//!
//! We follow the newest `pkg/parser/state.go` (late 2026: keyword boundaries around
//! `BEGIN ATOMIC` / `END`, the `$`-after-identifier rule, a separate parenthesis state),
//! which the CLI's TypeScript port `sql-split.ts` also implements. Older CLI releases
//! split differently only where an identifier contains `atomic` or ends in `end` near a
//! `BEGIN ATOMIC` body, where `$` follows an identifier, where a dollar tag holds a
//! non-ASCII character that is not a letter or digit, or where a `;` right after a
//! quoted literal inside parentheses is followed by another quote; rows they wrote may
//! then differ from ours. Deviations: (1) we take `&str`, so input is UTF-8
//! ([`crate::source::project`] rejects other files; the CLI reads raw bytes); (2) the CLI fails
//! on a statement longer than its scanner buffer (256 KiB or the file's size, or
//! `SUPABASE_SCANNER_BUFFER_SIZE`), we never fail; (3) the TypeScript port trims with
//! JavaScript's `trim` (which also strips U+FEFF but not U+0085); we follow the Go CLI.
//! The Go tokenizer advances byte by byte and feeds U+FFFD for each UTF-8 continuation
//! byte; U+FFFD changes no state and every window below is compared on bytes, so
//! walking characters gives the same result.

/// Splits `sql` into the statements the Supabase CLI would run and record for it:
/// split on top-level `;`, each trimmed of its trailing `;` and surrounding whitespace,
/// empty ones dropped (see the module documentation for the exact rules).
pub fn split_and_trim(sql: &str) -> Vec<String> {
    split_raw(sql)
        .into_iter()
        .map(|piece| piece.trim_end_matches(';').trim())
        .filter(|statement| !statement.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The untrimmed pieces: each ends with the `;` that closed it, except the last one
/// when the text after the final separator is not empty.
pub(crate) fn split_raw(sql: &str) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut state = State::Ready;
    for (at, c) in sql.char_indices() {
        let end = at + c.len_utf8();
        // `data` is the current piece up to and including `c`, as in the CLI.
        let data = &sql[start..end];
        match state.next(c, data) {
            Some(next) => state = next,
            None => {
                pieces.push(data);
                start = end;
                state = State::Ready;
            }
        }
    }
    if start < sql.len() {
        pieces.push(&sql[start..]);
    }
    pieces
}

/// Where the lexer is. Offsets are byte offsets into the current piece.
enum State {
    /// Outside any literal or comment: a `;` here ends the piece.
    Ready,
    /// Saw one `-`; a second one starts a line comment.
    Dash,
    /// Inside `-- …` until a newline.
    LineComment,
    /// Saw `/`; depth 0 until a `*` follows, then the nesting depth.
    Block { depth: u32 },
    /// Inside `'…'` or `"…"`; `closing` after a delimiter that may be doubled.
    Quote { delimiter: char, closing: bool },
    /// Reading a dollar tag that started at `start`.
    Tag { start: usize },
    /// Inside a dollar quote whose tag is `data[start..start + len]`.
    Dollar { start: usize, len: usize },
    /// After a backslash outside quotes: the next character is taken as is.
    Escape,
    /// Inside `( … )`, lexing the content with `inner`.
    Paren { inner: Box<State> },
    /// Inside a `BEGIN ATOMIC` body.
    Atomic(Box<Atomic>),
}

/// The `BEGIN ATOMIC … END` body being read.
struct Atomic {
    /// Lexes the body's content (quotes and comments hide `;` and `END`).
    inner: State,
    /// An `END` just ended an inner statement's first word; it closes the body once a
    /// non-identifier character follows.
    pending_end: bool,
    /// Byte offset where the current inner statement starts (after `ATOMIC` or a `;`).
    statement_start: usize,
    /// The current inner statement has content before an `END`, so no later `END` in it
    /// can close the body (it belongs to a `CASE` or is a column label).
    statement_has_content: bool,
}

impl State {
    /// The state after `c`; `None` means "a separating `;`: end the piece here".
    fn next(self, c: char, data: &str) -> Option<State> {
        match self {
            State::Ready => ready(c, data),
            State::Dash if c == '-' => Some(State::LineComment),
            State::Dash => ready(c, data),
            State::LineComment if c == '\n' => Some(State::Ready),
            State::LineComment => Some(State::LineComment),
            State::Block { depth } => block(depth, c, data),
            State::Quote { delimiter, closing } => quote(delimiter, closing, c, data),
            State::Tag { start } if c == '$' => Some(State::Dollar {
                start,
                len: data.len() - start,
            }),
            State::Tag { start } if is_identifier_char(c) => Some(State::Tag { start }),
            State::Tag { .. } => ready(c, data),
            State::Dollar { start, len } => Some(dollar(start, len, data)),
            State::Escape => Some(State::Ready),
            State::Paren { inner } => Some(paren(*inner, c, data)),
            State::Atomic(body) => atomic(*body, c, data),
        }
    }
}

fn ready(c: char, data: &str) -> Option<State> {
    Some(match c {
        '$' if has_identifier_char_before(&data[..data.len() - 1]) => State::Ready,
        '$' => State::Tag {
            start: data.len() - 1,
        },
        '\'' | '"' => State::Quote {
            delimiter: c,
            closing: false,
        },
        '-' => State::Dash,
        '/' => State::Block { depth: 0 },
        '\\' => State::Escape,
        ';' => return None,
        '(' => State::Paren {
            inner: Box::new(State::Ready),
        },
        'c' | 'C' if is_begin_atomic(data) => State::Atomic(Box::new(Atomic {
            inner: State::Ready,
            pending_end: false,
            statement_start: data.len(),
            statement_has_content: false,
        })),
        _ => State::Ready,
    })
}

/// Block comments compare the last two bytes, like the CLI, so `/*/` closes at once.
fn block(depth: u32, c: char, data: &str) -> Option<State> {
    let window = last_bytes(data, 2);
    if window == b"/*" {
        return Some(State::Block { depth: depth + 1 });
    }
    if depth == 0 {
        return ready(c, data);
    }
    if window == b"*/" {
        return Some(if depth == 1 {
            State::Ready
        } else {
            State::Block { depth: depth - 1 }
        });
    }
    Some(State::Block { depth })
}

fn quote(delimiter: char, closing: bool, c: char, data: &str) -> Option<State> {
    if closing {
        if c == delimiter {
            return Some(State::Quote {
                delimiter,
                closing: false,
            });
        }
        return ready(c, data);
    }
    Some(State::Quote {
        delimiter,
        closing: c == delimiter,
    })
}

/// A dollar quote ends when the piece ends with its tag (the window may overlap the
/// opening tag, hence `$$$`).
fn dollar(start: usize, len: usize, data: &str) -> State {
    let bytes = data.as_bytes();
    if last_bytes(data, len) == &bytes[start..start + len] {
        State::Ready
    } else {
        State::Dollar { start, len }
    }
}

/// A `;` inside parentheses never splits; the first `)` read at the inner top level
/// closes the group (and so every enclosing group, as in the CLI).
fn paren(inner: State, c: char, data: &str) -> State {
    match inner.next(c, data) {
        None => State::Paren {
            inner: Box::new(State::Ready),
        },
        Some(State::Ready) if c == ')' => State::Ready,
        Some(inner) => State::Paren {
            inner: Box::new(inner),
        },
    }
}

fn atomic(mut body: Atomic, c: char, data: &str) -> Option<State> {
    let pending_end = std::mem::replace(&mut body.pending_end, false);
    if pending_end && !is_identifier_char(c) {
        return ready(c, data);
    }
    let inner = std::mem::replace(&mut body.inner, State::Ready);
    match inner.next(c, data) {
        None => {
            body.statement_start = data.len();
            body.statement_has_content = false;
        }
        Some(State::Ready) => {
            if !body.statement_has_content && ends_with_keyword(data, "END") {
                let before = data.get(body.statement_start..data.len() - 3).unwrap_or("");
                if is_comments_and_whitespace(before.as_bytes()) {
                    body.pending_end = true;
                } else {
                    body.statement_has_content = true;
                }
            }
        }
        Some(inner) => body.inner = inner,
    }
    Some(State::Atomic(Box::new(body)))
}

/// PostgreSQL's identifier characters as the CLI approximates them: ASCII letters and
/// digits, `_`, `$`, and every non-ASCII character.
fn is_identifier_char(c: char) -> bool {
    !c.is_ascii() || c.is_ascii_alphanumeric() || c == '_' || c == '$'
}

fn has_identifier_char_before(prefix: &str) -> bool {
    prefix.chars().next_back().is_some_and(is_identifier_char)
}

/// The last `n` bytes of `text` (all of it if shorter).
fn last_bytes(text: &str, n: usize) -> &[u8] {
    let bytes = text.as_bytes();
    &bytes[bytes.len().saturating_sub(n)..]
}

/// `text` ends with the ASCII `keyword` (any case) not preceded by an identifier character.
fn ends_with_keyword(text: &str, keyword: &str) -> bool {
    if !last_bytes(text, keyword.len()).eq_ignore_ascii_case(keyword.as_bytes()) {
        return false;
    }
    text.get(..text.len() - keyword.len())
        .is_some_and(|before| !has_identifier_char_before(before))
}

/// Called on `c`/`C`: the piece ends with the words `BEGIN` and `ATOMIC` separated by
/// SQL whitespace only.
fn is_begin_atomic(data: &str) -> bool {
    if !ends_with_keyword(data, "ATOMIC") {
        return false;
    }
    data.get(..data.len() - "ATOMIC".len())
        .is_some_and(|before| {
            ends_with_keyword(before.trim_end_matches(is_sql_whitespace), "BEGIN")
        })
}

/// PostgreSQL's whitespace class (`space` in its lexer).
fn is_sql_whitespace(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c')
}

/// Whether `text` holds only whitespace and comments (an unterminated comment counts),
/// scanning block comments with the same two-byte window as [`block`].
fn is_comments_and_whitespace(text: &[u8]) -> bool {
    let mut i = 0;
    while i < text.len() {
        if is_sql_whitespace(char::from(text[i])) {
            i += 1;
        } else if text[i..].starts_with(b"--") {
            match text[i + 2..].iter().position(|&b| b == b'\n') {
                Some(newline) => i += 2 + newline + 1,
                None => return true,
            }
        } else if text[i..].starts_with(b"/*") {
            let mut depth = 1;
            i += 2;
            while i < text.len() && depth > 0 {
                if text[i - 1..].starts_with(b"/*") {
                    depth += 1;
                } else if text[i - 1..].starts_with(b"*/") {
                    depth -= 1;
                }
                i += 1;
            }
            if depth > 0 {
                return true;
            }
        } else {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::split_and_trim;
    use pretty_assertions::assert_eq;
    use rstest::rstest;

    #[rstest]
    // Separators, trimming and empty statements.
    #[case::two_statements("SELECT 1; SELECT 2;", &["SELECT 1", "SELECT 2"])]
    #[case::no_trailing_semicolon("create table a (id int);\ncreate table b (id int)", &["create table a (id int)", "create table b (id int)"])]
    #[case::trims_around_keeps_inside("  \n\tSELECT\n  1 ;\n\n", &["SELECT\n  1"])]
    #[case::drops_empty_statements(";;\n ;SELECT 1;;", &["SELECT 1"])]
    #[case::empty_file("", &[])]
    #[case::whitespace_only(" \n\t \r\n", &[])]
    #[case::unicode_whitespace_is_trimmed("\u{a0}SELECT 1;\u{3000}", &["SELECT 1"])]
    #[case::byte_order_mark_is_kept("\u{feff}SELECT 1;", &["\u{feff}SELECT 1"])]
    // Comments.
    #[case::leading_comments_stay("-- first\nSELECT 1;\n/* second */ SELECT 2;", &["-- first\nSELECT 1", "/* second */ SELECT 2"])]
    #[case::comment_after_last_semicolon("SELECT 1;\n-- trailing note\n", &["SELECT 1", "-- trailing note"])]
    #[case::line_comment_hides_semicolon("SELECT 1 -- not here; \n; SELECT 2", &["SELECT 1 -- not here;", "SELECT 2"])]
    #[case::single_dash_is_minus("SELECT 2 - 1; SELECT 3", &["SELECT 2 - 1", "SELECT 3"])]
    #[case::nested_block_comment("SELECT /* a; /* b; */ c; */ 1; SELECT 2", &["SELECT /* a; /* b; */ c; */ 1", "SELECT 2"])]
    #[case::slash_is_division("SELECT 4 / 2; SELECT 3", &["SELECT 4 / 2", "SELECT 3"])]
    #[case::slash_star_slash_closes_at_once("SELECT /*/ ; */ 1; SELECT 2", &["SELECT /*/", "*/ 1", "SELECT 2"])]
    // Quotes.
    #[case::single_quotes("SELECT ';'; SELECT 2", &["SELECT ';'", "SELECT 2"])]
    #[case::doubled_single_quote("SELECT 'it''s; fine'; SELECT 2", &["SELECT 'it''s; fine'", "SELECT 2"])]
    #[case::backslash_in_e_string_is_not_an_escape("SELECT E'it\\'s; x'; SELECT 2;", &["SELECT E'it\\'s", "x'; SELECT 2"])]
    #[case::double_quoted_identifier("CREATE POLICY \"a;b\" ON t; SELECT 2", &["CREATE POLICY \"a;b\" ON t", "SELECT 2"])]
    #[case::doubled_double_quote("SELECT \"x\"\";y\" FROM t; SELECT 2", &["SELECT \"x\"\";y\" FROM t", "SELECT 2"])]
    #[case::non_ascii_text("INSERT INTO t VALUES ('café; crème'); SELECT 'ü'", &["INSERT INTO t VALUES ('café; crème')", "SELECT 'ü'"])]
    // Dollar quotes.
    #[case::anonymous_dollar_quote("DO $$ BEGIN PERFORM 1; END $$; SELECT 2;", &["DO $$ BEGIN PERFORM 1; END $$", "SELECT 2"])]
    #[case::tagged_dollar_quote("CREATE FUNCTION f() RETURNS text AS $fn$ SELECT '$$;'; $fn$ LANGUAGE sql; SELECT 2", &["CREATE FUNCTION f() RETURNS text AS $fn$ SELECT '$$;'; $fn$ LANGUAGE sql", "SELECT 2"])]
    #[case::non_ascii_tag("DO $é$ SELECT 1; $é$; SELECT 2", &["DO $é$ SELECT 1; $é$", "SELECT 2"])]
    #[case::dollar_after_identifier("SELECT 1 AS x$$; SELECT 2", &["SELECT 1 AS x$$", "SELECT 2"])]
    #[case::positional_parameter("PREPARE p AS SELECT $1; SELECT 2", &["PREPARE p AS SELECT $1", "SELECT 2"])]
    #[case::triple_dollar_opens_and_closes("SELECT $$$; SELECT 2", &["SELECT $$$", "SELECT 2"])]
    #[case::unterminated_dollar_quote("DO $$ BEGIN; ", &["DO $$ BEGIN;"])]
    // Parentheses and backslashes.
    #[case::parentheses("CREATE RULE r AS ON INSERT TO t DO ALSO (NOTIFY a; NOTIFY b); SELECT 1", &["CREATE RULE r AS ON INSERT TO t DO ALSO (NOTIFY a; NOTIFY b)", "SELECT 1"])]
    #[case::first_close_paren_closes_all("DO ALSO (SELECT f(1); NOTIFY b); SELECT 1", &["DO ALSO (SELECT f(1)", "NOTIFY b)", "SELECT 1"])]
    #[case::quoted_paren_inside_parens("DO ALSO (SELECT ')'; NOTIFY b); SELECT 1", &["DO ALSO (SELECT ')'; NOTIFY b)", "SELECT 1"])]
    #[case::backslash_escapes_next("SELECT 1 \\; SELECT 2; SELECT 3", &["SELECT 1 \\; SELECT 2", "SELECT 3"])]
    // BEGIN ATOMIC bodies.
    #[case::begin_atomic(
        "CREATE FUNCTION add(a int, b int) RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n  SELECT a + b;\nEND;\nSELECT 1;",
        &["CREATE FUNCTION add(a int, b int) RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n  SELECT a + b;\nEND", "SELECT 1"]
    )]
    #[case::atomic_end_inside_case("begin atomic select 1; select case when true then 1 end; end; select 2", &["begin atomic select 1; select case when true then 1 end; end", "select 2"])]
    #[case::atomic_end_starting_identifier("BEGIN ATOMIC SELECT 1; endpoint; END; SELECT 2", &["BEGIN ATOMIC SELECT 1; endpoint; END", "SELECT 2"])]
    #[case::atomic_end_after_comment("BEGIN ATOMIC SELECT 1; -- done\nEND; SELECT 2", &["BEGIN ATOMIC SELECT 1; -- done\nEND", "SELECT 2"])]
    #[case::atomic_in_identifier("create table public.atomic_log (id int); select 1;", &["create table public.atomic_log (id int)", "select 1"])]
    #[case::begin_without_atomic("BEGIN; SELECT 1; END;", &["BEGIN", "SELECT 1", "END"])]
    // Windows line endings stay inside statements.
    #[case::crlf_file(
        "-- comment\r\nCREATE TABLE a (\r\n  id int\r\n);\r\nINSERT INTO a VALUES (1);\r\n",
        &["-- comment\r\nCREATE TABLE a (\r\n  id int\r\n)", "INSERT INTO a VALUES (1)"]
    )]
    fn splits_like_the_supabase_cli(#[case] sql: &str, #[case] expected: &[&str]) {
        assert_eq!(split_and_trim(sql), expected);
    }

    #[test]
    fn raw_pieces_keep_their_separator() {
        assert_eq!(
            super::split_raw("SELECT 1; SELECT 2"),
            ["SELECT 1;", " SELECT 2"]
        );
    }
}
