//! What each migration touched, recorded while it runs: two event triggers
//! on the scratch database (`ddl_command_end` and `sql_drop`) write every
//! DDL command's object and every dropped object into a temporary table;
//! after the migration, [`Capture::take`] turns that log into the roots whose
//! objects must be read again ([`Refresh`]) — the objects created, altered,
//! commented or dropped, the roots their sub-objects hang off, and, for an
//! `ALTER`, everything that depends on what it altered (a renamed table
//! changes the text of the views, foreign keys, policies and sequences that
//! name it).
//!
//! What the triggers do not see is handled otherwise: `GRANT` and `REVOKE`
//! are reported without their objects on every major (14–18), so after one
//! the relations, columns and functions whose catalog row the migration's
//! transaction wrote (its `xmin`, or a subtransaction's, is the migration's
//! — each migration's message records its transaction id in the session)
//! are read again: every ACL it changed, and perhaps objects it changed
//! otherwise, which read the same. `ALTER DEFAULT PRIVILEGES` changes no
//! existing object (the objects created later are reported themselves); role
//! commands (renaming a role, `REASSIGN OWNED`, `DROP OWNED`) fire no event
//! trigger, and a dropped sub-object whose root cannot be traced is a
//! mystery — both mean the whole catalog is read again.

use std::collections::{BTreeMap, BTreeSet};

use sqlx::PgConnection;
use sqlx::postgres::types::Oid;

use crate::pg::sql::quote_ident;
use crate::source::catalog::{Refresh, RootClass, TrackedCatalog};
use crate::source::project::Migration;
use crate::{Error, Result};

/// Sets up the log and the two event triggers (superuser only).
const SETUP: &str = r#"
CREATE TEMP TABLE phantom_replay_log (
    dropped boolean NOT NULL, tag text, classid oid, objid oid, objsubid int4,
    object_type text, schema_name text, address text[]);
CREATE FUNCTION pg_catalog.phantom_replay_commands() RETURNS event_trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF to_regclass('pg_temp.phantom_replay_log') IS NOT NULL THEN
        INSERT INTO pg_temp.phantom_replay_log
        SELECT false, command_tag, classid, objid, objsubid, object_type, schema_name, NULL
          FROM pg_event_trigger_ddl_commands();
    END IF;
END $$;
CREATE FUNCTION pg_catalog.phantom_replay_drops() RETURNS event_trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF to_regclass('pg_temp.phantom_replay_log') IS NOT NULL THEN
        INSERT INTO pg_temp.phantom_replay_log
        SELECT true, NULL, classid, objid, objsubid, object_type, schema_name, address_names
          FROM pg_event_trigger_dropped_objects();
    END IF;
END $$;
CREATE EVENT TRIGGER phantom_replay_commands ON ddl_command_end
    EXECUTE FUNCTION pg_catalog.phantom_replay_commands();
CREATE EVENT TRIGGER phantom_replay_drops ON sql_drop
    EXECUTE FUNCTION pg_catalog.phantom_replay_drops();
ALTER EVENT TRIGGER phantom_replay_commands ENABLE ALWAYS;
ALTER EVENT TRIGGER phantom_replay_drops ENABLE ALWAYS;
"#;

/// Sent inside each migration's transaction, before its statements: its
/// transaction id, kept in the session setting `phantom_sync.replay_xid`
/// after the commit, for [`ACL_CHANGES`].
pub(crate) const RECORD_XID: &str =
    "SELECT set_config('phantom_sync.replay_xid', pg_current_xact_id()::xid::text, false);\n";

/// GRANT and REVOKE are logged without their objects; the relations,
/// columns and functions whose catalog row the migration wrote include the
/// ones whose ACL they changed. A row written by the migration's transaction
/// or one of its subtransactions is no older than the transaction's id (its
/// subtransactions' ids come after it), which `age` tells modulo
/// wraparound. Temporary tables (the replay's log, rewritten by each
/// migration's `TRUNCATE`) are never shown and left out. The setting missing
/// is an error (every grant is then read again), never an empty answer.
const ACL_CHANGES: &str = concat!(
    "WITH m(xid) AS (SELECT current_setting('phantom_sync.replay_xid')::xid) ",
    "SELECT 'pg_class'::regclass::oid::int8, c.oid::int8 FROM pg_class c, m WHERE age(c.xmin) <= age(m.xid) AND c.relpersistence <> 't' ",
    "UNION SELECT 'pg_class'::regclass::oid::int8, a.attrelid::int8 FROM pg_attribute a, m ",
    "WHERE a.attnum > 0 AND age(a.xmin) <= age(m.xid) ",
    "UNION SELECT 'pg_proc'::regclass::oid::int8, p.oid::int8 FROM pg_proc p, m WHERE age(p.xmin) <= age(m.xid)"
);

