//! The rollback drills: on a fresh clone of the restored capture each, the mishap a rollback exists
//! for is made to happen — a migration failing mid-push, tables dropped after
//! the repair, the ledger corrupted — and the procedure must bring back
//! exactly what Phase 1 recorded. Every drill starts from the state the
//! rehearsal's repair started from, under the same database name, so its
//! Phase 1 links that repair's backup (checked, see `backup::reuse`)
//! instead of reading every table and dumping the database once more.

use std::path::Path;

use super::capture::Capture;
use crate::engine::backup::BackupSet;
use crate::engine::execute::Faults;
use crate::engine::repair::{RepairOptions, make_plan, repair};
use crate::engine::rollback::{Procedure, RollbackReport, rollback};
use crate::pg::sandbox::Database;
use crate::pg::sql::quote_ident;
use crate::pg::target::Target;
use crate::pg::tools::PgTools;
use crate::source::ledger;
use crate::{Error, Result};

/// The three drills, in the plan's order.
pub(crate) fn all() -> [Procedure; 3] {
    [
        Procedure::FailedMigration,
        Procedure::DroppedTables(Vec::new()),
        Procedure::Ledger,
    ]
}

/// Where every drill starts: a clone of `pristine` (the restored capture)
/// named `name`, like the copy the rehearsal repaired, whose Phase 1 backup
/// is `backup`.
pub(crate) struct Start<'a> {
    pub pristine: &'a Database,
    pub name: &'a str,
    pub backup: &'a Path,
}

/// One rollback drill on a fresh clone of the restored capture.
pub(crate) async fn drill(
    start: &Start<'_>,
    capture: &Capture,
    out: &Path,
    procedure: Procedure,
) -> Result<RollbackReport> {
    let copy = start.pristine.clone_named(start.name).await?;
    let backup_dir = out.join(format!("drill-{}", procedure.slug()));
    let safety_dir = out.join(format!("drill-{}-before-rollback", procedure.slug()));
    // Backups of throw-away copies from an earlier rehearsal make way.
    for dir in [&backup_dir, &safety_dir] {
        match std::fs::remove_dir_all(dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(Error::io("remove", dir.as_path())(e));
            }
            _ => {}
        }
    }
    let mut options = RepairOptions::new(&capture.migrations, &backup_dir);
    options.predict = false;
    options.reuse_backup = Some(start.backup.to_path_buf());
    let tools = PgTools::for_database(&copy);
    let target = copy.target();
    let result = async {
        cause_mishap(&target, &tools, &mut options, &procedure).await?;
        rollback(
            &target,
            &tools,
            &backup_dir,
            procedure,
            &options.catalog,
            &safety_dir,
        )
        .await
    }
    .await;
    copy.drop_database().await?;
    result
}

/// Runs the repair so that the mishap `procedure` undoes happens.
async fn cause_mishap(
    target: &Target,
    tools: &PgTools,
    options: &mut RepairOptions,
    procedure: &Procedure,
) -> Result<()> {
    match procedure {
        Procedure::FailedMigration => {
            let plan = make_plan(target, tools, options).await?.1;
            options.faults = Faults {
                fail_in: plan.to_apply().last().cloned(),
                ..Faults::default()
            };
            let _ = repair(target, tools, options).await; // fails on purpose
        }
        Procedure::DroppedTables(_) => {
            let _ = repair(target, tools, options).await;
            let set = BackupSet::load(&options.backup_dir)?;
            let mut conn = target.connect().await?;
            for table in set.data.tables.keys() {
                let (schema, name) = table.split_once('.').unwrap_or(("public", table));
                let sql = format!(
                    "DROP TABLE IF EXISTS {}.{} CASCADE",
                    quote_ident(schema),
                    quote_ident(name)
                );
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                    .execute(&mut conn)
                    .await
                    .map_err(Error::db("dropping tables for the drill"))?;
            }
        }
        Procedure::Ledger => {
            let _ = repair(target, tools, options).await;
            let mut conn = target.connect().await?;
            let table = format!("{}.{}", ledger::SCHEMA, ledger::TABLE);
            let sql = format!(
                "DELETE FROM {table} WHERE version IN (SELECT version FROM {table} ORDER BY version LIMIT 3); \
                 INSERT INTO {table} (version, name) VALUES ('99999999999999', 'corrupted')"
            );
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&mut conn)
                .await
                .map_err(Error::db("corrupting the ledger for the drill"))?;
        }
    }
    Ok(())
}
