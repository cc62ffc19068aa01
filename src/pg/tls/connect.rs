//! Connecting as libpq does: the attempts a `sslmode` makes, in order, the
//! sqlx options of each, and why a TLS failure happened, with what to do.

use rustls::{AlertDescription, CertificateError};
use sqlx::postgres::{PgConnectOptions, PgSslMode};

use super::*;
use crate::pg::url::redact_url;

/// One way of trying to connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Attempt {
    /// No TLS.
    Plain,
    /// TLS if the server offers it, plain if it does not; no verification.
    Negotiate,
    /// TLS or fail, checking this much of the certificate.
    Tls(Verify),
}

impl Attempt {
    /// How the attempt connects, for errors that report two attempts.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Attempt::Plain => "without TLS",
            Attempt::Negotiate | Attempt::Tls(_) => "with TLS",
        }
    }
}

/// How much of the server's certificate a TLS attempt checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verify {
    Nothing,
    Ca,
    CaAndHost,
}

impl TlsSettings {
    /// The attempts libpq would make, in order. Over a Unix socket libpq
    /// ignores `sslmode` (the server offers no TLS there).
    pub(crate) fn attempts(&self, unix_socket: bool) -> Vec<Attempt> {
        if unix_socket {
            return vec![Attempt::Plain];
        }
        // With a root CA at hand, libpq checks the chain in every mode that uses TLS.
        let checked = if self.root_cert.is_some() {
            Verify::Ca
        } else {
            Verify::Nothing
        };
        match self.mode {
            SslMode::Disable => vec![Attempt::Plain],
            SslMode::Allow => vec![Attempt::Plain, Attempt::Tls(checked)],
            SslMode::Prefer if checked == Verify::Nothing => {
                vec![Attempt::Negotiate, Attempt::Plain]
            }
            SslMode::Prefer => vec![Attempt::Tls(checked), Attempt::Plain],
            SslMode::Require => vec![Attempt::Tls(checked)],
            SslMode::VerifyCa => vec![Attempt::Tls(Verify::Ca)],
            SslMode::VerifyFull => vec![Attempt::Tls(Verify::CaAndHost)],
        }
    }

    /// Whether libpq would go on to the attempt after `attempt` once it failed with `error`:
    /// `allow` after the server rejected a plain connection, `prefer` after TLS could not be set up.
    pub(crate) fn falls_back(&self, attempt: Attempt, error: &sqlx::Error) -> bool {
        match attempt {
            Attempt::Plain => matches!(error, sqlx::Error::Database(_)),
            Attempt::Negotiate | Attempt::Tls(_) => is_tls_failure(error),
        }
    }

    /// sqlx options for one attempt on top of `base` (host, user, database …).
    pub(crate) fn options(&self, base: &PgConnectOptions, attempt: Attempt) -> PgConnectOptions {
        let mode = match attempt {
            Attempt::Plain => PgSslMode::Disable,
            Attempt::Negotiate => PgSslMode::Prefer,
            Attempt::Tls(Verify::Nothing) => PgSslMode::Require,
            Attempt::Tls(Verify::Ca) => PgSslMode::VerifyCa,
            Attempt::Tls(Verify::CaAndHost) => PgSslMode::VerifyFull,
        };
        let options = base.clone().ssl_mode(mode);
        if self.keep_sqlx_files {
            return options;
        }
        // Always set the root CAs, so nothing sqlx read from PGSSLROOTCERT on its
        // own applies; an empty list leaves only the built-in public CAs.
        let options = match &self.root_cert {
            Some(RootCert::File(path)) => options.ssl_root_cert(path),
            Some(RootCert::System) | None => options.ssl_root_cert_from_pem(Vec::new()),
        };
        match &self.client_cert {
            Some(client) => options
                .ssl_client_cert(&client.cert)
                .ssl_client_key(&client.key),
            None => options,
        }
    }

