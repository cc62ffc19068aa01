//! What makes a backup folder trustworthy: `manifest.json`, written last
//! when Phase 1 has finished, with the SHA-256 of every file and the
//! identity of the database it was taken from (`system_identifier` from
//! `pg_control_system()`, the database name, the server's major), the plan's
//! fingerprint and when it was made. A folder without a manifest is partial
//! (Phase 1 did not finish); a file whose hash differs was changed or
//! swapped; an identity that differs is another database's backup. A
//! rollback refuses all three before it touches anything.
//!
//! Backups are immutable: every repair writes a new folder
//! `<parent>/<UTC time>-<short fingerprint>/` ([`new_folder`]), never into
//! one that holds files, so a rerun can never overwrite the pre-repair state.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sqlx::PgConnection;

use crate::error::{Error, Result};
use crate::files::{utc_stamp, write_atomic};

/// The manifest's file name inside a backup folder.
pub const MANIFEST_FILE: &str = "manifest.json";

/// What a backup was taken for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BackupKind {
    /// Phase 1 of a repair: the state before the repair.
    Repair,
    /// The safety backup a rollback takes of the state it is about to replace.
    PreRollback,
}

/// Which database a backup belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatabaseIdentity {
    /// The cluster's `system_identifier` (`pg_control_system()`), as text;
    /// empty where the role may not call that function (then only the
    /// database name identifies it).
    pub system_identifier: String,
    /// The database's name.
    pub database: String,
    /// The server's major version.
    pub server_major: u8,
}

impl DatabaseIdentity {
    /// The identity of the database `conn` is connected to.
    pub async fn read(conn: &mut PgConnection) -> Result<DatabaseIdentity> {
        let (system_identifier, database, version): (String, String, String) = sqlx::query_as(
            "SELECT CASE WHEN has_function_privilege('pg_control_system()', 'EXECUTE') \
                         THEN (SELECT system_identifier::text FROM pg_control_system()) ELSE '' END, \
                    current_database()::text, current_setting('server_version_num')",
        )
        .fetch_one(&mut *conn)
        .await
        .map_err(Error::db("reading the database's identity"))?;
        let server_major = version
            .trim()
            .parse::<u32>()
            .ok()
            .and_then(|n| u8::try_from(n / 10_000).ok())
            .unwrap_or(0);
        Ok(DatabaseIdentity {
            system_identifier,
            database,
            server_major,
        })
    }

    /// True when `other` is this database: same name, and the same cluster
    /// when both know theirs.
    pub fn same_as(&self, other: &DatabaseIdentity) -> bool {
        self.database == other.database
            && (self.system_identifier.is_empty()
                || other.system_identifier.is_empty()
                || self.system_identifier == other.system_identifier)
    }

    fn describe(&self) -> String {
        format!(
            "database {:?} of cluster {} (PostgreSQL {})",
            self.database, self.system_identifier, self.server_major
        )
    }
}

/// One file of a backup: its size and SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileDigest {
    pub bytes: u64,
    pub sha256: String,
}

/// `manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub kind: BackupKind,
    /// UTC, ISO 8601 with milliseconds.
    pub created_at: String,
    pub database: DatabaseIdentity,
    /// The fingerprint of the plan's diagnosis (empty for a pre-rollback backup).
    pub plan_fingerprint: String,
    /// Every file of the backup, by name.
    pub files: BTreeMap<String, FileDigest>,
}

/// The files a complete backup has (besides the manifest and the journal).
pub const REQUIRED: &[&str] = &[
    "ledger.json",
    "ledger.txt",
    "data.json",
    "catalog.json",
    "catalog.txt",
    super::DUMP_FILE,
    "dump.json",
];

/// A new, empty folder for a backup under `parent`, named after the UTC time
/// and `label` (a short fingerprint, or `pre-rollback`); never an existing one.
pub fn new_folder(parent: &Path, label: &str) -> Result<PathBuf> {
    std::fs::create_dir_all(parent).map_err(Error::io("create", parent))?;
    let (stamp, _) = utc_stamp(crate::files::now_ms());
    for n in 1..100 {
        let name = if n == 1 {
            format!("{stamp}-{label}")
        } else {
            format!("{stamp}-{label}-{n}")
        };
        let dir = parent.join(name);
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(Error::io("create", dir)(e)),
        }
    }
    Err(Error::BackupExists {
        dir: parent.join(format!("{stamp}-{label}")),
    })
}

/// Makes sure `dir` is new or empty (creating it): a backup never overwrites another.
pub fn ensure_fresh(dir: &Path) -> Result<()> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(Error::BackupExists {
                    dir: dir.to_path_buf(),
                });
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir).map_err(Error::io("create", dir))
        }
        Err(e) => Err(Error::io("read", dir)(e)),
    }
}

