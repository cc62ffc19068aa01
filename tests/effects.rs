//! The replay's targeted reads (event triggers record what each migration
//! touches; only that is read again) give exactly what reading the whole
//! catalog after every migration gives — on a project that creates, alters,
//! renames, comments, grants and drops every object kind, including the
//! changes event triggers do not name (GRANT/REVOKE, role renames) and the
//! ones that change the text of other objects (renamed tables, columns,
//! types, functions and schemas; detached partitions; cascades).

use phantom_sync::engine::effects::{
    Effects, ReplayMode, replay_split, replay_trying, replay_with, split_point,
};
use phantom_sync::engine::variants::recorded_variants_with;
use phantom_sync::pg::sandbox::{Database, versions_from_env};
use phantom_sync::source::catalog::CatalogOptions;
use phantom_sync::source::environment::Environment;
use phantom_sync::source::ledger::{Ledger, LedgerRow};
use phantom_sync::source::project::Project;
use pretty_assertions::assert_eq;
use sqlx::Connection;
use std::collections::BTreeMap;

type TestResult = anyhow::Result<()>;

/// One migration per entry: (name, SQL).
const MIGRATIONS: &[(&str, &str)] = &[
    (
        "roles",
        r#"do $$ begin
  create role effects_reader nologin;
exception when duplicate_object or unique_violation then null;
end $$;
do $$ begin
  create role effects_renamed_a nologin;
exception when duplicate_object or unique_violation then null;
end $$;"#,
    ),
    (
        "base",
        r#"create extension if not exists citext with schema public;
create schema app;
create type app.member_role as enum ('owner', 'member');
create domain app.slug as text check (value ~ '^[a-z-]+$');
create type app.pair as (a int, b text);
create table app.organizations (
  id uuid primary key default gen_random_uuid(),
  slug app.slug not null unique,
  name varchar(200) not null,
  created_at timestamptz not null default now()
);
create table app.members (
  organization_id uuid not null references app.organizations(id) on delete cascade,
  user_id uuid not null references auth.users(id) on delete cascade,
  role app.member_role not null default 'member',
  primary key (organization_id, user_id)
);
create index members_user_idx on app.members (user_id) where role <> 'member';
create table app.tickets (id serial primary key, title text, email public.citext);
create sequence app.ticket_seq as integer start 100 increment 10;
insert into app.organizations (slug, name) values ('acme', 'Acme');"#,
    ),
    (
        "security",
        r#"alter table app.organizations enable row level security;
create policy "read own" on app.organizations for select to authenticated
  using (id in (select organization_id from app.members where user_id = auth.uid()));
create function app.touch() returns trigger language plpgsql as $$ begin new.created_at := now(); return new; end $$;
create trigger organizations_touch before update on app.organizations
  for each row execute function app.touch();
create function app.count_members(org uuid) returns bigint language sql stable
  begin atomic select count(*) from app.members where organization_id = org; end;
create view app.organization_names as select slug, name from app.organizations;
create materialized view app.member_counts as select organization_id, count(*) as n from app.members group by 1;
create index member_counts_idx on app.member_counts (organization_id);
comment on table app.organizations is 'Tenants';
comment on column app.organizations.slug is 'Name in URLs';
comment on function app.touch() is 'Sets created_at';
comment on type app.member_role is 'Roles';
grant select on app.organization_names to anon;
grant select (id, slug) on app.organizations to effects_reader;
revoke execute on function app.touch() from public;
create function public.handle_new_user() returns trigger language plpgsql security definer
  set search_path = public as $$ begin return new; end $$;
create trigger on_auth_user_created after insert on auth.users
  for each row execute function public.handle_new_user();"#,
    ),
    (
        "renames",
        r#"alter table app.organizations rename to tenants;
alter table app.tenants rename column name to display_name;
alter type app.member_role rename to membership;
alter type app.membership add value 'admin';
alter function app.touch() rename to stamp;
alter sequence app.tickets_id_seq rename to ticket_ids;
alter domain app.slug add constraint slug_length check (length(value) < 64);
alter type app.pair add attribute c boolean;"#,
    ),
    (
        "schema_rename_and_partitions",
        r#"alter schema app rename to core;
create table core.events (id bigint, at date not null) partition by range (at);
create table core.events_2024 partition of core.events for values from ('2024-01-01') to ('2025-01-01');
create table core.events_2025 (id bigint, at date not null);
alter table core.events attach partition core.events_2025 for values from ('2025-01-01') to ('2026-01-01');"#,
    ),
    (
        "detach_and_drops",
        r#"alter table core.events detach partition core.events_2024;
alter table core.events rename to happenings;
drop index core.members_user_idx;
alter table core.members drop constraint members_organization_id_fkey;
drop policy "read own" on core.tenants;
drop trigger organizations_touch on core.tenants;
alter table core.tickets alter column id drop default;
drop sequence core.ticket_ids;
alter table core.tenants alter column created_at drop default;
alter table core.tickets drop column email;
comment on column core.tenants.slug is null;"#,
    ),
    (
        "grants_and_defaults",
        r#"alter default privileges in schema core grant select on tables to anon;
create table core.audit (id bigint generated always as identity primary key, note text);
grant insert, update on core.tenants to authenticated;
grant select on all tables in schema core to effects_reader;
revoke select on core.organization_names from anon;
grant execute on function core.stamp() to authenticated;
alter table core.tenants force row level security;
alter table core.tickets owner to effects_reader;
do $$ begin
  grant insert on core.events_2024 to authenticated;
exception when others then null;
end $$;"#,
    ),
    (
        "cascades_and_ddl_in_code",
        r#"drop view core.organization_names;
drop table core.members cascade;
do $$ begin execute 'create table core.made_in_code (id int primary key)'; end $$;
create table core.scratch (id int);
create index scratch_idx on core.scratch (id);
drop table core.scratch;
create index made_in_code_idx on core.made_in_code (id);
drop index core.made_in_code_idx;
alter table core.tenants disable row level security;
alter table core.audit set schema public;
alter table public.audit rename column note to body;"#,
    ),
    (
        "role_rename",
        r#"alter role effects_renamed_a rename to effects_renamed_b;
alter role effects_renamed_b rename to effects_renamed_a;
grant select on core.made_in_code to effects_renamed_a;"#,
    ),
];