/// Reads the log. The replay empties it with TRUNCATE at the start of the
/// next migration's message: nothing vacuums a temporary table, so DELETE
/// would leave every row ever logged for later scans.
const TAKE: &str = "SELECT dropped, tag, classid::int8 AS classid, objid::int8 AS objid, objsubid, \
      object_type, schema_name, address FROM pg_temp.phantom_replay_log";

/// Maps objects to the roots they hang off, with their class. Objects under
/// which no catalog object is ever shown lead to no root: TOAST tables, types
/// that are not enums, domains, ranges or composites (the array type of each
/// new table), and the triggers PostgreSQL makes for a foreign key — which
/// hang off the referenced table, so that without this every migration that
/// creates a table referring to `auth.users` would read `auth.users` again.
/// `$1`/`$2`:
/// classid and objid of the objects reported; `$3`: whether to follow each
/// one's dependents; `$4`: roots known from earlier reads; `$5`: tables by
/// qualified name (those of dropped policies, triggers, constraints and
/// defaults whose OID was never read).
const ROOTS: &str = r#"
WITH RECURSIVE expanded(classid, objid) AS (
    SELECT s.classid, s.objid FROM unnest($1::oid[], $2::oid[], $3::bool[]) s(classid, objid, follow)
     WHERE s.follow
    UNION
    SELECT d.classid, d.objid FROM expanded e, LATERAL (
        SELECT d.classid, d.objid FROM pg_depend d
         WHERE d.refclassid = e.classid AND d.refobjid = e.objid AND d.deptype IN ('n', 'a', 'i')) d
), objects(classid, objid) AS (
    SELECT classid, objid FROM expanded
    UNION SELECT s.classid, s.objid FROM unnest($1::oid[], $2::oid[]) s(classid, objid)
    UNION SELECT 0::oid, k FROM unnest($4::oid[]) k
    UNION SELECT 'pg_class'::regclass::oid, to_regclass(a)::oid FROM unnest($5::text[]) a
     WHERE to_regclass(a) IS NOT NULL
), roots(root, cat) AS (
    SELECT m.root, m.cat FROM objects o, LATERAL (
        SELECT c.oid, 'pg_class' FROM pg_class c
         WHERE o.classid IN (0, 'pg_class'::regclass) AND c.oid = o.objid AND c.relkind NOT IN ('i', 'I', 'c', 't')
        UNION ALL SELECT i.indrelid, 'pg_class' FROM pg_index i JOIN pg_class ic ON ic.oid = i.indrelid
         WHERE o.classid = 'pg_class'::regclass AND i.indexrelid = o.objid AND ic.relkind <> 't'
        UNION ALL SELECT c.reltype, 'pg_type' FROM pg_class c
         WHERE o.classid = 'pg_class'::regclass AND c.oid = o.objid AND c.relkind = 'c'
        UNION ALL SELECT CASE WHEN r.relkind IS NOT NULL AND r.relkind <> 'c' THEN t.typrelid ELSE t.oid END,
                         CASE WHEN r.relkind IS NOT NULL AND r.relkind <> 'c' THEN 'pg_class' ELSE 'pg_type' END
          FROM pg_type t LEFT JOIN pg_class r ON r.oid = t.typrelid
         WHERE o.classid IN (0, 'pg_type'::regclass) AND t.oid = o.objid AND t.typtype IN ('c', 'e', 'd', 'r')
        UNION ALL SELECT CASE WHEN k.conrelid <> 0 THEN k.conrelid ELSE k.contypid END,
                         CASE WHEN k.conrelid <> 0 THEN 'pg_class' ELSE 'pg_type' END
          FROM pg_constraint k WHERE o.classid = 'pg_constraint'::regclass AND k.oid = o.objid
        UNION ALL SELECT a.adrelid, 'pg_class' FROM pg_attrdef a
         WHERE o.classid = 'pg_attrdef'::regclass AND a.oid = o.objid
        UNION ALL SELECT p.polrelid, 'pg_class' FROM pg_policy p
         WHERE o.classid = 'pg_policy'::regclass AND p.oid = o.objid
        UNION ALL SELECT t.tgrelid, 'pg_class' FROM pg_trigger t
         WHERE o.classid = 'pg_trigger'::regclass AND t.oid = o.objid AND NOT t.tgisinternal
        UNION ALL SELECT r.ev_class, 'pg_class' FROM pg_rewrite r
         WHERE o.classid = 'pg_rewrite'::regclass AND r.oid = o.objid
        UNION ALL SELECT p.oid, 'pg_proc' FROM pg_proc p
         WHERE o.classid IN (0, 'pg_proc'::regclass) AND p.oid = o.objid
        UNION ALL SELECT n.oid, 'pg_namespace' FROM pg_namespace n
         WHERE o.classid IN (0, 'pg_namespace'::regclass) AND n.oid = o.objid
        UNION ALL SELECT x.oid, 'pg_extension' FROM pg_extension x
         WHERE o.classid IN (0, 'pg_extension'::regclass) AND x.oid = o.objid
    ) m(root, cat)
)
SELECT DISTINCT r.root::int8 AS root,
       CASE r.cat WHEN 'pg_class' THEN
                 (SELECT CASE c.relkind WHEN 'S' THEN 'sequence' WHEN 'v' THEN 'view' WHEN 'm' THEN 'view'
                         ELSE 'table' END FROM pg_class c WHERE c.oid = r.root)
            WHEN 'pg_type' THEN 'type' WHEN 'pg_proc' THEN 'function'
            WHEN 'pg_namespace' THEN 'schema' ELSE 'extension' END AS class
  FROM roots r WHERE r.root IS NOT NULL AND r.root <> 0
