//! `phantom-sync bench rehearsal`: the rehearsal's wall time by phase, on
//! the built-in incident with many rows in `collections`, captured from a
//! stand-in production server through `--db-url` as a user would.

use crate::engine::plan::Phase;
use crate::pg::sandbox::{Database, PgServer, ServerOptions};
use crate::pg::target::Target;
use crate::rehearse::{RehearseOptions, Source, builtin, rehearse};
use crate::testkit::scenario::{Scenario, build_state};
use crate::{Error, Result};

/// Phases and their wall times (ms) of one rehearsal on `major` with
/// `collections` rows in `collections`.
pub async fn rehearsal(major: u8, collections: u64) -> Result<Vec<(String, u128)>> {
    let work = crate::files::temp_dir("bench-rehearsal")?;
    let mut scenario = Scenario::load(&builtin::write(&work.path().join("incident"))?)?;
    scenario
        .state
        .data_scale
        .insert("fixture.collections".into(), collections);
    let project = scenario.project()?;
    let server = PgServer::start(major, ServerOptions::default()).await?;
    let result = async {
        let production = Database::create(&server, "production").await?;
        let mut conn = production.connect().await?;
        build_state(&scenario, &project, &mut conn).await?;
        drop(conn);
        let options = RehearseOptions {
            source: Source::Database(Box::new(Target::parse(&server.url(&production.name))?)),
            migrations: Some(scenario.migrations_dir()),
            schema_only: false,
            out: work.path().join("out"),
            accept_existing_drift: false,
        };
        let rehearsal = rehearse(&options).await?;
        if !rehearsal.passed {
            return Err(Error::Invalid(format!(
                "the benchmark's rehearsal did not pass: {}",
                rehearsal.error.as_deref().unwrap_or("a drill failed")
            )));
        }
        let mut phases = rehearsal.timings_ms.clone();
        if let Some(journal) = &rehearsal.journal {
            let sum = |phase: Phase| journal.phase(phase).map(|e| e.duration_ms).sum::<u128>();
            phases.push(("  repair: Phase 1 (backup)".into(), sum(Phase::Backup)));
            phases.push((
                "  repair: Phases 2-3 (ledger repair, re-apply)".into(),
                sum(Phase::LedgerRepair) + sum(Phase::Reapply),
            ));
            phases.push((
                "  repair: Phase 4 (verify, re-checksums preserved tables)".into(),
                sum(Phase::Verify),
            ));
        }
        Ok(phases)
    }
    .await;
    server.stop().await?;
    result
}
