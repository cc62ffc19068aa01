//! Reading a live database into a [`Catalog`]: one query per object kind,
//! inside a read-only transaction (a savepoint when the caller already has a
//! transaction open) whose settings make every `pg_get_*` function print the
//! same text on every server: `search_path` is `pg_catalog` only, so every
//! user object is schema-qualified, and time zone, date and number styles
//! are fixed. What the majors still print differently is normalised here or
//! in `canonical`:
//! - PostgreSQL 18 lists NOT NULL constraints in `pg_constraint` (and 17
//!   does for domains): skipped, nullability is part of the column/domain;
//! - PostgreSQL 17 adds the MAINTAIN table privilege (part of `ALL`):
//!   skipped, so `GRANT ALL` reads the same everywhere;
//! - PostgreSQL 17 marks a partition's columns as identity when the parent's
//!   are: identity is read from the partitioned table only;
//! - PostgreSQL 14–15 qualify column names in views that read from one
//!   relation; 16+ do not: the older text is unqualified.

use std::collections::BTreeMap;

use sqlx::postgres::PgRow;
use sqlx::{Connection, PgConnection, Postgres, Row};

use super::canonical::{ident, literal, qualified};
use super::queries::{
    COLUMNS, COMMENTS, CONSTRAINTS, EXTENSIONS, FUNCTIONS, GRANTS, INDEXES, POLICIES, SCHEMAS,
    SEQUENCES, SESSION, TABLES, TRIGGERS, TYPES, VIEWS,
};
use super::relations::{columns, constraints, grantee, indexes, policies, tables, triggers, views};
use super::{Catalog, CatalogOptions, Object, ObjectKind};
use crate::error::{Error, Result};

impl Catalog {
    /// Reads the user schemas of the database behind `conn` (every schema
    /// except system schemas and `options.exclude_schemas`). Objects that
    /// belong to an extension are left out; the extension itself is listed.
    /// Read-only: nothing is changed, and settings are rolled back.
    pub async fn introspect(
        conn: &mut PgConnection,
        options: &CatalogOptions,
    ) -> crate::Result<Catalog> {
        let begun = if conn.is_in_transaction() {
            conn.begin().await
        } else {
            conn.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .await
        };
        let mut tx = begun.map_err(Error::db(
            "starting a read-only transaction to read the catalog",
        ))?;
        let read = read_catalog(&mut tx, &options.exclude_schemas).await;
        let rolled_back = tx.rollback().await;
        let catalog = read?;
        rolled_back.map_err(Error::db("ending the catalog transaction"))?;
        Ok(catalog)
    }
}

async fn read_catalog(conn: &mut PgConnection, excluded: &[String]) -> Result<Catalog> {
    let version: i32 = sqlx::query_scalar(SESSION)
        .fetch_one(&mut *conn)
        .await
        .map_err(Error::db("fixing session settings to read the catalog"))?;
    let mut catalog = Catalog::default();
    let q = Queries { excluded };
    schemas(&q.run(conn, SCHEMAS, "schemas").await?, &mut catalog)?;
    extensions(&q.run(conn, EXTENSIONS, "extensions").await?, &mut catalog)?;
    types(&q.run(conn, TYPES, "types").await?, &mut catalog)?;
    sequences(&q.run(conn, SEQUENCES, "sequences").await?, &mut catalog)?;
    tables(&q.run(conn, TABLES, "tables").await?, &mut catalog)?;
    columns(&q.run(conn, COLUMNS, "columns").await?, &mut catalog)?;
    constraints(
        &q.run(conn, CONSTRAINTS, "constraints").await?,
        &mut catalog,
    )?;
    indexes(&q.run(conn, INDEXES, "indexes").await?, &mut catalog)?;
    policies(&q.run(conn, POLICIES, "policies").await?, &mut catalog)?;
    functions(&q.run(conn, FUNCTIONS, "functions").await?, &mut catalog)?;
    triggers(&q.run(conn, TRIGGERS, "triggers").await?, &mut catalog)?;
    views(&q.run(conn, VIEWS, "views").await?, version, &mut catalog)?;
    comments(&q.run(conn, COMMENTS, "comments").await?, &mut catalog)?;
    grants(&q.run(conn, GRANTS, "grants").await?, &mut catalog)?;
    Ok(catalog)
}

/// Runs the per-kind queries; those that mention `$1` get the excluded schemas there.
struct Queries<'a> {
    excluded: &'a [String],
}

impl Queries<'_> {
    async fn run(
        &self,
        conn: &mut PgConnection,
        sql: &'static str,
        what: &str,
    ) -> Result<Vec<PgRow>> {
        let query = sqlx::query(sql);
        let query = if sql.contains("$1") {
            query.bind(self.excluded)
        } else {
            query
        };
        query
            .fetch_all(&mut *conn)
            .await
            .map_err(Error::db(format!("reading {what} from the catalog")))
    }
}

