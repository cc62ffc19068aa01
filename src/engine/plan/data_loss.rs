//! The data-loss guard: which statements of the migrations a plan applies
//! destroy rows that the target holds now. Two sources, both conservative:
//! * the migration's effects, found by replay — a table or column present
//!   before the migration and gone after it is dropped, however the SQL says
//!   it (`DROP TABLE`, inside a `DO` block, `ALTER TABLE … DROP COLUMN`);
//! * the statements themselves, for what leaves the schema as it was:
//!   `DROP TABLE` (re-created by the same migration), `TRUNCATE`, `DELETE`
//!   (with or without `WHERE`) and `UPDATE` without `WHERE`.
//!
//! Rows are counted on the target, read-only, right before the plan is
//! made; objects with no rows (or not there yet) are not at risk. A column
//! counts its non-null values. A migration that copies a column before
//! dropping it is listed too: the guard cannot know where data went, so the
//! user decides (`--allow-data-loss`).

use serde::{Deserialize, Serialize};
use sqlx::{Connection, PgConnection};

use crate::engine::effects::{Effects, first_line};
use crate::source::catalog::{Catalog, ObjectKind};
use crate::source::project::Project;
use crate::{Error, Result};

/// What a statement does to rows.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum LossKind {
    DropsTable,
    DropsColumn,
    Truncates,
    DeletesRows,
    UpdatesEveryRow,
}

impl LossKind {
    /// Words for reports.
    pub fn label(self) -> &'static str {
        match self {
            LossKind::DropsTable => "drops table",
            LossKind::DropsColumn => "drops column",
            LossKind::Truncates => "truncates",
            LossKind::DeletesRows => "deletes rows of",
            LossKind::UpdatesEveryRow => "updates every row of",
        }
    }
}

/// One object whose rows a pending statement destroys or overwrites.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
pub struct DataAtRisk {
    /// The migration's version.
    pub version: String,
    /// Its file name.
    pub migration: String,
    pub kind: LossKind,
    /// The table whose rows change, as the catalog names it (`public.notes`).
    pub table: String,
    /// The table, or `public.prompts.title` for a column.
    pub object: String,
    /// Rows it holds on the target now (non-null values for a column; for a
    /// `DELETE … WHERE`, the rows the condition matches when it can be
    /// counted); -1 when counting failed (a timeout, a permission): unknown,
    /// so at risk.
    pub rows: i64,
    /// The statement's first line, when a statement (not the replay) found it.
    pub statement: Option<String>,
}

impl DataAtRisk {
    /// One line: "20250501000000_drop_legacy.sql drops table public.legacy (300 rows)".
    pub fn describe(&self) -> String {
        format!(
            "{} {} {} ({})",
            self.migration,
            self.kind.label(),
            self.object,
            self.rows_text()
        )
    }

    /// "300 rows", or "rows not countable" when counting failed.
    pub fn rows_text(&self) -> String {
        if self.rows < 0 {
            "rows not countable".to_string()
        } else {
            format!("{} rows", self.rows)
        }
    }
}

/// Every object at risk when `applies` (versions, in order) run on the target.
pub async fn data_at_risk(
    conn: &mut PgConnection,
    project: &Project,
    effects: &Effects,
    applies: &[String],
) -> Result<Vec<DataAtRisk>> {
    let mut found: Vec<DataAtRisk> = Vec::new();
    for version in applies {
        let Some(migration) = project.get(version) else {
            continue;
        };
        let mut push =
            |kind, table: String, object: String, rows: i64, statement: Option<String>| {
                if rows > 0
                    && !found
                        .iter()
                        .any(|f| f.version == *version && f.object == object && f.kind == kind)
                {
                    found.push(DataAtRisk {
                        version: version.clone(),
                        migration: migration.file_name(),
                        kind,
                        table,
                        object,
                        rows,
                        statement,
                    });
                }
            };
        if let Some((i, _)) = effects.of(version) {
            let (before, after) = (effects.prefix(i), effects.prefix(i + 1));
            for (kind, object, column) in dropped(&before, &after) {
                let rows = match &column {
                    None => count(conn, &object, None).await?,
                    Some(column) => count(conn, &object, Some(column)).await?,
                };
                let name = match column {
                    Some(c) => format!("{object}.{c}"),
                    None => object.clone(),
                };
                push(kind, object, name, rows, None);
            }
        }
        for statement in &migration.statements {
            for (kind, written, condition) in analyse(statement) {
                // As the catalog names it; not there (yet): nothing at risk.
                let Some(table) = resolve(conn, &written).await? else {
                    continue;
                };
                let rows = match &condition {
                    Some(condition) => match count_where(conn, &table, condition).await? {
                        Some(n) => n,
                        None => count(conn, &table, None).await?,
                    },
                    None => count(conn, &table, None).await?,
                };
                push(
                    kind,
                    table.clone(),
                    table,
                    rows,
                    Some(first_line(statement)),
                );
            }
        }
    }
    Ok(found)
}

