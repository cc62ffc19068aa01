//! The password of a throw-away tools container, kept out of its
//! environment (where `docker inspect` shows it): a `.pgpass`-style file,
//! mode 0600, in a private temporary folder that is mounted read-only at
//! [`PASS_DIR`] and removed when the folder's handle is dropped.

use crate::{Error, Result};

/// Where a throw-away container finds the password file (read-only).
pub(crate) const PASS_DIR: &str = "/run/phantom-sync/pass";

/// A private folder holding `pgpass` (`*:*:*:*:password`, with `\` and `:`
/// escaped, mode 0600) and its read-only `docker run -v` mount.
pub(crate) fn password_file(password: &str) -> Result<(tempfile::TempDir, String)> {
    if password.contains(['\n', '\r']) {
        return Err(Error::Invalid(
            "the password holds a line break, which a password file cannot carry (hint: change the password)".into(),
        ));
    }
    let dir = crate::files::temp_dir("pgpass")?;
    let path = dir.path().join("pgpass");
    let escaped = password.replace('\\', "\\\\").replace(':', "\\:");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&path).map_err(Error::io("create", &path))?;
    std::io::Write::write_all(&mut file, format!("*:*:*:*:{escaped}\n").as_bytes())
        .map_err(Error::io("write", &path))?;
    let host = dir.path().display().to_string();
    if host.contains(':') {
        return Err(Error::Environment(format!(
            "the temporary folder {host} has a `:` in its path, which docker -v cannot mount (hint: set TMPDIR to another folder)"
        )));
    }
    Ok((dir, format!("{host}:{PASS_DIR}:ro")))
}
