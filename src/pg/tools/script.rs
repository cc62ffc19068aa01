//! The SQL phantom-sync wraps around what pg_restore writes: the opening
//! (transaction, drops, a fresh `public`, guards), the hold on default
//! privileges and the closing. Default privileges (`ALTER DEFAULT
//! PRIVILEGES`, which the Supabase layout sets on `public`) would add grants
//! to every object the restore creates, beyond those the archive records, so
//! the restoring role's default privileges are lifted for the transaction
//! and put back, item by item in their order, just before it commits.

use super::guard::SchemaRestore;
use crate::pg::sql::{quote_ident, quote_literal};

/// Opens the transaction and lifts the default privileges the restoring role
/// has globally and in `schemas` (those that survive the restore); the
/// statements that put them back wait in a temporary table.
pub(crate) fn begin(schemas: &[String]) -> String {
    let names: Vec<String> = schemas.iter().map(|s| quote_literal(s)).collect();
    format!(
        "BEGIN;
SET client_min_messages = warning;
CREATE TEMPORARY TABLE phantom_default_privileges (n serial, statement text) ON COMMIT DROP;
DO $phantom$
DECLARE r record;
BEGIN
  FOR r IN
    SELECT CASE d.defaclobjtype WHEN 'r' THEN 'TABLES' WHEN 'S' THEN 'SEQUENCES' WHEN 'f' THEN 'FUNCTIONS'
                                WHEN 'T' THEN 'TYPES' WHEN 'n' THEN 'SCHEMAS' ELSE 'LARGE OBJECTS' END AS objects,
           CASE WHEN d.defaclnamespace = 0 THEN '' ELSE ' IN SCHEMA ' || pg_catalog.quote_ident(n.nspname) END AS place,
           CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(a.grantee)) END AS who,
           a.privilege_type, a.is_grantable
      FROM pg_catalog.pg_default_acl d
      LEFT JOIN pg_catalog.pg_namespace n ON n.oid = d.defaclnamespace
     CROSS JOIN LATERAL pg_catalog.aclexplode(d.defaclacl) WITH ORDINALITY a(grantor, grantee, privilege_type, is_grantable, ord)
     WHERE d.defaclrole = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = current_user)
       AND a.grantee <> d.defaclrole
       AND (d.defaclnamespace = 0 OR n.nspname = ANY (ARRAY[{}]::text[]))
     ORDER BY d.defaclnamespace, d.defaclobjtype, a.ord
  LOOP
    INSERT INTO pg_temp.phantom_default_privileges (statement) VALUES (pg_catalog.format(
      'ALTER DEFAULT PRIVILEGES FOR ROLE %I%s GRANT %s ON %s TO %s%s', current_user, r.place, r.privilege_type,
      r.objects, r.who, CASE WHEN r.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END));
    EXECUTE pg_catalog.format('ALTER DEFAULT PRIVILEGES FOR ROLE %I%s REVOKE ALL ON %s FROM %s',
      current_user, r.place, r.objects, r.who);
  END LOOP;
END
$phantom$;
",
        names.join(", ")
    )
}

/// Puts the default privileges back and commits.
pub(crate) fn commit() -> &'static str {
    "
DO $phantom$
DECLARE r record;
BEGIN
  FOR r IN SELECT statement FROM pg_temp.phantom_default_privileges ORDER BY n LOOP
    EXECUTE r.statement;
  END LOOP;
END
$phantom$;
COMMIT;
"
}

/// Drops the schemas in scope that exist now, with everything in them.
pub(crate) fn drop_schemas(live_schemas: &[String]) -> String {
    if live_schemas.is_empty() {
        return String::new();
    }
    let names: Vec<String> = live_schemas.iter().map(|s| quote_ident(s)).collect();
    format!("DROP SCHEMA {} CASCADE;\n", names.join(", "))
}