fn project(dir: &std::path::Path) -> anyhow::Result<Project> {
    for (index, (name, sql)) in MIGRATIONS.iter().enumerate() {
        let file = dir.join(format!("2024010100{:04}_{name}.sql", index + 1));
        std::fs::write(file, sql)?;
    }
    Ok(Project::load(dir)?)
}

async fn replayed(project: &Project, major: u8, mode: ReplayMode) -> anyhow::Result<Effects> {
    let db = Database::fresh(major, "effects").await?;
    let mut conn = db.connect().await?;
    // A fresh database's own environment: the replay reproduces it as is.
    let environment = Environment::capture(&mut conn).await?;
    let effects = replay_with(
        project,
        &mut conn,
        &CatalogOptions::default(),
        &environment,
        mode,
    )
    .await;
    conn.close().await.ok();
    db.drop_database().await?;
    Ok(effects?)
}

#[tokio::test]
async fn targeted_reads_give_what_whole_reads_give_for_every_object_kind() -> TestResult {
    let dir = phantom_sync::files::temp_dir("effects")?;
    let project = project(dir.path())?;
    assert_eq!(project.migrations.len(), MIGRATIONS.len());
    for major in versions_from_env()? {
        let whole = replayed(&project, major, ReplayMode::Whole).await?;
        let fast = replayed(&project, major, ReplayMode::Targeted).await?;
        assert_eq!(fast.initial.to_text(), whole.initial.to_text(), "PG{major}");
        for (index, (f, w)) in fast.migrations.iter().zip(&whole.migrations).enumerate() {
            assert_eq!(
                serde_json::to_string_pretty(&f.changes)?,
                serde_json::to_string_pretty(&w.changes)?,
                "PG{major}: migration {} ({})",
                f.version,
                MIGRATIONS[index].0
            );
        }
        assert_eq!(fast.end.to_text(), whole.end.to_text(), "PG{major}");
        assert_eq!(fast.seed, whole.seed, "PG{major}");
        // Only the role renames (which fire no event trigger) needed a whole
        // read; the first migration (roles only) touched no catalog object.
        assert_eq!(fast.stats.whole, 1, "PG{major}: {:?}", fast.stats);
        assert_eq!(fast.stats.targeted, MIGRATIONS.len() - 2, "PG{major}");
        // Every migration did something the reads saw, and the drops happened.
        assert!(
            fast.migrations
                .iter()
                .skip(1)
                .all(|m| !m.changes.is_empty())
        );
        let end = fast.end.to_text();
        assert!(
            end.contains("table core.happenings: partitioned table"),
            "{end}"
        );
        assert!(end.contains("table core.events_2024: table\n"), "{end}");
        // A partitioned table's grants are shown like any table's.
        assert!(
            end.contains("grant core.happenings effects_reader: SELECT\n"),
            "{end}"
        );
        assert!(!end.contains("table core.members:"), "{end}");
        assert!(end.contains("column public.audit.body: text"), "{end}");
    }
    Ok(())
}

