//! What a restore must learn from the live database before it touches
//! anything: the schemas in scope, installed extensions and publications, the
//! `public` schema's own properties, and the objects *outside* the scope that
//! `DROP SCHEMA … CASCADE` would take along — a trigger on `auth.users` that
//! calls `public.handle_new_user()`, a policy on `storage.objects` that calls
//! a `public` function. Those are recreated from their live definitions after
//! the restore; anything that cannot be recreated (a column typed with an
//! in-scope enum, a view) makes the restore refuse before it starts.

use std::collections::BTreeSet;

use sqlx::Connection;
use sqlx::postgres::PgConnection;

use super::DumpScope;
use super::script::qualified;
use super::toc::{Foreign, LiveGlobals};
use crate::pg::target::Target;
use crate::{Error, Result};

/// Everything a whole-schema restore needs from the live database.
#[derive(Debug, Clone, Default)]
pub(crate) struct SchemaRestore {
    pub globals: LiveGlobals,
    /// In-scope schemas that exist now (dropped by the restore).
    pub live_schemas: Vec<String>,
    /// `public` as it is now (for PostgreSQL 14 archives, which do not record it).
    pub public: Option<PublicSchema>,
    /// The bootstrap superuser, owner of a fresh `public` on PostgreSQL 14.
    pub bootstrap_role: String,
    /// Statements that recreate out-of-scope objects the drop takes along, in order.
    pub keep: Vec<String>,
}

/// The live `public` schema's owner, comment and initial privileges.
#[derive(Debug, Clone)]
pub(crate) struct PublicSchema {
    /// Quoted role name.
    pub owner: String,
    pub comment: Option<String>,
    /// `GRANT` statements for its `pg_init_privs` entry, when it has one.
    pub baseline: Option<String>,
}

/// Reads what a restore of every schema in `scope` needs, refusing when the
/// drop would destroy out-of-scope objects that cannot be recreated.
pub(crate) async fn for_schemas(
    target: &Target,
    scope: &DumpScope,
    archived: &BTreeSet<String>,
) -> Result<SchemaRestore> {
    let mut conn = target.connect().await?;
    let outcome = read_schemas(&mut conn, target, scope, archived).await;
    conn.close().await.ok();
    outcome
}

async fn read_schemas(
    conn: &mut PgConnection,
    target: &Target,
    scope: &DumpScope,
    archived: &BTreeSet<String>,
) -> Result<SchemaRestore> {
    let db = |what: &str| Error::db(format!("{what} of {target}"));
    sqlx::query("SET search_path = ''")
        .execute(&mut *conn)
        .await
        .map_err(db("setting an empty search_path"))?;
    let all: Vec<String> =
        sqlx::query_scalar("SELECT nspname::text FROM pg_catalog.pg_namespace ORDER BY 1")
            .fetch_all(&mut *conn)
            .await
            .map_err(db("listing the schemas"))?;
    let live_schemas: Vec<String> = all.into_iter().filter(|s| scope.includes(s)).collect();
    let extensions: Vec<(String, String)> = sqlx::query_as(
        "SELECT e.extname::text, n.nspname::text FROM pg_catalog.pg_extension e \
         JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(db("listing the extensions"))?;
    let publications: Vec<String> =
        sqlx::query_scalar("SELECT pubname::text FROM pg_catalog.pg_publication")
            .fetch_all(&mut *conn)
            .await
            .map_err(db("listing the publications"))?;
    let globals = LiveGlobals {
        in_scope: live_schemas
            .iter()
            .chain(archived.iter().filter(|s| scope.includes(s)))
            .cloned()
            .collect(),
        extensions: extensions.into_iter().collect(),
        archived_extensions: Default::default(),
        publications: publications.into_iter().collect(),
    };
    let public = sqlx::query_as::<_, (String, Option<String>, Option<String>)>(PUBLIC_SCHEMA)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db("reading schema public"))?
        .map(|(owner, comment, baseline)| PublicSchema {
            owner,
            comment,
            baseline,
        });
    let bootstrap_role: String = sqlx::query_scalar("SELECT 10::pg_catalog.regrole::text")
        .fetch_one(&mut *conn)
        .await
        .map_err(db("reading the bootstrap superuser"))?;
    let keep = dependents_outside(conn, target, &live_schemas).await?;
    Ok(SchemaRestore {
        globals,
        live_schemas,
        public,
        bootstrap_role,
        keep,
    })
}