/// Tables and columns present in `before` and gone in `after`: (kind,
/// qualified table, column). A column of a dropped table is not listed twice.
fn dropped(before: &Catalog, after: &Catalog) -> Vec<(LossKind, String, Option<String>)> {
    let mut out = Vec::new();
    let after_tables = after.tables();
    for table in before.tables() {
        if !after_tables.contains(&table) {
            out.push((LossKind::DropsTable, table, None));
        }
    }
    for (key, object) in &before.objects {
        if object.kind != ObjectKind::Column || after.objects.contains_key(key) {
            continue;
        }
        let Some(qualified) = key.strip_prefix("column ") else {
            continue;
        };
        let Some((table, column)) = split_last(qualified) else {
            continue;
        };
        if after_tables.contains(&table) {
            out.push((LossKind::DropsColumn, table, Some(column)));
        }
    }
    out
}

/// `a.b."c.d"` → (`a.b`, `"c.d"`): the last dotted part, quotes respected.
fn split_last(name: &str) -> Option<(String, String)> {
    let mut in_quotes = false;
    let mut last_dot = None;
    for (i, c) in name.char_indices() {
        match c {
            '"' => in_quotes = !in_quotes,
            '.' if !in_quotes => last_dot = Some(i),
            _ => {}
        }
    }
    let dot = last_dot?;
    Some((name[..dot].to_string(), name[dot + 1..].to_string()))
}

/// What a statement itself says it does to rows: (kind, table as written,
/// the `WHERE` condition of a `DELETE`).
fn analyse(statement: &str) -> Vec<(LossKind, String, Option<String>)> {
    let text = without_comments(statement);
    let words: Vec<&str> = text.split_whitespace().collect();
    let upper: Vec<String> = words.iter().map(|w| w.to_uppercase()).collect();
    let is = |i: usize, w: &str| upper.get(i).is_some_and(|u| u == w);
    let mut out = Vec::new();
    if is(0, "DROP") && is(1, "TABLE") {
        let mut i = 2;
        if is(i, "IF") && is(i + 1, "EXISTS") {
            i += 2;
        }
        for name in names(&words[i.min(words.len())..]) {
            out.push((LossKind::DropsTable, name, None));
        }
    } else if is(0, "TRUNCATE") {
        let mut i = 1;
        if is(i, "TABLE") {
            i += 1;
        }
        if is(i, "ONLY") {
            i += 1;
        }
        for name in names(&words[i.min(words.len())..]) {
            out.push((LossKind::Truncates, name, None));
        }
    } else if is(0, "DELETE") && is(1, "FROM") {
        let i = if is(2, "ONLY") { 3 } else { 2 };
        if let Some(name) = words.get(i).and_then(|w| table_name(w)) {
            let condition = upper
                .iter()
                .position(|w| w == "WHERE")
                .map(|w| words[w + 1..].join(" "));
            let uses_others = upper.iter().any(|w| w == "USING");
            out.push((
                LossKind::DeletesRows,
                name,
                condition.filter(|_| !uses_others),
            ));
        }
    } else if is(0, "UPDATE") && !upper.iter().any(|w| w == "WHERE") {
        let i = if is(1, "ONLY") { 2 } else { 1 };
        if let Some(name) = words.get(i).and_then(|w| table_name(w)) {
            out.push((LossKind::UpdatesEveryRow, name, None));
        }
    }
    out
}

