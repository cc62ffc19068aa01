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

use std::collections::{BTreeMap, BTreeSet};

use sqlx::postgres::PgRow;
use sqlx::postgres::types::Oid;
use sqlx::{Connection, PgConnection};

use super::canonical::{ident, literal, qualified};
use super::queries::{
    COLUMNS, COMMENTS, CONSTRAINTS, EXTENSIONS, FUNCTIONS, GRANTS, INDEXES, OWNED, POLICIES,
    SCHEMAS, SEQUENCES, SESSION, SESSION_TARGETED, TABLES, TRIGGERS, TYPES, VIEWS, targeted,
};
use super::relations::{columns, constraints, grantee, indexes, policies, tables, triggers, views};
use super::row::{CatalogRow, Field, JsonRow};
use super::{Catalog, CatalogOptions, Object, ObjectKind};
use crate::error::{Error, Result};

/// What sort of object a root is: it decides which per-kind queries can
/// find objects under it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RootClass {
    Schema,
    Extension,
    Type,
    /// A table (plain or partitioned), in any schema (triggers on
    /// `auth.users` that call a user function hang off it).
    Table,
    /// A view or materialized view.
    View,
    Sequence,
    Function,
}

/// Which objects to read. Every catalog object hangs off one **root** — a
/// schema, extension, type, table, view, sequence or function, named by its
/// OID (a column, constraint, index, policy, trigger, RLS flag, comment or
/// grant hangs off its table, view, sequence, function or type). A targeted
/// read returns, for each root asked for, every object under it, rendered
/// exactly as a whole-catalog read renders it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectSet {
    /// The roots to read (`None`: every root — the whole catalog).
    pub roots: Option<BTreeMap<u32, RootClass>>,
    /// Only these kinds (`None`: every kind).
    pub kinds: Option<BTreeSet<ObjectKind>>,
}

impl ObjectSet {
    /// Every object: a whole-catalog read.
    pub fn everything() -> ObjectSet {
        ObjectSet::default()
    }

    /// Every object of `kind` under every root.
    pub fn kind(kind: ObjectKind) -> ObjectSet {
        ObjectSet {
            roots: None,
            kinds: Some(BTreeSet::from([kind])),
        }
    }

    /// Every object under `roots`.
    pub fn roots(roots: BTreeMap<u32, RootClass>) -> ObjectSet {
        ObjectSet {
            roots: Some(roots),
            kinds: None,
        }
    }

    /// Whether the per-kind query that yields `kinds` for roots of `classes` must run.
    fn wants(&self, kinds: &[ObjectKind], classes: &[RootClass]) -> bool {
        let kind_wanted = self
            .kinds
            .as_ref()
            .is_none_or(|wanted| kinds.iter().any(|k| wanted.contains(k)));
        let class_wanted = self
            .roots
            .as_ref()
            .is_none_or(|roots| roots.values().any(|c| classes.contains(c)));
        kind_wanted && class_wanted
    }
}

/// What a read returned: the objects, which root each came from, and what
/// hangs off the roots read (see [`ObjectSet`]).
#[derive(Debug, Clone, Default)]
pub struct Reading {
    /// The objects read.
    pub catalog: Catalog,
    /// `(key, root OID)` of every object read.
    pub owners: Vec<(String, u32)>,
    /// `(sub-object OID, root OID)`: indexes, constraints, policies,
    /// triggers and column defaults of the roots read (also internal ones).
    /// Filled only when every kind was read.
    pub parts: Vec<(u32, u32)>,
    /// `(partition OID, parent OID)` of the roots read (a partition's text
    /// names its parent). Filled only when every kind was read.
    pub children: Vec<(u32, u32)>,
}

impl Reading {
    /// Adds an object read from `row` (whose `root` column names its root).
    pub(super) fn put(&mut self, row: &impl CatalogRow, object: Object) -> Result<()> {
        let root: i64 = col(row, "root")?;
        self.put_under(root, object);
        Ok(())
    }

    fn put_under(&mut self, root: i64, object: Object) {
        self.owners.push((object.key.clone(), oid_u32(root)));
        self.catalog.insert(object);
    }
}