/// Owner, comment and the `pg_init_privs` baseline (as GRANTs) of `public`.
const PUBLIC_SCHEMA: &str = "
SELECT n.nspowner::pg_catalog.regrole::text,
       pg_catalog.obj_description(n.oid, 'pg_namespace'),
       (SELECT pg_catalog.string_agg(pg_catalog.format('GRANT %s ON SCHEMA public TO %s%s;',
                   a.privilege_type,
                   CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE a.grantee::pg_catalog.regrole::text END,
                   CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END), E'\\n' ORDER BY a.ord)
          FROM pg_catalog.pg_init_privs ip,
               pg_catalog.aclexplode(ip.initprivs) WITH ORDINALITY a(grantor, grantee, privilege_type, is_grantable, ord)
         WHERE ip.objoid = n.oid AND ip.classoid = 'pg_catalog.pg_namespace'::pg_catalog.regclass AND ip.objsubid = 0)
  FROM pg_catalog.pg_namespace n
 WHERE n.nspname = 'public'";

/// Objects outside `schemas` that `DROP SCHEMA … CASCADE` of `schemas` would
/// drop, found by walking `pg_depend` as the drop does (dependents, and the
/// owners of internal parts). Each supported one comes with the statements
/// that recreate it (a comment is restored as well, or set `IS NULL` —
/// a no-op — when there is none); the others are listed in the refusal.
/// An operator family's members (`pg_amop`, `pg_amproc`: no schema of their
/// own) live where their family does — pg_trgm's families in `public` keep
/// members its upgrade scripts added with `ALTER OPERATOR FAMILY`, which no
/// extension dependency covers.
const DEPENDENTS_OUTSIDE: &str = "
WITH RECURSIVE doomed(classid, objid, objsubid) AS (
    SELECT 'pg_catalog.pg_namespace'::pg_catalog.regclass::oid, n.oid, 0
      FROM pg_catalog.pg_namespace n WHERE n.nspname = ANY($1)
  UNION
    SELECT step.classid, step.objid, step.objsubid
      FROM doomed x
     CROSS JOIN LATERAL (
        SELECT d.classid, d.objid, d.objsubid FROM pg_catalog.pg_depend d
         WHERE d.refclassid = x.classid AND d.refobjid = x.objid
           AND (x.objsubid = 0 OR d.refobjsubid = x.objsubid)
           AND d.deptype IN ('n', 'a', 'i', 'e', 'P', 'S')
        UNION ALL
        SELECT d.refclassid, d.refobjid, 0 FROM pg_catalog.pg_depend d
         WHERE d.classid = x.classid AND d.objid = x.objid AND d.deptype = 'i'
     ) step
),
placed AS (
    SELECT x.classid, x.objid, x.objsubid, o.type, o.identity,
           CASE x.classid
             WHEN 'pg_catalog.pg_class'::pg_catalog.regclass::oid THEN
               (SELECT c.relnamespace FROM pg_catalog.pg_class c WHERE c.oid = x.objid)
             WHEN 'pg_catalog.pg_trigger'::pg_catalog.regclass::oid THEN
               (SELECT c.relnamespace FROM pg_catalog.pg_trigger t JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid WHERE t.oid = x.objid)
             WHEN 'pg_catalog.pg_policy'::pg_catalog.regclass::oid THEN
               (SELECT c.relnamespace FROM pg_catalog.pg_policy p JOIN pg_catalog.pg_class c ON c.oid = p.polrelid WHERE p.oid = x.objid)
             WHEN 'pg_catalog.pg_attrdef'::pg_catalog.regclass::oid THEN
               (SELECT c.relnamespace FROM pg_catalog.pg_attrdef a JOIN pg_catalog.pg_class c ON c.oid = a.adrelid WHERE a.oid = x.objid)
             WHEN 'pg_catalog.pg_rewrite'::pg_catalog.regclass::oid THEN
               (SELECT c.relnamespace FROM pg_catalog.pg_rewrite r JOIN pg_catalog.pg_class c ON c.oid = r.ev_class WHERE r.oid = x.objid)
             WHEN 'pg_catalog.pg_publication_rel'::pg_catalog.regclass::oid THEN
               (SELECT c.relnamespace FROM pg_catalog.pg_publication_rel r JOIN pg_catalog.pg_class c ON c.oid = r.prrelid WHERE r.oid = x.objid)
             WHEN 'pg_catalog.pg_constraint'::pg_catalog.regclass::oid THEN
               (SELECT c.connamespace FROM pg_catalog.pg_constraint c WHERE c.oid = x.objid)
             WHEN 'pg_catalog.pg_default_acl'::pg_catalog.regclass::oid THEN
               (SELECT NULLIF(d.defaclnamespace, 0) FROM pg_catalog.pg_default_acl d WHERE d.oid = x.objid)
             WHEN 'pg_catalog.pg_namespace'::pg_catalog.regclass::oid THEN x.objid
             WHEN 'pg_catalog.pg_amop'::pg_catalog.regclass::oid THEN
               (SELECT f.opfnamespace FROM pg_catalog.pg_amop a JOIN pg_catalog.pg_opfamily f ON f.oid = a.amopfamily WHERE a.oid = x.objid)
             WHEN 'pg_catalog.pg_amproc'::pg_catalog.regclass::oid THEN
               (SELECT f.opfnamespace FROM pg_catalog.pg_amproc a JOIN pg_catalog.pg_opfamily f ON f.oid = a.amprocfamily WHERE a.oid = x.objid)
             WHEN 'pg_catalog.pg_extension'::pg_catalog.regclass::oid THEN
               (SELECT e.extnamespace FROM pg_catalog.pg_extension e WHERE e.oid = x.objid)
             ELSE (SELECT n.oid FROM pg_catalog.pg_namespace n WHERE n.nspname = o.schema)
           END AS home,
           EXISTS (SELECT FROM pg_catalog.pg_depend d
                    WHERE d.classid = x.classid AND d.objid = x.objid AND d.deptype IN ('i', 'e')) AS part_of_another
      FROM doomed x, pg_catalog.pg_identify_object(x.classid, x.objid, x.objsubid) o
)
SELECT p.type, p.identity, r.rank, r.ddl
  FROM placed p
  LEFT JOIN pg_catalog.pg_namespace h ON h.oid = p.home
  LEFT JOIN LATERAL (
      SELECT 1 AS rank,
             pg_catalog.format('ALTER TABLE %s ALTER COLUMN %I SET DEFAULT %s;',
                 d.adrelid::pg_catalog.regclass, a.attname, pg_catalog.pg_get_expr(d.adbin, d.adrelid)) AS ddl
        FROM pg_catalog.pg_attrdef d
        JOIN pg_catalog.pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
       WHERE p.classid = 'pg_catalog.pg_attrdef'::pg_catalog.regclass::oid AND d.oid = p.objid AND a.attgenerated = ''
    UNION ALL
      SELECT 2, pg_catalog.pg_get_indexdef(c.oid) || ';'
             || pg_catalog.format(E'\\nCOMMENT ON INDEX %s IS %L;', c.oid::pg_catalog.regclass,
                         pg_catalog.obj_description(c.oid, 'pg_class'))
        FROM pg_catalog.pg_class c
       WHERE p.classid = 'pg_catalog.pg_class'::pg_catalog.regclass::oid AND p.objsubid = 0 AND c.oid = p.objid
         AND c.relkind = 'i'
    UNION ALL
      SELECT 3, pg_catalog.format('ALTER TABLE %s ADD CONSTRAINT %I %s;',
                    c.conrelid::pg_catalog.regclass, c.conname, pg_catalog.pg_get_constraintdef(c.oid))
             || pg_catalog.format(E'\\nCOMMENT ON CONSTRAINT %I ON %s IS %L;', c.conname,
                         c.conrelid::pg_catalog.regclass, pg_catalog.obj_description(c.oid, 'pg_constraint'))
        FROM pg_catalog.pg_constraint c
       WHERE p.classid = 'pg_catalog.pg_constraint'::pg_catalog.regclass::oid AND c.oid = p.objid
         AND c.conrelid <> 0 AND c.contype IN ('c', 'f', 'u', 'p', 'x')
    UNION ALL
      SELECT 4, pg_catalog.pg_get_triggerdef(t.oid) || ';'
             || CASE t.tgenabled
                  WHEN 'D' THEN pg_catalog.format(E'\\nALTER TABLE %s DISABLE TRIGGER %I;', t.tgrelid::pg_catalog.regclass, t.tgname)
                  WHEN 'R' THEN pg_catalog.format(E'\\nALTER TABLE %s ENABLE REPLICA TRIGGER %I;', t.tgrelid::pg_catalog.regclass, t.tgname)
                  WHEN 'A' THEN pg_catalog.format(E'\\nALTER TABLE %s ENABLE ALWAYS TRIGGER %I;', t.tgrelid::pg_catalog.regclass, t.tgname)
                  ELSE '' END
             || pg_catalog.format(E'\\nCOMMENT ON TRIGGER %I ON %s IS %L;', t.tgname,
                         t.tgrelid::pg_catalog.regclass, pg_catalog.obj_description(t.oid, 'pg_trigger'))
        FROM pg_catalog.pg_trigger t
       WHERE p.classid = 'pg_catalog.pg_trigger'::pg_catalog.regclass::oid AND t.oid = p.objid AND NOT t.tgisinternal
    UNION ALL
      SELECT 5, pg_catalog.format('CREATE POLICY %I ON %s AS %s FOR %s TO %s%s%s;',
                    pol.polname, pol.polrelid::pg_catalog.regclass,
                    CASE WHEN pol.polpermissive THEN 'PERMISSIVE' ELSE 'RESTRICTIVE' END,
                    CASE pol.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE'
                                    WHEN 'd' THEN 'DELETE' ELSE 'ALL' END,
                    (SELECT pg_catalog.string_agg(CASE WHEN r = 0 THEN 'PUBLIC' ELSE r::pg_catalog.regrole::text END, ', ' ORDER BY i)
                       FROM pg_catalog.unnest(pol.polroles) WITH ORDINALITY u(r, i)),
                    COALESCE(' USING (' || pg_catalog.pg_get_expr(pol.polqual, pol.polrelid) || ')', ''),
                    COALESCE(' WITH CHECK (' || pg_catalog.pg_get_expr(pol.polwithcheck, pol.polrelid) || ')', ''))
             || pg_catalog.format(E'\\nCOMMENT ON POLICY %I ON %s IS %L;', pol.polname,
                         pol.polrelid::pg_catalog.regclass, pg_catalog.obj_description(pol.oid, 'pg_policy'))
        FROM pg_catalog.pg_policy pol
       WHERE p.classid = 'pg_catalog.pg_policy'::pg_catalog.regclass::oid AND pol.oid = p.objid
  ) r ON true
 WHERE NOT p.part_of_another
   AND (h.nspname IS NULL OR (h.nspname <> ALL($1) AND h.nspname NOT LIKE 'pg\\_toast%'))
   AND p.type <> 'publication namespace'
 ORDER BY r.rank NULLS FIRST, p.identity";

