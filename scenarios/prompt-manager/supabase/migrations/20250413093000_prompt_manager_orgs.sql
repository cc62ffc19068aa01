-- Prompt manager: organizations and their members.
-- Written defensively so it can be re-applied on a database where it was
-- partially applied: IF NOT EXISTS, OR REPLACE, DROP ... IF EXISTS before
-- CREATE, ON CONFLICT DO NOTHING for the seed.

create table if not exists public.organizations (
  id uuid primary key default gen_random_uuid(),
  slug text not null unique,
  name text not null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

comment on table public.organizations is 'Prompt manager tenants; members see the prompt catalog of their organization.';

create table if not exists public.organization_members (
  organization_id uuid not null references public.organizations (id) on delete cascade,
  user_id uuid not null references auth.users (id) on delete cascade,
  role text not null default 'member' check (role in ('member', 'admin')),
  created_at timestamptz not null default now(),
  primary key (organization_id, user_id)
);

create index if not exists organization_members_user_id_idx
  on public.organization_members (user_id);

create or replace function public.set_updated_at()
returns trigger
language plpgsql
as $$
begin
  new.updated_at = now();
  return new;
end;
$$;

drop trigger if exists organizations_set_updated_at on public.organizations;
create trigger organizations_set_updated_at
  before update on public.organizations
  for each row execute function public.set_updated_at();

-- Membership checks run as the definer so that policies on
-- organization_members can use them without recursing into themselves.
create or replace function public.is_organization_member(org_id uuid)
returns boolean
language sql
stable
security definer
set search_path = ''
as $$
  select exists (
    select 1
    from public.organization_members m
    where m.organization_id = org_id
      and m.user_id = auth.uid()
  );
$$;

create or replace function public.is_organization_admin(org_id uuid)
returns boolean
language sql
stable
security definer
set search_path = ''
as $$
  select exists (
    select 1
    from public.organization_members m
    where m.organization_id = org_id
      and m.user_id = auth.uid()
      and m.role = 'admin'
  );
$$;

alter table public.organizations enable row level security;
alter table public.organization_members enable row level security;

drop policy if exists organizations_select_members on public.organizations;
create policy organizations_select_members
  on public.organizations for select
  to authenticated
  using (public.is_organization_member(id));

drop policy if exists organizations_update_admins on public.organizations;
create policy organizations_update_admins
  on public.organizations for update
  to authenticated
  using (public.is_organization_admin(id))
  with check (public.is_organization_admin(id));

drop policy if exists organization_members_select_self_or_admin on public.organization_members;
create policy organization_members_select_self_or_admin
  on public.organization_members for select
  to authenticated
  using (user_id = auth.uid() or public.is_organization_admin(organization_id));

drop policy if exists organization_members_manage_admins on public.organization_members;
create policy organization_members_manage_admins
  on public.organization_members for all
  to authenticated
  using (public.is_organization_admin(organization_id))
  with check (public.is_organization_admin(organization_id));

insert into public.organizations (slug, name)
values ('10xdevs', '10xDevs')
on conflict (slug) do nothing;
