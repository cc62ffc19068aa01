//! pg_dump, pg_restore and psql of the server's own major, on every major in
//! PHANTOM_PG_VERSIONS: a backup brings whole schemas or dropped tables back
//! to exactly their dumped state (catalog, data, grants, RLS, policies), leaves
//! `auth` alone, refuses to write over live tables, and never shows a password.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};

use phantom_sync::pg::sandbox::{Database, versions_from_env};
use phantom_sync::pg::tools::PgTools;
use pretty_assertions::assert_eq;
use sqlx::Connection;
use sqlx::postgres::PgConnection;

type TestResult = anyhow::Result<()>;

/// A small project: two tables with an FK to auth.users, RLS and policies (one
/// calling a function of another schema), an index, a trigger, grants,
/// comments, data, the ledger — and a trigger on auth.users that calls a
/// `public` function, as most Supabase projects have.
const PROJECT: &str = r#"
CREATE SCHEMA supabase_migrations;
CREATE TABLE supabase_migrations.schema_migrations (version text PRIMARY KEY, statements text[], name text);
INSERT INTO supabase_migrations.schema_migrations VALUES
  ('20250101000000', ARRAY['create table organizations (…)'], 'organizations'),
  ('20250102000000', ARRAY['create table members (…)'], 'members');

INSERT INTO auth.users (id, email) VALUES
  ('00000000-0000-4000-8000-000000000001', 'ada@example.com'),
  ('00000000-0000-4000-8000-000000000002', 'bob@example.com');

CREATE EXTENSION pg_trgm WITH SCHEMA public;
CREATE SCHEMA private;
GRANT USAGE ON SCHEMA private TO authenticated;
CREATE FUNCTION private.is_admin(uid uuid) RETURNS boolean LANGUAGE sql STABLE
  AS $$ SELECT uid = '00000000-0000-4000-8000-000000000001'::uuid $$;

CREATE TABLE public.organizations (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  slug text NOT NULL UNIQUE,
  name text NOT NULL
);
COMMENT ON TABLE public.organizations IS 'tenants';
COMMENT ON COLUMN public.organizations.slug IS 'name in URLs';

CREATE TABLE public.members (
  id serial PRIMARY KEY,
  org_id bigint NOT NULL REFERENCES public.organizations (id) ON DELETE CASCADE,
  user_id uuid NOT NULL REFERENCES auth.users (id),
  role text NOT NULL DEFAULT 'member' CHECK (role IN ('owner', 'member')),
  touched_at timestamptz
);
CREATE INDEX members_user_idx ON public.members (user_id);
CREATE INDEX organizations_name_trgm ON public.organizations USING gin (name public.gin_trgm_ops);
CREATE UNIQUE INDEX members_org_user_key ON public.members (org_id, user_id);
COMMENT ON TABLE public.members IS 'who belongs to which organization';

CREATE FUNCTION public.touch_member() RETURNS trigger LANGUAGE plpgsql
  AS $$ BEGIN NEW.touched_at := '2025-01-01T00:00:00Z'; RETURN NEW; END $$;
CREATE TRIGGER members_touch BEFORE INSERT OR UPDATE ON public.members
  FOR EACH ROW EXECUTE FUNCTION public.touch_member();

ALTER TABLE public.members ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.organizations ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.organizations FORCE ROW LEVEL SECURITY;
CREATE POLICY members_read_own ON public.members FOR SELECT TO authenticated USING (user_id = auth.uid());
CREATE POLICY members_admin ON public.members FOR ALL TO authenticated
  USING (private.is_admin(auth.uid())) WITH CHECK (private.is_admin(auth.uid()));
CREATE POLICY organizations_read ON public.organizations FOR SELECT TO authenticated
  USING (EXISTS (SELECT 1 FROM public.members m WHERE m.org_id = organizations.id AND m.user_id = auth.uid()));

REVOKE ALL ON public.members FROM anon;
REVOKE ALL ON public.organizations FROM anon;
GRANT SELECT ON public.organizations TO anon;

CREATE TABLE public.user_consents (
  user_id uuid PRIMARY KEY REFERENCES auth.users (id) ON DELETE CASCADE,
  analytics boolean NOT NULL DEFAULT false
);

