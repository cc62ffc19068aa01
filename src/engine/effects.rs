//! What each local migration does to a database, found by replay — never by
//! parsing SQL. The migrations run one by one on a scratch database (a
//! template clone with the Supabase shim); after each, the catalog is read.
//! The catalog after every prefix is kept, because a later migration can
//! alter what an earlier one created: the diagnosis judges an object against
//! every shape the migrations give it from the one that created it onwards.

use std::collections::BTreeMap;

use serde::Serialize;
use sqlx::Connection;
use sqlx::postgres::PgConnection;

use crate::engine::environment::{GrantOrigins, Scratch};
use crate::pg::sql::{quote_ident, quote_literal};
use crate::source::catalog::{Catalog, CatalogOptions, Difference, diff};
use crate::source::project::{Migration, Project};
use crate::{Error, Result};

/// The effects of every local migration, in version order.
#[derive(Debug, Clone, Serialize)]
pub struct Effects {
    /// `prefixes[i]` is the catalog after the first `i` migrations (`prefixes[0]`: none).
    pub prefixes: Vec<Catalog>,
    /// One entry per migration, in the project's order.
    pub migrations: Vec<MigrationEffects>,
    /// Rows in the clean replay's tables, keyed by table (see [`SeedRows`]).
    pub seed: SeedRows,
    /// Which grants a migration chose and which the target's environment
    /// gives (the replay ran under the target's default privileges).
    pub grants: GrantOrigins,
}

/// What one migration changed in the catalog.
#[derive(Debug, Clone, Serialize)]
pub struct MigrationEffects {
    pub version: String,
    /// Objects the migration created, altered or dropped (diff of its prefix
    /// catalog against the one before it).
    pub changes: Vec<Difference>,
}

/// Seed data: for each table, the rows a clean replay leaves in it, reduced
/// to their stable columns (no uuids, timestamps or serials, whose values
/// differ from one replay to the next) and rendered as sorted JSON objects.
pub type SeedRows = BTreeMap<String, Vec<String>>;

impl Effects {
    /// The catalog after every migration (the clean replay's end state).
    pub fn final_catalog(&self) -> &Catalog {
        self.prefixes
            .last()
            .expect("prefixes always holds the empty prefix")
    }

    /// The effects of `version`, if it is a local migration.
    pub fn of(&self, version: &str) -> Option<(usize, &MigrationEffects)> {
        self.migrations
            .iter()
            .enumerate()
            .find(|(_, m)| m.version == version)
    }
}

/// Replays every migration of `project` on `scratch` (an empty database with
/// the shim, set up like the target by [`Scratch::prepare`]) and records
/// what each one changes.
pub(crate) async fn replay(
    project: &Project,
    scratch: &mut PgConnection,
    environment: &mut Scratch<'_>,
    options: &CatalogOptions,
) -> Result<Effects> {
    let mut prefixes = vec![Catalog::introspect(scratch, options).await?];
    let mut migrations = Vec::new();
    for (index, migration) in project.migrations.iter().enumerate() {
        apply_clean(scratch, migration).await?;
        environment.after_migration(scratch).await?;
        tracing::info!(target: "phantom_sync::progress", done = index as u64 + 1);
        let after = Catalog::introspect(scratch, options).await?;
        let before = prefixes.last().expect("non-empty");
        migrations.push(MigrationEffects {
            version: migration.version.clone(),
            changes: diff(&after, before),
        });
        prefixes.push(after);
    }
    let tables = prefixes.last().expect("non-empty").tables();
    let seed = seed_rows(scratch, &tables).await?;
    let grants = GrantOrigins::of(
        prefixes.last().expect("non-empty"),
        environment.environment(),
    );
    Ok(Effects {
        prefixes,
        migrations,
        seed,
        grants,
    })
}

/// Runs one migration's statements in a transaction, as the CLI would on a fresh database.
async fn apply_clean(conn: &mut PgConnection, migration: &Migration) -> Result<()> {
    let mut tx = conn
        .begin()
        .await
        .map_err(Error::db("starting a replay transaction"))?;
    for (index, statement) in migration.statements.iter().enumerate() {
        tracing::debug!(target: "phantom_sync::sql", "replay {}: {statement}", migration.version);
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

/// Rows of every table, projected onto columns whose values are reproducible.
pub async fn seed_rows(conn: &mut PgConnection, tables: &[String]) -> Result<SeedRows> {
    let mut out = SeedRows::new();
    for table in tables {
        let Some((schema, name)) = table.split_once('.') else {
            continue;
        };
        let columns: Vec<String> = sqlx::query_scalar(
            "SELECT a.attname::text FROM pg_attribute a
               JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
               LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
              WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped
                AND a.attidentity = '' AND a.attgenerated = ''
                AND format_type(a.atttypid, NULL) NOT IN ('uuid', 'timestamp with time zone',
                    'timestamp without time zone', 'date', 'time without time zone', 'tsvector')
                AND coalesce(pg_get_expr(d.adbin, d.adrelid), '') NOT LIKE 'nextval(%'
              ORDER BY a.attname",
        )
        .bind(schema)
        .bind(name)
        .fetch_all(&mut *conn)
        .await
        .map_err(Error::db(format!("reading the columns of {table}")))?;
        if columns.is_empty() {
            continue;
        }
        let rows = project_rows(conn, table, &columns).await?;
        if !rows.is_empty() {
            out.insert(table.clone(), rows);
        }
    }
    Ok(out)
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
    let pairs: Vec<String> = columns
        .iter()
        .map(|c| format!("{}, t.{}", quote_literal(c), quote_ident(c)))
        .collect();
    let sql = format!(
        "SELECT jsonb_build_object({})::text FROM {}.{} t",
        pairs.join(", "),
        quote_ident(schema),
        quote_ident(name)
    );
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
    let tables = effects.final_catalog().tables();
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
            if let Some(t) = crate::source::catalog::owner_table(&change.key, definition, &tables) {
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
