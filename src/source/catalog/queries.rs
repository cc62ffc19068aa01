//! The SQL that reads each object kind from the system catalogs, one query
//! per kind. Every query that takes parameters gets the excluded schema
//! names as `$1`; all of them leave out system schemas and objects that
//! belong to an extension, and order their rows.

/// `WHERE` condition: namespace `$alias` is a user schema (`$1`: the excluded names).
macro_rules! user_ns {
    ($alias:literal) => {
        concat!(
            "(",
            $alias,
            ".nspname <> ALL($1::text[]) AND ",
            $alias,
            ".nspname NOT LIKE 'pg\\_%' AND ",
            $alias,
            ".nspname <> 'information_schema')"
        )
    };
}

/// `WHERE` condition: the object `$oid` of catalog `$catalog` does not belong to an extension.
macro_rules! not_member {
    ($catalog:literal, $oid:literal) => {
        concat!(
            "NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = '",
            $catalog,
            "'::regclass AND e.objid = ",
            $oid,
            " AND e.deptype = 'e')"
        )
    };
}

/// `WHERE` condition: `$oid` is one of the roots asked for (`$2`), or every
/// object when `$2` is NULL (a whole-catalog read). A targeted read runs the
/// query without the NULL test ([`targeted`]), so that its cached plan uses
/// the OID indexes.
macro_rules! in_roots {
    ($oid:literal) => {
        concat!("($2::oid[] IS NULL OR ", $oid, " = ANY($2::oid[]))")
    };
}

macro_rules! session {
    ($extra:literal) => {
        concat!(
            "SELECT current_setting('server_version_num')::int4 AS version, \
    set_config('search_path', 'pg_catalog', true), set_config('TimeZone', 'UTC', true), \
    set_config('DateStyle', 'ISO, YMD', true), set_config('IntervalStyle', 'postgres', true), \
    set_config('extra_float_digits', '1', true), set_config('bytea_output', 'hex', true), \
    set_config('quote_all_identifiers', 'off', true), \
    set_config('standard_conforming_strings', 'on', true), set_config('lc_monetary', 'C', true)",
            $extra
        )
    };
}

/// Settings that fix how the server prints expressions and values; also the server's version.
pub(super) const SESSION: &str = session!("");

/// [`SESSION`] for a targeted read: also keep the prepared statement's
/// generic plan (looked up by OID index), never plan it again per call.
pub(super) const SESSION_TARGETED: &str =
    session!(", set_config('plan_cache_mode', 'force_generic_plan', true)");

pub(super) const SCHEMAS: &str = concat!(
    "SELECT n.nspname::text AS nspname, n.oid::int8 AS root FROM pg_namespace n WHERE ",
    user_ns!("n"),
    " AND ",
    not_member!("pg_namespace", "n.oid"),
    " AND ",
    in_roots!("n.oid"),
    " ORDER BY 1"
);

/// Every extension but `plpgsql` (present in every database), wherever
/// installed (`$1` is not used to filter; it is mentioned so that every
/// query takes the same two parameters).
pub(super) const EXTENSIONS: &str = concat!(
    "SELECT x.extname::text AS name, n.nspname::text AS nspname, x.oid::int8 AS root \
    FROM pg_extension x JOIN pg_namespace n ON n.oid = x.extnamespace \
    WHERE x.extname <> 'plpgsql' AND cardinality($1::text[]) >= 0 AND ",
    in_roots!("x.oid"),
    " ORDER BY 1"
);

pub(super) const TYPES: &str = concat!(
    "SELECT n.nspname::text AS nspname, t.typname::text AS name, t.typtype::text AS typtype, \
       ARRAY(SELECT e.enumlabel::text FROM pg_enum e WHERE e.enumtypid = t.oid ORDER BY e.enumsortorder) AS labels, \
       ARRAY(SELECT a.attname::text FROM pg_attribute a WHERE a.attrelid = t.typrelid AND a.attnum > 0 \
             AND NOT a.attisdropped ORDER BY a.attnum) AS attnames, \
       ARRAY(SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a WHERE a.attrelid = t.typrelid \
             AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum) AS atttypes, \
       CASE t.typtype WHEN 'd' THEN format_type(t.typbasetype, t.typtypmod) \
            WHEN 'r' THEN (SELECT format_type(r.rngsubtype, NULL) FROM pg_range r WHERE r.rngtypid = t.oid) END AS base, \
       t.typnotnull AS not_null, pg_get_expr(t.typdefaultbin, 0) AS default_expr, \
       co.collname::text AS collname, cn.nspname::text AS collschema, \
       ARRAY(SELECT k.conname::text FROM pg_constraint k WHERE k.contypid = t.oid AND k.contype = 'c' \
             ORDER BY k.conname) AS check_names, \
       ARRAY(SELECT pg_get_constraintdef(k.oid) FROM pg_constraint k WHERE k.contypid = t.oid AND k.contype = 'c' \
             ORDER BY k.conname) AS check_defs, t.oid::int8 AS root \
     FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace \
     LEFT JOIN pg_class rel ON rel.oid = t.typrelid \
     LEFT JOIN pg_type bt ON bt.oid = t.typbasetype \
     LEFT JOIN pg_collation co ON co.oid = t.typcollation AND t.typtype = 'd' AND t.typcollation <> bt.typcollation \
     LEFT JOIN pg_namespace cn ON cn.oid = co.collnamespace \
     WHERE (t.typtype IN ('e', 'd', 'r') OR (t.typtype = 'c' AND rel.relkind = 'c')) AND ",
    user_ns!("n"),
    " AND ",
    not_member!("pg_type", "t.oid"),
    " AND ",
    in_roots!("t.oid"),
    " ORDER BY 1, 2"
);

