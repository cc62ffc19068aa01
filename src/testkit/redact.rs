//! Turns what varies from run to run — timestamps, durations, uuids, ports,
//! hashes, server versions — into stable placeholders, for snapshots and for
//! reports meant to be compared. One place, so every output agrees.

/// Redacts every varying token of `text`.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if let Some((len, placeholder)) = token_at(&chars, i) {
            out.push_str(placeholder);
            i += len;
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

fn token_at(c: &[char], i: usize) -> Option<(usize, &'static str)> {
    let boundary = i == 0 || !c[i - 1].is_ascii_alphanumeric();
    if !boundary {
        return None;
    }
    if let Some(n) = uuid_len(c, i) {
        return Some((n, "[uuid]"));
    }
    if let Some(n) = timestamp_len(c, i) {
        return Some((n, "[timestamp]"));
    }
    if let Some(n) = duration_len(c, i) {
        return Some((n, "[duration]"));
    }
    if let Some(n) = size_len(c, i) {
        return Some((n, "[size] bytes"));
    }
    if c[i..].starts_with(&['s', 'h', 'a', '2', '5', '6', ' ']) {
        let n = run_of(c, i + 7, |ch| ch.is_ascii_hexdigit());
        if n >= 8 {
            return Some((7 + n, "sha256 [hash]"));
        }
    }
    if let Some(n) = hash_len(c, i) {
        return Some((n, "[hash]"));
    }
    if let Some(n) = port_len(c, i) {
        return Some((n, "127.0.0.1:[port]"));
    }
    if let Some(n) = version_len(c, i) {
        return Some((n, "PostgreSQL [version]"));
    }
    None
}

fn run_of(c: &[char], i: usize, pred: impl Fn(char) -> bool) -> usize {
    c[i..].iter().take_while(|&&ch| pred(ch)).count()
}

fn matches_shape(c: &[char], i: usize, shape: &str) -> bool {
    let shape: Vec<char> = shape.chars().collect();
    if i + shape.len() > c.len() {
        return false;
    }
    shape.iter().zip(&c[i..]).all(|(s, ch)| match s {
        'h' => ch.is_ascii_hexdigit(),
        'd' => ch.is_ascii_digit(),
        other => other == ch,
    })
}

fn uuid_len(c: &[char], i: usize) -> Option<usize> {
    matches_shape(c, i, "hhhhhhhh-hhhh-hhhh-hhhh-hhhhhhhhhhhh").then_some(36)
}

fn timestamp_len(c: &[char], i: usize) -> Option<usize> {
    if !matches_shape(c, i, "dddd-dd-dd") {
        return None;
    }
    let mut n = 10;
    if i + n < c.len()
        && (c[i + n] == ' ' || c[i + n] == 'T')
        && matches_shape(c, i + n + 1, "dd:dd:dd")
    {
        let iso = c[i + n] == 'T';
        n += 9;
        let whole_seconds = n;
        if i + n < c.len() && c[i + n] == '.' {
            n += 1 + run_of(c, i + n + 1, |ch| ch.is_ascii_digit());
        }
        if i + n < c.len() && c[i + n] == 'Z' {
            n += 1;
        } else if matches_shape(c, i + n, "+dd:dd") || matches_shape(c, i + n, "-dd:dd") {
            n += 6;
        } else if matches_shape(c, i + n, "+dd") {
            n += 3;
        } else if matches_shape(c, i + n, " UTC") {
            n += 4;
        }
        // A bare "YYYY-MM-DD HH:MM:SS" is a migration version's time: stable, kept.
        return (iso || n > whole_seconds).then_some(n);
    }
    None
}

fn duration_len(c: &[char], i: usize) -> Option<usize> {
    let digits = run_of(c, i, |ch| ch.is_ascii_digit() || ch == '.');
    if digits == 0 || !c[i].is_ascii_digit() {
        return None;
    }
    for unit in [" ms", "ms", " s", "s"] {
        if matches_shape(c, i + digits, unit) {
            let end = i + digits + unit.len();
            if end == c.len() || !c[end].is_ascii_alphanumeric() {
                return Some(digits + unit.len());
            }
        }
    }
    None
}

fn size_len(c: &[char], i: usize) -> Option<usize> {
    let digits = run_of(c, i, |ch| ch.is_ascii_digit());
    (digits > 0 && matches_shape(c, i + digits, " bytes")).then_some(digits + " bytes".len())
}

fn hash_len(c: &[char], i: usize) -> Option<usize> {
    let n = run_of(c, i, |ch| {
        ch.is_ascii_hexdigit() && !ch.is_ascii_uppercase()
    });
    let has_letter = c[i..i + n].iter().any(|ch| ch.is_ascii_alphabetic());
    let end_ok = i + n == c.len() || !c[i + n].is_ascii_alphanumeric();
    // 12 (a short fingerprint) and 64 (sha256) hex digits are hashes even
    // without a letter; migration versions have 14 digits and stay.
    ((n == 12 || n == 64 || (n >= 12 && has_letter)) && end_ok).then_some(n)
}

fn port_len(c: &[char], i: usize) -> Option<usize> {
    let prefix = "127.0.0.1:";
    if !matches_shape(c, i, prefix) {
        return None;
    }
    let digits = run_of(c, i + prefix.len(), |ch| ch.is_ascii_digit());
    (digits > 0).then_some(prefix.len() + digits)
}

fn version_len(c: &[char], i: usize) -> Option<usize> {
    let prefix = "PostgreSQL ";
    if !matches_shape(c, i, prefix) {
        return None;
    }
    let n = run_of(c, i + prefix.len(), |ch| ch.is_ascii_digit() || ch == '.');
    (n > 0).then_some(prefix.len() + n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varying_tokens_become_placeholders() {
        assert_eq!(
            redact("at 2026-11-25 21:19:27.251 UTC took 35 ms on 127.0.0.1:32768"),
            "at [timestamp] took [duration] on 127.0.0.1:[port]"
        );
        assert_eq!(
            redact("id 7d2b6b5e-1f0a-4c55-9a0e-3f8b1a2c4d5e"),
            "id [uuid]"
        );
        assert_eq!(redact("sha256 3fa9c0d1e2b3a4f5"), "sha256 [hash]");
        assert_eq!(redact("sha256 432130835636"), "sha256 [hash]");
        assert_eq!(redact("diagnosis 904600980041"), "diagnosis [hash]");
        assert_eq!(
            redact("PostgreSQL 17.10 ready"),
            "PostgreSQL [version] ready"
        );
        assert_eq!(
            redact("24287 bytes, pg_dump of PostgreSQL 17"),
            "[size] bytes, pg_dump of PostgreSQL [version]"
        );
        assert_eq!(redact("2025-10-03T15:01:02+00:00"), "[timestamp]");
        assert_eq!(
            redact("2025-04-13 09:30:00 phantom"),
            "2025-04-13 09:30:00 phantom"
        );
    }

    #[test]
    fn stable_tokens_stay() {
        let text = "20250413093000 phantom; 2 rows; table public.prompts; DELETE 2; version 17";
        assert_eq!(redact(text), text);
    }
}
