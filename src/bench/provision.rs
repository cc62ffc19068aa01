//! `phantom-sync bench provision`: what an ephemeral database costs. Per
//! major, over N runs: (a) a container from start to ready, (b) a scenario
//! database cloned from the shim template — alone and with two clones at
//! once — and (c) a database built from scratch by running the shim SQL.

use std::time::{Duration, Instant};

use sqlx::Connection;

use crate::pg::sandbox::server::{PgServer, ServerOptions, unique};
use crate::pg::sandbox::{Database, SUPABASE_SHIM};
use crate::pg::sql::quote_ident;
use crate::{Error, Result};

/// Timings of one major.
#[derive(Debug, Clone)]
pub struct ProvisionFigures {
    pub major: u8,
    pub container_start: Vec<Duration>,
    pub clone: Vec<Duration>,
    pub clone_two_at_once: Vec<Duration>,
    pub from_scratch: Vec<Duration>,
}

/// Measures provisioning on each major, `runs` times each.
pub async fn provision(majors: &[u8], runs: usize) -> Result<Vec<ProvisionFigures>> {
    let mut all = Vec::new();
    for &major in majors {
        tracing::info!(target: "phantom_sync::progress", "bench: PostgreSQL {major}, {runs} runs");
        let server = PgServer::shared(major).await?;
        Database::create(server, "warm-up")
            .await?
            .drop_database()
            .await?;
        let mut figures = ProvisionFigures {
            major,
            container_start: Vec::new(),
            clone: Vec::new(),
            clone_two_at_once: Vec::new(),
            from_scratch: Vec::new(),
        };
        for _ in 0..runs {
            let started = Instant::now();
            let own = PgServer::start(major, ServerOptions::default()).await?;
            figures.container_start.push(started.elapsed());
            own.stop().await?;

            let started = Instant::now();
            let db = Database::create(server, "bench clone").await?;
            figures.clone.push(started.elapsed());
            db.drop_database().await?;

            let (a, b) = tokio::join!(timed_clone(server), timed_clone(server));
            figures.clone_two_at_once.push(a?);
            figures.clone_two_at_once.push(b?);

            figures.from_scratch.push(from_scratch(server).await?);
        }
        all.push(figures);
    }
    Ok(all)
}

async fn timed_clone(server: &PgServer) -> Result<Duration> {
    let started = Instant::now();
    let db = Database::create(server, "bench pair").await?;
    let elapsed = started.elapsed();
    db.drop_database().await?;
    Ok(elapsed)
}

/// A database made the slow way: empty database, then the whole shim SQL.
async fn from_scratch(server: &PgServer) -> Result<Duration> {
    let name = format!("bench_scratch_{}", unique());
    let started = Instant::now();
    let mut admin = server.target("postgres").connect().await?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "CREATE DATABASE {} TEMPLATE template0",
        quote_ident(&name)
    )))
    .execute(&mut admin)
    .await
    .map_err(Error::db("creating a scratch database"))?;
    let mut conn = server.target(&name).connect().await?;
    sqlx::raw_sql(SUPABASE_SHIM)
        .execute(&mut conn)
        .await
        .map_err(Error::db("applying the shim"))?;
    let elapsed = started.elapsed();
    conn.close().await.ok();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE {} WITH (FORCE)",
        quote_ident(&name)
    )))
    .execute(&mut admin)
    .await
    .map_err(Error::db("dropping a scratch database"))?;
    Ok(elapsed)
}

/// Median and 95th percentile, in milliseconds.
pub fn median_p95(samples: &[Duration]) -> (f64, f64) {
    if samples.is_empty() {
        return (0.0, 0.0);
    }
    let mut ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    ms.sort_by(f64::total_cmp);
    let pick = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
    (pick(0.5), pick(0.95))
}

/// The benchmark table printed by `make bench`.
pub fn render(figures: &[ProvisionFigures]) -> String {
    let mut out = String::from(
        "| major | runs | (a) start→ready med / p95 ms | (b) clone med / p95 ms | (b) two at once med / p95 ms | (c) shim from scratch med / p95 ms | a/b | c/b |\n\
         |---|---|---|---|---|---|---|---|\n",
    );
    for f in figures {
        let a = median_p95(&f.container_start);
        let b = median_p95(&f.clone);
        let b2 = median_p95(&f.clone_two_at_once);
        let c = median_p95(&f.from_scratch);
        out.push_str(&format!(
            "| {} | {} | {:.0} / {:.0} | {:.1} / {:.1} | {:.1} / {:.1} | {:.1} / {:.1} | {:.0} | {:.1} |\n",
            f.major,
            f.clone.len(),
            a.0,
            a.1,
            b.0,
            b.1,
            b2.0,
            b2.1,
            c.0,
            c.1,
            a.0 / b.0.max(0.001),
            c.0 / b.0.max(0.001)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_p95_pick_the_right_samples() {
        let samples: Vec<Duration> = (1..=20).map(Duration::from_millis).collect();
        let (median, p95) = median_p95(&samples);
        assert_eq!(median, 11.0);
        assert_eq!(p95, 19.0);
        assert_eq!(median_p95(&[]), (0.0, 0.0));
    }
}
