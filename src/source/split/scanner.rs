//! The one case where the CLI does not split a file but fails: a piece that does not fit
//! in the buffer of the scanner it reads the file with (Go's `bufio.Scanner`, error
//! `bufio.Scanner: token too long`).
//!
//! # The rule
//!
//! The scanner holds the current piece from its first byte; it can hold `limit` bytes.
//! A piece ended by a separating `;` fits when it is at most `limit` bytes long, `;`
//! included. The piece after the last separator must be *shorter* than `limit`: the
//! scanner only learns that the file has ended by asking for more after a buffer that
//! is not full. The first piece that does not fit makes the CLI stop with an error
//! before it runs any statement of that file (`supabase db push` has applied the
//! migrations before it and stops there).
//!
//! `limit` comes from `SUPABASE_SCANNER_BUFFER_SIZE` ([`ScannerBuffer`]):
//!
//! * unset (or empty): 256 KiB, but when a migration file is larger the CLI raises it to
//!   the file's size before reading that file. So only a file of at least 256 KiB with
//!   no separating `;` at all fails: its single piece is the whole file and fills the
//!   buffer exactly. The CLI never lowers the raised size again within one run, so after
//!   a larger file in the same run such a file passes; we judge each file as if it were
//!   the first (the safe side: an earlier, larger pending migration would let it pass);
//! * set: its value read as viper's `GetSizeInBytes` does (a whole number, optional `kb`,
//!   `mb` or `gb` suffix in any case, see [`ScannerBuffer::from_setting`]), the file's size
//!   no longer counts; a value that reads as 0 means 256 KiB, and anything below 4 KiB
//!   means 4 KiB (the scanner's first buffer, which it never shrinks).

use std::fmt;

use super::{Piece, pieces};

/// The scanner's limit when `SUPABASE_SCANNER_BUFFER_SIZE` does not set one: 256 KiB.
pub const DEFAULT_SCANNER_BUFFER: usize = 256 * 1024;

/// The environment variable the CLI reads its scanner limit from.
pub const SCANNER_BUFFER_ENV: &str = "SUPABASE_SCANNER_BUFFER_SIZE";

/// The scanner's first buffer, which is also the least it can hold: 4 KiB.
const FIRST_BUFFER: usize = 4096;

/// The scanner limit the CLI runs with, as `SUPABASE_SCANNER_BUFFER_SIZE` decides it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScannerBuffer {
    /// The variable is unset or empty: 256 KiB, raised to the size of a larger file.
    Default,
    /// The variable is set to `value`, which the CLI reads as `bytes` (0 when it cannot
    /// read it as a size).
    Set {
        /// The variable's text, as given.
        value: String,
        /// The size the CLI reads from it.
        bytes: usize,
    },
}

impl ScannerBuffer {
    /// The setting of this process's `SUPABASE_SCANNER_BUFFER_SIZE` (set it for
    /// phantom-sync as you set it for the CLI).
    pub fn from_env() -> ScannerBuffer {
        let value = std::env::var_os(SCANNER_BUFFER_ENV);
        ScannerBuffer::from_setting(value.as_ref().map(|v| v.to_string_lossy()).as_deref())
    }

    /// The setting for the variable's value (`None`: unset). Read as viper reads sizes:
    /// surrounding whitespace is ignored; a final `b`/`B` after at least two other
    /// characters is dropped, and with it a `k`, `m` or `g` (any case) before it, which
    /// multiplies by 2^10, 2^20 or 2^30; the rest is a Go integer literal (`1024`,
    /// `0x400`, `1_024`, `0o2000`, a leading `0` meaning octal, a sign), where a
    /// decimal point cuts off the fraction. Anything unreadable, negative or
    /// overflowing is 0.
    pub fn from_setting(value: Option<&str>) -> ScannerBuffer {
        match value {
            None | Some("") => ScannerBuffer::Default,
            Some(value) => ScannerBuffer::Set {
                value: value.to_owned(),
                bytes: size_in_bytes(value),
            },
        }
    }