/// Sequences, except those behind identity columns (part of the column).
pub(super) const SEQUENCES: &str = concat!(
    "SELECT n.nspname::text AS nspname, c.relname::text AS name, format_type(s.seqtypid, NULL) AS data_type, \
       s.seqstart AS start, s.seqincrement AS increment, s.seqmin AS min, s.seqmax AS max, s.seqcache AS cache, \
       s.seqcycle AS cycle, c.relpersistence = 'u' AS unlogged, \
       o.nspname AS owner_schema, o.relname AS owner_table, o.attname AS owner_column, \
       c.oid::int8 AS root \
     FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
     LEFT JOIN LATERAL (SELECT tn.nspname::text AS nspname, tc.relname::text AS relname, a.attname::text AS attname \
         FROM pg_depend d JOIN pg_class tc ON tc.oid = d.refobjid JOIN pg_namespace tn ON tn.oid = tc.relnamespace \
         JOIN pg_attribute a ON a.attrelid = tc.oid AND a.attnum = d.refobjsubid \
         WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.refclassid = 'pg_class'::regclass \
           AND d.deptype = 'a' ORDER BY 1, 2, 3 LIMIT 1) o ON true \
     WHERE NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid \
           AND d.deptype = 'i') AND ",
    user_ns!("n"),
    " AND ",
    not_member!("pg_class", "c.oid"),
    " AND ",
    in_roots!("c.oid"),
    " ORDER BY 1, 2"
);

/// Tables (plain and partitioned) with their row-level-security flags.
pub(super) const TABLES: &str = concat!(
    "SELECT n.nspname::text AS nspname, c.relname::text AS name, c.relkind::text AS relkind, \
       c.relpersistence = 'u' AS unlogged, \
       CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END AS partition_key, \
       pn.nspname::text AS parent_schema, pc.relname::text AS parent_name, \
       CASE WHEN c.relispartition THEN pg_get_expr(c.relpartbound, c.oid) END AS bound, \
       coalesce(c.reloptions, '{}')::text[] AS options, c.relrowsecurity AS rls, c.relforcerowsecurity AS forced, \
       c.oid::int8 AS root \
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
     LEFT JOIN pg_inherits i ON i.inhrelid = c.oid AND c.relispartition \
     LEFT JOIN pg_class pc ON pc.oid = i.inhparent LEFT JOIN pg_namespace pn ON pn.oid = pc.relnamespace \
     WHERE c.relkind IN ('r', 'p') AND ",
    user_ns!("n"),
    " AND ",
    not_member!("pg_class", "c.oid"),
    " AND ",
    in_roots!("c.oid"),
    " ORDER BY 1, 2"
);

pub(super) const COLUMNS: &str = concat!(
    "SELECT n.nspname::text AS nspname, c.relname::text AS name, a.attname::text AS column_name, \
       format_type(a.atttypid, a.atttypmod) AS data_type, a.attnotnull AS not_null, \
       CASE WHEN c.relispartition THEN '' ELSE a.attidentity::text END AS identity, \
       a.attgenerated::text AS generated, \
       pg_get_expr(d.adbin, d.adrelid) AS default_expr, co.collname::text AS collname, cn.nspname::text AS collschema, \
       c.oid::int8 AS root \
     FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
     JOIN pg_type t ON t.oid = a.atttypid \
     LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
     LEFT JOIN pg_collation co ON co.oid = a.attcollation AND a.attcollation <> t.typcollation \
     LEFT JOIN pg_namespace cn ON cn.oid = co.collnamespace \
     WHERE c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped AND ",
    user_ns!("n"),
    " AND ",
    not_member!("pg_class", "c.oid"),
    " AND ",
    in_roots!("c.oid"),
    " ORDER BY 1, 2, a.attnum"
);

