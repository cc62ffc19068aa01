//! The Supabase migration history table, `supabase_migrations.schema_migrations`
//! (the "ledger"): created with the same DDL as the Supabase CLI, read in the
//! CLI's order, exported to and imported from JSON (Step 1.2 of the plan), and
//! written the way `supabase migration repair --status applied|reverted` writes
//! it. Every writer takes a `&mut PgConnection` that may be a transaction
//! (`&mut *tx`) and never commits the caller's work: the repair's ledger edits,
//! its schema changes and a rollback's [`restore`] can share one transaction
//! (on a plain connection each statement commits by itself; [`ensure_table`]'s
//! DDL always runs as one unit, in a savepoint when inside a transaction).
//!
//! What the Supabase CLI does (read in its Go source, `pkg/migration/history.go`
//! and `internal/migration/repair/repair.go`):
//! * it creates the table with `CREATE SCHEMA IF NOT EXISTS`, `CREATE TABLE IF
//!   NOT EXISTS … (version text NOT NULL PRIMARY KEY)` and two `ADD COLUMN IF NOT
//!   EXISTS` (`statements text[]`, `name text`), under `lock_timeout = '4s'`,
//!   before every repair; columns the hosted platform adds on its own
//!   (`created_by`, `idempotency_key`, `rollback`) are not created by the CLI
//!   and never written by it (nor by us);
//! * `repair --status applied` inserts `(version, name, statements)` with a
//!   plain `INSERT` (a second run fails on the primary key, and so does
//!   [`mark_applied`]);
//!   `repair --status reverted` runs `DELETE … WHERE version = ANY($1)`;
//! * `migration list` reads `SELECT version … ORDER BY version` and treats a
//!   missing table (`undefined_table`) as "no migrations".

mod json;
mod table;

use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::{Connection, PgConnection};

use crate::error::{Error, Result};

/// Schema of the ledger, fixed by the Supabase CLI.
pub const SCHEMA: &str = "supabase_migrations";
/// Table of the ledger inside [`SCHEMA`].
pub const TABLE: &str = "schema_migrations";

/// The CLI's DDL, in the CLI's order. Each statement is idempotent.
pub(crate) const LEDGER_DDL: [&str; 4] = [
    "CREATE SCHEMA IF NOT EXISTS supabase_migrations",
    "CREATE TABLE IF NOT EXISTS supabase_migrations.schema_migrations (version text NOT NULL PRIMARY KEY)",
    "ALTER TABLE supabase_migrations.schema_migrations ADD COLUMN IF NOT EXISTS statements text[]",
    "ALTER TABLE supabase_migrations.schema_migrations ADD COLUMN IF NOT EXISTS name text",
];

/// One recorded migration: what `supabase migration repair --status applied`
/// or `db push` wrote for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerRow {
    /// The migration's version (the digits before `_` in its file name).
    pub version: String,
    /// The rest of the file name without `.sql`; `None` when the column is
    /// NULL or absent (ledgers written by old CLI versions).
    pub name: Option<String>,
    /// The statements the CLI stored; `None` when NULL or absent.
    pub statements: Option<Vec<String>>,
}

/// The whole ledger as read from a database or an export file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ledger {
    /// Whether the table existed. A missing table means "no migrations", as
    /// for the CLI, but restoring it means dropping the table again.
    pub exists: bool,
    /// Rows in version order (byte order, which is the CLI's `ORDER BY
    /// version` for the all-digit versions it writes).
    pub rows: Vec<LedgerRow>,
}

impl Ledger {
    /// Reads the ledger. A missing schema or table gives `exists: false` and
    /// no rows; missing `name`/`statements` columns read as `None`.
    pub async fn read(conn: &mut PgConnection) -> Result<Ledger> {
        let Some(shape) = shape(conn).await? else {
            return Ok(Ledger {
                exists: false,
                rows: Vec::new(),
            });
        };
        let rows: Vec<(String, Option<String>, Option<Vec<String>>)> =
            sqlx::query_as(select_sql(shape))
                .fetch_all(&mut *conn)
                .await
                .map_err(Error::db("reading supabase_migrations.schema_migrations"))?;
        let rows = rows
            .into_iter()
            .map(|(version, name, statements)| LedgerRow {
                version,
                name,
                statements,
            })
            .collect();
        Ok(Ledger { exists: true, rows })
    }

    /// The row recorded for `version`, if any.
    pub fn get(&self, version: &str) -> Option<&LedgerRow> {
        self.rows.iter().find(|row| row.version == version)
    }