/// A fresh `public` with the properties pg_dump takes for granted and does
/// not dump. From PostgreSQL 15, pg_dump compares `public` with initdb's
/// (owner `pg_database_owner`, `USAGE` for PUBLIC, the standard comment)
/// whatever the catalog says; PostgreSQL 14's pg_dump records neither owner
/// nor comment and writes privileges relative to the `pg_init_privs` entry,
/// so those come from the live schema.
pub(crate) fn fresh_public(dump_major: u8, live: &SchemaRestore) -> String {
    if dump_major >= 15 {
        return "CREATE SCHEMA public AUTHORIZATION pg_database_owner;\n\
                GRANT USAGE ON SCHEMA public TO PUBLIC;\n\
                COMMENT ON SCHEMA public IS 'standard public schema';\n"
            .to_string();
    }
    let Some(public) = &live.public else {
        let owner = &live.bootstrap_role;
        return format!(
            "CREATE SCHEMA public AUTHORIZATION {owner};\nGRANT ALL ON SCHEMA public TO PUBLIC;\n\
             COMMENT ON SCHEMA public IS 'standard public schema';\n"
        );
    };
    let mut sql = format!("CREATE SCHEMA public AUTHORIZATION {};\n", public.owner);
    if let Some(baseline) = &public.baseline {
        sql.push_str(&format!(
            "REVOKE ALL ON SCHEMA public FROM {};\n{baseline}\n",
            public.owner
        ));
    }
    if let Some(comment) = &public.comment {
        sql.push_str(&format!(
            "COMMENT ON SCHEMA public IS {};\n",
            quote_literal(comment)
        ));
    }
    sql
}

/// Fails the transaction if `schema.table` exists (it may have appeared since the check).
pub(crate) fn table_absent(schema: &str, table: &str) -> String {
    let name = quote_literal(&qualified(schema, table));
    let shown = quote_literal(&format!("{schema}.{table}"));
    format!(
        "DO $phantom$ BEGIN IF pg_catalog.to_regclass({name}) IS NOT NULL THEN \
         RAISE EXCEPTION 'table % already exists; it is not restored over live data', {shown}; END IF; END $phantom$;\n"
    )
}

/// `"schema"."table"`, for `to_regclass`.
pub(crate) fn qualified(schema: &str, table: &str) -> String {
    format!("{}.{}", quote_ident(schema), quote_ident(table))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pg::tools::guard::PublicSchema;
    use pretty_assertions::assert_eq;

    #[test]
    fn a_fresh_public_follows_what_pg_dump_assumes() {
        let mut live = SchemaRestore {
            bootstrap_role: "postgres".into(),
            ..Default::default()
        };
        assert!(
            fresh_public(17, &live)
                .starts_with("CREATE SCHEMA public AUTHORIZATION pg_database_owner;")
        );
        assert!(fresh_public(14, &live).contains("GRANT ALL ON SCHEMA public TO PUBLIC;"));
        live.public = Some(PublicSchema {
            owner: "app_owner".into(),
            comment: Some("it's mine".into()),
            baseline: Some("GRANT USAGE ON SCHEMA public TO PUBLIC;".into()),
        });
        assert_eq!(
            fresh_public(14, &live),
            "CREATE SCHEMA public AUTHORIZATION app_owner;\nREVOKE ALL ON SCHEMA public FROM app_owner;\n\
             GRANT USAGE ON SCHEMA public TO PUBLIC;\nCOMMENT ON SCHEMA public IS 'it''s mine';\n"
        );
    }

    #[test]
    fn names_are_quoted() {
        assert_eq!(qualified("public", "we\"ird"), "\"public\".\"we\"\"ird\"");
        assert_eq!(quote_literal("o'clock"), "'o''clock'");
        assert_eq!(
            drop_schemas(&["public".into(), "app".into()]),
            "DROP SCHEMA \"public\", \"app\" CASCADE;\n"
        );
        assert_eq!(drop_schemas(&[]), "");
        assert!(begin(&["public".into()]).contains("ARRAY['public']::text[]"));
        assert!(begin(&[]).contains("ARRAY[]::text[]"));
        assert!(table_absent("public", "a'b").contains("to_regclass('\"public\".\"a''b\"')"));
    }
}
