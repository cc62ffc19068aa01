//! Connection URLs as text: where the password is, whatever characters it
//! holds. A URL is split leniently — the user information ends at the `@`
//! that a host follows, so a password may hold raw `@ / ? # % :` and spaces,
//! or their `%XX` forms — and then rebuilt with the password
//! percent-encoded (`normalise`) for the parsers that follow. What leaves
//! this module for people is either the URL with every password replaced by
//! `***` ([`redact_whole_url`], [`redact_url`] for free text) or only its
//! host and database ([`describe`]). Query parameters whose name ends in
//! `password` (any case: `password`, `PASSWORD`, `sslpassword`) count as
//! passwords too.

/// A URL cut into its parts (all as written).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Parts<'a> {
    /// `postgres://`.
    scheme: &'a str,
    user: Option<&'a str>,
    password: Option<&'a str>,
    /// Host, port, path, query and fragment.
    rest: &'a str,
}

/// True when `text` starts with a host (a name, an IPv4 or bracketed IPv6
/// address, or several `host:port` separated by commas) that ends the
/// authority; `with_path`: only if a `/` or `:port` follows it.
fn host_follows(text: &str, with_path: bool) -> bool {
    let end = text.find(['/', '?', '#']).unwrap_or(text.len());
    let authority = &text[..end];
    let hostlike = !authority.is_empty()
        && authority.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(c, '.' | '-' | '_' | '~' | '%' | '[' | ']' | ':' | ',')
        });
    hostlike && (!with_path || text[end..].starts_with('/') || authority.contains(':'))
}

/// Splits `url` at `://` and at the `@` that ends its user information;
/// `None` without `://`, or when an `@` is there but no host follows any
/// (where the password ends cannot be known).
fn split(url: &str) -> Option<Parts<'_>> {
    let start = url.find("://")? + 3;
    let (scheme, after) = url.split_at(start);
    let ats: Vec<usize> = after.match_indices('@').map(|(i, _)| i).collect();
    let at = ats
        .iter()
        .rev()
        .find(|&&i| host_follows(&after[i + 1..], true))
        .or_else(|| {
            ats.iter()
                .rev()
                .find(|&&i| host_follows(&after[i + 1..], false))
        })
        .copied();
    let Some(at) = at else {
        if !ats.is_empty() {
            return None;
        }
        return Some(Parts {
            scheme,
            user: None,
            password: None,
            rest: after,
        });
    };
    let userinfo = &after[..at];
    let (user, password) = match userinfo.split_once(':') {
        Some((u, p)) => (u, Some(p)),
        None => (userinfo, None),
    };
    Some(Parts {
        scheme,
        user: Some(user),
        password,
        rest: &after[at + 1..],
    })
}

/// True for a query parameter name that carries a password.
fn is_password_key(key: &str) -> bool {
    key.to_ascii_lowercase().ends_with("password")
}

/// The percent-decoded password of a URL: its user information's, else a
/// `password=` query parameter's (any case).
pub(crate) fn url_password(url: &str) -> Option<String> {
    let parts = split(url)?;
    if let Some(password) = parts.password {
        return Some(percent_decode(password));
    }
    let (_, query) = parts.rest.split_once('?')?;
    let query = query.split('#').next().unwrap_or("");
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key.eq_ignore_ascii_case("password")).then(|| percent_decode(value))
    })
}

/// The URL rebuilt so that any URL parser reads it as meant: user and
/// password percent-encoded (raw special characters and `%XX` forms alike),
/// a `PASSWORD=` parameter spelled `password=`.
pub(crate) fn normalise(url: &str) -> String {
    let Some(parts) = split(url) else {
        return url.to_string();
    };
    let mut out = String::from(parts.scheme);
    if let Some(user) = parts.user {
        out.push_str(&percent_encode(&percent_decode(user)));
        if let Some(password) = parts.password {
            out.push(':');
            out.push_str(&percent_encode(&percent_decode(password)));
        }
        out.push('@');
    }
    out.push_str(&map_query(parts.rest, |key, value| {
        if key.eq_ignore_ascii_case("password") {
            format!("password={value}")
        } else {
            format!("{key}={value}")
        }
    }));
    out
}

/// True when `url` can be split where its password ends.
pub(crate) fn readable(url: &str) -> bool {
    split(url).is_some()
}