    /// All recorded versions, in ledger order.
    pub fn versions(&self) -> Vec<&str> {
        self.rows.iter().map(|row| row.version.as_str()).collect()
    }

    /// The export file's text (Step 1.2 of the plan): pretty JSON, fields in a
    /// fixed order, ending with a newline. [`Ledger::from_json`] reads it back.
    pub fn to_json(&self) -> String {
        // Serialising bools, strings, options and vectors cannot fail.
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        text
    }

    /// Parses an export written by [`Ledger::to_json`] (or by hand). `source`
    /// names the file in error messages, which also name the offending field.
    pub fn from_json(text: &str, source: &Path) -> Result<Ledger> {
        json::parse(text, source)
    }

    /// A text table in the layout of `psql` output: version | name |
    /// statement count, one line per row and a `(N rows)` footer.
    pub fn to_table(&self) -> String {
        table::render(self)
    }

    /// SHA-256 (lowercase hex) over existence, versions, names and statements,
    /// independent of the order of `rows`. Plans record it to detect that the
    /// ledger changed after they were made.
    pub fn fingerprint(&self) -> String {
        let mut rows: Vec<&LedgerRow> = self.rows.iter().collect();
        rows.sort_by(|a, b| a.version.cmp(&b.version));
        let mut hasher = Sha256::new();
        hasher.update(b"phantom-sync ledger v1\n");
        hasher.update(if self.exists {
            "exists 1\n"
        } else {
            "exists 0\n"
        });
        for row in rows {
            hasher.update(b"row\n");
            hash_field(&mut hasher, "version", Some(&row.version));
            hash_field(&mut hasher, "name", row.name.as_deref());
            match &row.statements {
                None => hasher.update(b"statements -\n"),
                Some(list) => {
                    hasher.update(format!("statements {}\n", list.len()));
                    for statement in list {
                        hash_field(&mut hasher, "statement", Some(statement));
                    }
                }
            }
        }
        hex(&hasher.finalize())
    }
}

/// Length-prefixed so that no two different rows hash the same bytes.
fn hash_field(hasher: &mut Sha256, label: &str, value: Option<&str>) {
    match value {
        None => hasher.update(format!("{label} -\n")),
        Some(text) => {
            hasher.update(format!("{label} {}:", text.len()));
            hasher.update(text.as_bytes());
            hasher.update(b"\n");
        }
    }
}

/// Lowercase hex of a digest.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Which optional columns an existing ledger table has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Shape {
    has_name: bool,
    has_statements: bool,
}

/// `None` when the ledger table does not exist.
async fn shape(conn: &mut PgConnection) -> Result<Option<Shape>> {
    const SQL: &str = "SELECT coalesce(bool_or(a.attname = 'name'), false), \
                              coalesce(bool_or(a.attname = 'statements'), false) \
                       FROM pg_catalog.pg_class c \
                       JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
                       LEFT JOIN pg_catalog.pg_attribute a \
                              ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped \
                       WHERE n.nspname = $1 AND c.relname = $2 \
                       GROUP BY c.oid";
    let found: Option<(bool, bool)> = sqlx::query_as(SQL)
        .bind(SCHEMA)
        .bind(TABLE)
        .fetch_optional(&mut *conn)
        .await
        .map_err(Error::db(
            "looking up supabase_migrations.schema_migrations",
        ))?;
    Ok(found.map(|(has_name, has_statements)| Shape {
        has_name,
        has_statements,
    }))
}

/// The read query for a table shape; versions sort in byte order (`"C"`),
/// whatever the database's default collation.
fn select_sql(shape: Shape) -> &'static str {
    match (shape.has_name, shape.has_statements) {
        (true, true) => {
            "SELECT version::text, name::text, statements::text[] \
             FROM supabase_migrations.schema_migrations ORDER BY version::text COLLATE \"C\""
        }
        (true, false) => {
            "SELECT version::text, name::text, NULL::text[] \
             FROM supabase_migrations.schema_migrations ORDER BY version::text COLLATE \"C\""
        }
        (false, true) => {
            "SELECT version::text, NULL::text, statements::text[] \
             FROM supabase_migrations.schema_migrations ORDER BY version::text COLLATE \"C\""
        }
        (false, false) => {
            "SELECT version::text, NULL::text, NULL::text[] \
             FROM supabase_migrations.schema_migrations ORDER BY version::text COLLATE \"C\""
        }
    }
}

