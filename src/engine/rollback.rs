//! The incident plan's three rollback procedures, each ending with a proof
//! that the restored state equals what Phase 1 recorded:
//! 1. a migration failed during execution — restore the ledger from its
//!    export and the database from the dump;
//! 2. wrong tables dropped — recreate them from the dump, and prove their
//!    counts and checksums equal Phase 1's;
//! 3. the ledger is corrupted — restore it from the export.
//!
//! Before anything is touched a rollback takes the repair lock, checks the
//! backup — its manifest (every file's SHA-256), that it is a backup of this
//! very database, that the dump reads (`pg_restore --list`) — and takes a
//! safety backup of the state it is about to replace, into a new folder.

use serde::{Deserialize, Serialize};
use sqlx::Connection;

use crate::engine::backup::manifest::{self, BackupKind, DatabaseIdentity};
use crate::engine::backup::{BackupSet, DataSnapshot};
use crate::engine::verify::Check;
use crate::pg::lock::RepairLock;
use crate::pg::target::Target;
use crate::pg::tools::PgTools;
use crate::source::catalog::{Catalog, CatalogOptions, diff};
use crate::source::ledger::{self, Ledger};
use crate::text::count;
use crate::{Error, Result};

/// Which procedure to run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Procedure {
    /// Scenario 1: "Migration fails during execution".
    FailedMigration,
    /// Scenario 2: "Wrong tables dropped"; empty = every table of the backup that is gone.
    DroppedTables(Vec<String>),
    /// Scenario 3: "Migration history corrupted".
    Ledger,
}

impl Procedure {
    /// The plan's name for it.
    pub fn title(&self) -> &'static str {
        match self {
            Procedure::FailedMigration => "Rollback 1: migration failed during execution",
            Procedure::DroppedTables(_) => "Rollback 2: wrong tables dropped",
            Procedure::Ledger => "Rollback 3: migration history corrupted",
        }
    }

    /// The name `phantom-sync rollback --procedure` takes.
    pub fn slug(&self) -> &'static str {
        match self {
            Procedure::FailedMigration => "failed-migration",
            Procedure::DroppedTables(_) => "dropped-tables",
            Procedure::Ledger => "ledger",
        }
    }
}

/// What a rollback did and the proof that it worked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RollbackReport {
    pub procedure: Procedure,
    pub steps: Vec<String>,
    pub proof: Vec<Check>,
}

impl RollbackReport {
    /// True when every proof check passed.
    pub fn restored(&self) -> bool {
        self.proof.iter().all(|c| c.passed)
    }
}

/// Runs `procedure` against `target` from the backup folder `backup_dir`, after checking the
/// backup and saving the current state into `safety_dir` (a new folder).
pub async fn rollback(
    target: &Target,
    tools: &PgTools,
    backup_dir: &std::path::Path,
    procedure: Procedure,
    options: &CatalogOptions,
    safety_dir: &std::path::Path,
) -> Result<RollbackReport> {
    let lock = RepairLock::take(target, "rollback").await?;
    let result = locked(target, tools, backup_dir, procedure, options, safety_dir).await;
    lock.release().await;
    result
}

/// Checks `dir` as a backup of the database `conn` is connected to: the
/// manifest and every file's hash, the identity, the dump's table of contents.
pub async fn check_backup(
    conn: &mut sqlx::PgConnection,
    tools: &PgTools,
    dir: &std::path::Path,
) -> Result<manifest::Manifest> {
    let checked = manifest::verify(dir)?;
    let live = DatabaseIdentity::read(conn).await?;
    manifest::check_identity(dir, &checked, &live)?;
    let dump = dir.join(crate::engine::backup::DUMP_FILE);
    tools
        .check_archive(&dump)
        .await
        .map_err(|e| Error::BackupRejected {
            dir: dir.to_path_buf(),
            problem: format!(
                "{} cannot be read as a pg_dump archive: {e}",
                crate::engine::backup::DUMP_FILE
            ),
            hint: "pick another backup with --backup-dir".into(),
        })?;
    Ok(checked)
}