fn oid_u32(oid: i64) -> u32 {
    u32::try_from(oid).unwrap_or(0)
}

impl Catalog {
    /// Reads the user schemas of the database behind `conn` (every schema
    /// except system schemas and `options.exclude_schemas`). Objects that
    /// belong to an extension are left out; the extension itself is listed.
    /// Read-only: nothing is changed, and settings are rolled back.
    pub async fn introspect(
        conn: &mut PgConnection,
        options: &CatalogOptions,
    ) -> crate::Result<Catalog> {
        Ok(
            Catalog::introspect_objects(conn, options, &ObjectSet::everything())
                .await?
                .catalog,
        )
    }

    /// Reads only the objects of `set` — each rendered byte for byte as
    /// [`Catalog::introspect`] renders it — with the root each hangs off.
    /// This is how a replay follows a schema migration by migration without
    /// reading the whole catalog after each one.
    pub async fn introspect_objects(
        conn: &mut PgConnection,
        options: &CatalogOptions,
        set: &ObjectSet,
    ) -> crate::Result<Reading> {
        let begun = if conn.is_in_transaction() {
            conn.begin().await
        } else {
            conn.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .await
        };
        let mut tx = begun.map_err(Error::db(
            "starting a read-only transaction to read the catalog",
        ))?;
        let read = read_catalog(&mut tx, &options.exclude_schemas, set).await;
        let rolled_back = tx.rollback().await;
        let reading = read?;
        rolled_back.map_err(Error::db("ending the catalog transaction"))?;
        Ok(reading)
    }
}

async fn read_catalog(
    conn: &mut PgConnection,
    excluded: &[String],
    set: &ObjectSet,
) -> Result<Reading> {
    let targeted_read = set.roots.is_some() && set.kinds.is_none();
    let session = if targeted_read {
        SESSION_TARGETED
    } else {
        SESSION
    };
    let version: i32 = sqlx::query_scalar(session)
        .fetch_one(&mut *conn)
        .await
        .map_err(Error::db("fixing session settings to read the catalog"))?;
    let mut out = Reading::default();
    let roots: Option<Vec<Oid>> = set
        .roots
        .as_ref()
        .map(|r| r.keys().map(|oid| Oid(*oid)).collect());
    if roots.as_ref().is_some_and(Vec::is_empty) {
        return Ok(out);
    }
    let q = Queries {
        excluded,
        roots: roots.as_deref(),
    };
    if targeted_read {
        return read_roots(conn, &q, version, out).await;
    }
    for kind in &KINDS {
        if kind.name == "owned" {
            if set.kinds.is_none() {
                owned(conn, roots.as_deref(), &mut out).await?;
            }
        } else if set.wants(kind.kinds, kind.under) {
            let rows = q.run(conn, kind.sql, kind.name).await?;
            absorb(kind.name, &rows, version, &mut out)?;
        }
    }
    Ok(out)
}

/// One per-kind query: its name (the column it fills in a targeted read),
/// its SQL, the object kinds it yields and the classes of roots they hang off.
struct Kind {
    name: &'static str,
    sql: &'static str,
    kinds: &'static [ObjectKind],
    under: &'static [RootClass],
}

const fn kind(
    name: &'static str,
    sql: &'static str,
    kinds: &'static [ObjectKind],
    under: &'static [RootClass],
) -> Kind {
    Kind {
        name,
        sql,
        kinds,
        under,
    }
}