#[tokio::test]
async fn every_prefix_answers_by_key_as_the_materialised_catalog_does() -> TestResult {
    let dir = phantom_sync::files::temp_dir("effects-prefix")?;
    let project = project(dir.path())?;
    let major = versions_from_env()?[0];
    let effects = replayed(&project, major, ReplayMode::Targeted).await?;
    let n = effects.migrations.len();
    for index in 0..n {
        let after: Vec<_> = (index + 1..=n).map(|p| effects.prefix(p)).collect();
        let keys: std::collections::BTreeSet<&String> =
            after.iter().flat_map(|c| c.objects.keys()).collect();
        for key in keys {
            let shapes: std::collections::BTreeSet<&str> = after
                .iter()
                .filter_map(|c| c.get(key))
                .map(|o| o.definition.as_str())
                .collect();
            assert_eq!(effects.shapes_after(index, key), shapes, "{index} {key}");
            assert_eq!(
                effects.definition_after(index, key),
                after[0].get(key).map(|o| o.definition.as_str()),
                "{index} {key}"
            );
        }
    }
    assert_eq!(effects.prefix(n), effects.end);
    Ok(())
}

/// A replay's reads are prepared statements with generic plans; planned
/// while the catalog was small they scan it sequentially, and nothing makes
/// the server plan them again as migrations fill it. Once the catalog has
/// doubled the replay forgets them — and what it reads stays the same.
#[tokio::test]
async fn a_replay_that_doubles_the_catalog_plans_its_reads_again_and_reads_the_same() -> TestResult
{
    let dir = phantom_sync::files::temp_dir("effects-growth")?;
    for i in 0..60 {
        let sql = format!(
            "create table public.grown_{i} (id bigint primary key, owner uuid, body text not null default '');\n\
             create index grown_{i}_owner_idx on public.grown_{i} (owner);\n\
             alter table public.grown_{i} enable row level security;\n\
             create policy \"grown_{i} read\" on public.grown_{i} for select using (true);\n"
        );
        std::fs::write(
            dir.path().join(format!("2024020100{i:04}_grown_{i}.sql")),
            sql,
        )?;
    }
    let project = Project::load(dir.path())?;
    let major = versions_from_env()?[0];
    let whole = replayed(&project, major, ReplayMode::Whole).await?;
    let fast = replayed(&project, major, ReplayMode::Targeted).await?;
    assert!(
        fast.end.objects.len() >= 2 * fast.initial.objects.len().max(32),
        "the project must at least double the catalog: {} objects before, {} after",
        fast.initial.objects.len(),
        fast.end.objects.len()
    );
    assert!(fast.stats.replans >= 1, "{:?}", fast.stats);
    assert_eq!(fast.stats.whole, 0, "{:?}", fast.stats);
    assert_same_effects(&fast, &whole)
}

