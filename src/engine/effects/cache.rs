//! The effects of a migrations folder, kept on disk between runs
//! (`<cache dir>/effects/<sha256>.json`, the cache dir being
//! `pg::sandbox::image::cache_dir()`). An entry is found by its
//! [`EffectsKey`] — the migrations' names and bytes, the server major, the
//! catalog options, the server image and shim, the environment set up before
//! the replay, and the code that replays and renders (this tool's version and
//! the source text of the modules that decide what a replay records) — so
//! any change to any of them misses and replays again.
//!
//! Safe under concurrent runs: entries are written through a temporary file
//! and a rename, so a reader sees a whole file or none; an entry that cannot
//! be read, does not parse, or whose stored key differs is ignored and
//! rebuilt. `--no-cache` ([`set_enabled`]) bypasses it, in both directions.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::Effects;
use crate::source::catalog::CatalogOptions;
use crate::source::project::Project;

/// Bumped when the entry's layout changes.
const FORMAT: u32 = 1;

/// Everything a replay's result depends on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EffectsKey {
    /// SHA-256 of every migration's file name and bytes, in order.
    pub migrations: String,
    /// The server major the replay runs on.
    pub major: u8,
    /// Which schemas the catalog reads.
    pub options: CatalogOptions,
    /// The scratch server: image (`PHANTOM_PG_IMAGE`) and whether it gets the shim.
    pub server: String,
    /// What is set up on the scratch database before the replay (the
    /// target's roles, default privileges, extensions …), as a fingerprint;
    /// empty while nothing is.
    pub environment: String,
}

impl EffectsKey {
    /// The key of `project` replayed on `major` with `options` after `environment`.
    pub fn new(
        project: &Project,
        major: u8,
        options: &CatalogOptions,
        environment: &str,
    ) -> EffectsKey {
        let mut hasher = Sha256::new();
        for m in &project.migrations {
            hasher.update(m.file_name().as_bytes());
            hasher.update([0]);
            hasher.update((m.sql.len() as u64).to_le_bytes());
            hasher.update(m.sql.as_bytes());
        }
        let image = std::env::var("PHANTOM_PG_IMAGE").unwrap_or_else(|_| "postgres".into());
        EffectsKey {
            migrations: format!("{:x}", hasher.finalize()),
            major,
            options: options.clone(),
            server: format!(
                "{image} shim={}",
                crate::pg::sandbox::database::shim_enabled()
            ),
            environment: environment.to_string(),
        }
    }

    /// The entry's name: SHA-256 of the key, the format and the code's fingerprint.
    pub fn digest(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update(FORMAT.to_le_bytes());
        hasher.update(code_fingerprint().as_bytes());
        hasher.update(serde_json::to_string(self).unwrap_or_default().as_bytes());
        format!("{:x}", hasher.finalize())
    }
}

/// This build's version and the text of the code that decides what a
/// replay records: a change to any of it makes every entry stale.
fn code_fingerprint() -> &'static str {
    static FINGERPRINT: OnceLock<String> = OnceLock::new();
    FINGERPRINT.get_or_init(|| {
        let sources = [
            env!("CARGO_PKG_VERSION"),
            include_str!("mod.rs"),
            include_str!("capture.rs"),
            include_str!("replay.rs"),
            include_str!("trial.rs"),
            include_str!("../environment.rs"),
            include_str!("../../source/catalog/mod.rs"),
            include_str!("../../source/catalog/canonical.rs"),
            include_str!("../../source/catalog/diff.rs"),
            include_str!("../../source/catalog/group.rs"),
            include_str!("../../source/catalog/introspect.rs"),
            include_str!("../../source/catalog/owner.rs"),
            include_str!("../../source/catalog/queries.rs"),
            include_str!("../../source/catalog/relations.rs"),
            include_str!("../../source/catalog/row.rs"),
            include_str!("../../source/catalog/tracked.rs"),
            include_str!("../../source/split/mod.rs"),
            include_str!("../../source/split/command.rs"),
            include_str!("../../source/split/scanner.rs"),
            include_str!("../../source/split/lexer.rs"),
            include_str!("../../source/split/letters.rs"),
            include_str!("../../source/project.rs"),
            include_str!("../../pg/sandbox/supabase_shim.sql"),
        ];
        let mut hasher = Sha256::new();
        for source in sources {
            hasher.update((source.len() as u64).to_le_bytes());
            hasher.update(source.as_bytes());
        }
        format!("{:x}", hasher.finalize())
    })
}

static ENABLED: AtomicBool = AtomicBool::new(true);

/// Turns the cache on or off for this process (`--no-cache` turns it off:
/// nothing is read from it or written to it).
pub fn set_enabled(enabled: bool) {
    ENABLED.store(enabled, Ordering::SeqCst);
}

/// Whether the cache is in use.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::SeqCst)
}

/// The folder of the entries.
pub fn dir() -> PathBuf {
    crate::pg::sandbox::image::cache_dir().join("effects")
}

fn path_in(dir: &Path, key: &EffectsKey) -> PathBuf {
    dir.join(format!("{}.json", key.digest()))
}

/// One entry as stored.
#[derive(Deserialize)]
struct Entry {
    format: u32,
    key: EffectsKey,
    effects: Effects,
}

/// One entry to store (borrowing what [`Entry`] owns).
#[derive(Serialize)]
struct EntryRef<'a> {
    format: u32,
    key: &'a EffectsKey,
    effects: &'a Effects,
}

/// Whether an entry for `key` is stored (not whether it is intact: for
/// deciding what to prepare, never for using it).
pub fn exists(key: &EffectsKey) -> bool {
    enabled() && path_in(&dir(), key).is_file()
}