/// Table constraints except NOT NULL (PostgreSQL 18 lists them; nullability
/// is on the column) and constraint triggers (listed as triggers).
pub(super) const CONSTRAINTS: &str = concat!(
    "SELECT n.nspname::text AS nspname, c.relname::text AS name, k.conname::text AS constraint_name, \
       pg_get_constraintdef(k.oid) AS def, c.oid::int8 AS root \
     FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
     WHERE k.contype NOT IN ('n', 't') AND c.relkind IN ('r', 'p') AND ",
    user_ns!("n"),
    " AND ",
    not_member!("pg_class", "c.oid"),
    " AND ",
    in_roots!("c.oid"),
    " ORDER BY 1, 2, 3"
);

/// Indexes of tables and materialized views, including those behind constraints.
pub(super) const INDEXES: &str = concat!(
    "SELECT n.nspname::text AS nspname, ic.relname::text AS name, pg_get_indexdef(i.indexrelid) AS def, \
       i.indisvalid AS valid, c.oid::int8 AS root \
     FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_class c ON c.oid = i.indrelid \
     JOIN pg_namespace n ON n.oid = ic.relnamespace \
     WHERE c.relkind IN ('r', 'p', 'm') AND ",
    user_ns!("n"),
    " AND ",
    not_member!("pg_class", "c.oid"),
    " AND ",
    not_member!("pg_class", "ic.oid"),
    " AND ",
    in_roots!("c.oid"),
    " ORDER BY 1, 2"
);

pub(super) const POLICIES: &str = concat!(
    "SELECT n.nspname::text AS nspname, c.relname::text AS name, p.polname::text AS policy_name, \
       p.polpermissive AS permissive, p.polcmd::text AS command, \
       ARRAY(SELECT CASE WHEN r = 0 THEN NULL ELSE pg_get_userbyid(r)::text END FROM unnest(p.polroles) r) AS roles, \
       pg_get_expr(p.polqual, p.polrelid) AS using_expr, pg_get_expr(p.polwithcheck, p.polrelid) AS check_expr, \
       c.oid::int8 AS root \
     FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
     WHERE ",
    user_ns!("n"),
    " AND ",
    not_member!("pg_class", "c.oid"),
    " AND ",
    in_roots!("c.oid"),
    " ORDER BY 1, 2, 3"
);

/// Functions, procedures and window functions; aggregates are not read.
pub(super) const FUNCTIONS: &str = concat!(
    "SELECT n.nspname::text AS nspname, p.proname::text AS name, p.prokind::text AS prokind, \
       ARRAY(SELECT format_type(u.t, NULL) FROM unnest(p.proargtypes::oid[]) WITH ORDINALITY u(t, o) \
             ORDER BY u.o) AS argtypes, \
       pg_get_function_arguments(p.oid) AS args, pg_get_function_result(p.oid) AS result, \
       l.lanname::text AS language, p.provolatile::text AS volatility, p.proisstrict AS strict, \
       p.prosecdef AS definer, p.proleakproof AS leakproof, p.proparallel::text AS parallel, \
       coalesce(p.proconfig, '{}')::text[] AS config, \
       CASE WHEN p.prosqlbody IS NOT NULL THEN pg_get_function_sqlbody(p.oid) ELSE p.prosrc END AS body, \
       p.oid::int8 AS root \
     FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace JOIN pg_language l ON l.oid = p.prolang \
     WHERE p.prokind IN ('f', 'p', 'w') AND ",
    user_ns!("n"),
    " AND ",
    not_member!("pg_proc", "p.oid"),
    " AND ",
    in_roots!("p.oid"),
    " ORDER BY 1, 2, 4"
);