    /// Why a connection failed and what to do: the error (passwords
    /// redacted) and a hint when the cause is known.
    pub(crate) fn explain(&self, host: &str, error: &sqlx::Error) -> (String, Option<String>) {
        (redact_url(&error.to_string()), self.hint(host, error))
    }

    pub(super) fn hint(&self, host: &str, error: &sqlx::Error) -> Option<String> {
        let no_verify = "or use sslmode=require to encrypt without verifying";
        if let Some(tls) = rustls_error(error) {
            return Some(match tls {
                rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => {
                    match &self.root_cert {
                        Some(RootCert::File(path)) => format!(
                            "the server's certificate is not signed by the CA in sslrootcert={}; check sslrootcert, {no_verify}",
                            path.display()
                        ),
                        _ => format!(
                            "the server's certificate is not signed by a public CA; give the CA that signed it with \
                             sslrootcert=/path/to/ca.crt, {no_verify}"
                        ),
                    }
                }
                rustls::Error::InvalidCertificate(
                    CertificateError::NotValidForName
                    | CertificateError::NotValidForNameContext { .. },
                ) => format!(
                    "the server's certificate is not issued for the host {host}; connect with a host name the \
                     certificate names, or use sslmode=verify-ca to check only the CA"
                ),
                rustls::Error::InvalidCertificate(
                    CertificateError::Expired
                    | CertificateError::ExpiredContext { .. }
                    | CertificateError::NotValidYet
                    | CertificateError::NotValidYetContext { .. },
                ) => "the server's certificate has expired or is not valid yet; renew it on the server, or \
                      check this machine's clock"
                    .to_string(),
                rustls::Error::InvalidCertificate(other) => format!(
                    "the server's certificate was rejected ({other:?}); check sslrootcert, {no_verify}"
                ),
                rustls::Error::AlertReceived(alert) => match (&self.client_cert, alert) {
                    (Some(client), _) => format!(
                        "the server refused the TLS handshake ({alert:?}); check that the client certificate \
                         sslcert={} is signed by a CA the server trusts and matches sslkey",
                        client.cert.display()
                    ),
                    (None, AlertDescription::CertificateRequired) => {
                        "the server asks for a client certificate; give sslcert and sslkey".to_string()
                    }
                    (None, _) => format!(
                        "the server refused the TLS handshake ({alert:?}); check the server's TLS settings"
                    ),
                },
                other => format!("TLS could not be set up ({other}); check sslrootcert, sslcert and sslkey"),
            });
        }
        let text = error.to_string().to_lowercase();
        let has = |needle: &str| text.contains(needle);
        if has("server does not support tls") {
            Some(format!(
                "the server does not accept TLS (ssl = off) and sslmode={} insists on it; use sslmode=prefer to \
                 connect without TLS when the server offers none, or turn ssl on at the server",
                self.mode
            ))
        } else if has("no encryption") || has("ssl connection is required") || has("ssl off") {
            Some(
                "the server accepts only encrypted connections; use sslmode=require, or sslmode=verify-full \
                 with sslrootcert=/path/to/ca.crt"
                    .to_string(),
            )
        } else if has("client certificate") || has("certificate authentication failed") {
            Some("the server wants a valid client certificate; give sslcert and sslkey".to_string())
        } else if matches!(error, sqlx::Error::Tls(_)) {
            Some("TLS could not be set up; check sslrootcert, sslcert and sslkey".to_string())
        } else {
            None
        }
    }
}

/// True for a failure to set up TLS (as opposed to one after it was set up).
fn is_tls_failure(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Tls(_)) || rustls_error(error).is_some()
}

/// The rustls error under a sqlx error: in `Error::Tls`, or in the I/O error a
/// failed handshake surfaces as.
fn rustls_error(error: &sqlx::Error) -> Option<&rustls::Error> {
    match error {
        sqlx::Error::Tls(inner) => inner.downcast_ref::<rustls::Error>(),
        sqlx::Error::Io(io) => io.get_ref()?.downcast_ref::<rustls::Error>(),
        _ => None,
    }
}