/// Every per-kind query, in the order a read runs them (an object read
/// twice keeps its first reading).
const KINDS: [Kind; 15] = {
    use ObjectKind as K;
    use RootClass as R;
    [
        kind("schemas", SCHEMAS, &[K::Schema], &[R::Schema]),
        kind("extensions", EXTENSIONS, &[K::Extension], &[R::Extension]),
        kind("types", TYPES, &[K::Type], &[R::Type]),
        kind("sequences", SEQUENCES, &[K::Sequence], &[R::Sequence]),
        kind("tables", TABLES, &[K::Table, K::RowSecurity], &[R::Table]),
        kind("columns", COLUMNS, &[K::Column], &[R::Table]),
        kind("constraints", CONSTRAINTS, &[K::Constraint], &[R::Table]),
        kind("indexes", INDEXES, &[K::Index], &[R::Table, R::View]),
        kind("policies", POLICIES, &[K::Policy], &[R::Table]),
        kind("functions", FUNCTIONS, &[K::Function], &[R::Function]),
        kind("triggers", TRIGGERS, &[K::Trigger], &[R::Table, R::View]),
        kind("views", VIEWS, &[K::View, K::MaterializedView], &[R::View]),
        kind(
            "comments",
            COMMENTS,
            &[K::Comment],
            &[R::Table, R::View, R::Sequence, R::Function, R::Type],
        ),
        kind(
            "grants",
            GRANTS,
            &[K::Grant],
            &[R::Table, R::View, R::Sequence, R::Function],
        ),
        // Not an object kind: what hangs off each root (see `owned`), read
        // by every read of every kind.
        kind("owned", OWNED, &[], &[]),
    ]
};

/// Adds the rows of the per-kind query `name` to `out`.
fn absorb(name: &str, rows: &[impl CatalogRow], version: i32, out: &mut Reading) -> Result<()> {
    match name {
        "schemas" => schemas(rows, out),
        "extensions" => extensions(rows, out),
        "types" => types(rows, out),
        "sequences" => sequences(rows, out),
        "tables" => tables(rows, out),
        "columns" => columns(rows, out),
        "constraints" => constraints(rows, out),
        "indexes" => indexes(rows, out),
        "policies" => policies(rows, out),
        "functions" => functions(rows, out),
        "triggers" => triggers(rows, out),
        "views" => views(rows, version, out),
        "comments" => comments(rows, out),
        "grants" => grants(rows, out),
        "owned" => owned_rows(rows, out),
        other => Err(Error::Invalid(format!(
            "catalog: no reader for the per-kind query {other} (hint: this is a bug in phantom-sync)"
        ))),
    }
}

/// One statement that runs every kind's query for the roots in `$2` and
/// returns each kind's rows as one JSON array: a targeted read is one round
/// trip, and its plan is prepared once per connection. (Leaving out the
/// kinds that cannot hang off the roots' classes was tried: the reads took
/// as long — an empty subquery looked up by OID index costs next to nothing.)
fn roots_statement() -> &'static str {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(|| {
        let columns: Vec<String> = KINDS
            .iter()
            .map(|kind| {
                // OWNED takes the roots as `$1` when it runs alone.
                let sql = targeted(kind.sql).replace("$1::oid[]", "$2::oid[]");
                format!(
                    "(SELECT coalesce(jsonb_agg(to_jsonb(q)), '[]'::jsonb)::text FROM ({sql}) q) AS {}",
                    kind.name
                )
            })
            .collect();
        format!("SELECT {}", columns.join(",\n  "))
    })
}

/// Every object under the roots of `q`, in one statement (see [`roots_statement`]).
async fn read_roots(
    conn: &mut PgConnection,
    q: &Queries<'_>,
    version: i32,
    mut out: Reading,
) -> Result<Reading> {
    let row = sqlx::query(sqlx::AssertSqlSafe(roots_statement()))
        .bind(q.excluded)
        .bind(q.roots)
        .fetch_one(&mut *conn)
        .await
        .map_err(Error::db("reading objects from the catalog"))?;
    for kind in &KINDS {
        let text: String = col(&row, kind.name)?;
        let rows: Vec<JsonRow> = serde_json::from_str(&text).map_err(|e| {
            Error::Invalid(format!(
                "catalog: the {} of a targeted read are not JSON rows ({e}) (hint: this is a bug in phantom-sync)",
                kind.name
            ))
        })?;
        absorb(kind.name, &rows, version, &mut out)?;
    }
    Ok(out)
}

/// Fills [`Reading::parts`] and [`Reading::children`] for `roots`.
async fn owned(conn: &mut PgConnection, roots: Option<&[Oid]>, out: &mut Reading) -> Result<()> {
    let sql = if roots.is_some() {
        targeted(OWNED)
    } else {
        OWNED
    };
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(roots)
        .fetch_all(&mut *conn)
        .await
        .map_err(Error::db("reading what hangs off each catalog object"))?;
    owned_rows(&rows, out)
}

