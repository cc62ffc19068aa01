//! TLS for every connection, configured the way libpq reads it: `sslmode`,
//! `sslrootcert`, `sslcert` and `sslkey` from the URL's query, else from
//! `PGSSLMODE`, `PGSSLROOTCERT`, `PGSSLCERT` and `PGSSLKEY`, else libpq's
//! defaults (`sslmode=prefer`; `~/.postgresql/root.crt`,
//! `~/.postgresql/postgresql.crt` and `postgresql.key` when they exist).
//!
//! [`TlsSettings`] turns them into sqlx options — one per connection attempt,
//! because `allow` and `prefer` may try twice, as libpq does — and into the
//! `PG*` variables and read-only mounts that give pg_dump, pg_restore and psql
//! in their containers the same settings. Where libpq is lenient about a
//! file that is named but missing, phantom-sync refuses: a typo in
//! `sslrootcert` must not quietly turn off verification.

use std::fmt;
use std::path::{Path, PathBuf};

use rustls::{AlertDescription, CertificateError};
use sqlx::postgres::{PgConnectOptions, PgSslMode};

use crate::target::{percent_decode, redact_url};
use crate::{Error, Result};

/// Where the tools containers find the certificate files (mounted read-only).
pub const CONTAINER_DIR: &str = "/run/phantom-sync/tls";

