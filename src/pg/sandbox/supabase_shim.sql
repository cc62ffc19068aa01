-- Supabase shim for phantom-sync's test harness.
--
-- Applied once, as superuser `postgres`, to a template database in a plain
-- PostgreSQL 14-18 server, so that migrations written for a Supabase project
-- (which reference `auth.users`, `auth.uid()`, `to authenticated`, ...) apply
-- there unchanged. Every statement is guarded, so running it twice is harmless.
--
-- Emulated:
--   * roles anon, authenticated, service_role (NOLOGIN; service_role BYPASSRLS)
--     and authenticator (LOGIN NOINHERIT, member of the three). Roles are
--     cluster-wide, hence the IF NOT EXISTS guards.
--   * schema auth with a subset of auth.users' columns, and auth.uid(),
--     auth.role(), auth.email(), auth.jwt(), which read the GUCs PostgREST sets:
--     `request.jwt.claims` (JSON, current) and `request.jwt.claim.<name>` (older
--     per-claim settings, which win when present, as in Supabase).
--   * schema extensions holding pgcrypto, but only when the server can load it
--     (it can on the phantom-sync images); gen_random_uuid() is core since
--     PostgreSQL 13 and does not need it. uuid-ossp is not installed: its
--     library is missing from the phantom-sync images.
--   * privileges on schema public as a fresh Supabase project has them: usage for
--     anon/authenticated/service_role, and default privileges (for objects
--     created by postgres) granting all on tables, sequences and functions.
--
-- Not emulated: GoTrue (no sign-up, sessions, refresh tokens, auth.identities
-- and the other auth tables), JWT signature verification (claims are trusted as
-- set), PostgREST itself, storage, realtime, graphql, pgsodium/vault, pg_net,
-- supabase_admin/supabase_auth_admin and the other internal roles (auth objects
-- are owned by postgres here), the `extensions` entry in the database
-- search_path (a per-database setting that a template does not pass on), and
-- schema supabase_migrations, which the Supabase CLI creates on first push and
-- which the harness creates itself when a scenario needs it.

-- Roles ----------------------------------------------------------------------

DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'anon') THEN
    CREATE ROLE anon NOLOGIN NOINHERIT;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'authenticated') THEN
    CREATE ROLE authenticated NOLOGIN NOINHERIT;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'service_role') THEN
    CREATE ROLE service_role NOLOGIN NOINHERIT BYPASSRLS;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'authenticator') THEN
    CREATE ROLE authenticator LOGIN NOINHERIT;
  END IF;
END
$$;

-- Membership grants are cluster-wide too; only add the missing ones so that a
-- second template database does not produce "already a member" notices.
DO $$
DECLARE
  member_of text;
BEGIN
  FOREACH member_of IN ARRAY ARRAY['anon', 'authenticated', 'service_role'] LOOP
    IF NOT pg_has_role('authenticator', member_of, 'MEMBER') THEN
      EXECUTE format('GRANT %I TO authenticator', member_of);
    END IF;
  END LOOP;
END
$$;

-- Schema auth ----------------------------------------------------------------

CREATE SCHEMA IF NOT EXISTS auth AUTHORIZATION postgres;

-- A subset of GoTrue's auth.users: enough for foreign keys, triggers that read
-- raw_user_meta_data, and realistic fixture rows.
CREATE TABLE IF NOT EXISTS auth.users (
  instance_id uuid,
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  aud varchar(255),
  role varchar(255),
  email text,
  encrypted_password varchar(255),
  email_confirmed_at timestamptz,
  last_sign_in_at timestamptz,
  raw_app_meta_data jsonb DEFAULT '{}'::jsonb,
  raw_user_meta_data jsonb DEFAULT '{}'::jsonb,
  is_super_admin boolean,
  phone text,
  created_at timestamptz DEFAULT now(),
  updated_at timestamptz DEFAULT now(),
  deleted_at timestamptz,
  is_anonymous boolean NOT NULL DEFAULT false
);

CREATE INDEX IF NOT EXISTS users_email_idx ON auth.users (email);

COMMENT ON TABLE auth.users IS
  'phantom-sync shim: subset of Supabase auth.users (no GoTrue behind it)';

-- The per-claim setting wins over the JSON one, as in Supabase; empty strings
-- (what current_setting returns after a RESET) count as unset.
CREATE OR REPLACE FUNCTION auth.uid() RETURNS uuid
LANGUAGE sql STABLE
AS $$
  SELECT coalesce(
    nullif(current_setting('request.jwt.claim.sub', true), ''),
    nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub'
  )::uuid
$$;

CREATE OR REPLACE FUNCTION auth.role() RETURNS text
LANGUAGE sql STABLE
AS $$
  SELECT coalesce(
    nullif(current_setting('request.jwt.claim.role', true), ''),
    nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role'
  )
$$;

CREATE OR REPLACE FUNCTION auth.email() RETURNS text
LANGUAGE sql STABLE
AS $$
  SELECT coalesce(
    nullif(current_setting('request.jwt.claim.email', true), ''),
    nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'email'
  )
$$;

-- Whole claim set as jsonb; `request.jwt.claim` (singular) is the legacy name.
CREATE OR REPLACE FUNCTION auth.jwt() RETURNS jsonb
LANGUAGE sql STABLE
AS $$
  SELECT coalesce(
    nullif(current_setting('request.jwt.claim', true), ''),
    nullif(current_setting('request.jwt.claims', true), '')
  )::jsonb
$$;

GRANT USAGE ON SCHEMA auth TO anon, authenticated, service_role;
GRANT EXECUTE ON FUNCTION auth.uid(), auth.role(), auth.email(), auth.jwt()
  TO anon, authenticated, service_role;

-- Schema extensions ----------------------------------------------------------

-- pg_available_extensions only proves the control file is there; the shared
-- library may still fail to load (uuid-ossp does on the phantom-sync images), so
-- the attempt runs in a sub-transaction and a failure merely skips the schema.
DO $$
BEGIN
  IF EXISTS (SELECT FROM pg_available_extensions WHERE name = 'pgcrypto') THEN
    BEGIN
      CREATE SCHEMA IF NOT EXISTS extensions;
      GRANT USAGE ON SCHEMA extensions TO anon, authenticated, service_role;
      CREATE EXTENSION IF NOT EXISTS pgcrypto WITH SCHEMA extensions;
    EXCEPTION WHEN OTHERS THEN
      RAISE NOTICE 'supabase shim: pgcrypto not loadable (%), schema extensions skipped',
        SQLERRM;
    END;
  END IF;
END
$$;

-- Schema public --------------------------------------------------------------

GRANT USAGE ON SCHEMA public TO anon, authenticated, service_role;

ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA public
  GRANT ALL ON TABLES TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA public
  GRANT ALL ON SEQUENCES TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA public
  GRANT ALL ON FUNCTIONS TO anon, authenticated, service_role;