    /// How many bytes the scanner can hold while it reads a file of `file_len` bytes.
    pub fn limit(&self, file_len: usize) -> usize {
        match self {
            ScannerBuffer::Default => DEFAULT_SCANNER_BUFFER.max(file_len),
            ScannerBuffer::Set { bytes: 0, .. } => DEFAULT_SCANNER_BUFFER,
            ScannerBuffer::Set { bytes, .. } => (*bytes).max(FIRST_BUFFER),
        }
    }
}

/// Why the CLI would fail on a migration file instead of pushing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliRejection {
    /// Byte offset in the file of the statement that does not fit (its first character
    /// that is not whitespace).
    pub offset: usize,
    /// Line (from 1) of that offset.
    pub line: usize,
    /// The length in bytes of the piece the scanner must hold: from the end of the
    /// previous separator (leading whitespace included) to its own `;` or the end of
    /// the file.
    pub len: usize,
    /// Whether a separating `;` ends the piece (otherwise it runs to the end of the file).
    pub separated: bool,
    /// How many statements the CLI had read before it ("After statement N" in its error).
    pub statements_before: usize,
    /// The scanner's limit in bytes for this file.
    pub limit: usize,
    /// The setting the limit comes from.
    pub buffer: ScannerBuffer,
}

impl fmt::Display for CliRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let CliRejection {
            offset,
            line,
            len,
            limit,
            ..
        } = self;
        let setting = match &self.buffer {
            ScannerBuffer::Default => {
                format!("{SCANNER_BUFFER_ENV} unset: 256 KiB, or the file's size when larger")
            }
            ScannerBuffer::Set { value, .. } => format!("{SCANNER_BUFFER_ENV}={value:?}"),
        };
        write!(
            f,
            "the Supabase CLI would refuse to push this file (\"bufio.Scanner: token too long\"): \
             the statement starting at line {line} (byte {offset}, after statement {}) is {len} bytes",
            self.statements_before
        )?;
        if self.separated {
            write!(f, " up to its `;`")?;
        } else {
            write!(
                f,
                " with no separating `;` after it up to the end of the file"
            )?;
        }
        write!(
            f,
            ", and its statement scanner holds {limit} bytes ({setting}) (hint: end the statement \
             with a `;` or split it into smaller statements, or set {SCANNER_BUFFER_ENV} to more \
             than {len} bytes, e.g. {SCANNER_BUFFER_ENV}=5MB, for the CLI and for phantom-sync alike)"
        )
    }
}

/// Why the Supabase CLI would fail on `sql` instead of splitting it, if it would: the
/// first piece that does not fit in its scanner's buffer (see the module documentation
/// of [`super`] for the rule). `None` for every file the CLI splits.
pub fn cli_rejects(sql: &str, buffer: &ScannerBuffer) -> Option<CliRejection> {
    let limit = buffer.limit(sql.len());
    let mut statements_before = 0;
    for Piece {
        offset,
        text,
        separated,
    } in pieces(sql)
    {
        let fits = if separated {
            text.len() <= limit
        } else {
            text.len() < limit
        };
        if !fits {
            let offset = offset + (text.len() - text.trim_start().len());
            return Some(CliRejection {
                offset,
                line: 1 + sql.as_bytes()[..offset]
                    .iter()
                    .filter(|&&b| b == b'\n')
                    .count(),
                len: text.len(),
                separated,
                statements_before,
                limit,
                buffer: buffer.clone(),
            });
        }
        if !super::trim_piece(text).is_empty() {
            statements_before += 1;
        }
    }
    None
}

