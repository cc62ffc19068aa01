//! Certificate files for the unit tests, made in a temporary folder.

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
        let dir =
            std::env::temp_dir().join(format!("phantom-sync-tls-{}-{name}", std::process::id()));
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