/// The URL with the password of its user information and of every
/// password parameter replaced by `***` (all but the scheme when it cannot
/// be split).
pub fn redact_whole_url(url: &str) -> String {
    let Some(parts) = split(url) else {
        return match url.find("://") {
            Some(i) => format!("{}***", &url[..i + 3]),
            None => "***".to_string(),
        };
    };
    let mut out = String::from(parts.scheme);
    if let Some(user) = parts.user {
        out.push_str(user);
        if parts.password.is_some() {
            out.push_str(":***");
        }
        out.push('@');
    }
    out.push_str(&map_query(parts.rest, |key, value| {
        if is_password_key(key) {
            format!("{key}=***")
        } else {
            format!("{key}={value}")
        }
    }));
    out
}

/// `rest` (host, path, query, fragment) with each `key=value` of its query rewritten by `f`.
fn map_query(rest: &str, f: impl Fn(&str, &str) -> String) -> String {
    let Some((head, query)) = rest.split_once('?') else {
        return rest.to_string();
    };
    let (query, fragment) = match query.split_once('#') {
        Some((q, frag)) => (q, Some(frag)),
        None => (query, None),
    };
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, value)) => f(key, value),
            None => pair.to_string(),
        })
        .collect();
    let mut out = format!("{head}?{}", pairs.join("&"));
    if let Some(fragment) = fragment {
        out.push('#');
        out.push_str(fragment);
    }
    out
}

/// "host db.example.com, database prod": what an error about an unusable
/// URL may say of it. Empty when not even that can be read.
pub fn describe(url: &str) -> String {
    let Some(parts) = split(url) else {
        return String::new();
    };
    let end = parts.rest.find(['/', '?', '#']).unwrap_or(parts.rest.len());
    let host = &parts.rest[..end];
    let database = parts.rest[end..]
        .strip_prefix('/')
        .map(|p| &p[..p.find(['?', '#']).unwrap_or(p.len())])
        .unwrap_or("");
    let clean = |s: &str| {
        !s.is_empty()
            && s.chars().all(|c| {
                c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '[' | ']' | ':' | ',')
            })
    };
    match (clean(host), clean(database)) {
        (true, true) => format!("host {host}, database {database}"),
        (true, false) => format!("host {host}"),
        _ => String::new(),
    }
}

/// Decodes `%XX` escapes; anything else (a lone `%`) stays as it is.
pub(crate) fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Encodes every byte but the unreserved ones (`A-Z a-z 0-9 - . _ ~`).
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Replaces passwords in free text: the user information's password of
/// every `scheme://user:password@host` (the `@` is the last one on the line
/// that a host follows, so raw special characters are covered — at the cost
/// of hiding too much when another `@host` follows on the line), and the
/// value of every `…password=` pair (any case; quoted values whole).
pub fn redact_url(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("://") {
        let (head, tail) = rest.split_at(pos + 3);
        out.push_str(head);
        let window_end = tail
            .find('\n')
            .unwrap_or(tail.len())
            .min(tail.find("://").unwrap_or(tail.len()));
        let window = &tail[..window_end];
        let ats: Vec<usize> = window.match_indices('@').map(|(i, _)| i).collect();
        let at = ats
            .iter()
            .rev()
            .find(|&&i| host_follows(&window[i + 1..], true))
            .or_else(|| {
                ats.iter()
                    .rev()
                    .find(|&&i| host_token_follows(&window[i + 1..]))
            })
            .copied();
        let colon = window.find(':');
        match (at, colon) {
            (Some(at), Some(colon)) if colon < at => {
                out.push_str(&window[..colon]);
                out.push_str(":***");
                rest = &tail[at..];
            }
            // An `@` no host follows: where the password ends is unknown,
            // so nothing after the user is kept.
            (None, Some(colon)) if ats.last().is_some_and(|&last| colon < last) => {
                out.push_str(&window[..colon]);
                out.push_str(":***");
                rest = &tail[window_end..];
            }
            _ => rest = tail,
        }
    }
    out.push_str(rest);
    redact_keyword_password(&out)
}

/// A host name starts `text` and ends at a separator or whitespace.
fn host_token_follows(text: &str) -> bool {
    let end = text
        .find(|c: char| c.is_whitespace() || matches!(c, '/' | '?' | '#' | '"' | '\'' | ')' | ','))
        .unwrap_or(text.len());
    host_follows(&text[..end], false)
}