fn owned_rows(rows: &[impl CatalogRow], out: &mut Reading) -> Result<()> {
    for row in rows {
        let link: String = col(row, "link")?;
        let pair = (oid_u32(col(row, "oid")?), oid_u32(col(row, "root")?));
        if link == "child" {
            out.children.push(pair);
        } else {
            out.parts.push(pair);
        }
    }
    Ok(())
}

/// Runs the per-kind queries: `$1` is the excluded schemas, `$2` the roots (NULL: all).
struct Queries<'a> {
    excluded: &'a [String],
    roots: Option<&'a [Oid]>,
}

impl Queries<'_> {
    async fn run(
        &self,
        conn: &mut PgConnection,
        sql: &'static str,
        what: &str,
    ) -> Result<Vec<PgRow>> {
        let sql = if self.roots.is_some() {
            targeted(sql)
        } else {
            sql
        };
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(self.excluded)
            .bind(self.roots)
            .fetch_all(&mut *conn)
            .await
            .map_err(Error::db(format!("reading {what} from the catalog")))
    }
}

/// One column of a catalog row.
pub(super) fn col<T: Field, R: CatalogRow>(row: &R, name: &str) -> Result<T> {
    row.field(name)
}

/// `schema.name` of the row's `nspname` and `name` columns.
pub(super) fn row_name(row: &impl CatalogRow) -> Result<String> {
    Ok(qualified(
        &col::<String, _>(row, "nspname")?,
        &col::<String, _>(row, "name")?,
    ))
}

/// A collation as SQL writes it: bare name for `pg_catalog`, else qualified.
pub(super) fn collation(row: &impl CatalogRow) -> Result<Option<String>> {
    let name: Option<String> = col(row, "collname")?;
    let schema: Option<String> = col(row, "collschema")?;
    Ok(match (schema, name) {
        (Some(schema), Some(name)) if schema != "pg_catalog" => Some(qualified(&schema, &name)),
        (_, Some(name)) => Some(ident(&name)),
        _ => None,
    })
}

/// `schema.name(argtype, …)`: how functions are named in keys.
fn function_name(row: &impl CatalogRow) -> Result<String> {
    let args: Vec<String> = col(row, "argtypes")?;
    Ok(format!("{}({})", row_name(row)?, args.join(", ")))
}

/// `schema …` objects.
fn schemas(rows: &[impl CatalogRow], out: &mut Reading) -> Result<()> {
    for row in rows {
        let name: String = col(row, "nspname")?;
        out.put(
            row,
            Object::new(ObjectKind::Schema, &ident(&name), "schema"),
        )?;
    }
    Ok(())
}

/// `extension …` objects: the schema each is installed in (not its version).
fn extensions(rows: &[impl CatalogRow], out: &mut Reading) -> Result<()> {
    for row in rows {
        let name: String = col(row, "name")?;
        let schema: String = col(row, "nspname")?;
        out.put(
            row,
            Object::new(
                ObjectKind::Extension,
                &ident(&name),
                format!("schema {}", ident(&schema)),
            ),
        )?;
    }
    Ok(())
}

/// `type …` objects: enum labels in order, composite fields, range subtype, or domain.
fn types(rows: &[impl CatalogRow], out: &mut Reading) -> Result<()> {
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
                col::<Option<String>, _>(row, "base")?.unwrap_or_default()
            ),
            _ => domain_definition(row)?,
        };
        out.put(
            row,
            Object::new(ObjectKind::Type, &row_name(row)?, definition),
        )?;
    }
    Ok(())
}

