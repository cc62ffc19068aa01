//! Files the tool writes and the clock it stamps them with: atomic writes
//! (a reader never sees half a file, a crash never leaves one), private
//! temporary folders that disappear when dropped — on success, error, panic
//! or a cancelled task alike — a file's SHA-256, and milliseconds since the
//! Unix epoch.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use crate::{Error, Result};

/// Milliseconds since the Unix epoch (journal timestamps).
pub fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

/// A UTC time as `(compact, iso)`: `20261128T102511.042Z` (for folder
/// names, which sort by time) and `2026-11-28T10:25:11.042Z`.
pub fn utc_stamp(ms: u128) -> (String, String) {
    let secs = (ms / 1000) as i64;
    let millis = (ms % 1000) as u32;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (h, m, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        format!("{year:04}{month:02}{day:02}T{h:02}{m:02}{s:02}.{millis:03}Z"),
        format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{millis:03}Z"),
    )
}

/// Size and SHA-256 (lower-case hex) of a file, read in chunks.
pub fn sha256(path: &Path) -> Result<(u64, String)> {
    let mut file = std::fs::File::open(path).map_err(Error::io("open", path))?;
    let mut hasher = Sha256::new();
    let bytes = hash_rest(&mut file, &mut hasher, path)?;
    Ok((bytes, format!("{:x}", hasher.finalize())))
}

/// Feeds what is left of `file` (read from `path`) to `hasher`, 256 KiB at
/// a time; returns how many bytes that was.
pub(crate) fn hash_rest(file: &mut impl Read, hasher: &mut Sha256, path: &Path) -> Result<u64> {
    let mut buffer = vec![0u8; 256 * 1024];
    let mut bytes = 0u64;
    loop {
        let n = file.read(&mut buffer).map_err(Error::io("read", path))?;
        if n == 0 {
            return Ok(bytes);
        }
        hasher.update(&buffer[..n]);
        bytes += n as u64;
    }
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
    fn utc_stamps_are_calendar_dates() {
        assert_eq!(
            utc_stamp(0),
            (
                "19700101T000000.000Z".to_string(),
                "1970-01-01T00:00:00.000Z".to_string()
            )
        );
        // 2024-02-29 23:59:59.999 UTC (a leap day).
        assert_eq!(utc_stamp(1_709_251_199_999).1, "2024-02-29T23:59:59.999Z");
        assert_eq!(utc_stamp(1_764_325_511_042).0, "20251128T102511.042Z");
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
