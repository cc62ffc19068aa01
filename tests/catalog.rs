//! The catalog reads a live schema into the same text on every PostgreSQL
//! major in PHANTOM_PG_VERSIONS, leaves out platform schemas and extension
//! members, leaves the caller's session as it was, and its diff says what
//! drifted between two databases.

use phantom_sync::pg::sandbox::{Database, versions_from_env};
use phantom_sync::source::catalog::{Catalog, CatalogOptions, ObjectKind, diff};
use pretty_assertions::assert_eq;
use sha2::{Digest, Sha256};
use sqlx::Connection;

type TestResult = anyhow::Result<()>;

const TOUCH_BODY: &str = " begin new.created_at := now(); return new; end ";
const NEW_USER_BODY: &str =
    "\nbegin\n  insert into public.profiles (id) values (new.id);\n  return new;\nend\n";

/// A small Supabase-style schema touching every object kind, valid on 14–18.
fn fixture() -> String {
    format!(
        r#"
do $$ begin
  create role catalog_reader nologin;
exception when duplicate_object or unique_violation then null; -- roles are cluster-wide
end $$;
create extension citext;
create schema app;
create type app.member_role as enum ('owner', 'admin', 'member');
create table app.organizations (
  id uuid primary key default gen_random_uuid(),
  slug text not null unique,
  name varchar(200) not null,
  created_at timestamptz not null default now()
);
create table app.organization_members (
  organization_id uuid not null references app.organizations(id) on delete cascade,
  user_id uuid not null references auth.users(id) on delete cascade,
  role app.member_role not null default 'member',
  primary key (organization_id, user_id)
);
create index organization_members_user_idx on app.organization_members (user_id) where role <> 'member';
create table app.invites (
  id bigint generated always as identity primary key,
  email public.citext not null,
  code text check (length(code) = 8)
);
create sequence app.ticket_seq as integer start 100 increment 10;
alter table app.organizations enable row level security;
create policy "Members read their organizations" on app.organizations for select to authenticated
  using (id in (select organization_id from app.organization_members where user_id = auth.uid()));
create function app.touch() returns trigger language plpgsql as $${TOUCH_BODY}$$;
create trigger organizations_touch before update on app.organizations
  for each row execute function app.touch();
create view app.organization_names as select slug, name from app.organizations;
comment on table app.organizations is 'Tenants';
comment on column app.organizations.slug is 'Name in URLs';
grant select on app.organization_names to anon;
grant select (id, slug) on app.organizations to catalog_reader;
revoke execute on function app.touch() from public;
create table public.profiles (id uuid primary key references auth.users(id), username text);
create function public.handle_new_user() returns trigger language plpgsql security definer
  set search_path = '' as $${NEW_USER_BODY}$$;
create trigger on_auth_user_created after insert on auth.users
  for each row execute function public.handle_new_user();
"#
    )
}