/// Where a CA bundle of the public roots usually lives, for `sslrootcert=system`
/// in a tools container.
const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// `PG*` variables (name, value) and `docker run -v` mounts for a tools container.
pub(crate) type ContainerSettings = (Vec<(&'static str, String)>, Vec<String>);

/// libpq's `sslmode`: how much TLS a connection insists on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SslMode {
    /// Never TLS.
    Disable,
    /// Plain first; TLS if the server rejects a plain connection.
    Allow,
    /// TLS first; plain if TLS cannot be set up (libpq's default).
    #[default]
    Prefer,
    /// TLS or nothing; the certificate is checked only if a root CA file exists.
    Require,
    /// TLS, the certificate signed by a trusted CA.
    VerifyCa,
    /// TLS, the certificate signed by a trusted CA and naming the host.
    VerifyFull,
}

impl SslMode {
    /// Every mode, weakest first.
    pub const ALL: [SslMode; 6] = [
        SslMode::Disable,
        SslMode::Allow,
        SslMode::Prefer,
        SslMode::Require,
        SslMode::VerifyCa,
        SslMode::VerifyFull,
    ];

    /// The libpq spelling (`verify-full`).
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    /// Parses the libpq spelling.
    pub fn parse(text: &str) -> Option<SslMode> {
        SslMode::ALL.into_iter().find(|m| m.as_str() == text)
    }

    fn from_sqlx(mode: PgSslMode) -> SslMode {
        match mode {
            PgSslMode::Disable => SslMode::Disable,
            PgSslMode::Allow => SslMode::Allow,
            PgSslMode::Prefer => SslMode::Prefer,
            PgSslMode::Require => SslMode::Require,
            PgSslMode::VerifyCa => SslMode::VerifyCa,
            PgSslMode::VerifyFull => SslMode::VerifyFull,
        }
    }

    fn verifies(self) -> bool {
        matches!(self, SslMode::VerifyCa | SslMode::VerifyFull)
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The CAs a server certificate is checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootCert {
    /// The PEM certificates in this file (an absolute path).
    File(PathBuf),
    /// `sslrootcert=system`: the public CAs (the Mozilla list built into
    /// phantom-sync; the host's CA bundle for the tools containers).
    System,
}

/// A client certificate and its (unencrypted) key, both PEM files with absolute paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCert {
    /// `sslcert`.
    pub cert: PathBuf,
    /// `sslkey`.
    pub key: PathBuf,
}

/// The TLS settings of one target, resolved (files found and checked).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TlsSettings {
    mode: SslMode,
    root_cert: Option<RootCert>,
    client_cert: Option<ClientCert>,
    /// Made from ready sqlx options: their certificate settings are left alone.
    keep_sqlx_files: bool,
}

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

/// A setting and where it came from (`sslmode` in the URL, `PGSSLMODE`, a default file).
struct Setting {
    value: String,
    origin: String,
}

impl Setting {
    /// `sslrootcert=/x/ca.crt` or `PGSSLROOTCERT=/x/ca.crt`.
    fn named(&self) -> String {
        format!("{}={}", self.origin, self.value)
    }
}

impl TlsSettings {
    /// The settings of a `postgres://` URL, with this process's environment
    /// (`PGSSL*`, `HOME`) as the fallback. The message of an error names the
    /// setting and its source, never the URL.
    pub fn from_url(url: &str) -> std::result::Result<TlsSettings, String> {
        let home = std::env::var_os("HOME").map(PathBuf::from);
        TlsSettings::resolve(
            &query_pairs(url),
            |name| std::env::var(name).ok(),
            home.as_deref(),
        )
    }

    /// The settings sqlx options already carry (the harness's targets): the
    /// mode only; certificate files stay as the options have them.
    pub fn from_options(options: &PgConnectOptions) -> TlsSettings {
        TlsSettings {
            mode: SslMode::from_sqlx(options.get_ssl_mode()),
            keep_sqlx_files: true,
            ..TlsSettings::default()
        }
    }

    /// Resolves query parameters (URL wins), then `env`, then libpq's
    /// defaults under `home`.
    pub(crate) fn resolve(
        query: &[(String, String)],
        env: impl Fn(&str) -> Option<String>,
        home: Option<&Path>,
    ) -> std::result::Result<TlsSettings, String> {
        let lookup = |params: &[&str], var: Option<&str>| -> Option<Setting> {
            let from_query = query
                .iter()
                .rev()
                .find(|(k, v)| params.contains(&k.as_str()) && !v.is_empty())
                .map(|(k, v)| Setting {
                    value: v.clone(),
                    origin: k.clone(),
                });
            from_query.or_else(|| {
                let var = var?;
                env(var).filter(|v| !v.is_empty()).map(|value| Setting {
                    value,
                    origin: var.to_string(),
                })
            })
        };
        if let Some(p) = lookup(&["sslpassword"], None) {
            return Err(format!(
                "{}=***: encrypted client keys are not supported (hint: write a decrypted copy of the key \
                 with `openssl pkey -in client.key -out client-plain.key`, `chmod 600` it, and give it as sslkey)",
                p.origin
            ));
        }
        for (param, var) in [("sslcrl", "PGSSLCRL"), ("sslcrldir", "PGSSLCRLDIR")] {
            if let Some(s) = lookup(&[param], Some(var)) {
                return Err(format!(
                    "{}: certificate revocation lists are not supported (hint: remove it; phantom-sync cannot check revocations)",
                    s.named()
                ));
            }
        }
        let mode_setting = lookup(&["sslmode", "ssl-mode"], Some("PGSSLMODE"));
        let root_setting = lookup(
            &["sslrootcert", "ssl-root-cert", "ssl-ca"],
            Some("PGSSLROOTCERT"),
        );
        let system = root_setting.as_ref().is_some_and(|s| s.value == "system");
        let mode = match &mode_setting {
            Some(s) => SslMode::parse(&s.value).ok_or_else(|| {
                format!(
                    "{}: not an sslmode (hint: use one of disable, allow, prefer, require, verify-ca, verify-full)",
                    s.named()
                )
            })?,
            // libpq 16: sslrootcert=system makes verify-full the default.
            None if system => SslMode::VerifyFull,
            None => SslMode::Prefer,
        };
        if system && mode != SslMode::VerifyFull {
            return Err(format!(
                "sslmode={mode} may not be used with sslrootcert=system (hint: use sslmode=verify-full, as libpq requires)"
            ));
        }
        if mode == SslMode::Disable {
            return Ok(TlsSettings {
                mode,
                ..TlsSettings::default()
            });
        }
        let default_file = |name: &str| -> Option<Setting> {
            let path = home?.join(".postgresql").join(name);
            path.is_file().then(|| Setting {
                value: path.display().to_string(),
                origin: "default".into(),
            })
        };

        let root_cert = match &root_setting {
            Some(_) if system => Some(RootCert::System),
            Some(s) => Some(RootCert::File(pem_file(s, "CERTIFICATE", "sslrootcert")?)),
            None => match default_file("root.crt") {
                Some(s) => Some(RootCert::File(pem_file(&s, "CERTIFICATE", "sslrootcert")?)),
                None => None,
            },
        };
        if mode.verifies() && root_cert.is_none() {
            let default = home
                .map(|h| h.join(".postgresql/root.crt").display().to_string())
                .unwrap_or_else(|| "~/.postgresql/root.crt".into());
            return Err(format!(
                "sslmode={mode} needs the CA that signed the server's certificate, and no sslrootcert is given \
                 (nor PGSSLROOTCERT, nor {default}) (hint: add sslrootcert=/path/to/ca.crt — on Supabase the \
                 project's SSL certificate from the dashboard's database settings — or sslrootcert=system to \
                 trust the public CAs, or use sslmode=require to encrypt without verifying)"
            ));
        }

        let cert_setting = lookup(&["sslcert", "ssl-cert"], Some("PGSSLCERT"));
        let key_setting = lookup(&["sslkey", "ssl-key"], Some("PGSSLKEY"));
        let cert = match &cert_setting {
            Some(s) => Some(pem_file(s, "CERTIFICATE", "sslcert")?),
            None => match default_file("postgresql.crt") {
                Some(s) => Some(pem_file(&s, "CERTIFICATE", "sslcert")?),
                None => None,
            },
        };
        let client_cert = match (cert, &key_setting) {
            (Some(cert), Some(key)) => Some(ClientCert {
                cert,
                key: key_file(key)?,
            }),
            (Some(cert), None) => match default_file("postgresql.key") {
                Some(key) => Some(ClientCert {
                    cert,
                    key: key_file(&key)?,
                }),
                None => {
                    return Err(format!(
                        "sslcert={}: a client certificate needs its key (hint: add sslkey=/path/to/client.key)",
                        cert.display()
                    ));
                }
            },
            (None, Some(key)) => {
                return Err(format!(
                    "{}: a client key needs its certificate (hint: add sslcert=/path/to/client.crt, or drop sslkey)",
                    key.named()
                ));
            }
            (None, None) => None,
        };
        Ok(TlsSettings {
            mode,
            root_cert,
            client_cert,
            keep_sqlx_files: false,
        })
    }

    /// The `sslmode`.
    pub fn mode(&self) -> SslMode {
        self.mode
    }

    /// The CAs the server's certificate is checked against, if any.
    pub fn root_cert(&self) -> Option<&RootCert> {
        self.root_cert.as_ref()
    }

    /// The client certificate, if any.
    pub fn client_cert(&self) -> Option<&ClientCert> {
        self.client_cert.as_ref()
    }

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

    /// The `PG*` variables (name, value) and `docker run -v` mounts that give a
    /// tools container these settings: the files are mounted read-only under
    /// [`CONTAINER_DIR`] and the variables point there.
    pub(crate) fn container_settings(&self) -> Result<ContainerSettings> {
        let mut env = vec![("PGSSLMODE", self.mode.as_str().to_string())];
        let mut mounts = Vec::new();
        if self.keep_sqlx_files {
            return Ok((env, mounts));
        }
        let mut mount = |var: &'static str, host: &Path, name: &str| -> Result<()> {
            let text = host.display().to_string();
            if text.contains(':') {
                return Err(Error::Invalid(format!(
                    "{text}: a path with ':' cannot be mounted into the tools container (hint: copy the file to a path without ':')"
                )));
            }
            let inside = format!("{CONTAINER_DIR}/{name}");
            mounts.push(format!("{text}:{inside}:ro"));
            env.push((var, inside));
            Ok(())
        };
        match &self.root_cert {
            Some(RootCert::File(path)) => mount("PGSSLROOTCERT", path, "root.crt")?,
            Some(RootCert::System) => {
                let bundle = system_bundle().ok_or_else(|| {
                    Error::Invalid(format!(
                        "sslrootcert=system: no CA bundle on this machine to give pg_dump/psql in their container \
                         (looked at $SSL_CERT_FILE and {}) (hint: give the CA file itself, sslrootcert=/path/to/ca.crt)",
                        SYSTEM_BUNDLES.join(", ")
                    ))
                })?;
                mount("PGSSLROOTCERT", &bundle, "root.crt")?;
            }
            None => {}
        }
        if let Some(client) = &self.client_cert {
            mount("PGSSLCERT", &client.cert, "client.crt")?;
            mount("PGSSLKEY", &client.key, "client.key")?;
        }
        Ok((env, mounts))
    }

    /// Why a connection failed and what to do: the error (passwords
    /// redacted) and a hint when the cause is known.
    pub(crate) fn explain(&self, host: &str, error: &sqlx::Error) -> (String, Option<String>) {
        (redact_url(&error.to_string()), self.hint(host, error))
    }

    fn hint(&self, host: &str, error: &sqlx::Error) -> Option<String> {
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

/// A PEM file holding `kind` ("CERTIFICATE"): it must exist and look right.
fn pem_file(setting: &Setting, kind: &str, param: &str) -> std::result::Result<PathBuf, String> {
    let named = if setting.origin == "default" {
        format!("{param}={} (libpq's default file)", setting.value)
    } else {
        setting.named()
    };
    let path = std::path::absolute(&setting.value).map_err(|e| format!("{named}: {e}"))?;
    let text = std::fs::read(&path).map_err(|e| {
        format!("{named}: cannot read it: {e} (hint: give the path of a PEM file that exists)")
    })?;
    if !String::from_utf8_lossy(&text).contains(&format!("-----BEGIN {kind}-----")) {
        return Err(format!(
            "{named}: not a PEM file with a {kind} (hint: convert a DER file with \
             `openssl x509 -inform der -in cert.der -out cert.pem`)"
        ));
    }
    Ok(path)
}

/// A client key: it must exist, be PEM, unencrypted, and private as libpq demands.
fn key_file(setting: &Setting) -> std::result::Result<PathBuf, String> {
    let named = if setting.origin == "default" {
        format!("sslkey={} (libpq's default file)", setting.value)
    } else {
        setting.named()
    };
    let path = std::path::absolute(&setting.value).map_err(|e| format!("{named}: {e}"))?;
    let bytes = std::fs::read(&path).map_err(|e| {
        format!("{named}: cannot read it: {e} (hint: give the path of a PEM key that exists)")
    })?;
    let text = String::from_utf8_lossy(&bytes);
    if text.contains("ENCRYPTED") {
        return Err(format!(
            "{named}: the key is encrypted, and phantom-sync cannot decrypt it (sslpassword is not supported) \
             (hint: write a decrypted copy with `openssl pkey -in {} -out client-plain.key`, `chmod 600` it, \
             and give that as sslkey)",
            path.display()
        ));
    }
    if !text.contains("PRIVATE KEY-----") {
        return Err(format!(
            "{named}: not a PEM private key (hint: give the key that belongs to sslcert)"
        ));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(&path).map_err(|e| format!("{named}: {e}"))?;
        // libpq's rule: root-owned keys may be 0640, others at most 0600.
        let loose = if meta.uid() == 0 {
            meta.mode() & 0o037 != 0
        } else {
            meta.mode() & 0o077 != 0
        };
        if loose {
            return Err(format!(
                "{named}: the key file has group or world access, which libpq refuses (hint: chmod 600 {})",
                path.display()
            ));
        }
    }
    Ok(path)
}

/// The host's bundle of public CAs, for `sslrootcert=system` in a tools container.
fn system_bundle() -> Option<PathBuf> {
    std::env::var_os("SSL_CERT_FILE")
        .map(PathBuf::from)
        .into_iter()
        .chain(SYSTEM_BUNDLES.iter().map(PathBuf::from))
        .find(|p| p.is_file())
}

/// The decoded `key=value` pairs of a URL's query.
fn query_pairs(url: &str) -> Vec<(String, String)> {
    let Some((_, query)) = url.split_once('?') else {
        return Vec::new();
    };
    let query = query.split('#').next().unwrap_or_default();
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(key), percent_decode(value))
        })
        .collect()
}