/// The synthetic project of `bench diagnose` (tables with foreign keys,
/// indexes, RLS policies, functions and triggers, later ALTERs, grants),
/// `n` migrations, with `extra` as one more migration among the first `at`
/// (its file name sorts just before migration `at`'s).
fn synthetic(dir: &std::path::Path, n: usize, at: usize, extra: &str) -> anyhow::Result<Project> {
    let file = phantom_sync::bench::diagnose::write_project(dir, n)?;
    let migrations = file.with_file_name("synthetic/supabase/migrations");
    if !extra.is_empty() {
        let version = format!("2024{at:010}5");
        std::fs::write(migrations.join(format!("{version}_extra.sql")), extra)?;
    }
    Ok(Project::load(&migrations)?)
}

/// Replays `project` cut at `at` on two databases named `lead_…` and `follow_…`.
async fn replayed_in_two(project: &Project, major: u8, at: usize) -> anyhow::Result<Effects> {
    let lead = Database::fresh(major, "lead").await?;
    let follow = Database::fresh(major, "follow").await?;
    let (mut a, mut b) = (lead.connect().await?, follow.connect().await?);
    let environment = Environment::capture(&mut a).await?;
    let effects = replay_split(
        project,
        &mut a,
        &mut b,
        &CatalogOptions::default(),
        &environment,
        at,
    )
    .await;
    a.close().await.ok();
    b.close().await.ok();
    lead.drop_database().await?;
    follow.drop_database().await?;
    Ok(effects?)
}

/// `split` (or a targeted replay) recorded what `one` (or a whole-read
/// replay) recorded: every migration's changes, the catalogs, the seed rows.
fn assert_same_effects(split: &Effects, one: &Effects) -> anyhow::Result<()> {
    assert_eq!(split.migrations.len(), one.migrations.len());
    assert_eq!(split.initial.to_text(), one.initial.to_text());
    for (s, o) in split.migrations.iter().zip(&one.migrations) {
        assert_eq!(s.version, o.version);
        assert_eq!(
            serde_json::to_string_pretty(&s.changes)?,
            serde_json::to_string_pretty(&o.changes)?,
            "migration {}",
            s.version
        );
    }
    assert_eq!(split.end.to_text(), one.end.to_text());
    assert_eq!(split.seed, one.seed);
    Ok(())
}

/// A long project is replayed on two databases at once: the first records
/// the early migrations while the second applies them unread and records
/// the rest. Every migration's changes, the end catalog and the seed rows
/// are the ones a replay on one database records.
#[tokio::test]
async fn a_replay_cut_in_two_records_what_one_replay_records() -> TestResult {
    let dir = phantom_sync::files::temp_dir("effects-split")?;
    let project = synthetic(dir.path(), 48, 0, "")?;
    assert_eq!(split_point(&project), Some(48 * 3 / 5));
    for major in versions_from_env()? {
        let one = replayed(&project, major, ReplayMode::Targeted).await?;
        assert_eq!(one.stats.split_at, None);
        let split = replayed_in_two(&project, major, 29).await?;
        assert_eq!(split.stats.split_at, Some(29), "PG{major}: the lanes met");
        assert_eq!(split.stats.whole, 0, "PG{major}: {:?}", split.stats);
        assert_same_effects(&split, &one)?;
    }
    Ok(())
}