async fn locked(
    target: &Target,
    tools: &PgTools,
    backup_dir: &std::path::Path,
    procedure: Procedure,
    options: &CatalogOptions,
    safety_dir: &std::path::Path,
) -> Result<RollbackReport> {
    let mut steps = Vec::new();
    let mut conn = target.connect().await?;
    check_backup(&mut conn, tools, backup_dir).await?;
    // What was verified is what is used.
    let backup = &BackupSet::load(backup_dir)?;
    steps.push(format!(
        "checked the backup {}: every file's sha256 equals manifest.json, it is this database's, the dump reads",
        backup.dir.display()
    ));
    crate::engine::backup::take(
        &mut conn,
        target,
        tools,
        safety_dir,
        options,
        BackupKind::PreRollback,
        "",
    )
    .await?;
    steps.push(format!(
        "saved the state before the rollback to {}",
        safety_dir.display()
    ));
    let procedure = match procedure {
        Procedure::DroppedTables(t) if t.is_empty() => {
            let live = Catalog::introspect(&mut conn, options).await?;
            let live = live.table_names();
            let gone: Vec<String> = backup
                .catalog
                .tables()
                .into_iter()
                .filter(|t| !live.contains(t))
                .collect();
            Procedure::DroppedTables(gone)
        }
        other => other,
    };
    match &procedure {
        Procedure::FailedMigration => {
            restore_ledger(&mut conn, &backup.ledger).await?;
            steps.push(format!(
                "restored {} from ledger.json",
                count(backup.ledger.rows.len(), "ledger row")
            ));
            let dump = dump_of(backup)?;
            tools
                .restore_database(target, &dump, &crate::engine::backup::dump_scope())
                .await?;
            steps.push(format!("restored the database from {}", dump.display()));
        }
        Procedure::DroppedTables(tables) => {
            if tables.is_empty() {
                steps.push("no table of the backup is missing: nothing to restore".into());
            } else {
                let dump = dump_of(backup)?;
                tools.restore_tables(target, &dump, tables).await?;
                steps.push(format!(
                    "recreated {} from {}",
                    tables.join(", "),
                    dump.display()
                ));
            }
        }
        Procedure::Ledger => {
            restore_ledger(&mut conn, &backup.ledger).await?;
            steps.push(format!(
                "restored {} from ledger.json",
                count(backup.ledger.rows.len(), "ledger row")
            ));
        }
    }
    let proof = prove(&mut conn, backup, &procedure, options).await?;
    conn.close().await.ok();
    Ok(RollbackReport {
        procedure,
        steps,
        proof,
    })
}

fn dump_of(backup: &BackupSet) -> Result<std::path::PathBuf> {
    backup.dump_path().filter(|p| p.exists()).ok_or_else(|| {
        Error::Backup {
            dir: backup.dir.clone(),
            problem: "the backup has no dump (hint: Phase 1 was skipped or failed; only the ledger can be restored from this folder — use --procedure ledger)".into(),
        }
    })
}

async fn restore_ledger(conn: &mut sqlx::PgConnection, saved: &Ledger) -> Result<()> {
    let mut tx = conn
        .begin()
        .await
        .map_err(Error::db("starting the ledger restore"))?;
    ledger::restore(&mut tx, saved).await?;
    tx.commit()
        .await
        .map_err(Error::db("committing the ledger restore"))
}

/// Compares the target with what Phase 1 recorded.
async fn prove(
    conn: &mut sqlx::PgConnection,
    backup: &BackupSet,
    procedure: &Procedure,
    options: &CatalogOptions,
) -> Result<Vec<Check>> {
    let mut proof = Vec::new();
    let ledger = Ledger::read(conn).await?;
    // Rollback 2 restores tables only: the ledger stays as the repair left it.
    if !matches!(procedure, Procedure::DroppedTables(_)) {
        proof.push(Check {
            name: "Ledger equals the Phase 1 export".into(),
            passed: ledger == backup.ledger,
            evidence: if ledger == backup.ledger {
                Vec::new()
            } else {
                vec![format!(
                    "now {:?}, exported {:?}",
                    ledger.versions(),
                    backup.ledger.versions()
                )]
            },
        });
    }
    if *procedure == Procedure::Ledger {
        return Ok(proof);
    }
    let (tables, before) = recorded_before(&backup.data, procedure);
    let after = DataSnapshot::capture(conn, &tables).await?;
    let changed: Vec<String> = before
        .compare(&after)
        .iter()
        .filter(|c| !c.preserved)
        .map(|c| c.table.clone())
        .collect();
    proof.push(Check {
        name: format!(
            "Counts and checksums of {} equal Phase 1's",
            count(tables.len(), "table")
        ),
        passed: changed.is_empty(),
        evidence: changed,
    });
    if *procedure == Procedure::FailedMigration {
        let live = Catalog::introspect(conn, options).await?;
        let differences: Vec<String> = diff(&backup.catalog, &live)
            .iter()
            .map(|d| d.describe())
            .collect();
        proof.push(Check {
            name: "Schema equals the pre-repair catalog".into(),
            passed: differences.is_empty(),
            evidence: differences,
        });
    }
    Ok(proof)
}