/// Certificate files for unit tests (PEM-shaped, not real certificates).
#[cfg(test)]
pub(crate) mod test_files {
    use std::path::PathBuf;

    use super::TlsSettings;

    /// A scratch directory with `ca.crt`, `client.crt` and `client.key` (0600), removed on drop.
    pub(crate) struct Files {
        pub dir: PathBuf,
        pub ca: PathBuf,
        pub cert: PathBuf,
        pub key: PathBuf,
    }

    pub(crate) const CERT: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    pub(crate) const KEY: &str = "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n";

    impl Files {
        pub(crate) fn new(name: &str) -> Files {
            let dir = std::env::temp_dir()
                .join(format!("phantom-sync-tls-{}-{name}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let files = Files {
                ca: dir.join("ca.crt"),
                cert: dir.join("client.crt"),
                key: dir.join("client.key"),
                dir,
            };
            std::fs::write(&files.ca, CERT).unwrap();
            std::fs::write(&files.cert, CERT).unwrap();
            files.write_key(KEY, 0o600);
            files
        }

        pub(crate) fn write_key(&self, text: &str, mode: u32) {
            std::fs::write(&self.key, text).unwrap();
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&self.key, std::fs::Permissions::from_mode(mode)).unwrap();
            }
            #[cfg(not(unix))]
            let _ = mode;
        }