/// User triggers (not those PostgreSQL makes for foreign keys, nor the copies
/// on partitions), also on tables outside the user schemas when the trigger
/// calls a user function (e.g. `auth.users` → `public.handle_new_user()`).
pub(super) const TRIGGERS: &str = concat!(
    "SELECT n.nspname::text AS nspname, c.relname::text AS name, t.tgname::text AS trigger_name, \
       pg_get_triggerdef(t.oid) AS def, t.tgenabled::text AS enabled, c.oid::int8 AS root \
     FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
     JOIN pg_proc f ON f.oid = t.tgfoid JOIN pg_namespace fn ON fn.oid = f.pronamespace \
     WHERE NOT t.tgisinternal AND t.tgparentid = 0 AND (",
    user_ns!("n"),
    " OR ",
    user_ns!("fn"),
    ") AND ",
    not_member!("pg_class", "c.oid"),
    " AND ",
    in_roots!("c.oid"),
    " ORDER BY 1, 2, 3"
);

pub(super) const VIEWS: &str = concat!(
    "SELECT n.nspname::text AS nspname, c.relname::text AS name, c.relkind::text AS relkind, \
       pg_get_viewdef(c.oid) AS def, coalesce(c.reloptions, '{}')::text[] AS options, \
       c.oid::int8 AS root \
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
     WHERE c.relkind IN ('v', 'm') AND ",
    user_ns!("n"),
    " AND ",
    not_member!("pg_class", "c.oid"),
    " AND ",
    in_roots!("c.oid"),
    " ORDER BY 1, 2"
);

/// Comments on tables, views, sequences, their columns, functions and types.
pub(super) const COMMENTS: &str = concat!(
    "SELECT c.relkind::text AS target, n.nspname::text AS nspname, c.relname::text AS name, \
       a.attname::text AS column_name, NULL::text[] AS argtypes, d.description, c.oid::int8 AS root \
     FROM pg_description d JOIN pg_class c ON d.classoid = 'pg_class'::regclass AND d.objoid = c.oid \
     JOIN pg_namespace n ON n.oid = c.relnamespace \
     LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = d.objsubid AND d.objsubid > 0 \
     WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S') AND (d.objsubid = 0 OR a.attname IS NOT NULL) AND ",
    user_ns!("n"),
    " AND ",
    not_member!("pg_class", "c.oid"),
    " AND ",
    in_roots!("c.oid"),
    " UNION ALL \
     SELECT 'function', n.nspname::text, p.proname::text, NULL, \
       ARRAY(SELECT format_type(u.t, NULL) FROM unnest(p.proargtypes::oid[]) WITH ORDINALITY u(t, o) ORDER BY u.o), \
       d.description, p.oid::int8 \
     FROM pg_description d JOIN pg_proc p ON d.classoid = 'pg_proc'::regclass AND d.objoid = p.oid \
     JOIN pg_namespace n ON n.oid = p.pronamespace WHERE p.prokind IN ('f', 'p', 'w') AND ",
    user_ns!("n"),
    " AND ",
    not_member!("pg_proc", "p.oid"),
    " AND ",
    in_roots!("p.oid"),
    " UNION ALL \
     SELECT 'type', n.nspname::text, t.typname::text, NULL, NULL, d.description, t.oid::int8 \
     FROM pg_description d JOIN pg_type t ON d.classoid = 'pg_type'::regclass AND d.objoid = t.oid \
     JOIN pg_namespace n ON n.oid = t.typnamespace LEFT JOIN pg_class rel ON rel.oid = t.typrelid \
     WHERE (t.typtype IN ('e', 'd', 'r') OR (t.typtype = 'c' AND rel.relkind = 'c')) AND ",
    user_ns!("n"),
    " AND ",
    not_member!("pg_type", "t.oid"),
    " AND ",
    in_roots!("t.oid"),
    " ORDER BY 1, 2, 3, 4"
);

/// Privileges on relations, columns and functions, per grantee, without the
/// owner's own (implicit) privileges, nor those of a relation internal to
/// another (an identity column's sequence) — a partitioned table depends
/// internally on its own key columns, which does not make it internal. Functions without an explicit ACL get
/// PostgreSQL's default (EXECUTE for PUBLIC), so "never granted" and
/// "granted the default explicitly" read the same.
pub(super) const GRANTS: &str = concat!(
    "SELECT n.nspname::text AS nspname, c.relname::text AS name, NULL::text AS column_name, \
       NULL::text[] AS argtypes, CASE WHEN a.grantee = 0 THEN NULL ELSE pg_get_userbyid(a.grantee)::text END AS grantee, \
       a.privilege_type AS privilege, a.is_grantable AS grantable, c.oid::int8 AS root \
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace, LATERAL aclexplode(c.relacl) a \
     WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S') AND a.grantee <> c.relowner \
       AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid \
           AND d.deptype = 'i' AND d.refobjid <> c.oid) AND ",
    user_ns!("n"),
    " AND ",
    not_member!("pg_class", "c.oid"),
    " AND ",
    in_roots!("c.oid"),
    " UNION ALL \
     SELECT n.nspname::text, c.relname::text, att.attname::text, NULL, \
       CASE WHEN a.grantee = 0 THEN NULL ELSE pg_get_userbyid(a.grantee)::text END, a.privilege_type, a.is_grantable, \
       c.oid::int8 \
     FROM pg_attribute att JOIN pg_class c ON c.oid = att.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace, \
       LATERAL aclexplode(att.attacl) a \
     WHERE att.attnum > 0 AND NOT att.attisdropped AND c.relkind IN ('r', 'p', 'v', 'm') \
       AND a.grantee <> c.relowner AND ",
    user_ns!("n"),
    " AND ",
    not_member!("pg_class", "c.oid"),
    " AND ",
    in_roots!("c.oid"),
    " UNION ALL \
     SELECT n.nspname::text, p.proname::text, NULL, \
       ARRAY(SELECT format_type(u.t, NULL) FROM unnest(p.proargtypes::oid[]) WITH ORDINALITY u(t, o) ORDER BY u.o), \
       CASE WHEN a.grantee = 0 THEN NULL ELSE pg_get_userbyid(a.grantee)::text END, a.privilege_type, a.is_grantable, \
       p.oid::int8 \
     FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace, \
       LATERAL aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a \
     WHERE p.prokind IN ('f', 'p', 'w') AND a.grantee <> p.proowner AND ",
    user_ns!("n"),
    " AND ",
    not_member!("pg_proc", "p.oid"),
    " AND ",
    in_roots!("p.oid"),
    " ORDER BY 1, 2, 3, 5, 6"
);

/// `sql` for a targeted read: the roots' `IS NULL` escape removed, so that the
/// statement's cached (generic) plan looks the roots up by index.
pub(super) fn targeted(sql: &'static str) -> &'static str {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static VARIANTS: OnceLock<Mutex<HashMap<usize, &'static str>>> = OnceLock::new();
    let mut variants = VARIANTS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    variants.entry(sql.as_ptr() as usize).or_insert_with(|| {
        let text = sql
            .replace("$2::oid[] IS NULL OR ", "")
            .replace("$1::oid[] IS NULL OR ", "");
        // One string per query text, kept for the life of the process.
        Box::leak(text.into_boxed_str())
    })
}

/// What hangs off each root, by oid: `part` rows name a sub-object (index,
/// constraint, policy, trigger, column default) and the root it belongs to,
/// so that a dropped sub-object can be traced to the root to read again;
/// `child` rows name a partition and its parent, whose text the partition
/// repeats. `$1`: the roots (NULL: every user object). The test that an
/// OID is a user object's is written `oid::int8 >= 16384` so that a
/// targeted read's generic plan looks sub-objects up by their root's index
/// (`conrelid`, `contypid`, `tgrelid`, `adrelid`) rather than walking the OID
/// index over every user constraint and trigger; a domain's constraints have
/// `conrelid = 0`, which lets the `(conrelid, contypid)` index find them.
pub(super) const OWNED: &str = "\
    SELECT 'part' AS link, i.indexrelid::int8 AS oid, i.indrelid::int8 AS root FROM pg_index i \
      WHERE i.indrelid >= 16384 AND ($1::oid[] IS NULL OR i.indrelid = ANY($1::oid[])) \
    UNION ALL SELECT 'part', k.oid::int8, k.conrelid::int8 FROM pg_constraint k \
      WHERE k.oid::int8 >= 16384 AND k.conrelid <> 0 AND ($1::oid[] IS NULL OR k.conrelid = ANY($1::oid[])) \
    UNION ALL SELECT 'part', k.oid::int8, k.contypid::int8 FROM pg_constraint k \
      WHERE k.oid::int8 >= 16384 AND k.conrelid = 0 AND k.contypid <> 0 AND ($1::oid[] IS NULL OR k.contypid = ANY($1::oid[])) \
    UNION ALL SELECT 'part', p.oid::int8, p.polrelid::int8 FROM pg_policy p \
      WHERE $1::oid[] IS NULL OR p.polrelid = ANY($1::oid[]) \
    UNION ALL SELECT 'part', t.oid::int8, t.tgrelid::int8 FROM pg_trigger t \
      WHERE t.oid::int8 >= 16384 AND ($1::oid[] IS NULL OR t.tgrelid = ANY($1::oid[])) \
    UNION ALL SELECT 'part', d.oid::int8, d.adrelid::int8 FROM pg_attrdef d \
      WHERE d.oid::int8 >= 16384 AND ($1::oid[] IS NULL OR d.adrelid = ANY($1::oid[])) \
    UNION ALL SELECT 'child', i.inhrelid::int8, i.inhparent::int8 FROM pg_inherits i \
      WHERE $1::oid[] IS NULL OR i.inhparent = ANY($1::oid[])";