/// The tables whose counts and checksums prove `procedure` — those it names
/// for Rollback 2, every table Phase 1 recorded otherwise — and Phase 1's
/// record of them.
fn recorded_before(recorded: &DataSnapshot, procedure: &Procedure) -> (Vec<String>, DataSnapshot) {
    let tables: Vec<String> = match procedure {
        Procedure::DroppedTables(t) => t.clone(),
        _ => recorded.tables.keys().cloned().collect(),
    };
    let before = DataSnapshot {
        tables: recorded
            .tables
            .iter()
            .filter(|(k, _)| tables.contains(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        ..DataSnapshot::default()
    };
    (tables, before)
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::*;
    use crate::engine::backup::TableState;

    fn recorded(tables: &[(&str, i64)]) -> DataSnapshot {
        DataSnapshot {
            tables: tables
                .iter()
                .map(|(table, rows)| {
                    let state = TableState {
                        table: table.to_string(),
                        rows: *rows,
                        checksum: format!("sum of {table}"),
                    };
                    (table.to_string(), state)
                })
                .collect(),
            ..DataSnapshot::default()
        }
    }

    fn tables_of(snapshot: &DataSnapshot) -> Vec<(&str, i64)> {
        snapshot
            .tables
            .values()
            .map(|s| (s.table.as_str(), s.rows))
            .collect()
    }

    #[test]
    fn rollback_2_proves_only_the_tables_it_recreates_against_phase_1() {
        let phase_1 = recorded(&[("public.a", 3), ("public.b", 5), ("public.c", 7)]);
        let procedure = Procedure::DroppedTables(vec!["public.c".into(), "public.a".into()]);
        let (tables, before) = recorded_before(&phase_1, &procedure);
        assert_eq!(tables, vec!["public.c".to_string(), "public.a".to_string()]);
        assert_eq!(tables_of(&before), vec![("public.a", 3), ("public.c", 7)]);
        assert_eq!(before.tables["public.c"].checksum, "sum of public.c");
    }

    #[test]
    fn rollback_1_proves_every_table_phase_1_recorded() {
        let phase_1 = recorded(&[("public.a", 3), ("public.b", 5)]);
        let (tables, before) = recorded_before(&phase_1, &Procedure::FailedMigration);
        assert_eq!(tables, vec!["public.a".to_string(), "public.b".to_string()]);
        assert_eq!(before.tables, phase_1.tables);
    }

    #[test]
    fn a_table_phase_1_never_recorded_has_no_before_state() {
        let phase_1 = recorded(&[("public.a", 3)]);
        let procedure = Procedure::DroppedTables(vec!["public.new".into()]);
        let (tables, before) = recorded_before(&phase_1, &procedure);
        assert_eq!(tables, vec!["public.new".to_string()]);
        assert!(before.tables.is_empty(), "{before:?}");
    }

    #[test]
    fn a_rollback_is_restored_only_when_every_check_passed() {
        let check = |passed| Check {
            name: "check".into(),
            passed,
            evidence: Vec::new(),
        };
        let report = |proof| RollbackReport {
            procedure: Procedure::Ledger,
            steps: Vec::new(),
            proof,
        };
        assert!(report(vec![check(true), check(true)]).restored());
        assert!(!report(vec![check(true), check(false)]).restored());
    }

    #[test]
    fn each_procedure_has_the_plans_title_and_the_clis_name() {
        let all = [
            Procedure::FailedMigration,
            Procedure::DroppedTables(Vec::new()),
            Procedure::Ledger,
        ];
        assert_eq!(
            all.each_ref().map(Procedure::slug),
            ["failed-migration", "dropped-tables", "ledger"]
        );
        assert_eq!(
            all.each_ref().map(Procedure::title),
            [
                "Rollback 1: migration failed during execution",
                "Rollback 2: wrong tables dropped",
                "Rollback 3: migration history corrupted",
            ]
        );
    }
}
