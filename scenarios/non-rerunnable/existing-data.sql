-- Pre-existing data for the non-rerunnable fixture: 5 users and 20 notes.
-- Run it after migration 20240105093000 (and optionally 20240112140000) but
-- before 20240120101500, which renames notes.body. Deterministic: md5-derived
-- user ids, identity note ids assigned in order on a fresh table, fixed
-- timestamps.

insert into auth.users (id, aud, role, email, raw_user_meta_data, created_at, updated_at)
select
  md5('nr-user-' || i)::uuid,
  'authenticated',
  'authenticated',
  'notes' || i || '@example.com',
  jsonb_build_object('full_name', 'Note Writer ' || i),
  timestamptz '2024-01-02 12:00:00+00' + i * interval '1 hour',
  timestamptz '2024-01-02 12:00:00+00' + i * interval '1 hour'
from generate_series(1, 5) as i
order by i;

insert into public.notes (user_id, body, created_at)
select
  md5('nr-user-' || ((i - 1) % 5 + 1))::uuid,
  'Note ' || i || E': remember to check item ' || (i * 7) % 11,
  timestamptz '2024-01-06 08:00:00+00' + i * interval '90 minutes'
from generate_series(1, 20) as i
order by i;
