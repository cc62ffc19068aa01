//! What each local migration does to a database, found by replay — never by
//! parsing SQL. The migrations run one by one on a scratch database (a
//! template clone with the Supabase shim). While each runs, event triggers
//! record what it touches (`capture`); afterwards only those objects are read
//! again, so the work grows with the statements, not with migrations ×
//! catalog size. What each migration changed is kept as a list of
//! differences; the catalog after any prefix of the migrations follows from
//! the first catalog and those lists, and [`Effects`] answers the questions
//! the diagnosis asks of them — every shape the migrations give an object
//! from one migration onwards — by key, without materialising the prefixes.
//! `replay` runs the migrations (on two databases at once for a long
//! project); `trial` runs other statements in a migration's place and rolls
//! them back (a ledger row's recorded ones); `cache` keeps the effects of a
//! folder on disk between runs.

pub mod cache;
mod capture;
mod replay;
mod trial;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use sqlx::postgres::PgConnection;

use crate::engine::environment::GrantOrigins;
use crate::pg::sql::{quote_ident, quote_literal};
use crate::source::catalog::{Catalog, Change, Difference};
use crate::{Error, Result};
pub use replay::{ReplayMode, SPLIT_FROM, replay, replay_split, replay_with, split_point};
pub use trial::{Instead, Tried, replay_trying};

/// The effects of every local migration, in version order.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Effects {
    /// The catalog before any migration (the scratch database with the shim).
    pub initial: Catalog,
    /// The catalog after every migration (the clean replay's end state).
    pub end: Catalog,
    /// One entry per migration, in the project's order.
    pub migrations: Vec<MigrationEffects>,
    /// Rows in the clean replay's tables, keyed by table (see [`SeedRows`]).
    pub seed: SeedRows,
    /// How the replay read the catalog.
    #[serde(default)]
    pub stats: ReplayStats,
    /// Which grants a migration chose and which the target's environment
    /// gives (the replay ran under the target's default privileges).
    #[serde(default)]
    pub grants: GrantOrigins,
    /// Per key, the definitions it takes after each migration that changes it.
    #[serde(skip)]
    history: OnceLock<History>,
    /// The end catalog's tables.
    #[serde(skip)]
    tables: OnceLock<crate::source::catalog::TableNames>,
}

/// How many migrations were followed by a targeted read (and how many roots
/// those reads asked for), and how many by a read of the whole catalog (no
/// event triggers, or a change they cannot name); how many times the reads
/// were planned again as the catalog grew.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplayStats {
    pub targeted: usize,
    /// Roots read by the targeted reads, over all of them.
    #[serde(default)]
    pub roots: usize,
    pub whole: usize,
    #[serde(default)]
    pub replans: usize,
    /// Where the replay was cut in two (`replay_split`), if it was.
    #[serde(default)]
    pub split_at: Option<usize>,
}

/// `key → [(prefix, definition after that prefix)]`, prefixes ascending.
type History = HashMap<String, Vec<(usize, Option<String>)>>;

/// What one migration changed in the catalog.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MigrationEffects {
    pub version: String,
    /// Objects the migration created, altered or dropped (the catalog after
    /// it compared with the one before it, as [`crate::source::catalog::diff`]
    /// would say it).
    pub changes: Vec<Difference>,
}

/// Seed data: for each table, the rows a clean replay leaves in it, reduced
/// to their stable columns (no uuids, timestamps or serials, whose values
/// differ from one replay to the next) and rendered as sorted JSON objects.
pub type SeedRows = BTreeMap<String, Vec<String>>;

impl Effects {
    /// Effects made of a first catalog and each migration's changes (the
    /// end catalog follows from them).
    pub fn new(initial: Catalog, migrations: Vec<MigrationEffects>, seed: SeedRows) -> Effects {
        let mut end = initial.clone();
        for m in &migrations {
            apply(&mut end, &m.changes);
        }
        Effects {
            initial,
            end,
            migrations,
            seed,
            stats: ReplayStats::default(),
            grants: GrantOrigins::default(),
            history: OnceLock::new(),
            tables: OnceLock::new(),
        }
    }

    /// The catalog after every migration (the clean replay's end state).
    pub fn final_catalog(&self) -> &Catalog {
        &self.end
    }

