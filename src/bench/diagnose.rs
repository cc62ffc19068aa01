//! `phantom-sync bench diagnose`: the wall time of `phantom-sync diagnose`
//! on synthetic projects of growing size. Each project is generated in a
//! temporary folder — tables with foreign keys, indexes, RLS policies,
//! functions and triggers, later `ALTER`s and grants — and its state is built
//! on a stand-in database (two phantom migrations, ten pending). The binary
//! itself is run, as a user runs it: once with `--no-cache` (cold: the replay
//! runs), once to fill a fresh effects cache, once more (warm: the folder has
//! not changed). Then, warm again, against a database whose ledger lists
//! none of the migrations — every one pending, the most a diagnosis has to
//! explain — and against the first database once every ledger row records
//! its statements reworded (a comment added, as a formatter run over the
//! folder would leave them): every recorded migration edited, and each
//! row's statements tried where its file runs. The growth exponent between
//! two sizes is `ln(t2/t1) / ln(n2/n1)`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::pg::sandbox::{Database, PgServer, ServerOptions};
use crate::testkit::scenario::{Scenario, build_state};
use crate::{Error, Result};

/// Migrations left pending (not applied, not recorded).
pub const PENDING: usize = 10;

/// One size's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct DiagnoseFigure {
    pub migrations: usize,
    /// `diagnose --no-cache` (the replay runs), ms.
    pub cold_ms: u128,
    /// `diagnose` with the folder's effects cached, ms.
    pub warm_ms: u128,
    /// The same against a database with an empty ledger (every migration pending), ms.
    pub pending_ms: u128,
    /// The same once every ledger row's statements are reworded (every recorded migration edited), ms.
    pub edited_ms: u128,
}

/// The SQL of migration `i` (0-based) of a project of `n`, and whether it
/// may be a phantom (nothing later depends on it).
pub fn migration_sql(i: usize, n: usize) -> (String, bool) {
    if phantoms(n).contains(&i) {
        // Stand-alone: no later migration refers to it.
        let sql = format!(
            "create table public.standalone_{i} (id bigint generated always as identity primary key, body text not null);\n\
             create index standalone_{i}_body_idx on public.standalone_{i} (body);\n\
             alter table public.standalone_{i} enable row level security;\n\
             create policy \"standalone_{i} read\" on public.standalone_{i} for select to authenticated using (true);\n"
        );
        return (sql, true);
    }
    let mut sql = format!(
        "create table public.t_{i} (\n  id uuid primary key default gen_random_uuid(),\n  owner_id uuid references auth.users(id),\n  name text not null,\n  position integer not null default 0,\n  created_at timestamptz not null default now()\n);\n\
         create index t_{i}_owner_idx on public.t_{i} (owner_id);\n\
         alter table public.t_{i} enable row level security;\n\
         create policy \"t_{i} owners\" on public.t_{i} for all to authenticated using (owner_id = auth.uid()) with check (owner_id = auth.uid());\n"
    );
    let earlier = previous_table(i, n);
    if let Some(parent) = earlier {
        sql.push_str(&format!(
            "alter table public.t_{i} add column parent_id uuid references public.t_{parent}(id) on delete cascade;\n"
        ));
    }
    if i.is_multiple_of(3) {
        sql.push_str(&format!(
            "create function public.touch_{i}() returns trigger language plpgsql as $$\nbegin\n  new.position := new.position + 1;\n  return new;\nend\n$$;\n\
             create trigger t_{i}_touch before update on public.t_{i} for each row execute function public.touch_{i}();\n"
        ));
    }
    if i % 4 == 1
        && let Some(parent) = earlier
    {
        sql.push_str(&format!(
            "alter table public.t_{parent} add column note_{i} text;\n\
             create index t_{parent}_note_{i}_idx on public.t_{parent} (note_{i});\n\
             comment on column public.t_{parent}.note_{i} is 'added by migration {i}';\n"
        ));
    }
    if i % 7 == 2
        && let Some(parent) = earlier
    {
        sql.push_str(&format!(
            "alter table public.t_{parent} alter column name set default 'unnamed';\n\
             drop policy \"t_{parent} owners\" on public.t_{parent};\n\
             create policy \"t_{parent} owners\" on public.t_{parent} for all to authenticated using (owner_id = auth.uid() or auth.role() = 'service_role');\n"
        ));
    }
    if i % 10 == 5 {
        sql.push_str(&format!(
            "grant select on public.t_{i} to anon;\nrevoke delete on public.t_{i} from anon;\n"
        ));
    }
    (sql, false)
}

