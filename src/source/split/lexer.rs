//! The byte-level state machine that decides, byte by byte, whether a `;` separates two
//! statements. It mirrors the CLI's tokenizer transition for transition (see the module
//! documentation of [`super`] for the rules in words); only the data layout is ours.
//!
//! Every decision looks at one byte and at the current piece up to and including it.
//! Bytes of multi-byte characters never match anything the machine looks for (all
//! delimiters end in an ASCII byte), so walking bytes gives the CLI's result although
//! the CLI decodes characters; the one place that needs whole characters, the word
//! boundaries around `BEGIN ATOMIC`, decodes them from the piece.

use super::letters::is_identifier_char;

/// What the innermost lexer is reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Ordinary SQL text.
    Plain,
    /// Just after a `-`: a second one starts a line comment.
    Dash,
    /// A `--` comment, up to and including the next `\n`.
    LineComment,
    /// After a `/` (`depth` 0) or inside a block comment nested `depth` deep.
    Slash { depth: u32 },
    /// Inside `'…'` or `"…"`; `maybe_closed` right after a `quote` byte, which closes
    /// the literal unless another `quote` byte follows (a doubled delimiter).
    Quoted { quote: u8, maybe_closed: bool },
    /// Reading a dollar tag whose `$` is at byte `start` of the piece.
    Tag { start: usize },
    /// Inside a dollar quote opened by the tag `piece[start..start + len]`.
    DollarQuoted { start: usize, len: usize },
    /// The byte after a backslash outside quotes: taken as it is.
    Escaped,
}

/// What ends a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Closer {
    /// A `(` group: the next `)` read as plain text.
    Paren,
    /// A `BEGIN ATOMIC` body: the next `END` (any case) read as plain text.
    End,
}

impl Closer {
    /// Whether `piece` (which ends with the byte just read) ends with this closer.
    fn closes(self, piece: &[u8]) -> bool {
        match self {
            Closer::Paren => piece.ends_with(b")"),
            Closer::End => tail(piece, 3).is_some_and(|t| t.eq_ignore_ascii_case(b"END")),
        }
    }
}

/// What one byte did to a [`Mode`].
enum Step {
    /// A `;` read as plain text: a separator, unless a group is open.
    Separator,
    /// The byte opened a group; the group's content starts in [`Mode::Plain`].
    Open(Closer),
    /// The mode to go on with.
    Go(Mode),
}

/// The state of the splitter inside one piece: the innermost mode and the groups
/// around it, outermost first.
#[derive(Debug)]
pub(super) struct Lexer {
    mode: Mode,
    groups: Vec<Closer>,
}

impl Lexer {
    /// The state at the start of a piece.
    pub(super) fn new() -> Lexer {
        Lexer {
            mode: Mode::Plain,
            groups: Vec::new(),
        }
    }

    /// Reads the last byte of `piece` (the current piece up to and including that
    /// byte). Returns true when that byte is a separating `;`: the piece ends there and
    /// the caller starts a new one with a new [`Lexer`].
    pub(super) fn read(&mut self, piece: &[u8]) -> bool {
        match self.mode.step(piece) {
            // A `;` inside a group separates nothing and leaves the mode as it was,
            // even a mode that the `;` would have ended (`'x';'` stays a literal).
            Step::Separator => self.groups.is_empty(),
            Step::Open(closer) => {
                self.groups.push(closer);
                self.mode = Mode::Plain;
                false
            }
            Step::Go(mode) => {
                self.mode = mode;
                // A closer counts only when read as plain text; closing a group makes
                // the enclosing one look at the same bytes, so one `)` can close
                // several groups.
                if mode == Mode::Plain {
                    while let Some(&closer) = self.groups.last() {
                        if !closer.closes(piece) {
                            break;
                        }
                        self.groups.pop();
                    }
                }
                false
            }
        }
    }
}

