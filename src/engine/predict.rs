//! Before the target is touched: will the plan work? The target's schema
//! (no data) and its ledger are copied into a scratch database of the same
//! major, and the plan's Phases 2–4 run there, exactly as they would on the
//! target. A migration that fails there — a plain `CREATE POLICY` on a
//! partial object, a `RENAME COLUMN` already renamed — or a schema that would
//! still differ from a clean replay turns into a refusal that names the
//! statement and the options, including a remainder script for review. A
//! process that predicts the same plan for the same schema and ledger again
//! gets its earlier answer (`memo`).

use sqlx::Connection;
use tracing::Instrument;

use crate::engine::effects::first_line;
use crate::engine::execute::{Context, Faults, execute};
use crate::engine::inspect::Inspection;
use crate::engine::plan::{Plan, Refusal};
use crate::pg::sandbox::Database;
use crate::pg::target::Target;
use crate::pg::tools::{DumpScope, PgTools, content_digest};
use crate::source::catalog::CatalogOptions;
use crate::{Error, Result};

mod memo;

/// Runs `plan` on a schema-only copy of `target`; adds refusals to it.
pub async fn predict(
    target: &Target,
    tools: &PgTools,
    inspection: &Inspection,
    plan: &mut Plan,
    options: &CatalogOptions,
) -> Result<()> {
    if plan.is_noop() || !plan.is_runnable() {
        return Ok(());
    }
    let span = tracing::info_span!(
        target: "phantom_sync::progress",
        "predict",
        task = "trying the plan on a schema-only copy of the target"
    );
    let work = crate::files::temp_dir("predict")?;
    let dump = work.path().join("schema.dump");
    tools
        .dump(target, &dump, &schema_only())
        .instrument(span.clone())
        .await?;
    let key = memo::key(&content_digest(&dump)?, inspection, plan, options);
    let refusal = match memo::get(&key) {
        Some(known) => known,
        None => {
            let scratch = Database::fresh(inspection.major, "predict")
                .instrument(span.clone())
                .await?;
            let outcome = rehearse_on(&scratch, &dump, inspection, plan, options, work.path())
                .instrument(span)
                .await;
            scratch.drop_database().await?;
            let refusal = outcome?;
            memo::put(key, &refusal);
            refusal
        }
    };
    drop(work);
    if let Some(refusal) = refusal {
        plan.refusals.push(refusal);
    }
    Ok(())
}

/// What the prediction copies: the backup's scope, definitions only.
fn schema_only() -> DumpScope {
    DumpScope {
        schema_only: true,
        ..crate::engine::backup::dump_scope()
    }
}

async fn rehearse_on(
    scratch: &Database,
    dump: &std::path::Path,
    inspection: &Inspection,
    plan: &Plan,
    options: &CatalogOptions,
    work: &std::path::Path,
) -> Result<Option<Refusal>> {
    let local = PgTools::for_database(scratch);
    scratch
        .create_roles(&local.archive_roles(dump).await?)
        .await?;
    local
        .restore_database(&scratch.target(), dump, &schema_only())
        .await?;
    let mut conn = scratch.connect().await?;
    crate::source::ledger::restore(&mut conn, &inspection.ledger).await?;
    conn.close().await.ok();
    let ctx = Context {
        target: scratch.target(),
        project: &inspection.project,
        effects: &inspection.effects,
        catalog_options: options.clone(),
        backup_dir: work.join("backup"),
        tools: PgTools::for_database(scratch),
        faults: Faults {
            skip_backup: true,
            ..Faults::default()
        },
        lock_timeout_ms: 10_000,
        check_fingerprint: false,
        reuse_backup: None,
        verify: crate::engine::verify::VerifyOptions {
            data: false,
            ..Default::default()
        }
        .for_plan(plan),
        cancel: crate::engine::execute::Cancel::new(),
    };
    match execute(plan, &ctx).await {
        Ok(_) => Ok(None),
        Err(failure) => Ok(Some(
            refusal_from(&failure.error, inspection, scratch).await,
        )),
    }
}

/// A refusal naming what failed on the copy, and what the user can do.
async fn refusal_from(error: &Error, inspection: &Inspection, scratch: &Database) -> Refusal {
    let (version, statement) = match error {
        Error::MigrationFailed {
            version, statement, ..
        }
        | Error::RelationMissing {
            version, statement, ..
        } => (version.clone(), Some(statement.clone())),
        Error::AlreadyApplied { version } | Error::ConnectionLost { version, .. } => {
            (version.clone(), None)
        }
        _ => ("the whole plan".to_string(), None),
    };
    let mut options = vec![
        "fix the database by hand so that the migration can run (or finish what it left half done), then plan again".into(),
        "edit the migration to be re-runnable (IF NOT EXISTS, DROP POLICY IF EXISTS …) if it has never run anywhere else".into(),
    ];
    if let Some(m) = inspection.project.get(&version)
        && let Ok(script) = remainder(scratch, m).await
    {
        options.push(format!(
                "review this remainder script — the statements of {} that still succeed on the target's schema (never run by phantom-sync):\n{}",
                m.file_name(),
                script
            ));
    }
    let reason = match error {
        Error::VerificationFailed { failures } => {
            format!(
                "after the repair the target would still differ from a clean replay: {failures}"
            )
        }
        other => format!("re-applying on a copy of the target's schema fails: {other}"),
    };
    Refusal {
        version,
        reason,
        statement,
        options,
    }
}

/// The statements of `m` that succeed, one by one, on the copy as it stands.
async fn remainder(scratch: &Database, m: &crate::source::project::Migration) -> Result<String> {
    let mut conn = scratch.connect().await?;
    let mut tx = conn
        .begin()
        .await
        .map_err(Error::db("starting the remainder probe"))?;
    let mut kept = Vec::new();
    for statement in &m.statements {
        sqlx::raw_sql("SAVEPOINT probe")
            .execute(&mut *tx)
            .await
            .map_err(Error::db("savepoint"))?;
        let ok = sqlx::raw_sql(sqlx::AssertSqlSafe(statement.clone()))
            .execute(&mut *tx)
            .await
            .is_ok();
        let undo = if ok {
            "RELEASE SAVEPOINT probe"
        } else {
            "ROLLBACK TO SAVEPOINT probe"
        };
        sqlx::raw_sql(undo)
            .execute(&mut *tx)
            .await
            .map_err(Error::db("savepoint"))?;
        if ok {
            kept.push(format!("{};", statement.trim_end_matches(';')));
        } else {
            kept.push(format!(
                "-- skipped (fails on the target): {}",
                first_line(statement)
            ));
        }
    }
    tx.rollback().await.ok();
    Ok(kept.join("\n"))
}
