//! Phase 1 of the plan ("Backup & Safety"): everything recorded before the
//! repair touches a database, so that the repair can be checked and undone.
//! A backup folder holds the ledger export (Step 1.2: `ledger.json`, and
//! `ledger.txt` laid out like `migration list`), the row counts and content
//! checksums of every table (Step 1.3, computed by [`checksum`], with the
//! [`guard`] that spares Phase 4 re-reading untouched tables), the catalog
//! before the repair, and a dump made with the server's own major
//! (`dump.pgcustom` with its size and hash in `dump.json`), and last the
//! [`manifest`] that makes it complete and verifiable. Every repair writes a
//! new folder; the rollbacks read one back as a [`BackupSet`].

pub mod checksum;
pub mod guard;
pub mod manifest;
pub(crate) mod reuse;

use std::path::{Path, PathBuf};

use serde::Serialize;
use sqlx::PgConnection;

pub use checksum::{DataSnapshot, TableComparison, TableState};

use crate::error::{Error, Result};
use crate::files::write_atomic;
use crate::pg::tools::{DumpInfo, DumpScope};
use crate::source::catalog::{Catalog, CatalogOptions, PLATFORM_SCHEMAS};
use crate::source::ledger::{self, Ledger};

/// The folder under which every repair writes a new backup folder
/// (`<UTC time>-<short fingerprint>/`) unless told otherwise; `rollback`
/// looks here for the newest complete backup of its database.
pub const DEFAULT_PARENT: &str = ".phantom/backups";

/// The pg_dump file inside a backup folder.
pub const DUMP_FILE: &str = "dump.pgcustom";
pub(crate) const LEDGER_JSON: &str = "ledger.json";
const LEDGER_TXT: &str = "ledger.txt";
pub(crate) const DATA_JSON: &str = "data.json";
const CATALOG_JSON: &str = "catalog.json";
const CATALOG_TXT: &str = "catalog.txt";
const DUMP_JSON: &str = "dump.json";

/// What a backup dump holds and a whole-database restore brings back: every
/// schema but the Supabase platform's (`auth`, `storage`, `extensions`, …),
/// whose contents belong to the platform. The ledger's schema is kept: it is
/// part of what a repair changes.
pub fn dump_scope() -> DumpScope {
    DumpScope {
        exclude_schemas: PLATFORM_SCHEMAS
            .iter()
            .filter(|s| **s != ledger::SCHEMA)
            .map(|s| s.to_string())
            .collect(),
        schema_only: false,
    }
}

/// Everything Phase 1 recorded, read back from a backup folder.
#[derive(Debug, Clone)]
pub struct BackupSet {
    pub dir: PathBuf,
    pub ledger: Ledger,
    pub data: DataSnapshot,
    pub catalog: Catalog,
    pub dump: Option<DumpInfo>,
}

impl BackupSet {
    /// Reads a backup folder written by Phase 1.
    pub fn load(dir: &Path) -> Result<BackupSet> {
        let ledger_path = dir.join(LEDGER_JSON);
        let ledger_text = read(&ledger_path)?;
        let ledger = Ledger::from_json(&ledger_text, &ledger_path)?;
        let data = load_data(dir)?;
        let catalog: Catalog = parse_json(&dir.join(CATALOG_JSON))?;
        let dump_info = dir.join(DUMP_JSON);
        let dump = if dump_info.exists() {
            Some(parse_json(&dump_info)?)
        } else {
            None
        };
        Ok(BackupSet {
            dir: dir.to_path_buf(),
            ledger,
            data,
            catalog,
            dump,
        })
    }

    /// The dump file, if Phase 1 made one.
    pub fn dump_path(&self) -> Option<PathBuf> {
        self.dump.as_ref().map(|_| self.dir.join(DUMP_FILE))
    }
}

/// Step 1.2: the ledger as JSON (restorable) and as a `migration list`-like table.
pub async fn export_ledger(conn: &mut PgConnection, dir: &Path) -> Result<Ledger> {
    let ledger = Ledger::read(conn).await?;
    write_atomic(&dir.join(LEDGER_JSON), &ledger.to_json())?;
    write_atomic(&dir.join(LEDGER_TXT), &ledger.to_table())?;
    Ok(ledger)
}