/// The two phantom migrations of a project of `n`.
fn phantoms(n: usize) -> [usize; 2] {
    let recorded = n.saturating_sub(PENDING);
    [recorded / 3, (2 * recorded) / 3]
}

/// The latest earlier migration that created a `t_` table (none for the first).
fn previous_table(i: usize, n: usize) -> Option<usize> {
    (0..i).rev().find(|j| !phantoms(n).contains(j))
}

fn version(i: usize) -> String {
    format!("2024{:010}", i + 1)
}

/// Writes a project of `n` migrations and its scenario file under `dir`;
/// returns the scenario file.
pub fn write_project(dir: &Path, n: usize) -> Result<PathBuf> {
    if n <= PENDING + 3 {
        return Err(Error::Invalid(format!(
            "--migrations {n}: too few (hint: at least {} — {PENDING} are pending and 2 phantom)",
            PENDING + 4
        )));
    }
    let migrations = dir.join("synthetic/supabase/migrations");
    std::fs::create_dir_all(&migrations).map_err(Error::io("create", &migrations))?;
    let mut applied = Vec::new();
    let mut phantom = Vec::new();
    for i in 0..n {
        let (sql, _) = migration_sql(i, n);
        let path = migrations.join(format!("{}_m{i}.sql", version(i)));
        std::fs::write(&path, sql).map_err(Error::io("write", &path))?;
        if i >= n - PENDING {
            continue;
        }
        if phantoms(n).contains(&i) {
            phantom.push(format!("\"{}\"", version(i)));
        } else {
            applied.push(format!("\"{}\"", version(i)));
        }
    }
    let toml = format!(
        "description = \"Synthetic project of {n} migrations: 2 phantom, {PENDING} pending\"\n\
         fixture = \"synthetic\"\n\n[state]\napplied = [{}]\norigin = \"ledger-only\"\nphantom = [{}]\n\n\
         [procedure]\nrun = \"repair\"\n\n[expect]\noutcome = \"repaired\"\n",
        applied.join(", "),
        phantom.join(", ")
    );
    let file = dir.join("synthetic.toml");
    std::fs::write(&file, toml).map_err(Error::io("write", &file))?;
    Ok(file)
}

/// Runs `exe diagnose --json` against `url`; returns the wall time and the
/// statuses' counts as the JSON says them.
async fn run_diagnose(
    exe: &Path,
    url: &str,
    migrations: &Path,
    cache: &Path,
    no_cache: bool,
) -> Result<(u128, serde_json::Value)> {
    let mut command = tokio::process::Command::new(exe);
    command
        .arg("diagnose")
        .arg("--json")
        .arg("--migrations")
        .arg(migrations)
        .env("PHANTOM_DB_URL", url)
        .env("PHANTOM_CACHE_DIR", cache)
        .kill_on_drop(true);
    if no_cache {
        command.arg("--no-cache");
    }
    let started = Instant::now();
    let output = command
        .output()
        .await
        .map_err(Error::io("run", exe.to_path_buf()))?;
    let ms = started.elapsed().as_millis();
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).map_err(|e| {
        Error::Invalid(format!(
            "bench diagnose: the diagnosis is not JSON ({e}); stderr:\n{}",
            String::from_utf8_lossy(&output.stderr)
        ))
    })?;
    Ok((ms, json))
}

fn count(json: &serde_json::Value, status: &str) -> usize {
    json["entries"]
        .as_array()
        .map(|entries| entries.iter().filter(|e| e["status"] == status).count())
        .unwrap_or(0)
}

