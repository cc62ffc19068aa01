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
                "  repair: Phase 4 (verify; checksums touched tables, guards the rest)".into(),
                sum(Phase::Verify),
            ));
            let all: u128 = journal.entries.iter().map(|e| e.duration_ms).sum();
            phases.push((
                "  repair outside Phase 1 (Phases 2-4)".into(),
                all - sum(Phase::Backup),
            ));
        }
        let get = |name: &str| {
            rehearsal
                .timings_ms
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, ms)| *ms)
                .unwrap_or(0)
        };
        let total: u128 = rehearsal.timings_ms.iter().map(|(_, ms)| ms).sum();
        let floor = get("capture") + get("restore");
        phases.push(("whole rehearsal".into(), total));
        phases.push((
            "floor: one pg_dump + one pg_restore (capture + restore)".into(),
            floor,
        ));
        phases.push((
            format!(
                "whole rehearsal / floor (target ≤ 2): {:.2}",
                total as f64 / floor.max(1) as f64
            ),
            total,
        ));
        Ok(phases)
    }
    .await;
    server.stop().await?;
    result
}