/// The comma-separated table names at the start of `words`, up to the first
/// keyword (`CASCADE`, `RESTART IDENTITY` …).
fn names(words: &[&str]) -> Vec<String> {
    let list = words
        .iter()
        .take_while(|w| {
            let u = w.to_uppercase();
            !["CASCADE", "RESTRICT", "RESTART", "CONTINUE"].contains(&u.trim_end_matches(';'))
        })
        .copied()
        .collect::<Vec<_>>()
        .join(" ");
    list.split(',')
        .filter_map(|n| table_name(n.trim()))
        .collect()
}

/// A table name as written, if it is plainly one (letters, digits, `_`,
/// `$`, dots and double-quoted parts): it is put into a counting query.
fn table_name(word: &str) -> Option<String> {
    let word = word
        .trim()
        .trim_end_matches(';')
        .trim_start_matches("ONLY ");
    let mut in_quotes = false;
    for c in word.chars() {
        match c {
            '"' => in_quotes = !in_quotes,
            _ if in_quotes => {}
            c if c.is_alphanumeric() || c == '_' || c == '$' || c == '.' => {}
            _ => return None,
        }
    }
    (!word.is_empty() && !in_quotes).then(|| word.to_string())
}

fn without_comments(statement: &str) -> String {
    statement
        .lines()
        .map(|l| l.split("--").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `name` as written in a statement, resolved on the target (search path
/// included) to `schema.table`; `None` when there is no such table.
async fn resolve(conn: &mut PgConnection, name: &str) -> Result<Option<String>> {
    sqlx::query_scalar(
        "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.oid = to_regclass($1)",
    )
    .bind(name)
    .fetch_optional(&mut *conn)
    .await
    .map_err(Error::db(format!("resolving {name}")))
}

/// Rows of `table` (non-null values of `column`); 0 when it does not exist.
async fn count(conn: &mut PgConnection, table: &str, column: Option<&str>) -> Result<i64> {
    let sql = match column {
        None => format!("SELECT count(*) FROM {table}"),
        Some(column) => format!("SELECT count({column}) FROM {table}"),
    };
    Ok(read_only_count(conn, &sql).await?.unwrap_or(0))
}

/// Rows a `DELETE`'s condition matches, or `None` when it cannot be counted
/// on its own (it names objects the migration creates, or other tables).
async fn count_where(conn: &mut PgConnection, table: &str, condition: &str) -> Result<Option<i64>> {
    let condition = condition.trim().trim_end_matches(';');
    let sql = format!("SELECT count(*) FROM {table} WHERE {condition}");
    // Not countable on its own: the caller counts the whole table instead.
    Ok(read_only_count(conn, &sql).await?.filter(|n| *n >= 0))
}

/// Runs a count in a read-only transaction it rolls back, with a statement
/// timeout. A table, schema or column that is not there (yet) gives
/// `None`; any other failure gives -1 (unknown, so at risk).
async fn read_only_count(conn: &mut PgConnection, sql: &str) -> Result<Option<i64>> {
    let mut tx = conn
        .begin()
        .await
        .map_err(Error::db("starting the data-loss count"))?;
    sqlx::raw_sql("SET TRANSACTION READ ONLY; SET LOCAL statement_timeout = '30s'")
        .execute(&mut *tx)
        .await
        .map_err(Error::db("starting the data-loss count"))?;
    let counted: std::result::Result<i64, _> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .fetch_one(&mut *tx)
        .await;
    tx.rollback().await.ok();
    match counted {
        Ok(n) => Ok(Some(n)),
        Err(e) => match crate::pg::sql::sql_state(&e).as_deref() {
            Some("42P01" | "3F000" | "42703") => Ok(None),
            _ => Ok(Some(-1)),
        },
    }
}

#[cfg(test)]
mod tests;