/// Measures `exe diagnose` on a synthetic project of each size in `sizes` on `major`.
pub async fn diagnose(exe: &Path, major: u8, sizes: &[usize]) -> Result<Vec<DiagnoseFigure>> {
    let server = PgServer::start(major, ServerOptions::default()).await?;
    let result = async {
        let mut figures = Vec::new();
        for &n in sizes {
            let work = crate::files::temp_dir("bench-diagnose")?;
            let scenario = Scenario::load(&write_project(work.path(), n)?)?;
            let project = scenario.project()?;
            let production = Database::create(&server, "synthetic").await?;
            let mut conn = production.connect().await?;
            build_state(&scenario, &project, &mut conn).await?;
            drop(conn);
            let url = server.url(&production.name);
            let migrations = scenario.migrations_dir();
            let cache = work.path().join("cache");
            let (cold_ms, json) = run_diagnose(exe, &url, &migrations, &cache, true).await?;
            let (phantom, pending) = (count(&json, "phantom"), count(&json, "pending"));
            if phantom != 2 || pending != PENDING {
                return Err(Error::Invalid(format!(
                    "bench diagnose: expected 2 phantom and {PENDING} pending migrations, the diagnosis says {phantom} and {pending}"
                )));
            }
            run_diagnose(exe, &url, &migrations, &cache, false).await?;
            let (warm_ms, warm) = run_diagnose(exe, &url, &migrations, &cache, false).await?;
            if warm["fingerprint"] != json["fingerprint"] {
                return Err(Error::Invalid(
                    "bench diagnose: the cached diagnosis differs from the replayed one".into(),
                ));
            }
            let edited_ms = all_edited(exe, &production, &url, &migrations, &cache, n).await;
            production.drop_database().await?;
            let edited_ms = edited_ms?;
            let pending_ms = all_pending(exe, &server, &migrations, &cache, n).await?;
            figures.push(DiagnoseFigure {
                migrations: n,
                cold_ms,
                warm_ms,
                pending_ms,
                edited_ms,
            });
        }
        Ok(figures)
    }
    .await;
    server.stop().await?;
    result
}

/// A warm `diagnose` of the `n` migrations of `migrations` against a fresh
/// database whose ledger is empty (the cache filled first, should this
/// database's environment differ); checks that all `n` are pending.
async fn all_pending(
    exe: &Path,
    server: &PgServer,
    migrations: &Path,
    cache: &Path,
    n: usize,
) -> Result<u128> {
    let empty = Database::create(server, "unpushed").await?;
    let result = async {
        let mut conn = empty.connect().await?;
        crate::source::ledger::ensure_table(&mut conn).await?;
        drop(conn);
        let url = server.url(&empty.name);
        run_diagnose(exe, &url, migrations, cache, false).await?;
        let (ms, json) = run_diagnose(exe, &url, migrations, cache, false).await?;
        let pending = count(&json, "pending");
        if pending != n {
            return Err(Error::Invalid(format!(
                "bench diagnose: against an empty ledger, expected {n} pending migrations, the diagnosis says {pending}"
            )));
        }
        Ok(ms)
    }
    .await;
    empty.drop_database().await?;
    result
}

/// A warm `diagnose` against `production` (at `url`) once every ledger row
/// records its statements with a comment line before the first: what a
/// formatter run over a pushed folder leaves. Checks that every recorded
/// migration that is not a phantom is diagnosed edited.
async fn all_edited(
    exe: &Path,
    production: &Database,
    url: &str,
    migrations: &Path,
    cache: &Path,
    n: usize,
) -> Result<u128> {
    let mut conn = production.connect().await?;
    sqlx::raw_sql(
        "UPDATE supabase_migrations.schema_migrations \
            SET statements = ARRAY['-- reworded' || chr(10) || statements[1]] || statements[2:]",
    )
    .execute(&mut conn)
    .await
    .map_err(Error::db("rewording the ledger's statements"))?;
    drop(conn);
    let (ms, json) = run_diagnose(exe, url, migrations, cache, false).await?;
    let edited = count(&json, "edited");
    if edited != n - PENDING - 2 {
        return Err(Error::Invalid(format!(
            "bench diagnose: with every ledger row reworded, expected {} edited migrations, the diagnosis says {edited}",
            n - PENDING - 2
        )));
    }
    Ok(ms)
}