        /// Settings with this `sslmode`, this CA and, if `client`, this client certificate.
        pub(crate) fn settings(&self, mode: &str, client: bool) -> TlsSettings {
            let mut query = vec![
                ("sslmode".to_string(), mode.to_string()),
                ("sslrootcert".to_string(), self.ca.display().to_string()),
            ];
            if client {
                query.push(("sslcert".into(), self.cert.display().to_string()));
                query.push(("sslkey".into(), self.key.display().to_string()));
            }
            TlsSettings::resolve(&query, |_| None, None).unwrap()
        }
    }

    impl Drop for Files {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_files::{CERT, Files, KEY};
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    fn resolve(pairs: &[(&str, &str)], vars: &[(&str, &str)]) -> Result<TlsSettings, String> {
        TlsSettings::resolve(&query(pairs), env(vars), None)
    }

    #[test]
    fn libpq_defaults_to_prefer_without_files() {
        let tls = resolve(&[], &[]).unwrap();
        assert_eq!(tls.mode(), SslMode::Prefer);
        assert_eq!(tls.root_cert(), None);
        assert_eq!(tls.client_cert(), None);
        assert_eq!(tls.attempts(false), [Attempt::Negotiate, Attempt::Plain]);
        assert_eq!(
            tls.attempts(true),
            [Attempt::Plain],
            "sockets ignore sslmode"
        );
        assert_eq!(tls, TlsSettings::default());
    }

    #[test]
    fn every_mode_parses_and_maps_to_libpq_attempts() {
        for mode in SslMode::ALL {
            assert_eq!(SslMode::parse(mode.as_str()), Some(mode));
        }
        let files = Files::new("modes");
        let ca = files.ca.display().to_string();
        let attempts = |mode: &str, root: bool| {
            let mut pairs = vec![("sslmode", mode)];
            if root {
                pairs.push(("sslrootcert", &ca));
            }
            resolve(&pairs, &[]).unwrap().attempts(false)
        };
        use Attempt::*;
        assert_eq!(attempts("disable", false), [Plain]);
        assert_eq!(attempts("allow", false), [Plain, Tls(Verify::Nothing)]);
        assert_eq!(attempts("prefer", false), [Negotiate, Plain]);
        assert_eq!(attempts("require", false), [Tls(Verify::Nothing)]);
        // A root CA makes libpq check the chain in every mode that uses TLS.
        assert_eq!(attempts("allow", true), [Plain, Tls(Verify::Ca)]);
        assert_eq!(attempts("prefer", true), [Tls(Verify::Ca), Plain]);
        assert_eq!(attempts("require", true), [Tls(Verify::Ca)]);
        assert_eq!(attempts("verify-ca", true), [Tls(Verify::Ca)]);
        assert_eq!(attempts("verify-full", true), [Tls(Verify::CaAndHost)]);
    }

    #[test]
    fn the_url_wins_over_the_environment() {
        let files = Files::new("env");
        let ca = files.ca.display().to_string();
        let other = files.dir.join("other.crt");
        std::fs::write(&other, CERT).unwrap();
        let other = other.display().to_string();

        let tls = resolve(&[], &[("PGSSLMODE", "require")]).unwrap();
        assert_eq!(tls.mode(), SslMode::Require);
        let tls = resolve(&[("sslmode", "disable")], &[("PGSSLMODE", "verify-full")]).unwrap();
        assert_eq!(tls.mode(), SslMode::Disable);

        let tls = resolve(&[], &[("PGSSLMODE", "verify-ca"), ("PGSSLROOTCERT", &ca)]).unwrap();
        assert_eq!(tls.mode(), SslMode::VerifyCa);
        assert_eq!(tls.root_cert(), Some(&RootCert::File(files.ca.clone())));
        let tls = resolve(&[("sslrootcert", &other)], &[("PGSSLROOTCERT", &ca)]).unwrap();
        assert_eq!(tls.root_cert(), Some(&RootCert::File(other.clone().into())));
        // An empty value means "not given", as in libpq.
        let tls = resolve(&[("sslrootcert", "")], &[("PGSSLROOTCERT", &ca)]).unwrap();
        assert_eq!(tls.root_cert(), Some(&RootCert::File(files.ca.clone())));

        let (cert, key) = (
            files.cert.display().to_string(),
            files.key.display().to_string(),
        );
        let tls = resolve(&[("sslcert", &cert)], &[("PGSSLKEY", &key)]).unwrap();
        assert_eq!(
            tls.client_cert(),
            Some(&ClientCert {
                cert: files.cert.clone(),
                key: files.key.clone()
            })
        );
        // sqlx's spellings are accepted too; the last occurrence wins.
        let tls = resolve(
            &[
                ("ssl-mode", "require"),
                ("sslmode", "verify-ca"),
                ("ssl-ca", &ca),
            ],
            &[],
        )
        .unwrap();
        assert_eq!(tls.mode(), SslMode::VerifyCa);
    }

    #[test]
    fn libpqs_default_files_under_home_are_used_when_present() {
        let files = Files::new("home");
        let home = files.dir.join("home");
        let dot = home.join(".postgresql");
        std::fs::create_dir_all(&dot).unwrap();
        let no_root =
            TlsSettings::resolve(&query(&[("sslmode", "verify-full")]), |_| None, Some(&home))
                .unwrap_err();
        assert!(
            no_root.contains(&dot.join("root.crt").display().to_string()),
            "{no_root}"
        );

        std::fs::write(dot.join("root.crt"), CERT).unwrap();
        std::fs::write(dot.join("postgresql.crt"), CERT).unwrap();
        let tls = TlsSettings::resolve(&[], |_| None, Some(&home));
        let err = tls.unwrap_err();
        assert!(err.contains("needs its key"), "{err}");

        std::fs::copy(&files.key, dot.join("postgresql.key")).unwrap();
        let tls = TlsSettings::resolve(&[], |_| None, Some(&home)).unwrap();
        assert_eq!(tls.mode(), SslMode::Prefer);
        assert_eq!(tls.root_cert(), Some(&RootCert::File(dot.join("root.crt"))));
        assert_eq!(
            tls.client_cert().map(|c| c.key.clone()),
            Some(dot.join("postgresql.key"))
        );
        assert_eq!(
            tls.attempts(false),
            [Attempt::Tls(Verify::Ca), Attempt::Plain]
        );
    }

    #[test]
    fn bad_settings_are_named_with_their_source_and_a_hint() {
        let files = Files::new("bad");
        let ca = files.ca.display().to_string();
        let err = resolve(&[("sslmode", "bogus")], &[]).unwrap_err();
        assert!(err.starts_with("sslmode=bogus: not an sslmode"), "{err}");
        let err = resolve(&[], &[("PGSSLMODE", "Verify")]).unwrap_err();
        assert!(err.starts_with("PGSSLMODE=Verify"), "{err}");

        let err = resolve(&[("sslmode", "verify-full")], &[]).unwrap_err();
        assert!(
            err.contains("sslrootcert=/path/to/ca.crt") && err.contains("sslmode=require"),
            "{err}"
        );

        let err = resolve(
            &[
                ("sslmode", "require"),
                ("sslrootcert", "/nonexistent/ca.crt"),
            ],
            &[],
        )
        .unwrap_err();
        assert!(
            err.starts_with("sslrootcert=/nonexistent/ca.crt: cannot read it"),
            "{err}"
        );
        let err = resolve(&[], &[("PGSSLROOTCERT", "/nonexistent/ca.crt")]).unwrap_err();
        assert!(
            err.starts_with("PGSSLROOTCERT=/nonexistent/ca.crt"),
            "{err}"
        );

        std::fs::write(files.dir.join("der.crt"), [0x30, 0x82, 0x01]).unwrap();
        let der = files.dir.join("der.crt").display().to_string();
        let err = resolve(&[("sslrootcert", &der)], &[]).unwrap_err();
        assert!(
            err.contains("not a PEM file") && err.contains("openssl x509"),
            "{err}"
        );

        let key = files.key.display().to_string();
        let err = resolve(&[("sslkey", &key)], &[]).unwrap_err();
        assert!(err.contains("needs its certificate"), "{err}");
        let cert = files.cert.display().to_string();
        let err = resolve(&[("sslcert", &cert)], &[]).unwrap_err();
        assert!(
            err.contains("needs its key") && err.contains("sslkey="),
            "{err}"
        );

        #[cfg(unix)]
        {
            files.write_key(KEY, 0o644);
            let err = resolve(&[("sslcert", &cert), ("sslkey", &key)], &[]).unwrap_err();
            assert!(
                err.contains("group or world access") && err.contains("chmod 600"),
                "{err}"
            );
        }
        files.write_key(
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIE\n-----END ENCRYPTED PRIVATE KEY-----\n",
            0o600,
        );
        let err = resolve(&[("sslcert", &cert), ("sslkey", &key)], &[]).unwrap_err();
        assert!(
            err.contains("encrypted") && err.contains("openssl pkey"),
            "{err}"
        );

        let err = resolve(&[("sslrootcert", &ca), ("sslpassword", "k3y-secret")], &[]).unwrap_err();
        assert!(
            err.starts_with("sslpassword=***: encrypted client keys are not supported"),
            "{err}"
        );
        assert!(!err.contains("k3y-secret"), "{err}");

        let err = resolve(&[], &[("PGSSLCRL", "/etc/crl.pem")]).unwrap_err();
        assert!(err.contains("revocation lists are not supported"), "{err}");

        // disable reads no file at all.
        let tls = resolve(
            &[("sslmode", "disable"), ("sslrootcert", "/nonexistent")],
            &[],
        )
        .unwrap();
        assert_eq!(tls.root_cert(), None);
    }

    #[test]
    fn sslrootcert_system_means_the_public_cas_and_verify_full() {
        let tls = resolve(&[("sslrootcert", "system")], &[]).unwrap();
        assert_eq!(tls.mode(), SslMode::VerifyFull);
        assert_eq!(tls.root_cert(), Some(&RootCert::System));
        let err = resolve(&[("sslrootcert", "system"), ("sslmode", "require")], &[]).unwrap_err();
        assert!(err.contains("use sslmode=verify-full"), "{err}");
    }

    #[test]
    fn sqlx_options_carry_each_attempts_mode_and_the_files() {
        let files = Files::new("options");
        let tls = files.settings("prefer", true);
        let base = PgConnectOptions::new_without_pgpass().host("db.example.com");
        for (attempt, expected) in [
            (Attempt::Plain, "Disable"),
            (Attempt::Negotiate, "Prefer"),
            (Attempt::Tls(Verify::Nothing), "Require"),
            (Attempt::Tls(Verify::Ca), "VerifyCa"),
            (Attempt::Tls(Verify::CaAndHost), "VerifyFull"),
        ] {
            let options = tls.options(&base, attempt);
            assert_eq!(format!("{:?}", options.get_ssl_mode()), expected);
            assert_eq!(options.get_host(), "db.example.com");
        }
        let rendered = format!("{:?}", tls.options(&base, Attempt::Tls(Verify::Ca)));
        assert!(
            rendered.contains(&files.ca.display().to_string()),
            "{rendered}"
        );
        assert!(
            rendered.contains(&files.key.display().to_string()),
            "{rendered}"
        );
    }

    #[test]
    fn container_settings_mount_files_read_only() {
        let files = Files::new("container");
        let (env, mounts) = files
            .settings("verify-ca", false)
            .container_settings()
            .unwrap();
        assert_eq!(
            env,
            [
                ("PGSSLMODE", "verify-ca".to_string()),
                ("PGSSLROOTCERT", format!("{CONTAINER_DIR}/root.crt")),
            ]
        );
        assert_eq!(
            mounts,
            [format!(
                "{}:{CONTAINER_DIR}/root.crt:ro",
                files.ca.display()
            )]
        );

        let (env, mounts) = TlsSettings::default().container_settings().unwrap();
        assert_eq!(env, [("PGSSLMODE", "prefer".to_string())]);
        assert!(mounts.is_empty());

        let colon = files.dir.join("a:b.crt");
        std::fs::write(&colon, CERT).unwrap();
        let colon = colon.display().to_string();
        let err = resolve(&[("sslmode", "verify-ca"), ("sslrootcert", &colon)], &[])
            .unwrap()
            .container_settings()
            .unwrap_err()
            .to_string();
        assert!(err.contains("cannot be mounted"), "{err}");
    }

    #[test]
    fn tls_failures_get_hints_and_decide_the_fallback() {
        let files = Files::new("hints");
        let tls = files.settings("verify-full", false);
        let unknown = sqlx::Error::Io(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer),
        ));
        let (reason, hint) = tls.explain("db.example.com", &unknown);
        assert!(reason.contains("UnknownIssuer"), "{reason}");
        let hint = hint.unwrap();
        assert!(
            hint.contains(&format!(
                "not signed by the CA in sslrootcert={}",
                files.ca.display()
            )) && hint.contains("sslmode=require"),
            "{hint}"
        );
        let wrong_host = sqlx::Error::Tls(Box::new(rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName,
        )));
        let hint = tls.hint("db.example.com", &wrong_host).unwrap();
        assert!(
            hint.contains("not issued for the host db.example.com") && hint.contains("verify-ca"),
            "{hint}"
        );
        let plain_only = sqlx::Error::Tls("server does not support TLS".into());
        let hint = tls.hint("h", &plain_only).unwrap();
        assert!(
            hint.contains("ssl = off") && hint.contains("sslmode=verify-full"),
            "{hint}"
        );
        assert_eq!(tls.hint("h", &sqlx::Error::PoolTimedOut), None);

        for error in [&unknown, &wrong_host, &plain_only] {
            assert!(tls.falls_back(Attempt::Tls(Verify::Ca), error));
            assert!(!tls.falls_back(Attempt::Plain, error));
        }
        let refused = sqlx::Error::Io(std::io::ErrorKind::ConnectionRefused.into());
        assert!(!tls.falls_back(Attempt::Negotiate, &refused));
        assert!(!tls.falls_back(Attempt::Plain, &refused));
    }

    #[test]
    fn query_pairs_are_percent_decoded() {
        assert_eq!(
            query_pairs(
                "postgres://u:p@h/db?sslmode=verify-full&sslrootcert=%2Ftmp%2Fca%20x.crt#frag"
            ),
            query(&[("sslmode", "verify-full"), ("sslrootcert", "/tmp/ca x.crt")])
        );
        assert!(query_pairs("postgres://h/db").is_empty());
    }
}
