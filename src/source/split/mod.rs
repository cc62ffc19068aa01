//! Cuts a migration file into statements exactly as the Supabase CLI does before it
//! runs them and stores them in `supabase_migrations.schema_migrations.statements`
//! (its Go function `parser.SplitAndTrim`, package `pkg/parser`). The ledger comparison
//! in [`crate::engine::diagnose`] ("edited", "re-versioned") is only sound if our arrays are
//! byte-for-byte the CLI's, so this module reproduces its tokenizer, quirks included.
//!
//! We match supabase/cli commit `1d1e7191268e068fe9cb6aba524d1c619a9c727b`
//! (2026-06-01; its parser is the same as on 2026-04-14). `tests/split_corpus.rs` checks
//! us against the CLI's real output for that commit on several hundred files.
//!
//! # Rules
//!
//! The file is cut into *pieces*: each piece ends with a separating `;`, and the text
//! after the last one is one more piece. A `;` separates when it is read as plain text
//! (outside everything below) and no group is open. The lexer reads bytes:
//!
//! * **Quotes** `'…'` and `"…"`: a doubled delimiter (`''`, `""`) stays inside.
//!   Backslashes mean nothing in quotes, so in `E'it\'s'` the `'` after the backslash
//!   closes the literal.
//! * **Line comments** `--` up to and including the next `\n`.
//! * **Block comments** `/* … */`, nested. Both delimiters are recognised on the last two
//!   bytes read, so `/*/` opens and closes a comment at once.
//! * **Dollar quotes** `$tag$ … $tag$`. Every `$` read as plain text starts a tag, also
//!   after an identifier or a digit (`a$b`, `$1`, `x$$`); the tag goes on over ASCII
//!   letters, digits and `_`, and any other byte (so every byte of a non-ASCII
//!   character) ends it and is read as plain text: a tag never holds a non-ASCII
//!   character. A second `$` makes `$tag$` the delimiter; the quote ends as soon as the
//!   piece ends with it again, which may overlap the opening (`$$$` opens and closes).
//! * **Backslash** outside quotes and comments: the next byte is taken as it is (`\;`
//!   separates nothing).
//! * **Groups**: `(` opens a group that the next `)` read as plain text closes; the `C`
//!   of `BEGIN ATOMIC` opens one that the next `END` read as plain text closes, in any
//!   case and anywhere, also inside a word (`legend`, `backend`) or after a `CASE`
//!   (`CASE … END;` inside a body splits there). Inside a group the text is lexed as
//!   above, but a `;` separates nothing and does not end the mode it is read in: after
//!   a quote (`'a';'b'` stays one literal), a `-` (`-;-` starts a line comment) or a
//!   dollar tag (`$x;y$` is a tag). When a closer closes a group, the enclosing group
//!   looks at the same bytes, so one `)` closes all nested parentheses (`(f(1); …`
//!   closes at the `)` of `f(1)`) and one `END` all nested bodies.
//! * **`BEGIN ATOMIC`** is recognised when its `C` is read as plain text and the piece
//!   then ends with `ATOMIC` (any case), with only Unicode whitespace (at least one
//!   character) between it and a `BEGIN` before it, and neither word comes
//!   right after an identifier character: ASCII letter or digit, `_`, `$`, or a
//!   non-ASCII letter or digit (Unicode 15.0.0 categories L and Nd, as the CLI's Go
//!   sees them). What follows `ATOMIC` is not looked at (`BEGIN ATOMICALLY` opens a
//!   body too).
//!
//! An unterminated quote, comment or dollar quote runs to the end of the file. Every
//! piece then loses its trailing `;` characters and *then* its surrounding Unicode
//! whitespace (Go's `strings.TrimSpace`, the same set as [`str::trim`]; a byte-order
//! mark is not whitespace and stays), and empty pieces are dropped. So comments after
//! the last `;` form a statement of their own, inner whitespace (CRLF included) and
//! leading comments stay, and a file without a final `;` still yields its last
//! statement.
//!
//! The CLI decodes characters as it goes but advances one byte at a time, feeding
//! U+FFFD for each continuation byte; since every delimiter it looks for ends with an
//! ASCII byte, walking bytes as we do gives the same pieces.
//!
//! # Deliberate deviations
//!
//! Only where the CLI fails instead of splitting:
//!
//! 1. The CLI fails with `bufio.Scanner: token too long` on a piece longer than its
//!    scanner buffer ([`cli_rejects`] says when, [`scanner`] gives the rule, including
//!    `SUPABASE_SCANNER_BUFFER_SIZE`). [`split_and_trim`] still splits such a file;
//!    [`crate::source::project::Project::load`] refuses it with the reason. Within one CLI run
//!    the default buffer grows with the largest file read so far; we judge every file
//!    as if it were the first.
//! 2. We take `&str`, so the input is UTF-8; [`crate::source::project`] refuses other files
//!    (the CLI would store their raw bytes).
//!
//! # Older CLI releases
//!
//! Checked against the parser's history back to 2024-07-09 (when it moved to
//! `pkg/parser`): before commit 3be2887 (2026-04-14, first released in v2.91.1) the only
//! difference was how a body starts. Those releases opened one at every `ATOMIC` read
//! as plain text, without looking for `BEGIN` or word boundaries (`atomic_log`,
//! `f_atomic()`, a column named `atomic`); ledger rows they wrote for files with such a
//! word can differ from our split.

mod command;
mod letters;
mod lexer;
pub mod scanner;
#[cfg(test)]
mod tests;

pub(crate) use command::{is_transaction_command, words};
pub use scanner::{CliRejection, ScannerBuffer, cli_rejects};

use lexer::Lexer;

/// Splits `sql` into the statements the Supabase CLI would run and record for it:
/// split on separating `;`s, each piece trimmed of its trailing `;`s and then of its
/// surrounding whitespace, empty ones dropped (see the module documentation for the
/// exact rules).
pub fn split_and_trim(sql: &str) -> Vec<String> {
    pieces(sql)
        .into_iter()
        .map(|piece| trim_piece(piece.text))
        .filter(|statement| !statement.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The untrimmed pieces, in order: each ends with the `;` that separated it, except the
/// last one when text follows the final separator. Concatenated they give `sql` back.
pub fn split_raw(sql: &str) -> Vec<&str> {
    pieces(sql).into_iter().map(|piece| piece.text).collect()
}

/// A piece as the CLI's scanner cuts it.
struct Piece<'a> {
    /// Byte offset of its first byte in the file.
    offset: usize,
    /// Its text, the separating `;` included.
    text: &'a str,
    /// Whether a separating `;` ends it (false only for a last piece without one).
    separated: bool,
}

/// Cuts `sql` into pieces at every separating `;`.
fn pieces(sql: &str) -> Vec<Piece<'_>> {
    let bytes = sql.as_bytes();
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut lexer = Lexer::new();
    for end in 1..=bytes.len() {
        if lexer.read(&bytes[start..end]) {
            // A separator is an ASCII `;`, so `end` is a character boundary.
            pieces.push(Piece {
                offset: start,
                text: &sql[start..end],
                separated: true,
            });
            start = end;
            lexer = Lexer::new();
        }
    }
    if start < bytes.len() {
        pieces.push(Piece {
            offset: start,
            text: &sql[start..],
            separated: false,
        });
    }
    pieces
}

/// The statement a piece becomes: without its trailing `;`s, then without the
/// whitespace around it.
fn trim_piece(piece: &str) -> &str {
    piece.trim_end_matches(';').trim()
}