/// Creates the ledger exactly as the CLI does (same statements, same order,
/// one transaction or savepoint, `lock_timeout` at most 4 s while it runs).
/// When the table already has both columns nothing is executed, so no
/// `ACCESS EXCLUSIVE` lock is taken on a ledger other sessions are using.
pub async fn ensure_table(conn: &mut PgConnection) -> Result<()> {
    let complete = Shape {
        has_name: true,
        has_statements: true,
    };
    if shape(conn).await? == Some(complete) {
        return Ok(());
    }
    let saved: String = sqlx::query_scalar("SELECT current_setting('lock_timeout')")
        .fetch_one(&mut *conn)
        .await
        .map_err(Error::db("reading lock_timeout"))?;
    let mut tx = conn
        .begin()
        .await
        .map_err(Error::db("starting the ledger DDL"))?;
    sqlx::query(
        "SELECT set_config('lock_timeout', '4s', true) \
         WHERE current_setting('lock_timeout')::interval = interval '0' \
            OR current_setting('lock_timeout')::interval > interval '4s'",
    )
    .execute(&mut *tx)
    .await
    .map_err(Error::db("setting lock_timeout for the ledger DDL"))?;
    for ddl in LEDGER_DDL {
        sqlx::raw_sql(ddl)
            .execute(&mut *tx)
            .await
            .map_err(Error::db(format!(
                "creating the migration history table as the Supabase CLI does (`{ddl}`, waiting at most \
                 4s for locks held by other sessions)"
            )))?;
    }
    // Inside a caller's transaction the savepoint's SET LOCAL would outlive it.
    sqlx::query("SELECT set_config('lock_timeout', $1, true)")
        .bind(&saved)
        .execute(&mut *tx)
        .await
        .map_err(Error::db("restoring lock_timeout after the ledger DDL"))?;
    tx.commit()
        .await
        .map_err(Error::db("finishing the ledger DDL"))?;
    Ok(())
}

/// Records `version` as applied exactly like `repair --status applied` (and
/// `db push` after a migration's statements): creates the table if needed,
/// then a plain `INSERT` of `(version, name, statements)`. As with the CLI, a
/// version that is already recorded fails with the primary key's
/// `unique_violation` (SQLSTATE 23505, kept as [`Error::Database`] so callers
/// can recognise the plan's "Migration already applied"), which aborts the
/// caller's transaction; read the [`Ledger`] first to make a repair
/// idempotent. Returns the number of rows inserted (1).
pub async fn mark_applied(
    conn: &mut PgConnection,
    version: &str,
    name: &str,
    statements: &[String],
) -> Result<u64> {
    ensure_table(conn).await?;
    let inserted = sqlx::query(
        "INSERT INTO supabase_migrations.schema_migrations (version, name, statements) VALUES ($1, $2, $3)",
    )
    .bind(version)
    .bind(name)
    .bind(statements)
    .execute(&mut *conn)
    .await
    .map_err(Error::db(format!("recording migration {version}_{name} as applied")))?
    .rows_affected();
    Ok(inserted)
}

/// Deletes the rows of `versions`, like `repair --status reverted` (which also
/// creates the table first). Returns the number of rows deleted.
pub async fn mark_reverted(conn: &mut PgConnection, versions: &[String]) -> Result<u64> {
    ensure_table(conn).await?;
    let deleted =
        sqlx::query("DELETE FROM supabase_migrations.schema_migrations WHERE version = ANY($1)")
            .bind(versions)
            .execute(&mut *conn)
            .await
            .map_err(Error::db(format!(
                "deleting ledger rows {}",
                versions.join(", ")
            )))?
            .rows_affected();
    Ok(deleted)
}

/// Moves a re-versioned row (recorded under `from` by another tool) to the
/// local file's version `to` and name, keeping its statements. Returns the
/// number of rows changed (0 when `from` is not recorded). Refuses when `to`
/// is already recorded, since the two rows would collide.
pub async fn rekey(conn: &mut PgConnection, from: &str, to: &str, name: &str) -> Result<u64> {
    if from != to {
        let taken: Option<i32> = sqlx::query_scalar(
            "SELECT 1 FROM supabase_migrations.schema_migrations WHERE version = $1 LIMIT 1",
        )
        .bind(to)
        .fetch_optional(&mut *conn)
        .await
        .map_err(Error::db(format!(
            "checking whether version {to} is recorded"
        )))?;
        if taken.is_some() {
            return Err(Error::Invalid(format!(
                "cannot move ledger row {from} to version {to}: {to} is already recorded \
                 (hint: mark {to} reverted first if {from} is the row to keep)"
            )));
        }
    }
    let changed = sqlx::query(
        "UPDATE supabase_migrations.schema_migrations SET version = $2, name = $3 WHERE version = $1",
    )
    .bind(from)
    .bind(to)
    .bind(name)
    .execute(&mut *conn)
    .await
    .map_err(Error::db(format!("moving ledger row {from} to version {to}")))?
    .rows_affected();
    Ok(changed)
}

