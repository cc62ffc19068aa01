//! `state.data_bulk`: the data script as a bulk load. Row by row, each insert
//! into a table with a foreign key runs that key's check (a million
//! `collections` rows: 2.6 of the load's 9.5 s on PostgreSQL 17). In bulk,
//! the session's `session_replication_role` is `replica` while the script
//! runs, which keeps those checks and every ordinary trigger and rule from
//! firing, and afterwards each foreign key of the database is checked once,
//! by one anti-join per constraint. It is for scripts that only insert: the
//! state is then the same as a row-by-row load's. What it cannot stand in
//! for is refused with the object named: an insert trigger or rule (before
//! the script, and again after it for one the script made), a foreign key
//! that is `NOT VALID` or temporal, a script that updated or deleted rows,
//! and rows that break a key.

use sqlx::postgres::PgConnection;
use sqlx::{AssertSqlSafe, Row};

use super::Scenario;
use super::validate::invalid;
use crate::error::{Error, Result};

/// Schemas whose objects are PostgreSQL's own.
const SYSTEM_SCHEMAS: &str = "('pg_catalog', 'information_schema', 'pg_toast')";

/// The hint of every refusal but a broken key's.
const NOT_IN_BULK: &str = "remove data_bulk, so that the data script's rows are loaded one by one";

/// Refuses what a bulk load cannot stand in for, then switches the row
/// checks, triggers and rules off for the rest of the transaction.
pub(super) async fn begin(conn: &mut PgConnection, scenario: &Scenario) -> Result<()> {
    refuse_unchecked(conn, scenario).await?;
    sqlx::raw_sql("SET LOCAL session_replication_role = replica")
        .execute(&mut *conn)
        .await
        .map_err(Error::db("starting a bulk load (session_replication_role)"))?;
    Ok(())
}

/// Refuses what the script did that a bulk load cannot stand in for,
/// switches the row checks back on and checks every foreign key once.
pub(super) async fn end(conn: &mut PgConnection, scenario: &Scenario) -> Result<()> {
    refuse_unchecked(conn, scenario).await?;
    refuse_changed_rows(conn, scenario).await?;
    sqlx::raw_sql("SET LOCAL session_replication_role = origin")
        .execute(&mut *conn)
        .await
        .map_err(Error::db("ending a bulk load (session_replication_role)"))?;
    for key in foreign_keys(conn).await? {
        let broken: bool = sqlx::query_scalar(AssertSqlSafe(violation_query(&key)))
            .fetch_one(&mut *conn)
            .await
            .map_err(Error::db(format!(
                "checking foreign key {} of {} after the bulk load",
                key.name, key.child_name
            )))?;
        if broken {
            return Err(invalid(
                scenario,
                "state.data_bulk",
                format!(
                    "the data script left rows in {} that break its foreign key {} to {}",
                    key.child_name, key.name, key.parent_name
                ),
                "fix the data script (a row-by-row load would have failed at the first such row)",
            ));
        }
    }
    Ok(())
}

