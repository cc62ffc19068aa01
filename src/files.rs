//! Files the tool writes and the clock it stamps them with: atomic writes
//! (a reader never sees half a file, a crash never leaves one), private
//! temporary folders that disappear when dropped — on success, error, panic
//! or a cancelled task alike — and milliseconds since the Unix epoch.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::{Error, Result};

/// Milliseconds since the Unix epoch (journal timestamps).
pub fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

/// Writes `text` to `path` through a temporary file in the same folder and a
/// rename, creating the folder if needed.
pub fn write_atomic(path: &Path, text: &str) -> Result<()> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(Error::io("create", &parent))?;
    let mut partial = tempfile::Builder::new()
        .prefix(".phantom-sync-")
        .suffix(".partial")
        .tempfile_in(&parent)
        .map_err(Error::io("create a temporary file in", &parent))?;
    std::io::Write::write_all(&mut partial, text.as_bytes())
        .map_err(Error::io("write", partial.path().to_path_buf()))?;
    partial
        .persist(path)
        .map(|_| ())
        .map_err(|e| Error::io("rename into place", path)(e.error))
}

/// A private temporary folder (`phantom-sync-<label>-…` in the system's
/// temporary directory), removed with everything in it when dropped.
pub fn temp_dir(label: &str) -> Result<tempfile::TempDir> {
    let base = std::env::temp_dir();
    tempfile::Builder::new()
        .prefix(&format!("phantom-sync-{label}-"))
        .tempdir_in(&base)
        .map_err(Error::io("create a temporary folder in", base))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_writes_replace_whole_files_and_leave_no_partial() {
        let dir = temp_dir("test").unwrap();
        let path = dir.path().join("deep/er/file.json");
        write_atomic(&path, "one").unwrap();
        write_atomic(&path, "two").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "two");
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("file.json")]);
    }

    #[test]
    fn temp_dirs_vanish_when_dropped() {
        let dir = temp_dir("vanish").unwrap();
        let path = dir.path().to_path_buf();
        std::fs::write(path.join("x"), "y").unwrap();
        assert!(
            path.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("phantom-sync-vanish-")
        );
        drop(dir);
        assert!(!path.exists());
    }
}