/// Makes the ledger equal to `ledger` again (a rollback to the pre-repair
/// export), inside the caller's transaction.
///
/// "Exactly the pre-repair state" means: the same set of versions with the
/// same names and statements (NULL stays NULL). Rows that are already equal
/// are left untouched, so columns this tool does not know (the hosted
/// platform's `created_by`, `idempotency_key`, `rollback`) keep their values
/// on them; rows the repair deleted come back with those columns NULL. When
/// the export says the table did not exist, the table is dropped, and the
/// `supabase_migrations` schema too if nothing else is left in it (an export
/// does not record whether an empty schema existed; the CLI creates both
/// together, so dropping it is the likelier pre-repair state).
pub async fn restore(conn: &mut PgConnection, ledger: &Ledger) -> Result<()> {
    if !ledger.exists {
        return drop_ledger(conn).await;
    }
    ensure_table(conn).await?;
    let keep: Vec<String> = ledger.rows.iter().map(|row| row.version.clone()).collect();
    sqlx::query("DELETE FROM supabase_migrations.schema_migrations WHERE NOT (version = ANY($1))")
        .bind(&keep)
        .execute(&mut *conn)
        .await
        .map_err(Error::db(
            "deleting ledger rows that were not in the export",
        ))?;
    for row in &ledger.rows {
        restore_row(conn, row).await?;
    }
    Ok(())
}

/// Updates the row of `row.version` if it differs, inserts it if missing.
async fn restore_row(conn: &mut PgConnection, row: &LedgerRow) -> Result<()> {
    let context = || format!("restoring ledger row {}", row.version);
    let updated = sqlx::query(
        "UPDATE supabase_migrations.schema_migrations SET name = $2, statements = $3 \
         WHERE version = $1 AND (name IS DISTINCT FROM $2 OR statements IS DISTINCT FROM $3)",
    )
    .bind(&row.version)
    .bind(&row.name)
    .bind(&row.statements)
    .execute(&mut *conn)
    .await
    .map_err(Error::db(context()))?
    .rows_affected();
    if updated == 0 {
        sqlx::query(
            "INSERT INTO supabase_migrations.schema_migrations (version, name, statements) \
             SELECT $1, $2, $3 \
             WHERE NOT EXISTS (SELECT 1 FROM supabase_migrations.schema_migrations WHERE version = $1)",
        )
        .bind(&row.version)
        .bind(&row.name)
        .bind(&row.statements)
        .execute(&mut *conn)
        .await
        .map_err(Error::db(context()))?;
    }
    Ok(())
}

/// Drops the ledger table, then its schema when nothing else is left in it
/// (`DROP SCHEMA … RESTRICT` in a savepoint: PostgreSQL decides "empty").
async fn drop_ledger(conn: &mut PgConnection) -> Result<()> {
    sqlx::raw_sql("DROP TABLE IF EXISTS supabase_migrations.schema_migrations")
        .execute(&mut *conn)
        .await
        .map_err(Error::db(
            "dropping supabase_migrations.schema_migrations (it did not exist before)",
        ))?;
    let mut savepoint = conn
        .begin()
        .await
        .map_err(Error::db("starting a savepoint"))?;
    match sqlx::raw_sql("DROP SCHEMA IF EXISTS supabase_migrations RESTRICT")
        .execute(&mut *savepoint)
        .await
    {
        Ok(_) => savepoint
            .commit()
            .await
            .map_err(Error::db("releasing a savepoint")),
        Err(sqlx::Error::Database(err))
            if err.code().as_deref() == Some(DEPENDENT_OBJECTS_STILL_EXIST) =>
        {
            savepoint
                .rollback()
                .await
                .map_err(Error::db("rolling back a savepoint"))
        }
        Err(err) => Err(Error::db("dropping the schema supabase_migrations")(err)),
    }
}

/// SQLSTATE of `DROP … RESTRICT` on a schema that still holds objects.
const DEPENDENT_OBJECTS_STILL_EXIST: &str = "2BP01";

#[cfg(test)]
mod tests;