/// viper's `parseSizeInBytes` (v1.21) on a set value; see [`ScannerBuffer::from_setting`].
fn size_in_bytes(value: &str) -> usize {
    let mut number = value.trim();
    let mut multiplier: u64 = 1;
    let bytes = number.as_bytes();
    if bytes.len() > 2 && matches!(bytes[bytes.len() - 1], b'b' | b'B') {
        let (shift, cut) = match bytes[bytes.len() - 2].to_ascii_lowercase() {
            b'k' => (10, 2),
            b'm' => (20, 2),
            b'g' => (30, 2),
            _ => (0, 1),
        };
        multiplier = 1 << shift;
        number = number[..number.len() - cut].trim();
    }
    let size = go_int(number).unwrap_or(0).max(0).unsigned_abs();
    // An overflowing product is 0 (viper's `safeMul`); the CLI then caps it at Go's
    // largest `int`.
    let product = size
        .checked_mul(multiplier)
        .unwrap_or(0)
        .min(i64::MAX as u64);
    usize::try_from(product).unwrap_or(usize::MAX)
}

/// spf13/cast's `ToInt` on a string (v1.10): empty is 0; with a `.`, a text matching
/// `[-+]?\d*(\.\d*)?` keeps its integer part (`"-"`/`"+"`/`""` becoming `0`); then Go's
/// `strconv.ParseInt(text, 0, 64)`. `None` where cast gives 0 for an error.
fn go_int(text: &str) -> Option<i64> {
    if text.is_empty() {
        return Some(0);
    }
    let mut text = text.to_owned();
    if let Some(point) = text.find('.') {
        let (whole, fraction) = text.split_at(point);
        let unsigned = whole.strip_prefix(['-', '+']).unwrap_or(whole);
        let decimal = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if decimal(unsigned) && decimal(&fraction[1..]) {
            text = match whole {
                "" | "-" | "+" => format!("{whole}0"),
                _ => whole.to_owned(),
            };
        }
    }
    parse_go_int(&text)
}

/// Go's `strconv.ParseInt(text, 0, 64)`: an optional sign, then `0x`, `0o` or `0b` (any
/// case, with at least one more character) and digits of that base, or a `0` and octal
/// digits, or decimal digits; `_` may separate digits (and follow a prefix). `None` on a
/// syntax or range error.
fn parse_go_int(text: &str) -> Option<i64> {
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let bytes = unsigned.as_bytes();
    let prefix = |letter: u8| {
        bytes.len() >= 3 && bytes[0] == b'0' && bytes[1].to_ascii_lowercase() == letter
    };
    let (radix, digits) = if prefix(b'x') {
        (16, &bytes[2..])
    } else if prefix(b'o') {
        (8, &bytes[2..])
    } else if prefix(b'b') {
        (2, &bytes[2..])
    } else if bytes.first() == Some(&b'0') {
        (8, &bytes[1..])
    } else if bytes.is_empty() {
        return None;
    } else {
        (10, bytes)
    };
    let mut value: u64 = 0;
    for &byte in digits {
        if byte == b'_' {
            continue;
        }
        let digit = char::from(byte).to_digit(radix)?;
        value = value
            .checked_mul(u64::from(radix))?
            .checked_add(u64::from(digit))?;
    }
    if bytes.contains(&b'_') && !underscores_between_digits(bytes, radix) {
        return None;
    }
    if negative {
        0i64.checked_sub_unsigned(value)
    } else {
        i64::try_from(value).ok()
    }
}

