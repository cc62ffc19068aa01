-- Pre-existing production data for the prompt-manager fixture: the rows the
-- plan must preserve. Run it after migrations 1-4 (collections and
-- user_consents exist, the prompt manager tables do not yet).
--
-- Deterministic: ids are md5-derived uuids (users, collections) or identity
-- values assigned in generate_series order (user_consents, on a fresh table),
-- timestamps are fixed, nothing calls now() or random(). Running it on two
-- fresh databases gives byte-identical table contents.
--
-- Sizes default to 40 users, 48 collections, 300 consents. Override them per
-- session before running the file, e.g.
--   psql -v ON_ERROR_STOP=1 -c "set fixture.collections = 200000" -f existing-data.sql
--   PGOPTIONS='-c fixture.users=1000 -c fixture.user_consents=500000' psql -f existing-data.sql
-- or `SET fixture.users = '1000'` on the same connection first. Only plain SQL
-- is used (no psql meta-commands), so any client can run the file.

select set_config('fixture.users',
  coalesce(nullif(current_setting('fixture.users', true), ''), '40'), false);
select set_config('fixture.collections',
  coalesce(nullif(current_setting('fixture.collections', true), ''), '48'), false);
select set_config('fixture.user_consents',
  coalesce(nullif(current_setting('fixture.user_consents', true), ''), '300'), false);

insert into auth.users (
  instance_id, id, aud, role, email, encrypted_password, email_confirmed_at,
  last_sign_in_at, raw_app_meta_data, raw_user_meta_data, is_super_admin,
  created_at, updated_at, is_anonymous
)
select
  '00000000-0000-0000-0000-000000000000'::uuid,
  md5('user-' || i)::uuid,
  'authenticated',
  'authenticated',
  'user' || i || '@example.com',
  '$2a$10$' || md5('password-' || i),
  timestamptz '2025-03-01 09:00:00+00' + i * interval '17 minutes' + interval '2 minutes',
  timestamptz '2025-09-30 18:00:00+00' - i * interval '41 minutes',
  '{"provider": "email", "providers": ["email"]}'::jsonb,
  jsonb_build_object('full_name', 'Test User ' || i, 'locale', case when i % 3 = 0 then 'pl' else 'en' end),
  false,
  timestamptz '2025-03-01 09:00:00+00' + i * interval '17 minutes',
  timestamptz '2025-03-01 09:00:00+00' + i * interval '17 minutes' + interval '2 minutes',
  false
from generate_series(1, current_setting('fixture.users')::int) as i
order by i;

insert into public.collections (id, user_id, name, description, rules, created_at, updated_at)
select
  md5('collection-' || i)::uuid,
  md5('user-' || ((i - 1) % current_setting('fixture.users')::int + 1))::uuid,
  'Collection ' || i,
  case when i % 4 = 0 then null else 'Rules for project ' || i end,
  jsonb_build_array(
    jsonb_build_object('id', 'rule-' || i || '-1', 'text', 'Use TypeScript strict mode'),
    jsonb_build_object('id', 'rule-' || i || '-2', 'text', 'Prefer early returns (' || i % 7 || ')')
  ),
  timestamptz '2025-03-29 10:00:00+00' + i * interval '3 hours',
  timestamptz '2025-03-29 10:00:00+00' + i * interval '3 hours' + (i % 5) * interval '1 day'
from generate_series(1, current_setting('fixture.collections')::int) as i
order by i;

-- Row i belongs to user (i-1) % users + 1, in round r = (i-1) / users; round r
-- maps to a distinct (consent_type, version) pair, so the unique key holds.
insert into public.user_consents (user_id, consent_type, version, granted, consented_at)
select
  md5('user-' || ((i - 1) % u + 1))::uuid,
  (array['terms', 'privacy', 'marketing'])[((i - 1) / u) % 3 + 1],
  'v' || ((i - 1) / u / 3 + 1),
  ((i - 1) / u) % 3 <> 2 or i % 2 = 0,
  timestamptz '2025-04-12 08:00:00+00' + i * interval '7 minutes'
from generate_series(1, current_setting('fixture.user_consents')::int) as i,
  lateral (select current_setting('fixture.users')::int as u) as s
order by i;