/// The first user object, in name order, that a bulk load would skip or
/// could not check: insert triggers and rules enabled for `origin` or
/// `replica` (the first do not fire in bulk, the second fire only then),
/// and foreign keys that are `NOT VALID` (they check new rows only, which
/// the anti-join cannot tell from old ones) or temporal (PostgreSQL 18's
/// `PERIOD`, checked by range, not by equality).
async fn refuse_unchecked(conn: &mut PgConnection, scenario: &Scenario) -> Result<()> {
    let sql = format!(
        "SELECT * FROM ( \
           SELECT format('%I.%I', n.nspname, c.relname) AS owner, \
                  'the insert trigger ' || quote_ident(t.tgname) || ', which does not fire in a bulk load' AS problem \
             FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
            WHERE NOT t.tgisinternal AND t.tgenabled IN ('O', 'R') AND t.tgtype & 4 <> 0 \
              AND n.nspname NOT IN {SYSTEM_SCHEMAS} \
           UNION ALL \
           SELECT format('%I.%I', n.nspname, c.relname), \
                  'the insert rule ' || quote_ident(r.rulename) || ', which does not fire in a bulk load' \
             FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
            WHERE r.ev_type = '3' AND r.ev_enabled IN ('O', 'R') AND n.nspname NOT IN {SYSTEM_SCHEMAS} \
           UNION ALL \
           SELECT format('%I.%I', n.nspname, c.relname), \
                  CASE WHEN NOT k.convalidated \
                       THEN 'the foreign key ' || quote_ident(k.conname) || ' NOT VALID, which checks new rows only' \
                       ELSE 'the temporal foreign key ' || quote_ident(k.conname) || ', which the bulk check does not cover' END \
             FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
            WHERE k.contype = 'f' AND n.nspname NOT IN {SYSTEM_SCHEMAS} \
              AND (NOT k.convalidated OR coalesce((to_jsonb(k) ->> 'conperiod')::bool, false)) \
         ) AS unchecked ORDER BY 1, 2 LIMIT 1"
    );
    let found: Option<(String, String)> = sqlx::query_as(AssertSqlSafe(sql))
        .fetch_optional(&mut *conn)
        .await
        .map_err(Error::db(
            "looking for what a bulk load cannot stand in for",
        ))?;
    match found {
        Some((owner, problem)) => Err(invalid(
            scenario,
            "state.data_bulk",
            format!("{owner} has {problem}"),
            NOT_IN_BULK,
        )),
        None => Ok(()),
    }
}

/// Refuses a script that updated or deleted rows (this transaction's
/// counts): the triggers and rules of updates and deletes did not fire.
async fn refuse_changed_rows(conn: &mut PgConnection, scenario: &Scenario) -> Result<()> {
    let changed: Option<String> = sqlx::query_scalar(
        "SELECT format('%I.%I', schemaname, relname) FROM pg_stat_xact_user_tables \
          WHERE n_tup_upd + n_tup_del > 0 ORDER BY 1 LIMIT 1",
    )
    .fetch_optional(&mut *conn)
    .await
    .map_err(Error::db("reading what the bulk load changed"))?;
    match changed {
        Some(table) => Err(invalid(
            scenario,
            "state.data_bulk",
            format!(
                "the data script updated or deleted rows of {table}; a bulk load is for scripts that only insert"
            ),
            NOT_IN_BULK,
        )),
        None => Ok(()),
    }
}

/// One enforced foreign key: the referencing and referenced tables as SQL
/// (with `ONLY` unless partitioned, as PostgreSQL's own check reads them)
/// and as names, their column lists (quoted, in key order), and whether it
/// is `MATCH FULL`.
struct ForeignKey {
    name: String,
    child: String,
    child_name: String,
    parent: String,
    parent_name: String,
    child_columns: Vec<String>,
    parent_columns: Vec<String>,
    match_full: bool,
}

async fn foreign_keys(conn: &mut PgConnection) -> Result<Vec<ForeignKey>> {
    let sql = format!(
        "SELECT k.conname::text AS name, \
                format('%I.%I', cn.nspname, cr.relname) AS child_name, \
                format('%I.%I', pn.nspname, pr.relname) AS parent_name, \
                CASE WHEN cr.relkind = 'p' THEN '' ELSE 'ONLY ' END AS child_only, \
                CASE WHEN pr.relkind = 'p' THEN '' ELSE 'ONLY ' END AS parent_only, \
                array(SELECT quote_ident(a.attname) FROM unnest(k.conkey) WITH ORDINALITY AS u(n, i) \
                        JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.n ORDER BY u.i) AS child_columns, \
                array(SELECT quote_ident(a.attname) FROM unnest(k.confkey) WITH ORDINALITY AS u(n, i) \
                        JOIN pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = u.n ORDER BY u.i) AS parent_columns, \
                k.confmatchtype = 'f' AS match_full \
           FROM pg_constraint k \
           JOIN pg_class cr ON cr.oid = k.conrelid JOIN pg_namespace cn ON cn.oid = cr.relnamespace \
           JOIN pg_class pr ON pr.oid = k.confrelid JOIN pg_namespace pn ON pn.oid = pr.relnamespace \
          WHERE k.contype = 'f' AND k.conparentid = 0 AND cn.nspname NOT IN {SYSTEM_SCHEMAS} \
            AND coalesce((to_jsonb(k) ->> 'conenforced')::bool, true) \
          ORDER BY 2, 1"
    );
    let rows = sqlx::query(AssertSqlSafe(sql))
        .fetch_all(&mut *conn)
        .await
        .map_err(Error::db("listing foreign keys after the bulk load"))?;
    rows.iter()
        .map(|row| {
            let child_name: String = row.try_get("child_name")?;
            let parent_name: String = row.try_get("parent_name")?;
            Ok(ForeignKey {
                name: row.try_get("name")?,
                child: format!("{}{child_name}", row.try_get::<String, _>("child_only")?),
                parent: format!("{}{parent_name}", row.try_get::<String, _>("parent_only")?),
                child_name,
                parent_name,
                child_columns: row.try_get("child_columns")?,
                parent_columns: row.try_get("parent_columns")?,
                match_full: row.try_get("match_full")?,
            })
        })
        .collect::<std::result::Result<_, sqlx::Error>>()
        .map_err(Error::db("reading the foreign keys"))
}