/// One column of a catalog row.
pub(super) fn col<'r, T>(row: &'r PgRow, name: &str) -> Result<T>
where
    T: sqlx::Decode<'r, Postgres> + sqlx::Type<Postgres>,
{
    row.try_get(name)
        .map_err(Error::db(format!("decoding catalog column {name}")))
}

/// `schema.name` of the row's `nspname` and `name` columns.
pub(super) fn row_name(row: &PgRow) -> Result<String> {
    Ok(qualified(
        &col::<String>(row, "nspname")?,
        &col::<String>(row, "name")?,
    ))
}

/// A collation as SQL writes it: bare name for `pg_catalog`, else qualified.
pub(super) fn collation(row: &PgRow) -> Result<Option<String>> {
    let name: Option<String> = col(row, "collname")?;
    let schema: Option<String> = col(row, "collschema")?;
    Ok(match (schema, name) {
        (Some(schema), Some(name)) if schema != "pg_catalog" => Some(qualified(&schema, &name)),
        (_, Some(name)) => Some(ident(&name)),
        _ => None,
    })
}

/// `schema.name(argtype, …)`: how functions are named in keys.
fn function_name(row: &PgRow) -> Result<String> {
    let args: Vec<String> = col(row, "argtypes")?;
    Ok(format!("{}({})", row_name(row)?, args.join(", ")))
}

/// `schema …` objects.
fn schemas(rows: &[PgRow], catalog: &mut Catalog) -> Result<()> {
    for row in rows {
        let name: String = col(row, "nspname")?;
        catalog.insert(Object::new(ObjectKind::Schema, &ident(&name), "schema"));
    }
    Ok(())
}

/// `extension …` objects: the schema each is installed in (not its version).
fn extensions(rows: &[PgRow], catalog: &mut Catalog) -> Result<()> {
    for row in rows {
        let name: String = col(row, "name")?;
        let schema: String = col(row, "nspname")?;
        catalog.insert(Object::new(
            ObjectKind::Extension,
            &ident(&name),
            format!("schema {}", ident(&schema)),
        ));
    }
    Ok(())
}

/// `type …` objects: enum labels in order, composite fields, range subtype, or domain.
fn types(rows: &[PgRow], catalog: &mut Catalog) -> Result<()> {
    for row in rows {
        let typtype: String = col(row, "typtype")?;
        let definition = match typtype.as_str() {
            "e" => {
                let labels: Vec<String> = col(row, "labels")?;
                let labels: Vec<String> = labels.iter().map(|l| literal(l)).collect();
                format!("enum ({})", labels.join(", "))
            }
            "c" => {
                let names: Vec<String> = col(row, "attnames")?;
                let types: Vec<String> = col(row, "atttypes")?;
                let fields: Vec<String> = names
                    .iter()
                    .zip(&types)
                    .map(|(name, ty)| format!("{} {ty}", ident(name)))
                    .collect();
                format!("composite ({})", fields.join(", "))
            }
            "r" => format!(
                "range of {}",
                col::<Option<String>>(row, "base")?.unwrap_or_default()
            ),
            _ => domain_definition(row)?,
        };
        catalog.insert(Object::new(ObjectKind::Type, &row_name(row)?, definition));
    }
    Ok(())
}

fn domain_definition(row: &PgRow) -> Result<String> {
    let mut text = format!(
        "domain over {}",
        col::<Option<String>>(row, "base")?.unwrap_or_default()
    );
    if let Some(collation) = collation(row)? {
        text.push_str(&format!(" collate {collation}"));
    }
    if col::<bool>(row, "not_null")? {
        text.push_str(" not null");
    }
    if let Some(default) = col::<Option<String>>(row, "default_expr")? {
        text.push_str(&format!(" default {default}"));
    }
    let names: Vec<String> = col(row, "check_names")?;
    let defs: Vec<String> = col(row, "check_defs")?;
    for (name, def) in names.iter().zip(&defs) {
        text.push_str(&format!(" constraint {} {def}", ident(name)));
    }
    Ok(text)
}

