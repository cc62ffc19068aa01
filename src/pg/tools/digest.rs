//! What a custom-format archive holds, as a digest that leaves out when it
//! was made. pg_dump writes its start time into the archive's header, so two
//! dumps of an unchanged database differ in those bytes alone; this digest
//! is equal for both, and differs for any other change of the bytes.

use std::path::Path;

use sha2::{Digest, Sha256};

use crate::{Error, Result};

/// SHA-256 (hex) of the archive at `path` without the seven integers of its
/// creation time. The file is read in pieces, whatever its size.
pub fn content_digest(path: &Path) -> Result<String> {
    use std::io::Read;
    let mut file = std::fs::File::open(path).map_err(Error::io("read", path))?;
    let mut head = Vec::with_capacity(HEAD);
    (&mut file)
        .take(HEAD as u64)
        .read_to_end(&mut head)
        .map_err(Error::io("read", path))?;
    let (start, end) = creation_time(&head).ok_or_else(|| Error::Tool {
        tool: "pg_dump".into(),
        detail: format!(
            "{}: not a custom-format archive header pg_dump 14 to 18 writes",
            path.display()
        ),
    })?;
    let mut hasher = Sha256::new();
    hasher.update(&head[..start]);
    hasher.update(&head[end..]);
    crate::files::hash_rest(&mut file, &mut hasher, path)?;
    Ok(format!("{:x}", hasher.finalize()))
}

/// More than the header up to the creation time's end can take (11 bytes,
/// a compression integer and seven integers of at most 9 bytes each).
const HEAD: usize = 128;

/// Where the header's creation time lies. The header is "PGDMP", the
/// format's version (three bytes), the sizes of an integer and of an offset,
/// the format, the compression — one byte from version 1.15 (pg_dump 16),
/// an integer before — and then the time as seven integers (seconds,
/// minutes, hours, day, month, year, daylight saving), each a sign byte and
/// `int size` bytes.
fn creation_time(bytes: &[u8]) -> Option<(usize, usize)> {
    if !bytes.starts_with(b"PGDMP") || bytes.len() < 11 {
        return None;
    }
    let (major, minor) = (bytes[5], bytes[6]);
    let int_size = usize::from(bytes[8]);
    if major != 1 || !(1..=8).contains(&int_size) {
        return None;
    }
    let integer = 1 + int_size;
    let compression = if minor >= 15 { 1 } else { integer };
    let start = 11 + compression;
    let end = start + 7 * integer;
    (end <= bytes.len()).then_some((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A header of format version 1.`minor` with 4-byte integers, the given
    /// creation time, then `rest`.
    fn archive(minor: u8, time: [u8; 7], rest: &[u8]) -> Vec<u8> {
        let mut bytes = b"PGDMP".to_vec();
        bytes.extend([1, minor, 0, 4, 8, 1]);
        if minor >= 15 {
            bytes.push(3);
        } else {
            bytes.extend([0, 1, 0, 0, 0]);
        }
        for value in time {
            bytes.extend([0, value, 0, 0, 0]);
        }
        bytes.extend(rest);
        bytes
    }

    fn digest_of(bytes: &[u8]) -> String {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.dump");
        std::fs::write(&path, bytes).unwrap();
        content_digest(&path).unwrap()
    }

    #[test]
    fn two_dumps_that_differ_only_in_their_time_have_one_digest() {
        // Longer than the head read first, so that the rest is read in pieces.
        let rest = b"toc and data ".repeat(100);
        let mut other = rest.clone();
        *other.last_mut().unwrap() = b'!';
        for minor in [14, 15, 16] {
            let first = archive(minor, [1, 2, 3, 4, 5, 125, 0], &rest);
            let later = archive(minor, [9, 8, 7, 6, 5, 126, 1], &rest);
            assert_ne!(first, later);
            assert_eq!(digest_of(&first), digest_of(&later), "1.{minor}");
            let changed = archive(minor, [1, 2, 3, 4, 5, 125, 0], &other);
            assert_ne!(digest_of(&first), digest_of(&changed), "1.{minor}");
        }
    }

    #[test]
    fn a_file_that_is_no_archive_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notes.txt");
        std::fs::write(&path, b"PGDMP").unwrap();
        let error = content_digest(&path).unwrap_err().to_string();
        assert!(error.contains("notes.txt"), "{error}");
        assert_eq!(creation_time(b"SQLite format 3\0 and more bytes"), None);
    }
}