/// Hashes the backup's files and writes `manifest.json` (last: its presence
/// says the backup is complete).
pub fn write(
    dir: &Path,
    kind: BackupKind,
    database: DatabaseIdentity,
    plan_fingerprint: &str,
) -> Result<Manifest> {
    let mut files = BTreeMap::new();
    for name in REQUIRED {
        files.insert(name.to_string(), digest(&dir.join(name))?);
    }
    let manifest = Manifest {
        kind,
        created_at: utc_stamp(crate::files::now_ms()).1,
        database,
        plan_fingerprint: plan_fingerprint.to_string(),
        files,
    };
    write_atomic(
        &dir.join(MANIFEST_FILE),
        &serde_json::to_string_pretty(&manifest).unwrap_or_default(),
    )?;
    Ok(manifest)
}

/// Size and SHA-256 of a file.
pub fn digest(path: &Path) -> Result<FileDigest> {
    let (bytes, sha256) = crate::files::sha256(path)?;
    Ok(FileDigest { bytes, sha256 })
}

fn rejected(dir: &Path, problem: String, hint: &str) -> Error {
    Error::BackupRejected {
        dir: dir.to_path_buf(),
        problem,
        hint: hint.to_string(),
    }
}

const RESTORE_HINT: &str = "restore the folder from where you keep copies of it, or pick another backup with --backup-dir; never edit a backup by hand";

/// Reads `dir`'s manifest and checks every file against it.
pub fn verify(dir: &Path) -> Result<Manifest> {
    let path = dir.join(MANIFEST_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(rejected(
                dir,
                format!(
                    "it has no {MANIFEST_FILE}: the backup is partial (its Phase 1 did not finish) or was not written by this version of phantom-sync"
                ),
                "pick a complete backup with --backup-dir (one whose folder holds manifest.json), or leave --backup-dir out to use the newest complete one",
            ));
        }
        Err(e) => return Err(Error::io("read", path)(e)),
    };
    let manifest: Manifest = serde_json::from_str(&text).map_err(|e| {
        rejected(
            dir,
            format!("{MANIFEST_FILE} is damaged: {e}"),
            RESTORE_HINT,
        )
    })?;
    for name in REQUIRED {
        if !manifest.files.contains_key(*name) {
            return Err(rejected(
                dir,
                format!("{MANIFEST_FILE} does not list {name}"),
                RESTORE_HINT,
            ));
        }
    }
    for (name, want) in &manifest.files {
        let file = dir.join(name);
        if !file.exists() {
            return Err(rejected(dir, format!("{name} is missing"), RESTORE_HINT));
        }
        let have = digest(&file)?;
        if have != *want {
            return Err(rejected(
                dir,
                format!(
                    "{name} does not match {MANIFEST_FILE} (sha256 {}…, {} bytes; the manifest says {}…, {} bytes): it was changed or swapped since the backup was made",
                    &have.sha256[..12],
                    have.bytes,
                    &want.sha256[..12.min(want.sha256.len())],
                    want.bytes
                ),
                RESTORE_HINT,
            ));
        }
    }
    Ok(manifest)
}

/// Refuses a backup of another database than `live`.
pub fn check_identity(dir: &Path, manifest: &Manifest, live: &DatabaseIdentity) -> Result<()> {
    if manifest.database.same_as(live) {
        return Ok(());
    }
    Err(rejected(
        dir,
        format!(
            "it is a backup of {}, but the target is {}",
            manifest.database.describe(),
            live.describe()
        ),
        "pass the --db-url of the database this backup was taken from, or a backup of this database",
    ))
}