/// The statements that recreate what the drop of `schemas` takes from outside them.
async fn dependents_outside(
    conn: &mut PgConnection,
    target: &Target,
    schemas: &[String],
) -> Result<Vec<String>> {
    let rows: Vec<(String, String, Option<i32>, Option<String>)> =
        sqlx::query_as(DEPENDENTS_OUTSIDE)
            .bind(schemas)
            .fetch_all(&mut *conn)
            .await
            .map_err(Error::db(format!(
                "finding objects outside the restored schemas of {target}"
            )))?;
    let refused: Vec<String> = rows
        .iter()
        .filter(|(_, _, _, ddl)| ddl.is_none())
        .map(|(kind, identity, _, _)| format!("{kind} {identity}"))
        .collect();
    if !refused.is_empty() {
        return Err(Error::Invalid(format!(
            "restoring schemas {} of {target} would also drop objects outside them that phantom-sync cannot recreate: {} \
             (hint: drop or move those objects first, or stop excluding their schemas from the restore's scope)",
            schemas.join(", "),
            refused.join("; ")
        )));
    }
    Ok(rows.into_iter().filter_map(|(_, _, _, ddl)| ddl).collect())
}

/// Fails unless every table is missing and its schema exists: a table
/// restore never overwrites live data.
pub(crate) async fn tables_missing(
    conn: &mut PgConnection,
    target: &Target,
    tables: &[(String, String)],
) -> Result<()> {
    for (schema, table) in tables {
        let (schema_exists, table_exists): (bool, bool) = sqlx::query_as(
            "SELECT EXISTS (SELECT FROM pg_catalog.pg_namespace WHERE nspname = $1), \
                    pg_catalog.to_regclass($2) IS NOT NULL",
        )
        .bind(schema)
        .bind(qualified(schema, table))
        .fetch_one(&mut *conn)
        .await
        .map_err(Error::db(format!(
            "looking for {schema}.{table} in {target}"
        )))?;
        if table_exists {
            return Err(Error::Invalid(format!(
                "{schema}.{table} still exists in {target}; restoring tables only recreates dropped ones and never \
                 overwrites live data (hint: drop it yourself if the backup's copy must replace it, or restore the \
                 whole schema with restore_database)"
            )));
        }
        if !schema_exists {
            return Err(Error::Invalid(format!(
                "schema {schema} does not exist in {target}, so {schema}.{table} cannot be recreated in it \
                 (hint: restore the whole schema with restore_database)"
            )));
        }
    }
    Ok(())
}