fn sha256(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What the fixture must read as, written from the catalog's rules.
fn expected_text() -> String {
    let all = "DELETE, INSERT, REFERENCES, SELECT, TRIGGER, TRUNCATE, UPDATE";
    let mut lines = vec![
        "schema app: schema".to_string(),
        "schema public: schema".to_string(),
        "extension citext: schema public".to_string(),
        "extension pgcrypto: schema extensions".to_string(),
        "type app.member_role: enum ('owner', 'admin', 'member')".to_string(),
        "table app.organizations: table".to_string(),
        "table app.organization_members: table".to_string(),
        "table app.invites: table".to_string(),
        "table public.profiles: table".to_string(),
        "rls app.organizations: enabled".to_string(),
        "column app.organizations.id: uuid not null default gen_random_uuid()".to_string(),
        "column app.organizations.slug: text not null".to_string(),
        "column app.organizations.name: character varying(200) not null".to_string(),
        "column app.organizations.created_at: timestamp with time zone not null default now()".to_string(),
        "column app.organization_members.organization_id: uuid not null".to_string(),
        "column app.organization_members.user_id: uuid not null".to_string(),
        "column app.organization_members.role: app.member_role not null default 'member'::app.member_role".to_string(),
        "column app.invites.id: bigint not null generated always as identity".to_string(),
        "column app.invites.email: public.citext not null".to_string(),
        "column app.invites.code: text".to_string(),
        "column public.profiles.id: uuid not null".to_string(),
        "column public.profiles.username: text".to_string(),
        "constraint app.organizations.organizations_pkey: PRIMARY KEY (id)".to_string(),
        "constraint app.organizations.organizations_slug_key: UNIQUE (slug)".to_string(),
        "constraint app.organization_members.organization_members_pkey: PRIMARY KEY (organization_id, user_id)".to_string(),
        "constraint app.organization_members.organization_members_organization_id_fkey: FOREIGN KEY (organization_id) REFERENCES app.organizations(id) ON DELETE CASCADE".to_string(),
        "constraint app.organization_members.organization_members_user_id_fkey: FOREIGN KEY (user_id) REFERENCES auth.users(id) ON DELETE CASCADE".to_string(),
        "constraint app.invites.invites_pkey: PRIMARY KEY (id)".to_string(),
        "constraint app.invites.invites_code_check: CHECK ((length(code) = 8))".to_string(),
        "constraint public.profiles.profiles_pkey: PRIMARY KEY (id)".to_string(),
        "constraint public.profiles.profiles_id_fkey: FOREIGN KEY (id) REFERENCES auth.users(id)".to_string(),
        "index app.organizations_pkey: CREATE UNIQUE INDEX organizations_pkey ON app.organizations USING btree (id)".to_string(),
        "index app.organizations_slug_key: CREATE UNIQUE INDEX organizations_slug_key ON app.organizations USING btree (slug)".to_string(),
        "index app.organization_members_pkey: CREATE UNIQUE INDEX organization_members_pkey ON app.organization_members USING btree (organization_id, user_id)".to_string(),
        "index app.organization_members_user_idx: CREATE INDEX organization_members_user_idx ON app.organization_members USING btree (user_id) WHERE (role <> 'member'::app.member_role)".to_string(),
        "index app.invites_pkey: CREATE UNIQUE INDEX invites_pkey ON app.invites USING btree (id)".to_string(),
        "index public.profiles_pkey: CREATE UNIQUE INDEX profiles_pkey ON public.profiles USING btree (id)".to_string(),
        "sequence app.ticket_seq: as integer start 100 increment 10 minvalue 1 maxvalue 2147483647 cache 1 no cycle".to_string(),
        "policy app.organizations.\"Members read their organizations\": permissive for select to authenticated using (id IN ( SELECT organization_members.organization_id FROM app.organization_members WHERE (organization_members.user_id = auth.uid())))".to_string(),
        format!("function app.touch(): function () returns trigger language plpgsql volatile body sha256:{}", sha256(TOUCH_BODY)),
        format!(
            "function public.handle_new_user(): function () returns trigger language plpgsql volatile security definer set search_path=\"\" body sha256:{}",
            sha256(NEW_USER_BODY)
        ),
        "trigger app.organizations.organizations_touch: CREATE TRIGGER organizations_touch BEFORE UPDATE ON app.organizations FOR EACH ROW EXECUTE FUNCTION app.touch()".to_string(),
        "trigger auth.users.on_auth_user_created: CREATE TRIGGER on_auth_user_created AFTER INSERT ON auth.users FOR EACH ROW EXECUTE FUNCTION public.handle_new_user()".to_string(),
        "view app.organization_names: SELECT slug, name FROM app.organizations".to_string(),
        "comment table app.organizations: Tenants".to_string(),
        "comment column app.organizations.slug: Name in URLs".to_string(),
        "grant app.organization_names anon: SELECT".to_string(),
        "grant app.organizations.id catalog_reader: SELECT".to_string(),
        "grant app.organizations.slug catalog_reader: SELECT".to_string(),
    ];
    for role in ["anon", "authenticated", "service_role"] {
        lines.push(format!("grant public.profiles {role}: {all}"));
        lines.push(format!("grant public.handle_new_user() {role}: EXECUTE"));
    }
    lines.push("grant public.handle_new_user() PUBLIC: EXECUTE".to_string());
    lines.sort();
    lines.iter().map(|line| format!("{line}\n")).collect()
}

async fn fixture_database(
    major: u8,
    label: &str,
) -> anyhow::Result<(Database, sqlx::PgConnection)> {
    let db = Database::fresh(major, label).await?;
    let mut conn = db.connect().await?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(fixture()))
        .execute(&mut conn)
        .await?;
    Ok((db, conn))
}

#[tokio::test]
async fn the_fixture_reads_as_the_same_text_on_every_major() -> TestResult {
    let mut first: Option<(u8, String)> = None;
    for major in versions_from_env()? {
        let (db, mut conn) = fixture_database(major, "catalog_text").await?;
        let catalog = Catalog::introspect(&mut conn, &CatalogOptions::default()).await?;
        assert_eq!(catalog.to_text(), expected_text(), "PostgreSQL {major}");
        if let Some((first_major, fingerprint)) = &first {
            assert_eq!(
                &catalog.fingerprint(),
                fingerprint,
                "PostgreSQL {major} vs {first_major}"
            );
        } else {
            first = Some((major, catalog.fingerprint()));
        }
        drop(conn);
        db.drop_database().await?;
    }
    Ok(())
}

