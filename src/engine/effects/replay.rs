//! The replay: each migration of a project run on a scratch database (a
//! template clone with the Supabase shim), set up like the target first, and
//! what it changed read back (see the module above). One [`Lane`] walks a
//! range of migrations on one database. A long project is replayed on two
//! databases at once ([`replay_split`]): the first lane records the early
//! migrations while the second applies them without reading anything, reads
//! the whole catalog once and records the rest — two server backends busy
//! instead of one, so the replay takes about the time of its longer lane.
//! The two meet only if the second lane started from exactly the catalog
//! the first ended with; otherwise the first lane goes on alone.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use sqlx::Connection;
use sqlx::postgres::PgConnection;

use super::capture::{Capture, Next};
use super::{Effects, MigrationEffects, ReplayStats, db_message, first_line, seed_rows};
use crate::engine::environment::{GrantOrigins, Scratch};
use crate::source::catalog::{Catalog, CatalogOptions, TrackedCatalog};
use crate::source::environment::Environment;
use crate::source::project::{Migration, Project};
use crate::{Error, Result};

/// How a replay reads the catalog after each migration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayMode {
    /// Only what each migration touched (event triggers; the default).
    Targeted,
    /// The whole catalog after every migration (the reference the targeted
    /// mode is tested against).
    Whole,
}

/// Projects shorter than this are replayed on one database: a second
/// database, its setup and its whole read cost more than they save.
pub const SPLIT_FROM: usize = 40;

/// Replays every migration of `project` on `scratch` (an empty database with
/// the shim), set up first like the target (`environment`: its default
/// privileges, roles, extensions), and records what each one changes.
pub async fn replay(
    project: &Project,
    scratch: &mut PgConnection,
    options: &CatalogOptions,
    environment: &Environment,
) -> Result<Effects> {
    replay_with(project, scratch, options, environment, ReplayMode::Targeted).await
}

/// [`replay`], reading the catalog the way `mode` says.
pub async fn replay_with(
    project: &Project,
    scratch: &mut PgConnection,
    options: &CatalogOptions,
    environment: &Environment,
    mode: ReplayMode,
) -> Result<Effects> {
    let progress = Progress::new(project.migrations.len());
    let mut lane = Lane::start(scratch, options, environment, mode, &[]).await?;
    let initial = lane.tracked.catalog().clone();
    lane.run(&project.migrations, &progress).await?;
    lane.finish(initial, environment).await
}

/// Where a project may be cut in two for [`replay_split`]: about three fifths
/// in (the later migrations read a larger catalog), or `None` for a short
/// project or one with a command whose effect reaches beyond its database
/// (roles, memberships, tablespaces, databases, subscriptions): both lanes
/// run the first part on one server, so such a command would run twice.
pub fn split_point(project: &Project) -> Option<usize> {
    let n = project.migrations.len();
    if n < SPLIT_FROM || project.migrations.iter().any(reaches_the_cluster) {
        return None;
    }
    Some(n * 3 / 5)
}

/// Whether `migration` has a statement that changes the cluster, not only
/// its database (read conservatively: any such pair of words counts).
fn reaches_the_cluster(migration: &Migration) -> bool {
    const OBJECTS: &[&str] = &[
        "role",
        "user",
        "group",
        "tablespace",
        "database",
        "subscription",
    ];
    migration.statements.iter().any(|statement| {
        let sql = statement.to_ascii_lowercase();
        let words: Vec<&str> = sql
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| !w.is_empty())
            .collect();
        let pair = |w: &[&str]| {
            (["create", "alter", "drop"].contains(&w[0]) && OBJECTS.contains(&w[1]))
                || (["reassign", "drop"].contains(&w[0]) && w[1] == "owned")
                || (w[0] == "alter" && w[1] == "system")
        };
        // GRANT/REVOKE without ON: a role membership.
        let membership =
            (words.contains(&"grant") || words.contains(&"revoke")) && !words.contains(&"on");
        membership || words.windows(2).any(pair)
    })
}