/// The newest complete repair backup of `live` among the folders in
/// `parent`, with how many complete ones of it there are.
pub fn newest_for(parent: &Path, live: &DatabaseIdentity) -> Result<(PathBuf, usize)> {
    let mut found: Vec<(String, PathBuf)> = Vec::new();
    if let Ok(entries) = std::fs::read_dir(parent) {
        for entry in entries.flatten() {
            let dir = entry.path();
            let Ok(text) = std::fs::read_to_string(dir.join(MANIFEST_FILE)) else {
                continue;
            };
            let Ok(manifest) = serde_json::from_str::<Manifest>(&text) else {
                continue;
            };
            if manifest.kind == BackupKind::Repair && manifest.database.same_as(live) {
                found.push((manifest.created_at.clone(), dir));
            }
        }
    }
    found.sort();
    let count = found.len();
    match found.pop() {
        Some((_, dir)) => Ok((dir, count)),
        None => Err(Error::Backup {
            dir: parent.to_path_buf(),
            problem: format!(
                "no complete backup of {} is here (hint: a repair writes one per run under {}; pass another folder with --backup-dir)",
                live.describe(),
                super::DEFAULT_PARENT
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(db: &str) -> DatabaseIdentity {
        DatabaseIdentity {
            system_identifier: "7000".into(),
            database: db.into(),
            server_major: 17,
        }
    }

    fn complete(parent: &Path, label: &str, db: &str) -> PathBuf {
        let dir = new_folder(parent, label).unwrap();
        for name in REQUIRED {
            std::fs::write(dir.join(name), format!("{name} of {db}")).unwrap();
        }
        write(&dir, BackupKind::Repair, identity(db), "f").unwrap();
        dir
    }

    #[test]
    fn a_backup_folder_may_be_missing_or_empty_but_never_hold_files() {
        let parent = crate::files::temp_dir("manifest").unwrap();
        let missing = parent.path().join("not").join("yet");
        ensure_fresh(&missing).unwrap();
        assert!(missing.is_dir(), "a missing folder is created");
        ensure_fresh(&missing).unwrap();
        std::fs::write(missing.join("ledger.json"), "[]").unwrap();
        assert!(matches!(
            ensure_fresh(&missing),
            Err(Error::BackupExists { .. })
        ));
        let file = parent.path().join("a-file");
        std::fs::write(&file, "x").unwrap();
        // A file in the way cannot be read as a folder: said as that, and
        // nothing is created in its place.
        let in_the_way = ensure_fresh(&file);
        assert!(
            matches!(in_the_way, Err(Error::Io { action: "read", .. })),
            "{in_the_way:?}"
        );
    }

    #[test]
    fn folders_made_in_the_same_millisecond_get_numbered_names() {
        let parent = crate::files::temp_dir("manifest").unwrap();
        let folders: Vec<PathBuf> = (0..40)
            .map(|_| new_folder(parent.path(), "abc").unwrap())
            .collect();
        let distinct: std::collections::BTreeSet<&PathBuf> = folders.iter().collect();
        assert_eq!(distinct.len(), folders.len());
        assert!(
            folders
                .iter()
                .any(|f| f.to_string_lossy().ends_with("-abc-2")),
            "40 folders in a row share a millisecond at least once: {folders:?}"
        );
        // Only a taken name is tried again: a name the file system refuses
        // is said as that, not as a backup that exists.
        let refused = new_folder(parent.path(), &"x".repeat(300));
        assert!(
            matches!(
                refused,
                Err(Error::Io {
                    action: "create",
                    ..
                })
            ),
            "{refused:?}"
        );
    }

    #[test]
    fn a_digest_is_the_files_size_and_sha256() {
        let parent = crate::files::temp_dir("manifest").unwrap();
        let path = parent.path().join("abc");
        std::fs::write(&path, "abc").unwrap();
        let abc = digest(&path).unwrap();
        assert_eq!(abc.bytes, 3);
        // FIPS 180-2's example digest of "abc".
        assert_eq!(
            abc.sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        // Larger than one read buffer: every chunk is counted.
        std::fs::write(&path, vec![b'x'; 600 * 1024]).unwrap();
        assert_eq!(digest(&path).unwrap().bytes, 600 * 1024);
    }

    #[test]
    fn folders_are_new_and_verified_backups_refuse_every_change() {
        let parent = crate::files::temp_dir("manifest").unwrap();
        let a = complete(parent.path(), "abc", "app");
        let b = complete(parent.path(), "abc", "app");
        assert_ne!(a, b, "two backups in one millisecond get two folders");
        assert!(ensure_fresh(&a).is_err(), "a backup folder is never reused");
        let manifest = verify(&a).unwrap();
        check_identity(&a, &manifest, &identity("app")).unwrap();
        let other = check_identity(&a, &manifest, &identity("other"))
            .unwrap_err()
            .to_string();
        assert!(
            other.contains("backup of database \"app\"") && other.contains("nothing was touched"),
            "{other}"
        );

        std::fs::write(a.join("ledger.json"), "edited").unwrap();
        let edited = verify(&a).unwrap_err().to_string();
        assert!(
            edited.contains("ledger.json does not match manifest.json"),
            "{edited}"
        );
        std::fs::remove_file(a.join("ledger.json")).unwrap();
        let missing = verify(&a).unwrap_err().to_string();
        assert!(missing.contains("ledger.json is missing"), "{missing}");
        std::fs::remove_file(a.join(MANIFEST_FILE)).unwrap();
        // A manifest that is there but cannot be read is said as that.
        std::fs::create_dir(a.join(MANIFEST_FILE)).unwrap();
        let unreadable = verify(&a).unwrap_err();
        assert!(
            matches!(unreadable, Error::Io { action: "read", .. }),
            "{unreadable:?}"
        );
        std::fs::remove_dir(a.join(MANIFEST_FILE)).unwrap();
        let partial = verify(&a).unwrap_err();
        assert!(matches!(partial, Error::BackupRejected { .. }));
        assert!(partial.to_string().contains("partial"), "{partial}");

        // The newest complete one of this database; partial ones are skipped.
        let (newest, count) = newest_for(parent.path(), &identity("app")).unwrap();
        assert_eq!((newest, count), (b, 1));
        assert!(newest_for(parent.path(), &identity("other")).is_err());
        // Another cluster's database of the same name is another database.
        let elsewhere = DatabaseIdentity {
            system_identifier: "7001".into(),
            ..identity("app")
        };
        assert!(!identity("app").same_as(&elsewhere));
        let unknown = DatabaseIdentity {
            system_identifier: String::new(),
            ..identity("app")
        };
        assert!(identity("app").same_as(&unknown));
    }
}