#[tokio::test]
async fn platform_schemas_and_extension_members_are_left_out_unless_asked() -> TestResult {
    for major in versions_from_env()? {
        let (db, mut conn) = fixture_database(major, "catalog_scope").await?;
        let default = Catalog::introspect(&mut conn, &CatalogOptions::default()).await?;
        assert!(
            default.get("table auth.users").is_none(),
            "PostgreSQL {major}"
        );
        assert!(
            !default
                .objects
                .values()
                .any(|o| o.kind == ObjectKind::Function && o.key.contains("citext")),
            "citext's functions belong to the extension"
        );
        let everything = Catalog::introspect(
            &mut conn,
            &CatalogOptions {
                exclude_schemas: vec![],
            },
        )
        .await?;
        assert_eq!(
            everything
                .get("table auth.users")
                .map(|o| o.definition.as_str()),
            Some("table")
        );
        assert!(everything.get("function auth.uid()").is_some());
        assert!(
            !everything
                .objects
                .keys()
                .any(|key| key.contains("pg_catalog") || key.contains("information_schema"))
        );
        assert!(
            !everything
                .objects
                .keys()
                .any(|key| key.starts_with("function extensions.")),
            "pgcrypto's functions belong to the extension"
        );
        drop(conn);
        db.drop_database().await?;
    }
    Ok(())
}

#[tokio::test]
async fn reading_leaves_the_session_and_the_callers_transaction_as_they_were() -> TestResult {
    for major in versions_from_env()? {
        let (db, mut conn) = fixture_database(major, "catalog_session").await?;
        sqlx::query("SET search_path = app, public")
            .execute(&mut conn)
            .await?;
        let outside = Catalog::introspect(&mut conn, &CatalogOptions::default()).await?;
        assert!(!conn.is_in_transaction());
        let path: String = sqlx::query_scalar("SHOW search_path")
            .fetch_one(&mut conn)
            .await?;
        assert_eq!(path, "app, public", "PostgreSQL {major}");

        let mut tx = conn.begin().await?;
        sqlx::query("CREATE TABLE app.uncommitted (id int)")
            .execute(&mut *tx)
            .await?;
        let inside = Catalog::introspect(&mut tx, &CatalogOptions::default()).await?;
        assert_eq!(
            inside
                .get("table app.uncommitted")
                .map(|o| o.definition.as_str()),
            Some("table")
        );
        let path: String = sqlx::query_scalar("SHOW search_path")
            .fetch_one(&mut *tx)
            .await?;
        assert_eq!(path, "app, public");
        tx.rollback().await?;

        assert_eq!(
            Catalog::introspect(&mut conn, &CatalogOptions::default()).await?,
            outside
        );
        drop(conn);
        db.drop_database().await?;
    }
    Ok(())
}

#[tokio::test]
async fn diff_says_what_drifted_between_two_databases() -> TestResult {
    for major in versions_from_env()? {
        let (clean, mut clean_conn) = fixture_database(major, "catalog_clean").await?;
        let (drifted, mut drifted_conn) = fixture_database(major, "catalog_drifted").await?;
        let drift = format!(
            "alter table app.organizations drop constraint organizations_slug_key;
             alter table app.organizations disable row level security;
             alter table app.organizations add column plan text default 'free';
             alter table app.organization_members alter column role drop default;
             revoke select on app.organization_names from anon;
             create or replace function app.touch() returns trigger language plpgsql as $${TOUCH_BODY} $$;"
        );
        sqlx::raw_sql(sqlx::AssertSqlSafe(drift))
            .execute(&mut drifted_conn)
            .await?;
        let expected = Catalog::introspect(&mut clean_conn, &CatalogOptions::default()).await?;
        let found = Catalog::introspect(&mut drifted_conn, &CatalogOptions::default()).await?;
        let described: Vec<String> = diff(&expected, &found)
            .iter()
            .map(|d| d.describe())
            .collect();
        assert_eq!(
            described,
            vec![
                "column app.organization_members.role: default none, expected 'member'::app.member_role",
                "column app.organizations.plan (text default 'free'::text): unexpected",
                "constraint app.organizations.organizations_slug_key (UNIQUE (slug)): missing",
                "function app.touch(): body differs",
                "grant app.organization_names anon (SELECT): missing",
                "index app.organizations_slug_key (CREATE UNIQUE INDEX organizations_slug_key ON app.organizations USING btree (slug)): missing",
                "rls app.organizations (enabled): missing",
            ],
            "PostgreSQL {major}"
        );
        drop((clean_conn, drifted_conn));
        clean.drop_database().await?;
        drifted.drop_database().await?;
    }
    Ok(())
}