/// The stored effects for `key`, if an intact entry exists.
pub fn load(key: &EffectsKey) -> Option<Effects> {
    if !enabled() {
        return None;
    }
    load_in(&dir(), key)
}

fn load_in(dir: &Path, key: &EffectsKey) -> Option<Effects> {
    let path = path_in(dir, key);
    let text = std::fs::read_to_string(&path).ok()?;
    match serde_json::from_str::<Entry>(&text) {
        Ok(entry) if entry.format == FORMAT && entry.key == *key => Some(entry.effects),
        Ok(_) => None,
        Err(e) => {
            tracing::info!(
                "ignoring the unreadable effects cache entry {} ({e})",
                path.display()
            );
            None
        }
    }
}

/// Stores `effects` under `key` (a failure is logged, never fatal: the
/// cache only saves time).
pub fn store(key: &EffectsKey, effects: &Effects) {
    if !enabled() {
        return;
    }
    store_in(&dir(), key, effects);
}

fn store_in(dir: &Path, key: &EffectsKey, effects: &Effects) {
    let entry = EntryRef {
        format: FORMAT,
        key,
        effects,
    };
    let path = path_in(dir, key);
    let written = serde_json::to_string(&entry)
        .map_err(|e| e.to_string())
        .and_then(|text| crate::files::write_atomic(&path, &text).map_err(|e| e.to_string()));
    if let Err(e) = written {
        tracing::info!(
            "could not write the effects cache entry {}: {e}",
            path.display()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file added to the replay or the catalog and left out of the
    /// fingerprint would let a cache entry outlive a change to it.
    #[test]
    fn the_code_fingerprint_covers_every_file_of_the_replay_and_the_catalog() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let this = std::fs::read_to_string(root.join("src/engine/effects/cache.rs")).unwrap();
        for (dir, prefix) in [
            ("src/engine/effects", ""),
            ("src/source/catalog", "../../source/catalog/"),
            ("src/source/split", "../../source/split/"),
        ] {
            let mut files = 0;
            for entry in std::fs::read_dir(root.join(dir)).unwrap() {
                let name = entry.unwrap().file_name().into_string().unwrap();
                if !name.ends_with(".rs")
                    || name == "tests.rs"
                    || (dir.ends_with("effects") && name == "cache.rs")
                {
                    continue;
                }
                files += 1;
                let wanted = format!("include_str!(\"{prefix}{name}\")");
                assert!(
                    this.contains(&wanted),
                    "{dir}/{name} is not in code_fingerprint"
                );
            }
            assert!(files >= 3, "{dir}: {files} files");
        }
    }
    use crate::source::catalog::{Catalog, Change, Difference, ObjectKind};
    use crate::source::project::Migration;

    fn project(sql: &str) -> Project {
        Project {
            dir: "migrations".into(),
            migrations: vec![Migration {
                version: "20240101000000".into(),
                name: "init".into(),
                path: "migrations/20240101000000_init.sql".into(),
                sql: sql.into(),
                statements: vec![sql.into()],
            }],
            skipped: Vec::new(),
        }
    }

    fn effects() -> Effects {
        let change = Difference {
            key: "table public.t".into(),
            kind: ObjectKind::Table,
            change: Change::Missing {
                expected: "table".into(),
            },
        };
        Effects::new(
            Catalog::default(),
            vec![super::super::MigrationEffects {
                version: "20240101000000".into(),
                changes: vec![change],
            }],
            Default::default(),
        )
    }

    #[test]
    fn every_input_changes_the_key() {
        let options = CatalogOptions::default();
        let base = EffectsKey::new(&project("create table t (id int);"), 17, &options, "");
        let same = EffectsKey::new(&project("create table t (id int);"), 17, &options, "");
        assert_eq!(base.digest(), same.digest());
        let others = [
            EffectsKey::new(&project("create table t (id bigint);"), 17, &options, ""),
            EffectsKey::new(&project("create table t (id int);"), 16, &options, ""),
            EffectsKey::new(
                &project("create table t (id int);"),
                17,
                &options,
                "roles: a",
            ),
            EffectsKey::new(
                &project("create table t (id int);"),
                17,
                &CatalogOptions {
                    exclude_schemas: vec![],
                },
                "",
            ),
        ];
        for other in others {
            assert_ne!(base.digest(), other.digest(), "{other:?}");
        }
    }

    #[test]
    fn entries_round_trip_and_broken_or_foreign_ones_are_ignored() {
        let dir = crate::files::temp_dir("effects-cache").unwrap();
        let options = CatalogOptions::default();
        let key = EffectsKey::new(&project("create table t (id int);"), 17, &options, "");
        assert!(load_in(dir.path(), &key).is_none());
        store_in(dir.path(), &key, &effects());
        let back = load_in(dir.path(), &key).expect("stored");
        assert_eq!(back.end, effects().end);
        assert_eq!(back.migrations[0].changes, effects().migrations[0].changes);
        // A torn or corrupt entry is ignored (and rebuilt by the caller).
        let path = path_in(dir.path(), &key);
        std::fs::write(&path, "{\"format\": 1, \"key\":").unwrap();
        assert!(load_in(dir.path(), &key).is_none());
        // An entry whose stored key differs (a hash collision, a hand copy) is ignored.
        let other = EffectsKey::new(&project("select 1;"), 17, &options, "");
        store_in(dir.path(), &other, &effects());
        std::fs::copy(path_in(dir.path(), &other), &path).unwrap();
        assert!(load_in(dir.path(), &key).is_none());
        // Nothing else is left in the folder (writes go through a rename).
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().all(|n| n.ends_with(".json")), "{names:?}");
    }
}
