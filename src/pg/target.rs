//! The database a command works on, named by a connection URL. A [`Target`]
//! keeps the password out of everything it prints: its display form, errors
//! and journals all use [`redact_url`]. Its TLS settings (`sslmode` and the
//! certificate files, as libpq reads them) are resolved by [`crate::pg::tls`].

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};

use crate::pg::tls::TlsSettings;
pub use crate::pg::url::redact_url;
use crate::pg::url::{describe, normalise, readable, redact_whole_url, url_password};
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
    tls: TlsSettings,
}

impl Target {
    /// Parses a `postgres://` or `postgresql://` URL, with its TLS settings
    /// (the URL's `sslmode`, `sslrootcert`, `sslcert`, `sslkey`, else the
    /// `PGSSL*` variables, else libpq's defaults).
    pub fn parse(url: &str) -> Result<Target> {
        // Errors name the host and database only: the URL may not even be
        // split where its password ends.
        let named = match describe(url) {
            d if d.is_empty() => "--db-url".to_string(),
            d => format!("--db-url ({d})"),
        };
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(Error::Invalid(format!(
                "{named}: not a PostgreSQL URL (hint: use postgres://user:password@host:5432/database)"
            )));
        }
        if !readable(url) {
            return Err(Error::Invalid(format!(
                "{named}: no host follows the `@` that would end the password (hint: use postgres://user:password@host:5432/database)"
            )));
        }
        let password = url_password(url);
        let scrub = |text: String| {
            let text = redact_url(&text);
            match &password {
                Some(p) if p.len() >= 4 => text.replace(p.as_str(), "***"),
                _ => text,
            }
        };
        let normal = normalise(url);
        let tls = TlsSettings::from_url(&normal)
            .map_err(|message| Error::Invalid(format!("{named}: {}", scrub(message))))?;
        let options = PgConnectOptions::from_str(&normal).map_err(|e| {
            Error::Invalid(format!(
                "{named}: {} (hint: use postgres://user:password@host:5432/database; special characters in the password may be written as they are or %-encoded)",
                scrub(e.to_string())
            ))
        })?;
        Ok(Target {
            options,
            redacted: redact_whole_url(&normal),
            password,
            tls,
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
            tls: TlsSettings::from_options(&options),
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

    /// Connection options for sqlx (TLS aside: [`Target::connect`] applies
    /// [`Target::tls`] to them).
    pub fn options(&self) -> &PgConnectOptions {
        &self.options
    }

    /// The TLS settings.
    pub fn tls(&self) -> &TlsSettings {
        &self.tls
    }

    /// The same target with other TLS settings.
    pub fn with_tls(mut self, tls: TlsSettings) -> Target {
        self.tls = tls;
        self
    }

    /// The same target, its connections named `name` in `pg_stat_activity`.
    pub fn with_application_name(&self, name: &str) -> Target {
        Target {
            options: self.options.clone().application_name(name),
            ..self.clone()
        }
    }

    /// The database name (what `--confirm` must repeat).
    pub fn database(&self) -> &str {
        self.options
            .get_database()
            .unwrap_or(self.options.get_username())
    }

    /// The same server, another database.
    pub fn with_database(&self, database: &str) -> Target {
        Target {
            tls: self.tls.clone(),
            ..Target::from_options(self.options.clone().database(database))
                .with_password(self.password.clone())
        }
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

    /// Opens one connection, with TLS as `sslmode` says (`allow` and
    /// `prefer` try twice, like libpq); failures name the target (without
    /// password) and say what to do.
    pub async fn connect(&self) -> Result<PgConnection> {
        let unix_socket =
            self.options.get_socket().is_some() || self.options.get_host().starts_with('/');
        let attempts = self.tls.attempts(unix_socket);
        // (how it was tried, what went wrong, what to do)
        let mut failed: Vec<(&str, String, Option<String>)> = Vec::new();
        for (i, &attempt) in attempts.iter().enumerate() {
            let options = self.tls.options(&self.options, attempt);
            let connecting = PgConnection::connect_with(&options);
            let error = match tokio::time::timeout(CONNECT_TIMEOUT, connecting).await {
                Ok(Ok(conn)) => return Ok(conn),
                Ok(Err(e)) => e,
                Err(_) => {
                    let reason = format!("no answer within {}s", CONNECT_TIMEOUT.as_secs());
                    failed.push((attempt.describe(), reason, None));
                    break;
                }
            };
            let (reason, hint) = self.tls.explain(self.options.get_host(), &error);
            failed.push((attempt.describe(), reason, hint));
            if i + 1 == attempts.len() || !self.tls.falls_back(attempt, &error) {
                break;
            }
        }
        let reason = match failed.as_slice() {
            [(_, reason, _)] => reason.clone(),
            _ => failed
                .iter()
                .map(|(how, reason, _)| format!("{how}: {reason}"))
                .collect::<Vec<_>>()
                .join("; then "),
        };
        let hint = failed.iter().rev().find_map(|(_, _, hint)| hint.clone());
        Err(Error::Connect {
            target: self.redacted.clone(),
            reason,
            hint: hint.unwrap_or_else(|| Error::CONNECT_HINT.to_string()),
        })
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

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::postgres::PgSslMode;

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
    fn parse_reads_the_ssl_parameters() {
        use crate::pg::tls::SslMode;
        let t = Target::parse("postgres://u:p@db.example.com/app?sslmode=require").unwrap();
        assert_eq!(t.tls().mode(), SslMode::Require);
        assert_eq!(t.with_database("other").tls(), t.tls());
        let t = Target::parse("postgres://u:p@db.example.com/app?sslmode=disable").unwrap();
        assert_eq!(t.tls().mode(), SslMode::Disable);
        let harness = Target::from_options(t.options().clone().ssl_mode(PgSslMode::VerifyCa));
        assert_eq!(harness.tls().mode(), SslMode::VerifyCa);
    }

    #[test]
    fn ssl_errors_never_carry_the_password() {
        for url in [
            "postgres://app:topsecret@db.example.com/prod?sslmode=bogus",
            "postgres://app:topsecret@db.example.com/prod?sslmode=verify-full",
            "postgres://app:topsecret@db.example.com/prod?sslmode=verify-full&sslrootcert=/nonexistent/ca.crt",
            "postgres://app:topsecret@db.example.com/prod?sslrootcert=system&sslmode=require",
            "postgres://app@db.example.com/prod?password=topsecret&sslmode=bogus",
            "postgres://app@db.example.com/prod?sslpassword=topsecret&sslmode=require",
            "postgres://app:topsecret@db.example.com/prod?sslmode=require&sslkey=/nonexistent/k",
        ] {
            let err = Target::parse(url).unwrap_err();
            let text = err.to_string();
            assert!(matches!(err, Error::Invalid(_)), "{url}: {text}");
            assert!(!text.contains("topsecret"), "{text}");
            assert!(
                text.starts_with("--db-url (host db.example.com, database prod): "),
                "{text}"
            );
            assert!(text.contains("hint:"), "{text}");
        }
        let err = Target::parse("postgres://a:topsecret@h/db?sslmode=Bogus").unwrap_err();
        assert!(
            err.to_string().contains("sslmode=Bogus: not an sslmode"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn connect_failures_name_the_target_without_the_password() {
        // Nothing listens on port 1: a refused connection is not retried another way.
        for mode in ["disable", "allow", "prefer", "require"] {
            let url = format!("postgres://app:topsecret@127.0.0.1:1/prod?sslmode={mode}");
            let err = Target::parse(&url).unwrap().connect().await.unwrap_err();
            let text = err.to_string();
            assert!(matches!(err, Error::Connect { .. }), "{text}");
            assert!(!text.contains("topsecret"), "{text}");
            assert!(
                text.starts_with("cannot connect to postgres://app:***@127.0.0.1:1/prod"),
                "{text}"
            );
            assert!(text.contains(Error::CONNECT_HINT), "{text}");
            assert!(!text.contains("; then "), "{text}");
        }
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
