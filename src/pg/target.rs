//! The database a command works on, named by a connection URL. A [`Target`]
//! keeps the password out of everything it prints: its display form, errors
//! and journals all use [`redact_url`].

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};

use crate::{Error, Result};

/// How long we wait for a server to accept a connection before giving up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// A PostgreSQL database named by a `postgres://` URL.
#[derive(Clone)]
pub struct Target {
    options: PgConnectOptions,
    redacted: String,
    /// Kept for child processes (pg_dump, psql), which get it through
    /// `PGPASSWORD`; sqlx's options do not give it back.
    password: Option<String>,
}

impl Target {
    /// Parses a `postgres://` or `postgresql://` URL.
    pub fn parse(url: &str) -> Result<Target> {
        let redacted = redact_url(url);
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(Error::Invalid(format!(
                "--db-url {redacted}: not a PostgreSQL URL (hint: use postgres://user:password@host:5432/database)"
            )));
        }
        let options = PgConnectOptions::from_str(url).map_err(|e| {
            Error::Invalid(format!(
                "--db-url {redacted}: {} (hint: use postgres://user:password@host:5432/database)",
                redact_url(&e.to_string())
            ))
        })?;
        Ok(Target {
            options,
            redacted,
            password: url_password(url),
        })
    }

    /// A target from ready-made options (the harness uses this).
    pub fn from_options(options: PgConnectOptions) -> Target {
        let redacted = format!(
            "postgres://{}:***@{}:{}/{}",
            options.get_username(),
            options.get_host(),
            options.get_port(),
            options.get_database().unwrap_or("postgres")
        );
        Target {
            options,
            redacted,
            password: None,
        }
    }

    /// The same target with the password child processes should use.
    pub fn with_password(mut self, password: Option<String>) -> Target {
        self.password = password;
        self
    }

    /// The password for child processes (never print it).
    pub(crate) fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }

    /// The URL with its password replaced by `***`.
    pub fn redacted(&self) -> &str {
        &self.redacted
    }

    /// Connection options for sqlx.
    pub fn options(&self) -> &PgConnectOptions {
        &self.options
    }

    /// The database name (what `--confirm` must repeat).
    pub fn database(&self) -> &str {
        self.options
            .get_database()
            .unwrap_or(self.options.get_username())
    }

    /// The same server, another database.
    pub fn with_database(&self, database: &str) -> Target {
        Target::from_options(self.options.clone().database(database))
            .with_password(self.password.clone())
    }

    /// True for a server on this machine: `localhost`, any loopback address
    /// (`127.0.0.0/8`, `::1`, with or without brackets) or a Unix socket.
    pub fn is_local(&self) -> bool {
        let host = self.options.get_host();
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        host.starts_with('/')
            || self.options.get_socket().is_some()
            || bare.eq_ignore_ascii_case("localhost")
            || bare
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }

    /// Opens one connection; failures name the target (without password).
    pub async fn connect(&self) -> Result<PgConnection> {
        let attempt = PgConnection::connect_with(&self.options);
        match tokio::time::timeout(CONNECT_TIMEOUT, attempt).await {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(e)) => Err(Error::Connect {
                target: self.redacted.clone(),
                reason: redact_url(&e.to_string()),
            }),
            Err(_) => Err(Error::Connect {
                target: self.redacted.clone(),
                reason: format!("no answer within {}s", CONNECT_TIMEOUT.as_secs()),
            }),
        }
    }
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted)
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted)
    }
}

/// The percent-decoded password of a URL: its userinfo's, else a
/// `password=` query parameter's (sqlx accepts both).
fn url_password(url: &str) -> Option<String> {
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

fn percent_decode(text: &str) -> String {
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

    #[test]
    fn parse_rejects_other_schemes_without_leaking_the_password() {
        let err = Target::parse("mysql://root:topsecret@h/db")
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a PostgreSQL URL"), "{err}");
        assert!(!err.contains("topsecret"), "{err}");
    }

    #[test]
    fn target_knows_local_hosts_and_database() {
        let t = Target::parse("postgres://u:p@127.0.0.1:5433/app").unwrap();
        assert!(t.is_local());
        assert_eq!(t.database(), "app");
        assert_eq!(t.redacted(), "postgres://u:***@127.0.0.1:5433/app");
        let remote = Target::parse("postgres://u:p@db.example.com/app").unwrap();
        assert!(!remote.is_local());
        for local in [
            "postgres://u:p@[::1]:5432/app",
            "postgres://u:p@LOCALHOST/app",
            "postgres://u:p@127.1.2.3/app",
        ] {
            assert!(Target::parse(local).unwrap().is_local(), "{local}");
        }
        assert!(
            !Target::parse("postgres://u:p@10.0.0.1/app")
                .unwrap()
                .is_local()
        );
    }

    #[test]
    fn parse_keeps_the_decoded_password_for_child_processes() {
        let t = Target::parse("postgres://app:s3cr%40t%3A1@db.example.com:5432/prod").unwrap();
        assert_eq!(t.password(), Some("s3cr@t:1"));
        assert_eq!(t.with_database("other").password(), Some("s3cr@t:1"));
        assert_eq!(
            Target::parse("postgres://app@host/db").unwrap().password(),
            None
        );
        assert_eq!(
            Target::parse("postgres://app@host/db?password=a%2Bb")
                .unwrap()
                .password(),
            Some("a+b")
        );
        assert_eq!(
            Target::parse("postgres://app:100%+1@host/db")
                .unwrap()
                .password(),
            Some("100%+1")
        );
        assert!(!format!("{t:?} {t}").contains("s3cr"));
    }
}