/// Go's rule for `_` in an integer literal (`bytes` without its sign): each `_` follows
/// a digit or the base prefix (`0x`, `0o`, `0b`) and is followed by a digit.
fn underscores_between_digits(bytes: &[u8], radix: u32) -> bool {
    let prefixed = bytes.len() >= 2
        && bytes[0] == b'0'
        && matches!(bytes[1].to_ascii_lowercase(), b'x' | b'o' | b'b');
    let body = if prefixed { &bytes[2..] } else { bytes };
    // Whether the previous byte was a digit (a prefix counts as one), and whether an
    // underscore is waiting for its digit.
    let mut after_digit = prefixed;
    let mut open_underscore = false;
    for &byte in body {
        let is_digit = byte.is_ascii_digit() || radix == 16 && byte.is_ascii_hexdigit();
        if is_digit {
            after_digit = true;
            open_underscore = false;
        } else if byte == b'_' {
            if !after_digit {
                return false;
            }
            after_digit = false;
            open_underscore = true;
        } else if open_underscore {
            return false;
        } else {
            after_digit = false;
        }
    }
    !open_underscore
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;
    use rstest::rstest;

    const KIB: usize = 1024;

    fn set(bytes: usize) -> ScannerBuffer {
        ScannerBuffer::Set {
            value: bytes.to_string(),
            bytes,
        }
    }

    /// Each value was run through viper v1.21's `parseSizeInBytes` with cast v1.10.
    #[rstest]
    #[case("5MB", 5 << 20)]
    #[case("5mb", 5 << 20)]
    #[case(" 512 KB ", 512 << 10)]
    #[case("1024", 1024)]
    #[case("1kb", 1024)]
    #[case("1 kb", 1024)]
    #[case("4gb", 4 << 30)]
    #[case("1mB", 1 << 20)]
    #[case("\u{a0}1MB\u{3000}", 1 << 20)]
    #[case("10b", 10)]
    #[case("100 B", 100)]
    #[case("2b", 0)]
    #[case("1B", 0)]
    #[case("KB", 0)]
    #[case("xKB", 0)]
    #[case("1k", 0)]
    #[case("1kib", 0)]
    #[case("1.5MB", 1 << 20)]
    #[case("1.5", 1)]
    #[case("1.", 1)]
    #[case(".5MB", 0)]
    #[case("+.9kb", 0)]
    #[case("1.2.3", 0)]
    #[case("1e3", 0)]
    #[case("abc", 0)]
    #[case("３MB", 0)]
    #[case("-1", 0)]
    #[case("-1MB", 0)]
    #[case("+4096", 4096)]
    #[case("+", 0)]
    #[case("-", 0)]
    #[case("0x10", 16)]
    #[case("0X10kb", 16 << 10)]
    #[case("010", 8)]
    #[case("08", 0)]
    #[case("00", 0)]
    #[case("0", 0)]
    #[case("0o17", 15)]
    #[case("0b101", 5)]
    #[case("0b", 0)]
    #[case("0x", 0)]
    #[case("1_000", 1000)]
    #[case("0x_1f", 31)]
    #[case("0_7", 7)]
    #[case("0_x1", 0)]
    #[case("1__0", 0)]
    #[case("_1", 0)]
    #[case("1_", 0)]
    #[case("9223372036854775807", 9223372036854775807)]
    #[case("9223372036854775808", 0)]
    #[case("8589934591GB", 9223372035781033984)]
    #[case("17179869184GB", 0)]
    // viper gives 9223372036854776832, above Go's largest int, which the CLI caps.
    #[case("9007199254740993KB", 9223372036854775807)]
    fn reads_sizes_like_viper(#[case] value: &str, #[case] bytes: usize) {
        assert_eq!(
            ScannerBuffer::from_setting(Some(value)),
            ScannerBuffer::Set {
                value: value.to_owned(),
                bytes
            }
        );
    }

    #[test]
    fn unset_or_empty_is_the_default() {
        assert_eq!(ScannerBuffer::from_setting(None), ScannerBuffer::Default);
        assert_eq!(
            ScannerBuffer::from_setting(Some("")),
            ScannerBuffer::Default
        );
    }

    #[test]
    fn limits() {
        assert_eq!(ScannerBuffer::Default.limit(10), 256 * KIB);
        assert_eq!(ScannerBuffer::Default.limit(300_000), 300_000);
        assert_eq!(set(0).limit(300_000), 256 * KIB);
        assert_eq!(set(1000).limit(10), 4 * KIB);
        assert_eq!(set(5 << 20).limit(10), 5 << 20);
    }

    /// Every case was run through the CLI's parser reading a file.
    #[rstest]
    #[case::exactly_256_kib_without_separator("x".repeat(256 * KIB), ScannerBuffer::Default, Some((0, 0, false)))]
    #[case::just_under_256_kib("x".repeat(256 * KIB - 1), ScannerBuffer::Default, None)]
    #[case::larger_file_without_separator("x".repeat(300_000), ScannerBuffer::Default, Some((0, 0, false)))]
    #[case::larger_file_ending_with_separator(format!("{};", "x".repeat(299_999)), ScannerBuffer::Default, None)]
    #[case::larger_file_with_one_separator(format!("SELECT 1;{}", "x".repeat(300_000)), ScannerBuffer::Default, None)]
    #[case::separator_only_inside_quotes(format!("select '{}'", ";".repeat(256 * KIB - 9)), ScannerBuffer::Default, Some((0, 0, false)))]
    #[case::separator_only_inside_parentheses(format!("({}", "a;".repeat(128 * KIB)), ScannerBuffer::Default, Some((0, 0, false)))]
    #[case::non_ascii_text("é".repeat(128 * KIB), ScannerBuffer::Default, Some((0, 0, false)))]
    #[case::separated_piece_fits(format!("{};", "x".repeat(4095)), set(4096), None)]
    #[case::separated_piece_too_long(format!("{};", "x".repeat(4096)), set(4096), Some((0, 0, true)))]
    #[case::last_piece_fits("x".repeat(4095), set(4096), None)]
    #[case::last_piece_too_long("x".repeat(4096), set(4096), Some((0, 0, false)))]
    #[case::below_4_kib_means_4_kib(format!("{};{}", "x".repeat(4095), "y".repeat(4000)), set(1000), None)]
    #[case::zero_means_256_kib("x".repeat(256 * KIB), set(0), Some((0, 0, false)))]
    #[case::set_size_replaces_the_file_size("x".repeat(300_000), set(1 << 20), None)]
    #[case::second_statement(format!("SELECT 1;\n{}", "y".repeat(200_000)), set(100 * KIB), Some((10, 1, false)))]
    #[case::empty_statements_do_not_count(format!("SELECT 1;;{};z", "y".repeat(100 * KIB)), set(100 * KIB), Some((10, 1, true)))]
    #[case::separated_piece_of_exactly_the_limit(format!("SELECT 1;;{};z", "y".repeat(100 * KIB - 1)), set(100 * KIB), None)]
    fn rejects_like_the_cli(
        #[case] sql: String,
        #[case] buffer: ScannerBuffer,
        #[case] expected: Option<(usize, usize, bool)>,
    ) {
        let rejection = cli_rejects(&sql, &buffer);
        let found = rejection
            .as_ref()
            .map(|r| (r.offset, r.statements_before, r.separated));
        assert_eq!(found, expected);
    }

    #[test]
    fn rejection_says_where_and_what_to_do() {
        let sql = format!("SELECT 1;\n\n{}", "y".repeat(200_000));
        let rejection = cli_rejects(&sql, &set(100 * KIB)).unwrap();
        assert_eq!(
            (rejection.line, rejection.len, rejection.limit),
            (3, 200_002, 100 * KIB)
        );
        let message = rejection.to_string();
        for part in [
            "token too long",
            "line 3",
            "after statement 1",
            "200002 bytes",
            "102400 bytes",
            "SUPABASE_SCANNER_BUFFER_SIZE=\"102400\"",
            "`;`",
            "split it",
            "SUPABASE_SCANNER_BUFFER_SIZE=5MB",
        ] {
            assert!(message.contains(part), "{part:?} missing in: {message}");
        }
        let default = cli_rejects(&"x".repeat(300_000), &ScannerBuffer::Default).unwrap();
        assert!(
            default.to_string().contains("unset"),
            "{}",
            default.to_string()
        );
    }

    #[test]
    fn ordinary_files_pass() {
        assert_eq!(cli_rejects("", &ScannerBuffer::Default), None);
        assert_eq!(cli_rejects("select 1; select 2", &set(1)), None);
    }
}