/// `…password=value` (any case, `sslpassword` too) → `…password=***`.
fn redact_keyword_password(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut search = 0;
    while let Some(found) = lower[search..].find("password=") {
        let value_start = search + found + "password=".len();
        out.push_str(&text[copied..value_start]);
        out.push_str("***");
        let value = &text[value_start..];
        let end = match value.chars().next() {
            Some(q @ ('\'' | '"')) => value[1..].find(q).map_or(value.len(), |i| i + 2),
            _ => value
                .find(|c: char| c.is_whitespace() || matches!(c, '&' | '"' | '\'' | '#'))
                .unwrap_or(value.len()),
        };
        copied = value_start + end;
        search = copied;
    }
    out.push_str(&text[copied..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords_in_urls_and_keyword_strings() {
        assert_eq!(
            redact_url("connect postgres://app:s3cr%40t@db.example.com:5432/prod failed"),
            "connect postgres://app:***@db.example.com:5432/prod failed"
        );
        assert_eq!(
            redact_url("postgres://app@host/db"),
            "postgres://app@host/db"
        );
        assert_eq!(
            redact_url("host=x password=hunter2 user=y"),
            "host=x password=*** user=y"
        );
        assert_eq!(
            redact_url("postgres://a:b@h/d?password=c"),
            "postgres://a:***@h/d?password=***"
        );
        assert_eq!(
            redact_url("host=x PassWord='a b c' sslpassword=k user=y"),
            "host=x PassWord=*** sslpassword=*** user=y"
        );
    }

    /// Every shape of password the brief names, raw and encoded.
    const SECRETS: &[&str] = &[
        "Zq9@pw",
        "Zq9/pw",
        "Zq9?pw",
        "Zq9#pw",
        "Zq9%pw",
        "Zq9:pw",
        "Zq9 pw",
        "Zq9@/?#%: pw",
        "Zq9%40%2F%3F%23%25%3A%20pw",
    ];

    #[test]
    fn every_password_shape_is_found_normalised_and_redacted() {
        for secret in SECRETS {
            let decoded = percent_decode(secret);
            for url in [
                format!("postgres://app:{secret}@db.example.com:5432/prod"),
                format!("postgres://app:{secret}@db.example.com/prod?sslmode=require"),
                format!("postgresql://app:{secret}@db.example.com"),
            ] {
                assert_eq!(
                    url_password(&url).as_deref(),
                    Some(decoded.as_str()),
                    "{url}"
                );
                let redacted = redact_whole_url(&url);
                assert!(!redacted.contains("Zq9"), "{url} → {redacted}");
                assert!(
                    redacted.starts_with("postgres") && redacted.contains(":***@db.example.com"),
                    "{redacted}"
                );
                let free = redact_url(&format!("cannot connect to {url}: refused\nnext line"));
                assert!(!free.contains("Zq9"), "{url} → {free}");
                let normal = normalise(&url);
                assert!(
                    !normal.contains("Zq9@") && !normal.contains("Zq9/"),
                    "{normal}"
                );
                assert_eq!(url_password(&normal).as_deref(), Some(decoded.as_str()));
                let described = describe(&url);
                assert!(described.starts_with("host db.example.com"), "{described}");
                assert!(!described.contains("Zq9"), "{described}");
            }
            for url in [
                format!("postgres://app@db.example.com/prod?password={secret}"),
                format!("postgres://app@db.example.com/prod?PASSWORD={secret}&sslmode=disable"),
            ] {
                let redacted = redact_whole_url(&url);
                assert!(!redacted.contains("Zq9"), "{url} → {redacted}");
            }
        }
        assert_eq!(
            url_password("postgres://app@h/db?PASSWORD=a%2Bb"),
            Some("a+b".into())
        );
        assert_eq!(
            normalise("postgres://app@h/db?PASSWORD=x&sslmode=disable"),
            "postgres://app@h/db?password=x&sslmode=disable"
        );
        assert_eq!(describe("not a url"), "");
        let hostless = format!("postgres://weird:{}", SECRETS[7]);
        assert!(!readable(&hostless));
        assert_eq!(redact_whole_url(&hostless), "postgres://***");
        assert_eq!(describe(&hostless), "");
        assert_eq!(
            redact_url(&format!("x {hostless}\ny")),
            "x postgres://weird:***\ny"
        );
        assert_eq!(describe("postgres://u:p@h/db"), "host h, database db");
        // A query holding an `@` does not move the user information's end.
        assert_eq!(
            redact_whole_url("postgres://u:p@h/db?application_name=a@b"),
            "postgres://u:***@h/db?application_name=a@b"
        );
    }
}