/// When the second lane cannot take over — its start is not the catalog the
/// first lane reached, or one of the migrations it applies unread fails
/// there — the first lane replays the rest alone, and the answer is still
/// the one-database replay's.
#[tokio::test]
async fn a_second_lane_that_differs_or_fails_leaves_the_first_to_finish() -> TestResult {
    let major = versions_from_env()?[0];
    let differs = "do $$ begin if current_database() like '%follow%' then \
                   create table public.only_in_the_second (id int); end if; end $$;";
    let fails = "do $$ begin if current_database() like '%follow%' then \
                 raise exception 'only the second lane fails'; end if; end $$;";
    for (what, extra) in [("differs", differs), ("fails", fails)] {
        let dir = phantom_sync::files::temp_dir("effects-split-fallback")?;
        let project = synthetic(dir.path(), 44, 10, extra)?;
        assert_eq!(project.migrations.len(), 45);
        let one = replayed(&project, major, ReplayMode::Targeted).await?;
        let split = replayed_in_two(&project, major, 27).await?;
        assert_eq!(
            split.stats.split_at, None,
            "{what}: the first lane went on alone"
        );
        assert_same_effects(&split, &one)?;
    }
    Ok(())
}

/// After each migration the replay reads again only the roots it touched.
/// Enabling row-level security is an `ALTER TABLE`, so everything that
/// depends on the table is followed: its foreign keys lead to the triggers
/// PostgreSQL makes for them on the referenced tables (here `auth.users` and
/// an earlier table), and the table owns a TOAST table and an array type.
/// None of those shows a catalog object, so none is read: one root per
/// migration, and the reads record what whole reads record.
#[tokio::test]
async fn a_migration_reads_again_only_the_roots_that_show_objects() -> TestResult {
    let dir = phantom_sync::files::temp_dir("effects-roots")?;
    let migrations = [
        "create table public.parents (id uuid primary key, body text not null);\n\
         alter table public.parents enable row level security;",
        "create table public.children (id uuid primary key, note text,\n\
           parent_id uuid references public.parents(id),\n\
           owner_id uuid references auth.users(id));\n\
         alter table public.children enable row level security;",
        "create function public.answer() returns int language sql as 'select 42';",
    ];
    for (i, sql) in migrations.iter().enumerate() {
        std::fs::write(dir.path().join(format!("2024030100{i:04}_m{i}.sql")), sql)?;
    }
    let project = Project::load(dir.path())?;
    let major = versions_from_env()?[0];
    let whole = replayed(&project, major, ReplayMode::Whole).await?;
    let fast = replayed(&project, major, ReplayMode::Targeted).await?;
    assert_eq!(fast.stats.targeted, 3, "{:?}", fast.stats);
    assert_eq!(
        fast.stats.roots, 3,
        "one root per migration: {:?}",
        fast.stats
    );
    for m in &fast.migrations {
        assert!(!m.changes.is_empty(), "migration {}", m.version);
    }
    assert_same_effects(&fast, &whole)
}

/// The migration whose recorded statements end with `COMMIT` (not tried).
const COMMITS: usize = 4;
/// The migration whose recorded statements drop the session's temporary
/// tables — the replay's log among them — so that reading only what they
/// touched fails and the trial runs again with a whole read.
const DISCARDS: usize = 5;

/// The statements a ledger row recorded for migration `index` (an edited
/// migration): today's file without its last statement, plus an object the
/// file never makes (a table, a function, a granted view in turn); for
/// [`COMMITS`] a `commit` instead, for [`DISCARDS`] a `discard temp` too,
/// for the last migration a statement that fails.
fn recorded(index: usize, statements: &[String]) -> Vec<String> {
    if index + 1 == MIGRATIONS.len() {
        return vec!["alter table nowhere.t add column x int".into()];
    }
    let mut recorded = statements[..statements.len() - 1].to_vec();
    if index == COMMITS {
        recorded.push("commit".into());
        return recorded;
    }
    if index == DISCARDS {
        recorded.push("discard temp".into());
    }
    recorded.extend(match index % 3 {
        0 => vec![format!(
            "create table public.recorded_{index} (id int primary key, note text default 'x')"
        )],
        1 => vec![format!(
            "create function public.recorded_{index}() returns int language sql as 'select {index}'"
        )],
        _ => vec![
            format!("create view public.recorded_{index} as select {index} as n"),
            format!("grant select on public.recorded_{index} to anon"),
        ],
    });
    recorded
}