/// `SELECT EXISTS (…)`: is there a row of the referencing table that the
/// key refuses? `MATCH SIMPLE` lets a row with any NULL key column pass;
/// `MATCH FULL` only a row whose key columns are all NULL.
fn violation_query(key: &ForeignKey) -> String {
    let each = |f: &dyn Fn(&String) -> String, join: &str| {
        key.child_columns
            .iter()
            .map(f)
            .collect::<Vec<_>>()
            .join(join)
    };
    let all_set = each(&|c| format!("c.{c} IS NOT NULL"), " AND ");
    let all_null = each(&|c| format!("c.{c} IS NULL"), " AND ");
    let matches = key
        .child_columns
        .iter()
        .zip(&key.parent_columns)
        .map(|(c, p)| format!("p.{p} = c.{c}"))
        .collect::<Vec<_>>()
        .join(" AND ");
    let unmatched = format!(
        "NOT EXISTS (SELECT 1 FROM {} AS p WHERE {matches})",
        key.parent
    );
    let refused = if key.match_full {
        format!("NOT ({all_null}) AND (NOT ({all_set}) OR {unmatched})")
    } else {
        format!("{all_set} AND {unmatched}")
    };
    format!(
        "SELECT EXISTS (SELECT 1 FROM {} AS c WHERE {refused})",
        key.child
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(match_full: bool) -> ForeignKey {
        ForeignKey {
            name: "collections_user_id_fkey".into(),
            child: "ONLY public.collections".into(),
            child_name: "public.collections".into(),
            parent: "ONLY auth.users".into(),
            parent_name: "auth.users".into(),
            child_columns: vec!["user_id".into(), "\"Org\"".into()],
            parent_columns: vec!["id".into(), "org".into()],
            match_full,
        }
    }

    #[test]
    fn match_simple_lets_any_null_pass() {
        assert_eq!(
            violation_query(&key(false)),
            "SELECT EXISTS (SELECT 1 FROM ONLY public.collections AS c WHERE \
             c.user_id IS NOT NULL AND c.\"Org\" IS NOT NULL AND \
             NOT EXISTS (SELECT 1 FROM ONLY auth.users AS p WHERE p.id = c.user_id AND p.org = c.\"Org\"))"
        );
    }

    #[test]
    fn match_full_lets_only_all_nulls_pass() {
        assert_eq!(
            violation_query(&key(true)),
            "SELECT EXISTS (SELECT 1 FROM ONLY public.collections AS c WHERE \
             NOT (c.user_id IS NULL AND c.\"Org\" IS NULL) AND \
             (NOT (c.user_id IS NOT NULL AND c.\"Org\" IS NOT NULL) OR \
             NOT EXISTS (SELECT 1 FROM ONLY auth.users AS p WHERE p.id = c.user_id AND p.org = c.\"Org\")))"
        );
    }
}