/// The foreign candidates to bring back: their table exists and they do not.
pub(crate) async fn missing_foreign(
    conn: &mut PgConnection,
    target: &Target,
    foreign: &[Foreign],
) -> Result<BTreeSet<u32>> {
    let mut missing = BTreeSet::new();
    for f in foreign {
        let (table_exists, object_exists): (bool, bool) = sqlx::query_as(
            "SELECT c.oid IS NOT NULL,
                    CASE $2
                      WHEN 'POLICY' THEN EXISTS (SELECT FROM pg_catalog.pg_policy WHERE polrelid = c.oid AND polname = $3)
                      WHEN 'TRIGGER' THEN EXISTS (SELECT FROM pg_catalog.pg_trigger WHERE tgrelid = c.oid AND tgname = $3)
                      WHEN 'RULE' THEN EXISTS (SELECT FROM pg_catalog.pg_rewrite WHERE ev_class = c.oid AND rulename = $3)
                      WHEN 'DEFAULT' THEN EXISTS (SELECT FROM pg_catalog.pg_attrdef d JOIN pg_catalog.pg_attribute a
                                                    ON a.attrelid = d.adrelid AND a.attnum = d.adnum
                                                   WHERE d.adrelid = c.oid AND a.attname = $3)
                      ELSE EXISTS (SELECT FROM pg_catalog.pg_constraint WHERE conrelid = c.oid AND conname = $3)
                    END
               FROM (SELECT pg_catalog.to_regclass($1)::oid AS oid) c",
        )
        .bind(qualified(&f.schema, &f.table))
        .bind(&f.desc)
        .bind(&f.name)
        .fetch_one(&mut *conn)
        .await
        .map_err(Error::db(format!("looking for {} {} on {}.{} in {target}", f.desc, f.name, f.schema, f.table)))?;
        if table_exists && !object_exists {
            missing.insert(f.id);
        }
    }
    Ok(missing)
}