/// [`replay`] on two fresh databases at once, cut at `at` (see the module's
/// doc and [`split_point`]); the answer is the one a single replay gives.
pub async fn replay_split(
    project: &Project,
    first: &mut PgConnection,
    second: &mut PgConnection,
    options: &CatalogOptions,
    environment: &Environment,
    at: usize,
) -> Result<Effects> {
    let (head, tail) = project
        .migrations
        .split_at(at.min(project.migrations.len()));
    let progress = Progress::new(project.migrations.len());
    let lead = async {
        let mut lane = Lane::start(first, options, environment, ReplayMode::Targeted, &[]).await?;
        let initial = lane.tracked.catalog().clone();
        lane.run(head, &progress).await?;
        Ok::<_, Error>((lane, initial))
    };
    let follow = async {
        let mut lane =
            Lane::start(second, options, environment, ReplayMode::Targeted, head).await?;
        let start = lane.tracked.catalog().clone();
        lane.run(tail, &progress).await?;
        Ok::<_, Error>((lane, start))
    };
    let (lead, follow) = tokio::join!(lead, follow);
    let (mut lead, initial) = lead?;
    let why = match follow {
        Ok((mut follow, start)) if start == *lead.tracked.catalog() => {
            let mut migrations = std::mem::take(&mut lead.migrations);
            migrations.append(&mut follow.migrations);
            follow.migrations = migrations;
            follow.stats.targeted += lead.stats.targeted;
            follow.stats.roots += lead.stats.roots;
            follow.stats.whole += lead.stats.whole;
            follow.stats.replans += lead.stats.replans;
            follow.stats.split_at = Some(head.len());
            tracing::debug!("replay, first lane: {}", lead.clock);
            return follow.finish(initial, environment).await;
        }
        Ok(_) => "the second lane started from another catalog".to_string(),
        Err(e) => format!("the second lane failed: {e}"),
    };
    tracing::debug!("replay: {why}; the first lane replays the rest alone");
    progress.rewind(head.len());
    lead.run(tail, &progress).await?;
    lead.finish(initial, environment).await
}

/// Migrations replayed so far, over every lane (the progress bar's count).
pub(super) struct Progress {
    done: AtomicUsize,
    total: usize,
}

impl Progress {
    pub(super) fn new(total: usize) -> Progress {
        Progress {
            done: AtomicUsize::new(0),
            total,
        }
    }

    fn one_more(&self) {
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::info!(target: "phantom_sync::progress", done = done.min(self.total) as u64);
    }

    fn rewind(&self, to: usize) {
        self.done.store(to, Ordering::Relaxed);
    }
}

/// One database's part of a replay: its connection, the catalog as it
/// stands, and what the migrations it recorded changed.
pub(super) struct Lane<'c, 'e> {
    pub(super) conn: &'c mut PgConnection,
    pub(super) options: &'c CatalogOptions,
    setup: Scratch<'e>,
    pub(super) tracked: TrackedCatalog,
    pub(super) capture: Option<Capture>,
    pub(super) migrations: Vec<MigrationEffects>,
    stats: ReplayStats,
    clock: PhaseClock,
    planned_for: usize,
}

impl<'c, 'e> Lane<'c, 'e> {
    /// Sets the database up like the target, applies `unrecorded` without
    /// reading anything, then reads the whole catalog and (targeted mode)
    /// installs the event triggers.
    pub(super) async fn start(
        conn: &'c mut PgConnection,
        options: &'c CatalogOptions,
        environment: &'e Environment,
        mode: ReplayMode,
        unrecorded: &[Migration],
    ) -> Result<Lane<'c, 'e>> {
        let mut setup = Scratch::prepare(conn, environment).await?;
        for migration in unrecorded {
            apply_clean(conn, migration, false).await?;
            setup.after_migration(conn).await?;
        }
        let tracked = TrackedCatalog::read(conn, options).await?;
        let capture = match mode {
            ReplayMode::Targeted => Some(Capture::install(conn).await),
            ReplayMode::Whole => None,
        };
        Ok(Lane {
            planned_for: tracked.catalog().objects.len(),
            conn,
            options,
            setup,
            tracked,
            capture,
            migrations: Vec::new(),
            stats: ReplayStats::default(),
            clock: PhaseClock::default(),
        })
    }

    /// Replays `migrations` in order, recording what each one changes.
    pub(super) async fn run(
        &mut self,
        migrations: &[Migration],
        progress: &Progress,
    ) -> Result<()> {
        self.clock.total += migrations.len();
        for migration in migrations {
            let started = Instant::now();
            let recording = self.capture.as_ref().is_some_and(Capture::recording);
            apply_clean(self.conn, migration, recording).await?;
            let applied = Instant::now();
            let next = match &self.capture {
                Some(capture) => {
                    capture
                        .take(
                            self.conn,
                            migration,
                            &self.tracked,
                            &self.options.exclude_schemas,
                        )
                        .await?
                }
                None => Next::Reread("whole reads asked for"),
            };
            let taken = Instant::now();
            let changes = self.read(migration, next).await?;
            self.migrations.push(MigrationEffects {
                version: migration.version.clone(),
                changes,
            });
            let objects = self.tracked.catalog().objects.len();
            if replan_when_grown(self.conn, &mut self.planned_for, objects).await? {
                self.stats.replans += 1;
            }
            let read = Instant::now();
            // Default privileges for a schema this migration created (they change no object).
            self.setup.after_migration(self.conn).await?;
            self.clock
                .add([started, applied, taken, read, Instant::now()]);
            progress.one_more();
        }
        Ok(())
    }