/// `sequence …` objects: type, bounds, step, cache, cycle and owning column.
fn sequences(rows: &[PgRow], catalog: &mut Catalog) -> Result<()> {
    for row in rows {
        let mut text = if col::<bool>(row, "unlogged")? {
            "unlogged ".to_string()
        } else {
            String::new()
        };
        text.push_str(&format!(
            "as {} start {} increment {} minvalue {} maxvalue {} cache {} {}",
            col::<String>(row, "data_type")?,
            col::<i64>(row, "start")?,
            col::<i64>(row, "increment")?,
            col::<i64>(row, "min")?,
            col::<i64>(row, "max")?,
            col::<i64>(row, "cache")?,
            if col::<bool>(row, "cycle")? {
                "cycle"
            } else {
                "no cycle"
            },
        ));
        let owner: (Option<String>, Option<String>, Option<String>) = (
            col(row, "owner_schema")?,
            col(row, "owner_table")?,
            col(row, "owner_column")?,
        );
        if let (Some(schema), Some(table), Some(column)) = owner {
            text.push_str(&format!(
                " owned by {}.{}",
                qualified(&schema, &table),
                ident(&column)
            ));
        }
        catalog.insert(Object::new(ObjectKind::Sequence, &row_name(row)?, text));
    }
    Ok(())
}

/// `function …` objects: signature, result, language, properties, settings
/// (sorted) and the SHA-256 of the body instead of the body.
fn functions(rows: &[PgRow], catalog: &mut Catalog) -> Result<()> {
    use sha2::{Digest, Sha256};
    for row in rows {
        let kind = match col::<String>(row, "prokind")?.as_str() {
            "p" => "procedure",
            "w" => "window function",
            _ => "function",
        };
        let mut text = format!("{kind} ({})", col::<String>(row, "args")?);
        if let Some(result) = col::<Option<String>>(row, "result")? {
            text.push_str(&format!(" returns {result}"));
        }
        text.push_str(&format!(
            " language {}",
            ident(&col::<String>(row, "language")?)
        ));
        let volatility = match col::<String>(row, "volatility")?.as_str() {
            "i" => "immutable",
            "s" => "stable",
            _ => "volatile",
        };
        text.push_str(&format!(" {volatility}"));
        for (flag, word) in [
            ("strict", "strict"),
            ("definer", "security definer"),
            ("leakproof", "leakproof"),
        ] {
            if col::<bool>(row, flag)? {
                text.push_str(&format!(" {word}"));
            }
        }
        match col::<String>(row, "parallel")?.as_str() {
            "s" => text.push_str(" parallel safe"),
            "r" => text.push_str(" parallel restricted"),
            _ => {}
        }
        let mut config: Vec<String> = col(row, "config")?;
        config.sort();
        for setting in config {
            text.push_str(&format!(" set {setting}"));
        }
        let body: String = col::<Option<String>>(row, "body")?.unwrap_or_default();
        let digest: String = Sha256::digest(body.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        text.push_str(&format!(" body sha256:{digest}"));
        catalog.insert(Object::new(
            ObjectKind::Function,
            &function_name(row)?,
            text,
        ));
    }
    Ok(())
}

/// `comment <kind> …` objects: the comment text.
fn comments(rows: &[PgRow], catalog: &mut Catalog) -> Result<()> {
    for row in rows {
        let target: String = col(row, "target")?;
        let column: Option<String> = col(row, "column_name")?;
        let subject = match (target.as_str(), column) {
            (_, Some(column)) => format!("column {}.{}", row_name(row)?, ident(&column)),
            ("function", None) => format!("function {}", function_name(row)?),
            ("type", None) => format!("type {}", row_name(row)?),
            ("v", None) => format!("view {}", row_name(row)?),
            ("m", None) => format!("materialized view {}", row_name(row)?),
            ("S", None) => format!("sequence {}", row_name(row)?),
            _ => format!("table {}", row_name(row)?),
        };
        catalog.insert(Object::new(
            ObjectKind::Comment,
            &subject,
            col::<String>(row, "description")?,
        ));
    }
    Ok(())
}

/// `grant <object> <grantee>` objects: privileges sorted, MAINTAIN left out.
fn grants(rows: &[PgRow], catalog: &mut Catalog) -> Result<()> {
    // key name → privilege → grantable (by any grantor)
    let mut granted: BTreeMap<String, BTreeMap<String, bool>> = BTreeMap::new();
    for row in rows {
        let privilege: String = col(row, "privilege")?;
        if privilege == "MAINTAIN" {
            continue; // PostgreSQL 17+ only; part of ALL there.
        }
        let column: Option<String> = col(row, "column_name")?;
        let argtypes: Option<Vec<String>> = col(row, "argtypes")?;
        let on = match (column, argtypes) {
            (Some(column), _) => format!("{}.{}", row_name(row)?, ident(&column)),
            (None, Some(_)) => function_name(row)?,
            (None, None) => row_name(row)?,
        };
        let name = format!("{on} {}", grantee(&col(row, "grantee")?));
        let grantable: bool = col(row, "grantable")?;
        *granted
            .entry(name)
            .or_default()
            .entry(privilege)
            .or_default() |= grantable;
    }
    for (name, privileges) in granted {
        catalog.insert(Object::new(
            ObjectKind::Grant,
            &name,
            super::grant_definition(&privileges),
        ));
    }
    Ok(())
}