/// `ln(t2/t1) / ln(n2/n1)`: how the time grows with the migrations.
pub fn growth(a: &DiagnoseFigure, b: &DiagnoseFigure, time: fn(&DiagnoseFigure) -> u128) -> f64 {
    let (t1, t2) = (time(a).max(1) as f64, time(b).max(1) as f64);
    (t2 / t1).ln() / (b.migrations as f64 / a.migrations as f64).ln()
}

/// The figures as a Markdown table, with the growth exponent from the previous size.
pub fn render(major: u8, figures: &[DiagnoseFigure]) -> String {
    let mut out = String::from(
        "| major | migrations | diagnose, cold (--no-cache) | growth | diagnose, warm (cached) | growth | warm, empty ledger (all pending) | growth | warm, every row reworded (all edited) | growth |\n|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for (i, f) in figures.iter().enumerate() {
        let prev = i.checked_sub(1).map(|p| &figures[p]);
        let grew = |time: fn(&DiagnoseFigure) -> u128| {
            prev.map_or("—".to_string(), |prev| {
                format!("n^{:.2}", growth(prev, f, time))
            })
        };
        let (cold, warm, pending, edited) = (
            grew(|x| x.cold_ms),
            grew(|x| x.warm_ms),
            grew(|x| x.pending_ms),
            grew(|x| x.edited_ms),
        );
        out.push_str(&format!(
            "| {major} | {} | {} ms | {cold} | {} ms | {warm} | {} ms | {pending} | {} ms | {edited} |\n",
            f.migrations, f.cold_ms, f.warm_ms, f.pending_ms, f.edited_ms
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn projects_have_two_phantoms_nothing_depends_on_and_ten_pending() {
        let dir = crate::files::temp_dir("bench-diagnose-test").unwrap();
        let file = write_project(dir.path(), 30).unwrap();
        let toml = std::fs::read_to_string(file).unwrap();
        assert!(
            toml.contains("phantom = [\"20240000000007\", \"20240000000014\"]"),
            "{toml}"
        );
        let applied = toml.lines().find(|l| l.starts_with("applied")).unwrap();
        assert_eq!(applied.matches(", ").count() + 1, 30 - PENDING - 2);
        for p in phantoms(30) {
            for later in p + 1..30 {
                let (sql, _) = migration_sql(later, 30);
                assert!(
                    !sql.contains(&format!("standalone_{p}")),
                    "{later} uses {p}"
                );
            }
        }
        assert!(write_project(dir.path(), 12).is_err());
    }

    #[test]
    fn growth_is_the_exponent_of_the_power_law() {
        let f = |n, ms| DiagnoseFigure {
            migrations: n,
            cold_ms: ms,
            warm_ms: ms,
            pending_ms: ms,
            edited_ms: ms,
        };
        assert!((growth(&f(100, 100), &f(1000, 1000), |x| x.cold_ms) - 1.0).abs() < 1e-9);
        assert!((growth(&f(100, 100), &f(1000, 10_000), |x| x.cold_ms) - 2.0).abs() < 1e-9);
    }

    #[test]
    fn the_table_has_each_figure_with_its_growth_from_the_size_before() {
        let f = |n, cold_ms, warm_ms, pending_ms, edited_ms| DiagnoseFigure {
            migrations: n,
            cold_ms,
            warm_ms,
            pending_ms,
            edited_ms,
        };
        let table = render(
            17,
            &[f(100, 1000, 50, 40, 300), f(1000, 10_000, 500, 4000, 300)],
        );
        let rows: Vec<&str> = table.lines().skip(2).collect();
        assert_eq!(
            rows,
            [
                "| 17 | 100 | 1000 ms | — | 50 ms | — | 40 ms | — | 300 ms | — |",
                "| 17 | 1000 | 10000 ms | n^1.00 | 500 ms | n^1.00 | 4000 ms | n^2.00 | 300 ms | n^0.00 |",
            ]
        );
    }
}
