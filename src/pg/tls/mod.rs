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

use sqlx::postgres::{PgConnectOptions, PgSslMode};

use crate::pg::url::percent_decode;
use crate::{Error, Result};

mod connect;
mod container;

#[cfg(test)]
use connect::Attempt;
#[cfg(test)]
use connect::Verify;
pub use container::CONTAINER_DIR;
pub(crate) use container::ContainerSettings;
use container::SYSTEM_BUNDLES;

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
pub(crate) mod test_files;
#[cfg(test)]
mod tests;