/// Step 1.3: counts and checksums of every table, and the catalog before the repair.
pub async fn record_data(
    conn: &mut PgConnection,
    dir: &Path,
    options: &CatalogOptions,
) -> Result<(DataSnapshot, Catalog)> {
    let catalog = Catalog::introspect(conn, options).await?;
    // The guards first: a write after them moves them (Phase 4 then checksums).
    let guards = guard::read(conn, &catalog.tables()).await?;
    let mut snapshot = DataSnapshot::capture(conn, &catalog.tables()).await?;
    snapshot.guards = guards;
    write_atomic(&dir.join(DATA_JSON), &to_json(&snapshot))?;
    write_atomic(&dir.join(CATALOG_JSON), &to_json(&catalog))?;
    write_atomic(&dir.join(CATALOG_TXT), &catalog.to_text())?;
    Ok((snapshot, catalog))
}

/// Records the dump's size, checksum and tool version next to it.
pub fn save_dump_info(dir: &Path, info: &DumpInfo) -> Result<()> {
    write_atomic(&dir.join(DUMP_JSON), &to_json(info))
}

/// A whole backup of `target` into the new folder `dir` — ledger, counts
/// and checksums, catalog, dump, then the manifest — as Phase 1 takes it;
/// the rollback's safety backup of the state it is about to replace.
pub async fn take(
    conn: &mut PgConnection,
    target: &crate::pg::target::Target,
    tools: &crate::pg::tools::PgTools,
    dir: &Path,
    options: &CatalogOptions,
    kind: manifest::BackupKind,
    plan_fingerprint: &str,
) -> Result<manifest::Manifest> {
    manifest::ensure_fresh(dir)?;
    export_ledger(conn, dir).await?;
    // Both only read: the checksums on this connection, the dump in its own
    // process, side by side (a million rows: 1.3 s of checksums hidden in a
    // dump's time). Both finish before either's error is returned.
    let (dump, scope) = (dir.join(DUMP_FILE), dump_scope());
    let (recorded, dumped) = tokio::join!(
        record_data(conn, dir, options),
        tools.dump(target, &dump, &scope)
    );
    recorded?;
    save_dump_info(dir, &dumped?)?;
    let identity = manifest::DatabaseIdentity::read(conn).await?;
    manifest::write(dir, kind, identity, plan_fingerprint)
}

/// The data snapshot of a backup folder.
pub fn load_data(dir: &Path) -> Result<DataSnapshot> {
    parse_json(&dir.join(DATA_JSON))
}

fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| Error::Backup {
        dir: path.parent().unwrap_or(Path::new(".")).to_path_buf(),
        problem: format!(
            "cannot read {}: {e} (hint: pass a folder that a repair's Phase 1 wrote, one of those under {DEFAULT_PARENT})",
            path.display()
        ),
    })
}

fn parse_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = read(path)?;
    serde_json::from_str(&text).map_err(|e| Error::Backup {
        dir: path.parent().unwrap_or(Path::new(".")).to_path_buf(),
        problem: format!("{} is not a phantom-sync backup file: {e}", path.display()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backup_files_are_pretty_json_that_reads_back() {
        let counts = std::collections::BTreeMap::from([("public.a".to_string(), 3u64)]);
        let text = to_json(&counts);
        assert_eq!(text, "{\n  \"public.a\": 3\n}");
        let back: std::collections::BTreeMap<String, u64> = serde_json::from_str(&text).unwrap();
        assert_eq!(back, counts);
    }

    #[test]
    fn dump_scope_is_the_catalogs_platform_schemas_minus_the_ledger() {
        let mut catalog = CatalogOptions::default().exclude_schemas;
        catalog.retain(|s| s != ledger::SCHEMA);
        catalog.sort();
        let mut ours = dump_scope().exclude_schemas;
        ours.sort();
        assert_eq!(ours, catalog);
        let scope = dump_scope();
        assert!(
            scope.includes("public") && scope.includes(ledger::SCHEMA) && scope.includes("private")
        );
        assert!(
            !scope.includes("auth")
                && !scope.includes("pg_toast")
                && !scope.includes("information_schema")
        );
    }
}