"#;

/// The event triggers on one scratch connection.
#[derive(Debug)]
pub(crate) struct Capture {
    installed: bool,
}

/// One row of the log.
#[derive(Debug, Clone)]
struct Logged {
    dropped: bool,
    tag: Option<String>,
    classid: Option<i64>,
    objid: Option<i64>,
    objsubid: Option<i32>,
    object_type: Option<String>,
    schema_name: Option<String>,
    address: Option<Vec<String>>,
}

impl Logged {
    fn from_row(row: &sqlx::postgres::PgRow) -> Result<Logged> {
        use sqlx::Row;
        let get = |e| Error::db("decoding the DDL log")(e);
        Ok(Logged {
            dropped: row.try_get("dropped").map_err(get)?,
            tag: row.try_get("tag").map_err(get)?,
            classid: row.try_get("classid").map_err(get)?,
            objid: row.try_get("objid").map_err(get)?,
            objsubid: row.try_get("objsubid").map_err(get)?,
            object_type: row.try_get("object_type").map_err(get)?,
            schema_name: row.try_get("schema_name").map_err(get)?,
            address: row.try_get("address").map_err(get)?,
        })
    }
}

/// What to do after a migration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Next {
    /// Read these roots again.
    Refresh(Refresh),
    /// Read the whole catalog again (the log cannot say what changed).
    Reread(&'static str),
}

impl Capture {
    /// Installs the event triggers; without superuser rights (or on a
    /// server that refuses them) every migration is followed by a whole read.
    pub(crate) async fn install(conn: &mut PgConnection) -> Capture {
        match sqlx::raw_sql(SETUP).execute(&mut *conn).await {
            Ok(_) => Capture { installed: true },
            Err(e) => {
                tracing::info!(
                    "replay: no event triggers on the scratch database ({e}); the whole catalog is read after each migration"
                );
                Capture { installed: false }
            }
        }
    }

    /// Whether the event triggers record (the replay then empties their log
    /// in each migration's own message).
    pub(crate) fn recording(&self) -> bool {
        self.installed
    }