fn domain_definition(row: &impl CatalogRow) -> Result<String> {
    let mut text = format!(
        "domain over {}",
        col::<Option<String>, _>(row, "base")?.unwrap_or_default()
    );
    if let Some(collation) = collation(row)? {
        text.push_str(&format!(" collate {collation}"));
    }
    if col::<bool, _>(row, "not_null")? {
        text.push_str(" not null");
    }
    if let Some(default) = col::<Option<String>, _>(row, "default_expr")? {
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
fn sequences(rows: &[impl CatalogRow], out: &mut Reading) -> Result<()> {
    for row in rows {
        let mut text = if col::<bool, _>(row, "unlogged")? {
            "unlogged ".to_string()
        } else {
            String::new()
        };
        text.push_str(&format!(
            "as {} start {} increment {} minvalue {} maxvalue {} cache {} {}",
            col::<String, _>(row, "data_type")?,
            col::<i64, _>(row, "start")?,
            col::<i64, _>(row, "increment")?,
            col::<i64, _>(row, "min")?,
            col::<i64, _>(row, "max")?,
            col::<i64, _>(row, "cache")?,
            if col::<bool, _>(row, "cycle")? {
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
        out.put(
            row,
            Object::new(ObjectKind::Sequence, &row_name(row)?, text),
        )?;
    }
    Ok(())
}

/// `function …` objects: signature, result, language, properties, settings
/// (sorted) and the SHA-256 of the body instead of the body.
fn functions(rows: &[impl CatalogRow], out: &mut Reading) -> Result<()> {
    use sha2::{Digest, Sha256};
    for row in rows {
        let kind = match col::<String, _>(row, "prokind")?.as_str() {
            "p" => "procedure",
            "w" => "window function",
            _ => "function",
        };
        let mut text = format!("{kind} ({})", col::<String, _>(row, "args")?);
        if let Some(result) = col::<Option<String>, _>(row, "result")? {
            text.push_str(&format!(" returns {result}"));
        }
        text.push_str(&format!(
            " language {}",
            ident(&col::<String, _>(row, "language")?)
        ));
        let volatility = match col::<String, _>(row, "volatility")?.as_str() {
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
            if col::<bool, _>(row, flag)? {
                text.push_str(&format!(" {word}"));
            }
        }
        match col::<String, _>(row, "parallel")?.as_str() {
            "s" => text.push_str(" parallel safe"),
            "r" => text.push_str(" parallel restricted"),
            _ => {}
        }
        let mut config: Vec<String> = col(row, "config")?;
        config.sort();
        for setting in config {
            text.push_str(&format!(" set {setting}"));
        }
        let body: String = col::<Option<String>, _>(row, "body")?.unwrap_or_default();
        let digest: String = Sha256::digest(body.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        text.push_str(&format!(" body sha256:{digest}"));
        out.put(
            row,
            Object::new(ObjectKind::Function, &function_name(row)?, text),
        )?;
    }
    Ok(())
}

/// `comment <kind> …` objects: the comment text.
fn comments(rows: &[impl CatalogRow], out: &mut Reading) -> Result<()> {
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
        out.put(
            row,
            Object::new(
                ObjectKind::Comment,
                &subject,
                col::<String, _>(row, "description")?,
            ),
        )?;
    }
    Ok(())
}

/// `grant <object> <grantee>` objects: privileges sorted, MAINTAIN left out.
fn grants(rows: &[impl CatalogRow], out: &mut Reading) -> Result<()> {
    // key name → privilege → grantable (by any grantor)
    let mut granted: BTreeMap<String, (i64, BTreeMap<String, bool>)> = BTreeMap::new();
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
        let root: i64 = col(row, "root")?;
        *granted
            .entry(name)
            .or_insert_with(|| (root, BTreeMap::new()))
            .1
            .entry(privilege)
            .or_default() |= grantable;
    }
    for (name, (root, privileges)) in granted {
        out.put_under(
            root,
            Object::new(
                ObjectKind::Grant,
                &name,
                super::grant_definition(&privileges),
            ),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_per_kind_query_has_a_reader_and_a_column_of_its_own() {
        let mut names = BTreeSet::new();
        for kind in &KINDS {
            assert!(names.insert(kind.name), "{} twice", kind.name);
            let mut out = Reading::default();
            let none: &[JsonRow] = &[];
            assert!(
                absorb(kind.name, none, 170_000, &mut out).is_ok(),
                "{}",
                kind.name
            );
            assert!(roots_statement().contains(&format!(") q) AS {}", kind.name)));
        }
        assert!(
            absorb(
                "nothing",
                &[] as &[JsonRow],
                170_000,
                &mut Reading::default()
            )
            .is_err()
        );
    }
}