CREATE FUNCTION public.handle_new_user() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = ''
  AS $$ BEGIN INSERT INTO public.user_consents (user_id) VALUES (NEW.id) ON CONFLICT DO NOTHING; RETURN NEW; END $$;
CREATE TRIGGER on_auth_user_created AFTER INSERT ON auth.users
  FOR EACH ROW EXECUTE FUNCTION public.handle_new_user();

INSERT INTO public.organizations (slug, name) VALUES ('acme', 'Acme'), ('globex', 'Globex');
INSERT INTO public.members (org_id, user_id, role) VALUES
  (1, '00000000-0000-4000-8000-000000000001', 'owner'),
  (2, '00000000-0000-4000-8000-000000000002', DEFAULT),
  (1, '00000000-0000-4000-8000-000000000002', 'member');
INSERT INTO public.user_consents (user_id, analytics) VALUES
  ('00000000-0000-4000-8000-000000000001', true),
  ('00000000-0000-4000-8000-000000000002', false);
"#;

/// Non-system schemas (auth included: it must not change).
const USER_SCHEMAS: &str = "nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema'";

/// The state a restore must bring back, one sorted list of lines per aspect.
async fn snapshot(conn: &mut PgConnection) -> anyhow::Result<BTreeMap<&'static str, Vec<String>>> {
    let queries: [(&'static str, String); 12] = [
        (
            "extensions",
            "SELECT extname || ' ' || extnamespace::regnamespace || ' ' || extversion FROM pg_extension".into(),
        ),
        ("schemas", format!(
            "SELECT nspname || ' owner=' || nspowner::regrole || ' acl=' || coalesce(nspacl::text, '-')
                    || ' comment=' || coalesce(obj_description(oid, 'pg_namespace'), '-')
               FROM pg_namespace WHERE {USER_SCHEMAS}")),
        ("relations", format!(
            "SELECT n.nspname || '.' || c.relname || ' kind=' || c.relkind::text || ' owner=' || c.relowner::regrole
                    || ' rls=' || c.relrowsecurity || '/' || c.relforcerowsecurity || ' acl=' || coalesce(c.relacl::text, '-')
                    || ' comment=' || coalesce(obj_description(c.oid, 'pg_class'), '-')
               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {USER_SCHEMAS}")),
        ("columns", format!(
            "SELECT c.oid::regclass || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
                    || ' notnull=' || a.attnotnull || ' identity=' || a.attidentity::text
                    || ' default=' || coalesce(pg_get_expr(d.adbin, d.adrelid), '-')
                    || ' comment=' || coalesce(col_description(c.oid, a.attnum), '-')
               FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
               LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
              WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'v') AND {USER_SCHEMAS}")),
        ("constraints", format!(
            "SELECT conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(c.oid)
               FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace WHERE {USER_SCHEMAS}")),
        ("indexes", format!("SELECT schemaname || ' ' || indexdef FROM pg_indexes WHERE schemaname IN (SELECT nspname FROM pg_namespace WHERE {USER_SCHEMAS})")),
        ("triggers", "SELECT tgenabled::text || ' ' || pg_get_triggerdef(oid) FROM pg_trigger WHERE NOT tgisinternal".into()),
        ("policies", "SELECT schemaname || '.' || tablename || ' ' || policyname || ' ' || permissive || ' ' || roles::text
                             || ' ' || cmd || ' using=' || coalesce(qual, '-') || ' check=' || coalesce(with_check, '-')
                        FROM pg_policies".into()),
        ("functions", format!(
            "SELECT p.oid::regprocedure || ' owner=' || p.proowner::regrole || ' acl=' || coalesce(p.proacl::text, '-')
                    || ' ' || md5(pg_get_functiondef(p.oid))
               FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE p.prokind = 'f' AND {USER_SCHEMAS}")),
        ("sequences", "SELECT schemaname || '.' || sequencename || ' ' || coalesce(last_value::text, '-') FROM pg_sequences".into()),
        ("default privileges", "SELECT defaclrole::regrole || ' ' || coalesce(nullif(defaclnamespace, 0)::regnamespace::text, '-')
                                       || ' ' || defaclobjtype::text || ' ' || defaclacl::text FROM pg_default_acl".into()),
        ("ledger", "SELECT version || ' ' || name || ' ' || statements::text FROM supabase_migrations.schema_migrations".into()),
    ];
    let mut state = BTreeMap::new();
    for (aspect, sql) in queries {
        let mut lines: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_all(&mut *conn)
            .await?;
        lines.sort();
        state.insert(aspect, lines);
    }
    state.insert("data", table_checksums(conn).await?);
    Ok(state)
}

/// Row count and an md5 of all rows of every table (auth's included).
async fn table_checksums(conn: &mut PgConnection) -> anyhow::Result<Vec<String>> {
    let tables: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT format('%I.%I', schemaname, tablename) FROM pg_tables
          WHERE schemaname IN (SELECT nspname FROM pg_namespace WHERE {USER_SCHEMAS}) ORDER BY 1"
    )))
    .fetch_all(&mut *conn)
    .await?;
    let mut sums = Vec::new();
    for table in tables {
        let sql = format!(
            "SELECT count(*)::text || ' ' || md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM {table} t"
        );
        let sum: String = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_one(&mut *conn)
            .await?;
        sums.push(format!("{table} {sum}"));
    }
    Ok(sums)
}

/// Runs `scenario` on a fresh database holding [`PROJECT`], then drops the
/// database whatever happened (a panic included) and removes the work folder.
async fn on_project<F, Fut>(major: u8, label: &str, scenario: F) -> TestResult
where
    F: FnOnce(Database, PathBuf) -> Fut,
    Fut: Future<Output = TestResult> + Send + 'static,
{
    let db = Database::fresh(major, label).await?;
    let work = std::env::temp_dir().join(format!(
        "phantom-tools-{label}-{major}-{}",
        std::process::id()
    ));
    let setup = async {
        std::fs::create_dir_all(&work)?;
        let mut conn = db.connect().await?;
        sqlx::raw_sql(PROJECT).execute(&mut conn).await?;
        conn.close().await?;
        anyhow::Ok(())
    }
    .await;
    let outcome = match setup {
        Ok(()) => tokio::spawn(scenario(db.clone(), work.clone())).await,
        Err(e) => Ok(Err(e)),
    };
    db.drop_database().await?;
    let _ = std::fs::remove_dir_all(&work);
    match outcome {
        Ok(result) => result,
        Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
        Err(join) => Err(join.into()),
    }
}

/// `pg_restore --list` of an archive, in the server's container.
fn listing(db: &Database, archive: &Path) -> anyhow::Result<String> {
    let out = std::process::Command::new("docker")
        .args([
            "exec",
            "-i",
            &db.server().container_id,
            "pg_restore",
            "--list",
        ])
        .stdin(std::fs::File::open(archive)?)
        .output()?;
    anyhow::ensure!(out.status.success(), "{out:?}");
    Ok(String::from_utf8(out.stdout)?)
}

/// The compression an archive's header names (`pg_restore --list`, in the
/// server's container): `zstd`, or gzip's level before PostgreSQL 16.
fn archive_compression(db: &Database, archive: &Path) -> anyhow::Result<String> {
    let text = listing(db, archive)?;
    text.lines()
        .find_map(|l| {
            l.trim_start_matches(';')
                .trim()
                .strip_prefix("Compression:")
                .map(|c| c.trim().to_string())
        })
        .ok_or_else(|| anyhow::anyhow!("no Compression line in the listing: {text}"))
}

/// The project's backup dump, as Phase 1 takes it, into the work folder.
async fn dump_project(
    tools: &PgTools,
    target: &phantom_sync::pg::target::Target,
    work: &Path,
) -> anyhow::Result<phantom_sync::pg::tools::DumpInfo> {
    let scope = phantom_sync::engine::backup::dump_scope();
    Ok(tools.dump(target, &dump_path(work), &scope).await?)
}

fn dump_path(work: &Path) -> PathBuf {
    work.join("backup.pgcustom")
}

#[tokio::test]
async fn restore_database_brings_every_schema_in_scope_back_and_leaves_auth_alone() -> TestResult {
    for major in versions_from_env()? {
        on_project(major, "tools_restore_db", move |db, work| async move {
            let tools = PgTools::for_database(&db);
            let target = db.target();
            let mut conn = db.connect().await?;
            let before = snapshot(&mut conn).await?;
            let info = dump_project(&tools, &target, &work).await?;
            assert_eq!(info.major, major);
            let expected = if major >= 16 { "zstd" } else { "1" };
            assert_eq!(
                archive_compression(&db, &info.path)?,
                expected,
                "PostgreSQL {major}: zstd from 16 on, gzip level 1 before"
            );
            assert_eq!(info.bytes, std::fs::metadata(&info.path)?.len());
            assert_eq!(info.sha256.len(), 64);
            assert!(!work.join("backup.pgcustom.partial").exists(), "the partial file was renamed");

            sqlx::raw_sql(
                "CREATE TABLE public.intruder (id int PRIMARY KEY);
                 CREATE SCHEMA scratch;
                 CREATE TABLE scratch.notes (body text);
                 DROP POLICY members_read_own ON public.members;
                 DROP INDEX public.organizations_name_trgm;
                 DROP EXTENSION pg_trgm;
                 DELETE FROM public.members WHERE role = 'member';
                 UPDATE public.organizations SET name = 'Acme Inc' WHERE slug = 'acme';
                 INSERT INTO supabase_migrations.schema_migrations VALUES ('20250103000000', ARRAY['select 1'], 'later');
                 DELETE FROM supabase_migrations.schema_migrations WHERE version = '20250101000000';
                 GRANT CREATE ON SCHEMA public TO anon;
                 ALTER TABLE public.members DISABLE ROW LEVEL SECURITY;
                 GRANT ALL ON public.members TO anon;",
            )
            .execute(&mut conn)
            .await?;
            // A change outside the scope, which the restore must keep (it also fires the auth trigger).
            let carol = "00000000-0000-4000-8000-000000000003";
            sqlx::query("INSERT INTO auth.users (id, email) VALUES ($1::uuid, 'carol@example.com')").bind(carol).execute(&mut conn).await?;
            let auth_after_changes = table_checksums(&mut conn).await?.into_iter().filter(|l| l.starts_with("auth.")).collect::<Vec<_>>();

            tools.restore_database(&target, &info.path, &phantom_sync::engine::backup::dump_scope()).await?;

            let mut after = snapshot(&mut conn).await?;
            let auth_now: Vec<String> = after["data"].iter().filter(|l| l.starts_with("auth.")).cloned().collect();
            assert_eq!(auth_now, auth_after_changes, "PostgreSQL {major}: auth is outside the scope and keeps carol");
            // Apart from auth's rows, everything is as dumped.
            let mut expected = before.clone();
            for state in [&mut expected, &mut after] {
                if let Some(data) = state.get_mut("data") {
                    data.retain(|l| !l.starts_with("auth."));
                }
            }
            assert_eq!(after, expected, "PostgreSQL {major}: the restored schemas differ from the dump");

            // The trigger on auth.users was recreated and still calls the restored function.
            sqlx::query("INSERT INTO auth.users (id, email) VALUES ('00000000-0000-4000-8000-000000000004'::uuid, 'dan@example.com')")
                .execute(&mut conn)
                .await?;
            let consents: i64 = sqlx::query_scalar("SELECT count(*) FROM public.user_consents").fetch_one(&mut conn).await?;
            assert_eq!(consents, 3, "PostgreSQL {major}: ada, bob (dumped) and dan (new); carol's row went with the restore");
            conn.close().await?;
            Ok(())
        })
        .await?;
    }
    Ok(())
}

#[tokio::test]
async fn restore_tables_recreates_dropped_tables_as_they_were_dumped() -> TestResult {
    for major in versions_from_env()? {
        on_project(major, "tools_restore_tables", move |db, work| async move {
            // A throw-away container of the server's major, reaching the server through the host network.
            assert_eq!(PgTools::server_major(&db.target()).await?, major);
            let tools = PgTools::for_major(major).await?;
            let target = db.target();
            let mut conn = db.connect().await?;
            let before = snapshot(&mut conn).await?;
            let info = dump_project(&tools, &target, &work).await?;

            // "Wrong tables dropped": organizations takes members' foreign key along.
            sqlx::raw_sql(
                "DROP TABLE public.organizations CASCADE; DROP TABLE public.user_consents;",
            )
            .execute(&mut conn)
            .await?;
            let fk: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_constraint WHERE conname = 'members_org_id_fkey'",
            )
            .fetch_one(&mut conn)
            .await?;
            assert_eq!(fk, 0, "the drop took members' foreign key along");

            let tables = [
                "public.organizations".to_string(),
                "public.user_consents".to_string(),
            ];
            tools.restore_tables(&target, &info.path, &tables).await?;
            let after = snapshot(&mut conn).await?;
            assert_eq!(
                after, before,
                "PostgreSQL {major}: the restored tables differ from the dump"
            );

            // Restoring a table that exists is refused, and changes nothing.
            let err = tools
                .restore_tables(&target, &info.path, &["public.members".to_string()])
                .await
                .expect_err("public.members exists")
                .to_string();
            assert!(err.contains("public.members still exists"), "{err}");
            assert!(err.contains("hint:"), "{err}");
            assert_eq!(
                snapshot(&mut conn).await?,
                before,
                "PostgreSQL {major}: a refused restore changed something"
            );

            let err = tools
                .restore_tables(&target, &info.path, &["public.nowhere".to_string()])
                .await
                .expect_err("not dumped");
            assert!(
                err.to_string()
                    .contains("public.nowhere is not in the backup"),
                "{err}"
            );
            conn.close().await?;
            Ok(())
        })
        .await?;
    }
    Ok(())
}

#[tokio::test]
async fn a_bad_password_fails_without_showing_it_and_leaves_no_file() -> TestResult {
    let secret = "Wr0ng-S3cret-Pa55";
    for major in versions_from_env()? {
        on_project(major, "tools_bad_password", move |db, work| async move {
            let server = db.server();
            let url = format!(
                "postgres://postgres:{secret}@{}:{}/{}",
                server.host, server.port, db.name
            );
            let target = phantom_sync::pg::target::Target::parse(&url)?;
            let out = dump_path(&work);
            for tools in [PgTools::for_database(&db), PgTools::for_major(major).await?] {
                let err = tools
                    .dump(&target, &out, &phantom_sync::engine::backup::dump_scope())
                    .await
                    .expect_err("wrong password");
                let text = format!("{err} {err:?}");
                assert!(
                    !text.contains(secret),
                    "PostgreSQL {major}, {tools:?}: the password leaked: {text}"
                );
                assert!(text.contains("password authentication failed"), "{text}");
                assert!(text.contains("hint:"), "{text}");
                assert!(
                    !out.exists() && !work.join("backup.pgcustom.partial").exists(),
                    "no file may look like a backup"
                );
            }
            Ok(())
        })
        .await?;
    }
    Ok(())
}

#[tokio::test]
async fn psql_script_runs_in_one_transaction_and_stops_at_the_first_error() -> TestResult {
    for major in versions_from_env()? {
        on_project(major, "tools_psql", move |db, _work| async move {
            let tools = PgTools::for_database(&db);
            let target = db.target();
            let out = tools
                .psql_script(&target, "SELECT count(*) AS n FROM public.members;")
                .await?;
            assert!(out.contains(" n \n") && out.contains("3\n"), "{out}");
            let err = tools
                .psql_script(&target, "DELETE FROM public.members;\nSELECT 1/0;")
                .await
                .expect_err("division by zero")
                .to_string();
            assert!(err.contains("division by zero"), "{err}");
            let mut conn = db.connect().await?;
            let n: i64 = sqlx::query_scalar("SELECT count(*) FROM public.members")
                .fetch_one(&mut conn)
                .await?;
            assert_eq!(
                n, 3,
                "PostgreSQL {major}: the failed script's DELETE was rolled back"
            );
            conn.close().await?;
            Ok(())
        })
        .await?;
    }
    Ok(())
}

#[tokio::test]
async fn restore_database_refuses_to_drop_what_it_cannot_recreate_outside_its_scope() -> TestResult
{
    for major in versions_from_env()? {
        on_project(major, "tools_refusal", move |db, work| async move {
            let tools = PgTools::for_database(&db);
            let target = db.target();
            let info = dump_project(&tools, &target, &work).await?;
            // A column of auth.users typed with a public enum: dropping public would drop the column.
            let mut conn = db.connect().await?;
            sqlx::raw_sql(
                "CREATE TYPE public.plan AS ENUM ('free', 'pro');
                 ALTER TABLE auth.users ADD COLUMN plan public.plan;
                 UPDATE auth.users SET plan = 'pro';
                 DELETE FROM public.members;",
            )
            .execute(&mut conn)
            .await?;
            let before = snapshot(&mut conn).await?;
            let err = tools
                .restore_database(
                    &target,
                    &info.path,
                    &phantom_sync::engine::backup::dump_scope(),
                )
                .await
                .expect_err("the restore would drop auth.users.plan")
                .to_string();
            assert!(err.contains("table column auth.users.plan"), "{err}");
            assert!(err.contains("hint:"), "{err}");
            assert_eq!(
                snapshot(&mut conn).await?,
                before,
                "PostgreSQL {major}: a refused restore changed something"
            );
            conn.close().await?;
            Ok(())
        })
        .await?;
    }
    Ok(())
}

#[tokio::test]
async fn a_restore_whose_archive_is_cut_short_commits_nothing() -> TestResult {
    for major in versions_from_env()? {
        on_project(major, "tools_cut_short", move |db, work| async move {
            let tools = PgTools::for_database(&db);
            let target = db.target();
            let info = dump_project(&tools, &target, &work).await?;
            // The table of contents reads; the rows of the last tables are gone.
            let bytes = std::fs::read(&info.path)?;
            let cut = work.join("cut.pgcustom");
            std::fs::write(&cut, &bytes[..bytes.len() - 64])?;
            tools.check_archive(&cut).await?;
            let mut conn = db.connect().await?;
            sqlx::raw_sql(
                "DELETE FROM public.members WHERE role = 'member';
                 CREATE TABLE public.intruder (id int PRIMARY KEY);",
            )
            .execute(&mut conn)
            .await?;
            let before = snapshot(&mut conn).await?;
            let err = tools
                .restore_database(&target, &cut, &phantom_sync::engine::backup::dump_scope())
                .await
                .expect_err("the archive ends in the middle of its data")
                .to_string();
            assert!(err.contains("nothing was committed"), "{err}");
            assert_eq!(
                snapshot(&mut conn).await?,
                before,
                "PostgreSQL {major}: a restore cut short changed something"
            );
            let err = tools
                .restore_tables(&target, &cut, &["public.intruder".to_string()])
                .await
                .expect_err("intruder is not in the backup")
                .to_string();
            assert!(err.contains("not in the backup"), "{err}");
            conn.close().await?;
            Ok(())
        })
        .await?;
    }
    Ok(())
}

/// The dump's read-back lists the archive; listing the same content again,
/// under any name, does not run pg_restore (a tools container that does not
/// exist proves it), and any change to the content does.
#[tokio::test]
async fn an_archive_listed_once_is_not_listed_again_unless_it_changed() -> TestResult {
    for major in versions_from_env()? {
        on_project(major, "tools_listed", move |db, work| async move {
            let tools = PgTools::for_database(&db);
            let info = dump_project(&tools, &db.target(), &work).await?;
            let copy = work.join("copy.pgcustom");
            std::fs::copy(&info.path, &copy)?;
            let absent = |major| PgTools::Exec {
                container_id: "phantom-sync-test-no-such-container".into(),
                major,
            };
            absent(major).check_archive(&copy).await?;
            let other = if major == 14 { 15 } else { major - 1 };
            let err = absent(other)
                .check_archive(&copy)
                .await
                .expect_err("another major's pg_restore has not read it");
            assert!(err.to_string().contains("no-such-container"), "{err}");
            let mut bytes = std::fs::read(&copy)?;
            bytes.push(0);
            std::fs::write(&copy, &bytes)?;
            let err = absent(major)
                .check_archive(&copy)
                .await
                .expect_err("the changed archive is read anew");
            assert!(err.to_string().contains("no-such-container"), "{err}");
            Ok(())
        })
        .await?;
    }
    Ok(())
}

#[tokio::test]
async fn restore_database_replaces_an_extension_installed_in_public() -> TestResult {
    for major in versions_from_env()? {
        on_project(major, "tools_ext_public", move |db, work| async move {
            let tools = PgTools::for_database(&db);
            let target = db.target();
            let mut conn = db.connect().await?;
            let before = snapshot(&mut conn).await?;
            let info = dump_project(&tools, &target, &work).await?;
            // pg_trgm stays installed in public, its operator families and
            // their members with it (the drop of public takes them along).
            sqlx::raw_sql("UPDATE public.organizations SET name = 'Acme Inc' WHERE slug = 'acme';")
                .execute(&mut conn)
                .await?;
            tools
                .restore_database(
                    &target,
                    &info.path,
                    &phantom_sync::engine::backup::dump_scope(),
                )
                .await?;
            assert_eq!(
                snapshot(&mut conn).await?,
                before,
                "PostgreSQL {major}: the restore with pg_trgm installed differs from the dump"
            );
            conn.close().await?;
            Ok(())
        })
        .await?;
    }
    Ok(())
}

/// The entries of an archive's listing, without the header's comment lines
/// (they hold the dump's time).
fn toc_entries(db: &Database, archive: &Path) -> anyhow::Result<Vec<String>> {
    Ok(listing(db, archive)?
        .lines()
        .filter(|l| !l.starts_with(';') && !l.trim().is_empty())
        .map(String::from)
        .collect())
}

#[tokio::test]
async fn the_programs_on_the_host_are_the_containers_own_and_dump_alike() -> TestResult {
    for major in versions_from_env()? {
        on_project(major, "tools_host", move |db, work| async move {
            let host = PgTools::for_database(&db);
            let PgTools::Host { bin, .. } = &host else {
                anyhow::bail!("PostgreSQL {major}: an image phantom-sync built runs its programs on the host, got {host:?}");
            };
            let version = |mut cmd: std::process::Command| -> anyhow::Result<String> {
                let out = cmd.arg("--version").output()?;
                anyhow::ensure!(out.status.success(), "{out:?}");
                Ok(String::from_utf8(out.stdout)?)
            };
            let on_host = version(std::process::Command::new(bin.join("pg_dump")))?;
            let mut exec = std::process::Command::new("docker");
            exec.args(["exec", &db.server().container_id, "pg_dump"]);
            assert_eq!(on_host, version(exec)?, "PostgreSQL {major}");
            assert!(on_host.contains(&format!(" {major}.")), "{on_host}");

            let in_container = PgTools::Exec {
                container_id: db.server().container_id.clone(),
                major,
            };
            let scope = phantom_sync::engine::backup::dump_scope();
            let target = db.target();
            let from_host = host.dump(&target, &work.join("host.dump"), &scope).await?;
            let from_container = in_container
                .dump(&target, &work.join("container.dump"), &scope)
                .await?;
            assert_eq!(from_host.major, from_container.major);
            let entries = toc_entries(&db, &from_host.path)?;
            assert!(entries.iter().any(|e| e.contains("TABLE DATA public members")), "{entries:?}");
            assert_eq!(entries, toc_entries(&db, &from_container.path)?, "PostgreSQL {major}");
            Ok(())
        })
        .await?;
    }
    Ok(())
}

#[tokio::test]
async fn two_dumps_of_one_schema_have_one_content_digest_and_a_change_another() -> TestResult {
    use phantom_sync::pg::tools::content_digest;
    for major in versions_from_env()? {
        on_project(major, "tools_digest", move |db, work| async move {
            let tools = PgTools::for_database(&db);
            let target = db.target();
            let scope = phantom_sync::pg::tools::DumpScope {
                schema_only: true,
                ..phantom_sync::engine::backup::dump_scope()
            };
            let first = tools
                .dump(&target, &work.join("first.dump"), &scope)
                .await?;
            // pg_dump writes its start time to the second.
            tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
            let again = tools
                .dump(&target, &work.join("again.dump"), &scope)
                .await?;
            assert_ne!(
                first.sha256, again.sha256,
                "PostgreSQL {major}: the headers' times differ"
            );
            assert_eq!(
                content_digest(&first.path)?,
                content_digest(&again.path)?,
                "PostgreSQL {major}"
            );
            let mut conn = db.connect().await?;
            sqlx::raw_sql("ALTER TABLE public.members ADD COLUMN note text")
                .execute(&mut conn)
                .await?;
            conn.close().await?;
            let changed = tools
                .dump(&target, &work.join("changed.dump"), &scope)
                .await?;
            assert_ne!(
                content_digest(&first.path)?,
                content_digest(&changed.path)?,
                "PostgreSQL {major}"
            );
            Ok(())
        })
        .await?;
    }
    Ok(())
}