impl Mode {
    /// The effect of the last byte of `piece`.
    fn step(self, piece: &[u8]) -> Step {
        let byte = piece[piece.len() - 1];
        let mode = match self {
            Mode::Plain => return plain(piece),
            Mode::Dash if byte == b'-' => Mode::LineComment,
            Mode::Dash => return plain(piece),
            Mode::LineComment if byte == b'\n' => Mode::Plain,
            Mode::LineComment => self,
            Mode::Slash { depth } => {
                let pair = tail(piece, 2);
                if pair == Some(b"/*") {
                    Mode::Slash { depth: depth + 1 }
                } else if depth == 0 {
                    return plain(piece);
                } else if pair == Some(b"*/") {
                    match depth - 1 {
                        0 => Mode::Plain,
                        depth => Mode::Slash { depth },
                    }
                } else {
                    self
                }
            }
            // A doubled delimiter stays inside; after a single one the byte is plain.
            Mode::Quoted {
                quote,
                maybe_closed: true,
            } if byte == quote => Mode::Quoted {
                quote,
                maybe_closed: false,
            },
            Mode::Quoted {
                maybe_closed: true, ..
            } => return plain(piece),
            Mode::Quoted { quote, .. } => Mode::Quoted {
                quote,
                maybe_closed: byte == quote,
            },
            Mode::Tag { start } if byte == b'$' => Mode::DollarQuoted {
                start,
                len: piece.len() - start,
            },
            // Tags are ASCII letters, digits and `_`; any other byte (every byte of a
            // non-ASCII character included) ends the tag and is read as plain text.
            Mode::Tag { .. } if byte.is_ascii_alphanumeric() || byte == b'_' => self,
            Mode::Tag { .. } => return plain(piece),
            Mode::DollarQuoted { start, len } => {
                // The closing tag may overlap the opening one: `$$$` opens and closes.
                if piece.ends_with(&piece[start..start + len]) {
                    Mode::Plain
                } else {
                    self
                }
            }
            Mode::Escaped => Mode::Plain,
        };
        Step::Go(mode)
    }
}

/// The effect of the last byte of `piece` read as plain text.
fn plain(piece: &[u8]) -> Step {
    let mode = match piece[piece.len() - 1] {
        b';' => return Step::Separator,
        b'(' => return Step::Open(Closer::Paren),
        b'c' | b'C' if ends_with_begin_atomic(piece) => return Step::Open(Closer::End),
        // Always a tag, even right after an identifier (`a$b`) or a number (`$1`).
        b'$' => Mode::Tag {
            start: piece.len() - 1,
        },
        quote @ (b'\'' | b'"') => Mode::Quoted {
            quote,
            maybe_closed: false,
        },
        b'-' => Mode::Dash,
        b'/' => Mode::Slash { depth: 0 },
        b'\\' => Mode::Escaped,
        _ => Mode::Plain,
    };
    Step::Go(mode)
}

/// The last `n` bytes of `bytes`, if it has that many.
fn tail(bytes: &[u8], n: usize) -> Option<&[u8]> {
    bytes.len().checked_sub(n).map(|start| &bytes[start..])
}

/// Whether `piece` ends with the word `ATOMIC` (any case) preceded by the word `BEGIN`
/// and nothing but whitespace (Unicode's, as Go's `unicode.IsSpace`). A word here is
/// not preceded by an identifier character; what follows `ATOMIC` is not looked at.
fn ends_with_begin_atomic(piece: &[u8]) -> bool {
    let Some(before_atomic) = strip_word(piece, b"ATOMIC") else {
        return false;
    };
    let mut end = before_atomic.len();
    while let Some(c) = last_char(&before_atomic[..end]) {
        if !c.is_whitespace() {
            break;
        }
        end -= c.len_utf8();
    }
    strip_word(&before_atomic[..end], b"BEGIN").is_some()
}

/// `text` without its ending `word` (ASCII, any case), if it ends with it and the
/// character before it (if any) does not continue an identifier.
fn strip_word<'a>(text: &'a [u8], word: &[u8]) -> Option<&'a [u8]> {
    let start = text.len().checked_sub(word.len())?;
    if !text[start..].eq_ignore_ascii_case(word) {
        return None;
    }
    let before = &text[..start];
    match last_char(before) {
        Some(c) if is_identifier_char(c) => None,
        _ => Some(before),
    }
}

/// The last character of `text`, which is valid UTF-8 (a piece of a `&str` cut before
/// an ASCII byte).
fn last_char(text: &[u8]) -> Option<char> {
    let start = (text.len().saturating_sub(4)..text.len())
        .rev()
        .find(|&at| !is_continuation(text[at]))?;
    std::str::from_utf8(&text[start..]).ok()?.chars().next()
}

/// Whether `byte` continues a multi-byte UTF-8 sequence.
fn is_continuation(byte: u8) -> bool {
    byte & 0xC0 == 0x80
}