    /// What `migration` (just committed) touched, as roots of `tracked` to read again.
    pub(crate) async fn take(
        &self,
        conn: &mut PgConnection,
        migration: &Migration,
        tracked: &TrackedCatalog,
        excluded: &[String],
    ) -> Result<Next> {
        if !self.installed {
            return Ok(Next::Reread("no event triggers"));
        }
        let taken = sqlx::query(TAKE).fetch_all(&mut *conn).await;
        let log: Vec<Logged> = match taken {
            Ok(rows) => rows.iter().map(Logged::from_row).collect::<Result<_>>()?,
            Err(e) => {
                tracing::info!("replay: the DDL log could not be read ({e})");
                return Ok(Next::Reread("the DDL log is gone"));
            }
        };
        if let Some(why) = unseen_commands(migration) {
            return Ok(Next::Reread(why));
        }
        plan_refresh(conn, &log, tracked, excluded).await
    }
}

/// Commands that change catalog text without firing an event trigger.
fn unseen_commands(migration: &Migration) -> Option<&'static str> {
    let sql = migration.sql.to_ascii_lowercase();
    let words: Vec<&str> = sql
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .collect();
    let has = |a: &str, b: &str| words.windows(2).any(|w| w[0] == a && w[1] == b);
    if has("reassign", "owned") || has("drop", "owned") {
        return Some("REASSIGN/DROP OWNED fire no event trigger");
    }
    let role_command = has("alter", "role") || has("alter", "user") || has("alter", "group");
    if role_command && words.contains(&"rename") {
        return Some("a role may have been renamed");
    }
    None
}

/// GRANT/REVOKE object types whose privileges the catalog does not show.
const UNSHOWN_GRANTS: &[&str] = &[
    "SCHEMA",
    "TYPE",
    "DOMAIN",
    "DATABASE",
    "LANGUAGE",
    "TABLESPACE",
    "FOREIGN DATA WRAPPER",
    "FOREIGN SERVER",
    "LARGE OBJECT",
    "PARAMETER",
];