    /// The end catalog's tables (`schema.table`), listed once.
    pub fn final_tables(&self) -> &crate::source::catalog::TableNames {
        self.tables.get_or_init(|| self.end.table_names())
    }

    /// The effects of `version`, if it is a local migration.
    pub fn of(&self, version: &str) -> Option<(usize, &MigrationEffects)> {
        self.migrations
            .iter()
            .enumerate()
            .find(|(_, m)| m.version == version)
    }

    /// The catalog after the first `count` migrations, materialised (for
    /// tests and tools; the diagnosis asks by key instead).
    pub fn prefix(&self, count: usize) -> Catalog {
        let mut catalog = self.initial.clone();
        for m in self.migrations.iter().take(count) {
            apply(&mut catalog, &m.changes);
        }
        catalog
    }

    fn history(&self) -> &History {
        self.history.get_or_init(|| {
            let mut history = History::new();
            for (index, m) in self.migrations.iter().enumerate() {
                for d in &m.changes {
                    history
                        .entry(d.key.clone())
                        .or_default()
                        .push((index + 1, d.after().map(str::to_string)));
                }
            }
            history
        })
    }

    /// The definition of `key` after the first `count` migrations.
    fn at(&self, count: usize, key: &str) -> Option<&str> {
        let changed = self
            .history()
            .get(key)
            .and_then(|h| h.iter().rev().find(|(p, _)| *p <= count));
        match changed {
            Some((_, value)) => value.as_deref(),
            None => self.initial.get(key).map(|o| o.definition.as_str()),
        }
    }

    /// The definition of `key` right after migration `index` (0-based).
    pub fn definition_after(&self, index: usize, key: &str) -> Option<&str> {
        self.at(index + 1, key)
    }

    /// Every definition `key` has after migration `index` and after each
    /// later one (the shapes the migrations give it from `index` onwards).
    pub fn shapes_after(&self, index: usize, key: &str) -> BTreeSet<&str> {
        let mut shapes: BTreeSet<&str> = self.definition_after(index, key).into_iter().collect();
        if let Some(h) = self.history().get(key) {
            shapes.extend(
                h.iter()
                    .filter(|(p, _)| *p > index + 1)
                    .filter_map(|(_, v)| v.as_deref()),
            );
        }
        shapes
    }

    /// Whether `key` exists after migration `index` or after any later one.
    pub fn exists_after(&self, index: usize, key: &str) -> bool {
        !self.shapes_after(index, key).is_empty()
    }
}

/// Applies one migration's changes to a catalog.
fn apply(catalog: &mut Catalog, changes: &[Difference]) {
    for d in changes {
        match &d.change {
            Change::Missing { expected } | Change::Changed { expected, .. } => {
                catalog.objects.insert(
                    d.key.clone(),
                    crate::source::catalog::Object {
                        kind: d.kind,
                        key: d.key.clone(),
                        definition: expected.clone(),
                    },
                );
            }
            Change::Unexpected { .. } => {
                catalog.objects.remove(&d.key);
            }
        }
    }
}

