//! Connection URLs as text: the password they carry (percent-decoded, for
//! child processes) and the same text with every password replaced by `***`
//! (for anything printed, logged or written).

/// The percent-decoded password of a URL: its userinfo's, else a
/// `password=` query parameter's (sqlx accepts both).
pub(crate) fn url_password(url: &str) -> Option<String> {
    let (_, rest) = url.split_once("://")?;
    let authority = &rest[..rest.find(['/', '?']).unwrap_or(rest.len())];
    let from_userinfo = authority
        .rsplit_once('@')
        .and_then(|(userinfo, _)| userinfo.split_once(':'));
    if let Some((_, password)) = from_userinfo {
        return Some(percent_decode(password));
    }
    let (_, query) = rest.split_once('?')?;
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix("password="))
        .map(percent_decode)
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

/// Replaces the password of every `scheme://user:password@` in `text` by `***`.
pub fn redact_url(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("://") {
        let (head, tail) = rest.split_at(pos + 3);
        out.push_str(head);
        let authority_end = tail
            .find(['/', ' ', '\n', '"', '\'', '?'])
            .unwrap_or(tail.len());
        let authority = &tail[..authority_end];
        match (authority.rfind('@'), authority.find(':')) {
            (Some(at), Some(colon)) if colon < at => {
                out.push_str(&authority[..colon]);
                out.push_str(":***");
                out.push_str(&authority[at..]);
            }
            _ => out.push_str(authority),
        }
        rest = &tail[authority_end..];
    }
    out.push_str(rest);
    // `password=...` in keyword/value connection strings.
    redact_keyword_password(&out)
}

fn redact_keyword_password(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("password=") {
        let (head, tail) = rest.split_at(pos + "password=".len());
        out.push_str(head);
        out.push_str("***");
        let end = tail.find([' ', '&', '\n', '"', '\'']).unwrap_or(tail.len());
        rest = &tail[end..];
    }
    out.push_str(rest);
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
    }
}