    /// Reads what `next` says changed; returns the differences.
    async fn read(
        &mut self,
        migration: &Migration,
        next: Next,
    ) -> Result<Vec<crate::source::catalog::Difference>> {
        match next {
            Next::Refresh(refresh) if refresh.is_empty() => Ok(Vec::new()),
            Next::Refresh(refresh) => {
                self.stats.targeted += 1;
                self.stats.roots += refresh.roots.len();
                self.tracked
                    .refresh(self.conn, self.options, &refresh)
                    .await
            }
            Next::Reread(why) => {
                self.stats.whole += 1;
                tracing::debug!(
                    "replay of {}: whole catalog read ({why})",
                    migration.file_name()
                );
                self.tracked.reread(self.conn, self.options).await
            }
        }
    }

    /// The effects: `initial` and the recorded changes, the seed rows of
    /// this lane's database, the grants' origins.
    async fn finish(self, initial: Catalog, environment: &Environment) -> Result<Effects> {
        tracing::debug!(
            "replay: {} migrations recorded, {} targeted reads ({} roots), {} whole reads, {} replans; {}",
            self.migrations.len(),
            self.stats.targeted,
            self.stats.roots,
            self.stats.whole,
            self.stats.replans,
            self.clock
        );
        let end = self.tracked.into_catalog();
        let seed = seed_rows(self.conn, &end.tables()).await?;
        let mut effects = Effects::new(initial, self.migrations, seed);
        effects.stats = self.stats;
        effects.grants = GrantOrigins::of(&effects.end, environment);
        debug_assert_eq!(effects.end, end, "changes replay to the end catalog");
        Ok(effects)
    }
}

/// Forgets the connection's prepared statements once the catalog has doubled
/// since they were planned. Their generic plans were made for the catalog as
/// it was — sequential scans of a small `pg_class`, `pg_depend`, … — and
/// nothing else makes the server plan them again (a migration's DDL changes
/// rows of the catalogs, not their definitions): without this, every read
/// of a replay of 1,000 migrations costs in proportion to the catalog.
async fn replan_when_grown(
    conn: &mut PgConnection,
    planned_for: &mut usize,
    objects: usize,
) -> Result<bool> {
    if objects < 2 * (*planned_for).max(32) {
        return Ok(false);
    }
    *planned_for = objects;
    conn.clear_cached_statements()
        .await
        .map_err(Error::db("forgetting the replay's prepared statements"))?;
    Ok(true)
}

/// Where a replay's time went, per phase (apply, log, read, environment),
/// for the first and the second half of the migrations — a replay whose cost
/// per migration grows shows it here.
#[derive(Debug, Default)]
struct PhaseClock {
    halves: [[std::time::Duration; 4]; 2],
    /// Migrations this clock will see, and has seen.
    total: usize,
    seen: usize,
}

impl PhaseClock {
    fn add(&mut self, marks: [Instant; 5]) {
        let half = usize::from(2 * self.seen >= self.total);
        self.seen += 1;
        for (phase, pair) in marks.windows(2).enumerate() {
            self.halves[half][phase] += pair[1] - pair[0];
        }
    }
}

impl std::fmt::Display for PhaseClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, half) in self.halves.iter().enumerate() {
            let [apply, log, read, env] = half.map(|d| d.as_millis());
            write!(
                f,
                "{}apply {apply} ms, log {log} ms, read {read} ms, environment {env} ms",
                if i == 0 { "" } else { " | " }
            )?;
        }
        Ok(())
    }
}