/// Rows of every table, projected onto columns whose values are reproducible.
pub async fn seed_rows(conn: &mut PgConnection, tables: &[String]) -> Result<SeedRows> {
    let named: Vec<(&String, (&str, &str))> = tables
        .iter()
        .filter_map(|t| Some((t, t.split_once('.')?)))
        .collect();
    let pairs: Vec<(&str, &str)> = named.iter().map(|(_, p)| *p).collect();
    let schemas: Vec<&str> = pairs.iter().map(|p| p.0).collect();
    let names: Vec<&str> = pairs.iter().map(|p| p.1).collect();
    // One query for the columns of every table, one per batch of tables for their rows.
    let found: Vec<(i64, String)> = sqlx::query_as(
        "SELECT w.i, a.attname::text FROM unnest($1::text[], $2::text[]) WITH ORDINALITY w(s, r, i)
           JOIN pg_namespace n ON n.nspname = w.s JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = w.r
           JOIN pg_attribute a ON a.attrelid = c.oid
           LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
          WHERE a.attnum > 0 AND NOT a.attisdropped
            AND a.attidentity = '' AND a.attgenerated = ''
            AND format_type(a.atttypid, NULL) NOT IN ('uuid', 'timestamp with time zone',
                'timestamp without time zone', 'date', 'time without time zone', 'tsvector')
            AND coalesce(pg_get_expr(d.adbin, d.adrelid), '') NOT LIKE 'nextval(%'
          ORDER BY w.i, a.attname",
    )
    .bind(&schemas)
    .bind(&names)
    .fetch_all(&mut *conn)
    .await
    .map_err(Error::db("reading the columns of the replay's tables"))?;
    let mut columns: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    for (i, column) in found {
        let index = usize::try_from(i - 1).unwrap_or(usize::MAX);
        columns.entry(index).or_default().push(column);
    }
    let selects: Vec<(usize, String)> = columns
        .iter()
        .filter_map(|(i, cols)| {
            let (schema, name) = pairs.get(*i)?;
            Some((*i, project_sql(schema, name, cols, Some(*i))))
        })
        .collect();
    let mut out = SeedRows::new();
    for batch in selects.chunks(100) {
        let sql: Vec<&str> = batch.iter().map(|(_, sql)| sql.as_str()).collect();
        let rows: Vec<(i64, String)> = sqlx::query_as(sqlx::AssertSqlSafe(sql.join(" UNION ALL ")))
            .fetch_all(&mut *conn)
            .await
            .map_err(Error::db("reading the rows of the replay's tables"))?;
        for (i, row) in rows {
            let index = usize::try_from(i).unwrap_or(usize::MAX);
            if let Some((table, _)) = named.get(index) {
                out.entry((*table).clone()).or_default().push(row);
            }
        }
    }
    for rows in out.values_mut() {
        rows.sort();
    }
    Ok(out)
}

/// `SELECT jsonb_build_object(<columns>)::text FROM <table>`, tagged with `tag` when given.
fn project_sql(schema: &str, name: &str, columns: &[String], tag: Option<usize>) -> String {
    let pairs: Vec<String> = columns
        .iter()
        .map(|c| format!("{}, t.{}", quote_literal(c), quote_ident(c)))
        .collect();
    let tag = tag.map(|i| format!("{i}::int8, ")).unwrap_or_default();
    format!(
        "SELECT {tag}jsonb_build_object({})::text FROM {}.{} t",
        pairs.join(", "),
        quote_ident(schema),
        quote_ident(name)
    )
}

/// `columns` of every row of `table` as JSON objects, sorted.
pub async fn project_rows(
    conn: &mut PgConnection,
    table: &str,
    columns: &[String],
) -> Result<Vec<String>> {
    let Some((schema, name)) = table.split_once('.') else {
        return Ok(Vec::new());
    };
    let sql = project_sql(schema, name, columns, None);
    let mut rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .fetch_all(&mut *conn)
        .await
        .map_err(Error::db(format!("reading the rows of {table}")))?;
    rows.sort();
    Ok(rows)
}

/// Tables that the migrations `versions` create or alter (their columns,
/// constraints, indexes, policies, triggers, grants …): their data may
/// legitimately change during a repair.
pub fn touched_tables(
    effects: &Effects,
    versions: &[String],
) -> std::collections::BTreeSet<String> {
    let tables = effects.final_tables();
    let mut touched = std::collections::BTreeSet::new();
    for (_, m) in effects
        .migrations
        .iter()
        .enumerate()
        .filter(|(_, m)| versions.contains(&m.version))
    {
        for change in &m.changes {
            let definition = match &change.change {
                crate::source::catalog::Change::Missing { expected }
                | crate::source::catalog::Change::Changed { expected, .. } => expected.as_str(),
                crate::source::catalog::Change::Unexpected { found } => found.as_str(),
            };
            if let Some(t) = crate::source::catalog::owner_table(&change.key, definition, tables) {
                touched.insert(t);
            }
        }
    }
    touched
}

pub(crate) fn first_line(statement: &str) -> String {
    let line = statement
        .lines()
        .find(|l| !l.trim().is_empty() && !l.trim_start().starts_with("--"))
        .unwrap_or("");
    let line = line.trim();
    if line.chars().count() > 120 {
        format!("{}…", line.chars().take(120).collect::<String>())
    } else {
        line.to_string()
    }
}

/// The server's message (and detail) of a database error, without noise.
pub(crate) fn db_message(e: &sqlx::Error) -> String {
    match e.as_database_error() {
        Some(d) => match d.code() {
            Some(code) => format!("{} [SQLSTATE {code}]", d.message()),
            None => d.message().to_string(),
        },
        None => e.to_string(),
    }
}
