//! The statement splitter against whole migration files and against the behaviours the
//! Supabase CLI's own parser tests pin down, through the public API only: the arrays
//! below are what the CLI stores in `supabase_migrations.schema_migrations.statements`.

use phantom_sync::source::split::split_and_trim;
use pretty_assertions::assert_eq;
use rstest::rstest;

/// A typical Supabase migration: a table, RLS, a policy whose name holds a `;`, a
/// plpgsql trigger function in `$$` with `;` and a comment inside, and its trigger.
const ORGANIZATIONS: &str = r#"-- Organizations and their members.
create table if not exists public.organizations (
  id uuid primary key default gen_random_uuid(),
  slug text not null unique,
  name text not null check (char_length(name) > 0)
);

alter table public.organizations enable row level security;

-- Members can read their organization; the policy name has a ';' in it.
create policy "members read; own org" on public.organizations
  for select to authenticated
  using (id in (select org_id from public.organization_members where user_id = auth.uid()));

create or replace function public.touch_updated_at()
returns trigger
language plpgsql
as $$
begin
  new.updated_at := now(); -- keep the timestamp fresh
  return new;
end;
$$;

/* trigger wiring; runs before every update */
create trigger organizations_touch
  before update on public.organizations
  for each row execute function public.touch_updated_at();
"#;

#[test]
fn migration_with_policy_and_plpgsql_function() {
    let expected = [
        "-- Organizations and their members.\ncreate table if not exists public.organizations (\n  id uuid primary key default gen_random_uuid(),\n  slug text not null unique,\n  name text not null check (char_length(name) > 0)\n)",
        "alter table public.organizations enable row level security",
        "-- Members can read their organization; the policy name has a ';' in it.\ncreate policy \"members read; own org\" on public.organizations\n  for select to authenticated\n  using (id in (select org_id from public.organization_members where user_id = auth.uid()))",
        "create or replace function public.touch_updated_at()\nreturns trigger\nlanguage plpgsql\nas $$\nbegin\n  new.updated_at := now(); -- keep the timestamp fresh\n  return new;\nend;\n$$",
        "/* trigger wiring; runs before every update */\ncreate trigger organizations_touch\n  before update on public.organizations\n  for each row execute function public.touch_updated_at()",
    ];
    assert_eq!(split_and_trim(ORGANIZATIONS), expected);
}

#[test]
fn crlf_seed_migration_with_tagged_body_and_trailing_comment() {
    let sql = "insert into public.collections (name) values ('Inbox; default'), ('It''s archived');\r\n\
               \r\n\
               do $seed$\r\n\
               begin\r\n\
               \x20 perform set_config('app.seeded', 'on', true);\r\n\
               end\r\n\
               $seed$;\r\n\
               -- end of seed\r\n";
    let expected = [
        "insert into public.collections (name) values ('Inbox; default'), ('It''s archived')",
        "do $seed$\r\nbegin\r\n  perform set_config('app.seeded', 'on', true);\r\nend\r\n$seed$",
        "-- end of seed",
    ];
    assert_eq!(split_and_trim(sql), expected);
}

#[test]
fn sql_standard_function_body_followed_by_grant_without_final_semicolon() {
    let sql = "create function public.add(a integer, b integer) returns integer\n\
               language sql immutable\n\
               begin atomic\n\
               \x20 select 'end; not yet';\n\
               \x20 select a + b;\n\
               end;\n\
               grant execute on function public.add(integer, integer) to authenticated";
    let expected = [
        "create function public.add(a integer, b integer) returns integer\nlanguage sql immutable\nbegin atomic\n  select 'end; not yet';\n  select a + b;\nend",
        "grant execute on function public.add(integer, integer) to authenticated",
    ];
    assert_eq!(split_and_trim(sql), expected);
}

/// Behaviours the CLI's parser tests fix, restated as `SplitAndTrim` results.
#[rstest]
#[case::comment_after_separator("END;-- comment", &["END", "-- comment"])]
#[case::separator_in_line_comment("SELECT --; 1", &["SELECT --; 1"])]
#[case::lone_dash("- ;END", &["-", "END"])]
#[case::block_opener_in_line_comment("-- /* \n; */ END", &["-- /*", "*/ END"])]
#[case::separated_slash_star("/ * ; */ END", &["/ *", "*/ END"])]
#[case::every_trailing_semicolon_is_trimmed("\\;;\\;", &["\\", "\\"])]
#[case::spaces_before_separator("BEGIN   ;  END", &["BEGIN", "END"])]
#[case::dollar_inside_identifier_quotes("SELECT \"$\"; $$", &["SELECT \"$\"", "$$"])]
#[case::backslash_ends_plain_literal("SELECT '\\'; 1'", &["SELECT '\\'", "1'"])]
#[case::begin_atomic_case_insensitive("begin atomic; select 'end'; end", &["begin atomic; select 'end'; end"])]
#[case::atomic_body_end_after_comments(
    "CREATE FUNCTION test() BEGIN\nATOMIC-- END;\n-- END;\nEND\n;",
    &["CREATE FUNCTION test() BEGIN\nATOMIC-- END;\n-- END;\nEND"]
)]
#[case::atomic_suffix_in_function_name(
    "CREATE FUNCTION public.f_atomic() RETURNS void LANGUAGE plpgsql AS $$\nBEGIN\n  NULL;\nEND;\n$$;\nSELECT 1;",
    &["CREATE FUNCTION public.f_atomic() RETURNS void LANGUAGE plpgsql AS $$\nBEGIN\n  NULL;\nEND;\n$$", "SELECT 1"]
)]
// Not from the CLI's tests; checked against its parser: the body ends at the `end` of
// `pending`, so the `;` after it separates.
#[case::end_at_end_of_identifier_closes_the_body(
    "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1 AS pending; END; SELECT 2;",
    &["CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1 AS pending", "END", "SELECT 2"]
)]
#[case::atomic_inside_parentheses("DO (BEGIN ATOMIC SELECT 1; END; ); SELECT 2;", &["DO (BEGIN ATOMIC SELECT 1; END; )", "SELECT 2"])]
// Not from the CLI's tests; checked against its parser: Unicode whitespace (here a
// no-break space) may separate `BEGIN` and `ATOMIC`.
#[case::non_breaking_space_separates_begin_and_atomic(
    "BEGIN \u{a0} ATOMIC; SELECT 1; end; SELECT 2;",
    &["BEGIN \u{a0} ATOMIC; SELECT 1; end", "SELECT 2"]
)]
fn matches_the_cli_parser_tests(#[case] sql: &str, #[case] expected: &[&str]) {
    assert_eq!(split_and_trim(sql), expected);
}