async fn plan_refresh(
    conn: &mut PgConnection,
    log: &[Logged],
    tracked: &TrackedCatalog,
    excluded: &[String],
) -> Result<Next> {
    let mut refresh = Refresh::default();
    let mut classids: Vec<Oid> = Vec::new();
    let mut objids: Vec<Oid> = Vec::new();
    let mut follow: Vec<bool> = Vec::new();
    let mut known: BTreeSet<u32> = BTreeSet::new();
    let mut addresses: BTreeSet<String> = BTreeSet::new();
    let mut acls_changed = false;
    let reported: BTreeSet<(i64, i64)> = log
        .iter()
        .filter(|l| !l.dropped)
        .filter_map(|l| Some((l.classid?, l.objid?)))
        .collect();
    for entry in log {
        let tag = entry.tag.as_deref().unwrap_or("");
        if !entry.dropped && matches!(tag, "GRANT" | "REVOKE") {
            let kind = entry.object_type.as_deref().unwrap_or("");
            acls_changed |= !UNSHOWN_GRANTS.contains(&kind);
            continue;
        }
        let (Some(classid), Some(objid)) = (entry.classid, entry.objid) else {
            continue; // ALTER DEFAULT PRIVILEGES and the like: no object
        };
        let (Ok(class), Ok(oid)) = (u32::try_from(classid), u32::try_from(objid)) else {
            continue;
        };
        if oid == 0 {
            continue;
        }
        if !entry.dropped {
            classids.push(Oid(class));
            objids.push(Oid(oid));
            follow.push(tag.starts_with("ALTER "));
            continue;
        }
        // Dropped: the catalog rows are gone, so trace it through what was read before.
        if tracked.is_root(oid) {
            refresh.gone.insert(oid);
            if entry.objsubid.unwrap_or(0) > 0 {
                known.insert(oid); // a dropped column: its table remains
            }
            continue;
        }
        if let Some(root) = tracked.root_of_part(oid) {
            known.insert(root);
            continue;
        }
        let object_type = entry.object_type.as_deref().unwrap_or("");
        let schema = entry.schema_name.as_deref().unwrap_or("");
        let ignorable_schema = schema.is_empty()
            || schema.starts_with("pg_")
            || schema == "information_schema"
            || excluded.iter().any(|e| e == schema);
        if ignorable_schema || reported.contains(&(classid, objid)) {
            continue; // never shown, or created and dropped by this migration
        }
        match object_type {
            "table constraint" | "policy" | "trigger" | "default value" | "table column" => {
                // address: {schema, table, name} — its table, if it still exists.
                if let Some(address) = &entry.address
                    && address.len() >= 2
                {
                    addresses.insert(format!(
                        "{}.{}",
                        quote_ident(&address[0]),
                        quote_ident(&address[1])
                    ));
                }
            }
            "index" => return Ok(Next::Reread("an index of an unknown table was dropped")),
            // Roots never read (created and dropped here, or outside the
            // schemas read), rules, row types: nothing shown hangs off them.
            _ => {}
        }
    }
    for root in refresh.gone.clone() {
        known.extend(tracked.children_of(root));
    }
    if acls_changed {
        let changed = sqlx::query_as::<_, (i64, i64)>(ACL_CHANGES)
            .fetch_all(&mut *conn)
            .await;
        match changed {
            Ok(changed) => {
                for (classid, objid) in changed {
                    if let (Ok(class), Ok(oid)) = (u32::try_from(classid), u32::try_from(objid)) {
                        classids.push(Oid(class));
                        objids.push(Oid(oid));
                        follow.push(false);
                    }
                }
            }
            Err(e) => {
                tracing::info!(
                    "replay: the rows a GRANT or REVOKE wrote could not be listed ({e})"
                );
                refresh.grants = true;
            }
        }
    }
    if classids.is_empty() && known.is_empty() && addresses.is_empty() {
        return Ok(Next::Refresh(refresh));
    }
    let known: Vec<Oid> = known.into_iter().map(Oid).collect();
    let addresses: Vec<String> = addresses.into_iter().collect();
    // Planned once per connection (the custom plans cost more than the
    // query): the replay leaves plan_cache_mode at force_generic_plan after
    // each migration.
    let rows: Result<Vec<(i64, String)>> = sqlx::query_as(ROOTS)
        .bind(&classids)
        .bind(&objids)
        .bind(&follow)
        .bind(&known)
        .bind(&addresses)
        .fetch_all(&mut *conn)
        .await
        .map_err(Error::db("finding what a migration touched"));
    let rows = rows?;
    let mut roots: BTreeMap<u32, RootClass> = BTreeMap::new();
    for (root, class) in rows {
        let Ok(root) = u32::try_from(root) else {
            continue;
        };
        let class = match class.as_str() {
            "sequence" => RootClass::Sequence,
            "view" => RootClass::View,
            "table" => RootClass::Table,
            "type" => RootClass::Type,
            "function" => RootClass::Function,
            "schema" => RootClass::Schema,
            _ => RootClass::Extension,
        };
        roots.insert(root, class);
    }
    // A partition repeats its parent's name: read the partitions with the parent.
    let parents: Vec<u32> = roots.keys().copied().collect();
    for parent in parents {
        for child in tracked.children_of(parent).collect::<Vec<_>>() {
            roots.entry(child).or_insert(RootClass::Table);
        }
    }
    for root in roots.keys() {
        refresh.gone.remove(root);
    }
    refresh.roots = roots;
    Ok(Next::Refresh(refresh))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn migration(sql: &str) -> Migration {
        Migration {
            version: "1".into(),
            name: "m".into(),
            path: "1_m.sql".into(),
            sql: sql.into(),
            statements: vec![sql.into()],
        }
    }

    #[test]
    fn role_commands_that_fire_no_event_trigger_force_a_whole_read() {
        assert!(unseen_commands(&migration("ALTER ROLE a RENAME TO b;")).is_some());
        assert!(unseen_commands(&migration("reassign owned by a to b;")).is_some());
        assert!(unseen_commands(&migration("DROP OWNED BY a;")).is_some());
        assert!(unseen_commands(&migration("ALTER ROLE a SET search_path = x;")).is_none());
        assert!(unseen_commands(&migration("CREATE TABLE t (id int);")).is_none());
    }
}
