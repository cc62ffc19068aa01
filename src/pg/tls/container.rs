//! The same TLS settings for pg_dump, pg_restore and psql in their
//! containers: `PG*` variables and read-only mounts of the certificate files.

use super::*;

/// Where the tools containers find the certificate files (mounted read-only).
pub const CONTAINER_DIR: &str = "/run/phantom-sync/tls";

/// Where a CA bundle of the public roots usually lives, for `sslrootcert=system`
/// in a tools container.
pub(super) const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// `PG*` variables (name, value) and `docker run -v` mounts for a tools container.
pub(crate) type ContainerSettings = (Vec<(&'static str, String)>, Vec<String>);

impl TlsSettings {
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
}