/// Runs one migration's statements in a transaction, as the CLI would on a
/// fresh database. They go to the server in one message with the
/// transaction's BEGIN and COMMIT (one round trip); when that fails, they run
/// again one by one in a new transaction to name the statement that fails.
/// While the event triggers record (`capturing`), the same message first
/// empties their log and leaves the session planning the reads that follow
/// generically (see `capture`), so neither costs a round trip of its own.
async fn apply_clean(
    conn: &mut PgConnection,
    migration: &Migration,
    capturing: bool,
) -> Result<()> {
    for (i, statement) in migration.statements.iter().enumerate() {
        tracing::debug!(target: "phantom_sync::sql", "replay {} statement {}: {statement}", migration.version, i + 1);
    }
    let batch = format!(
        "BEGIN;\n{}COMMIT;{}",
        message(&migration.statements, capturing),
        generic(capturing)
    );
    if sqlx::raw_sql(sqlx::AssertSqlSafe(batch))
        .execute(&mut *conn)
        .await
        .is_ok()
    {
        return Ok(());
    }
    sqlx::raw_sql("ROLLBACK")
        .execute(&mut *conn)
        .await
        .map_err(Error::db("rolling back a failed replay transaction"))?;
    let mut tx = conn
        .begin()
        .await
        .map_err(Error::db("starting a replay transaction"))?;
    if capturing {
        sqlx::raw_sql(sqlx::AssertSqlSafe(start_recording()))
            .execute(&mut *tx)
            .await
            .map_err(Error::db("emptying the DDL log"))?;
    }
    for (index, statement) in migration.statements.iter().enumerate() {
        if let Err(e) = sqlx::raw_sql(sqlx::AssertSqlSafe(statement.clone()))
            .execute(&mut *tx)
            .await
        {
            return Err(Error::ReplayFailed {
                migration: migration.file_name(),
                path: migration.path.clone(),
                statement_index: index + 1,
                statement: first_line(statement),
                message: db_message(&e),
            });
        }
    }
    tx.commit().await.map_err(Error::db(format!(
        "committing replay of {}",
        migration.file_name()
    )))
}

/// What starts recording a migration, inside its transaction: the log
/// emptied, the transaction's id kept (see `capture`).
fn start_recording() -> String {
    format!(
        "TRUNCATE pg_temp.phantom_replay_log;\n{}",
        super::capture::RECORD_XID
    )
}

/// A migration's statements as one message. While the event triggers
/// record (`capturing`), it first empties their log, keeps the transaction's
/// id and lets the statements be planned as usual (the reads leave the
/// session planning generically).
/// A statement may end in a line comment: each separator starts a new line.
pub(super) fn message(statements: &[String], capturing: bool) -> String {
    let before = if capturing {
        format!("RESET plan_cache_mode;\n{}", start_recording())
    } else {
        String::new()
    };
    format!("{before}{}\n;\n", statements.join("\n;\n"))
}

/// What leaves the session planning the replay's reads generically (see
/// `capture`), sent after a migration's statements while recording.
pub(super) fn generic(capturing: bool) -> &'static str {
    if capturing {
        "\nSET plan_cache_mode = force_generic_plan"
    } else {
        ""
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(sqls: &[&str]) -> Project {
        let migrations = sqls
            .iter()
            .enumerate()
            .map(|(i, sql)| Migration {
                version: format!("{:04}", i + 1),
                name: "m".into(),
                path: format!("{:04}_m.sql", i + 1).into(),
                sql: (*sql).into(),
                statements: vec![(*sql).into()],
            })
            .collect();
        Project {
            dir: Default::default(),
            migrations,
            skipped: Vec::new(),
        }
    }

    #[test]
    fn long_projects_are_cut_at_three_fifths_short_ones_are_not_cut() {
        let table = "create table t (id int);";
        assert_eq!(split_point(&project(&[table; SPLIT_FROM - 1])), None);
        assert_eq!(
            split_point(&project(&[table; SPLIT_FROM])),
            Some(SPLIT_FROM * 3 / 5)
        );
        assert_eq!(split_point(&project(&[table; 1000])), Some(600));
    }

    /// Where a long project with `sql` as one of its migrations is cut.
    fn split_with(sql: &str) -> Option<usize> {
        let mut sqls = vec!["create table t (id int);"; SPLIT_FROM];
        sqls[7] = sql;
        split_point(&project(&sqls))
    }

    #[test]
    fn a_command_that_reaches_beyond_the_database_keeps_the_replay_on_one() {
        for sql in [
            "create role reader nologin;",
            "CREATE USER app;",
            "alter role authenticated set statement_timeout = '5s';",
            "drop group old;",
            "grant authenticated to app;",
            "revoke anon from app;",
            "reassign owned by a to b;",
            "drop owned by a;",
            "-- members\ngrant authenticated to app;",
            "alter system set work_mem = '8MB';",
            "create tablespace fast location '/x';",
            "alter database postgres set timezone = 'UTC';",
            "create subscription s connection 'x' publication p;",
        ] {
            assert_eq!(split_with(sql), None, "{sql}");
        }
        for sql in [
            "grant select on public.t to anon;",
            "revoke all on function f() from public;",
            "alter default privileges for role postgres grant select on tables to anon;",
            "create table roles (role text, user_id uuid);",
            "create policy p on t to authenticated using (auth.role() = 'x');",
        ] {
            assert!(split_with(sql).is_some(), "{sql}");
        }
    }
}