/// A ledger whose rows recorded other statements than today's files: each
/// row's statements are tried where its file runs and rolled back, and only
/// what they touched is read — the variants are exactly those that reading
/// the whole catalog gives, on every object kind (renames, cascades, grants,
/// role renames, which need a whole read, statements that fail, one that
/// drops the replay's log, one that commits), and a trial leaves the replay
/// as it found it: each file's changes are those of a replay without trials.
#[tokio::test]
async fn recorded_statements_tried_in_place_read_what_whole_reads_read() -> TestResult {
    let dir = phantom_sync::files::temp_dir("effects-variants")?;
    let project = project(dir.path())?;
    let rows: Vec<LedgerRow> = project
        .migrations
        .iter()
        .enumerate()
        .filter(|(index, _)| *index != 2) // one migration the ledger does not list
        .map(|(index, m)| LedgerRow {
            version: m.version.clone(),
            name: Some(m.name.clone()),
            statements: Some(recorded(index, &m.statements)),
        })
        .collect();
    let instead: BTreeMap<String, Vec<String>> = rows
        .iter()
        .map(|r| (r.version.clone(), r.statements.clone().unwrap_or_default()))
        .collect();
    let ledger = Ledger { exists: true, rows };
    let options = CatalogOptions::default();
    for major in versions_from_env()? {
        let db = Database::fresh(major, "effects").await?;
        let mut conn = db.connect().await?;
        let environment = Environment::capture(&mut conn).await;
        let tried = match &environment {
            Ok(environment) => {
                replay_trying(
                    &project,
                    &mut conn,
                    &options,
                    environment,
                    ReplayMode::Targeted,
                    &instead,
                )
                .await
            }
            Err(_) => Ok(BTreeMap::new()),
        };
        conn.close().await.ok();
        db.drop_database().await?;
        let (environment, tried) = (environment?, tried?);
        let plain = replayed(&project, major, ReplayMode::Targeted).await?;
        assert_eq!(tried.len(), MIGRATIONS.len() - 1, "PG{major}");
        for (index, m) in project.migrations.iter().enumerate() {
            if let Some(t) = tried.get(&m.version) {
                assert_eq!(
                    t.file, plain.migrations[index].changes,
                    "PG{major}: {index}"
                );
            }
        }
        let read =
            |mode| recorded_variants_with(&project, &ledger, major, &options, &environment, mode);
        let whole = read(ReplayMode::Whole).await?;
        let fast = read(ReplayMode::Targeted).await?;
        assert_eq!(fast, whole, "PG{major}");
        assert_eq!(fast.len(), MIGRATIONS.len() - 1, "PG{major}");
        let last = &fast[&project.migrations[MIGRATIONS.len() - 1].version];
        assert!(
            last.failed
                .as_deref()
                .is_some_and(|m| m.contains("nowhere")),
            "PG{major}: {last:?}"
        );
        let commits = &fast[&project.migrations[COMMITS].version];
        assert!(
            commits
                .not_tried
                .as_deref()
                .is_some_and(|m| m.contains("commit")),
            "PG{major}: {commits:?}"
        );
        for (index, m) in project.migrations.iter().enumerate() {
            let Some(variant) = fast
                .get(&m.version)
                .filter(|v| v.failed.is_none() && v.not_tried.is_none())
            else {
                continue;
            };
            let recorded_only = format!("public.recorded_{index}");
            assert!(
                variant
                    .differences
                    .iter()
                    .any(|d| d.key.contains(&recorded_only)),
                "PG{major}: migration {index} ({}): {:#?}",
                MIGRATIONS[index].0,
                variant.differences
            );
        }
    }
    Ok(())
}
