-- Invite links: an organization admin creates an invite, users redeem it and
-- become members. Re-runnable like 20250413093000.

create table if not exists public.organization_invites (
  id uuid primary key default gen_random_uuid(),
  organization_id uuid not null references public.organizations (id) on delete cascade,
  token text not null unique default replace(gen_random_uuid()::text, '-', ''),
  role text not null default 'member' check (role in ('member', 'admin')),
  max_uses integer check (max_uses is null or max_uses > 0),
  current_uses integer not null default 0 check (current_uses >= 0),
  expires_at timestamptz not null,
  is_active boolean not null default true,
  created_by uuid references auth.users (id) on delete set null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

comment on table public.organization_invites is 'Shareable invite links into an organization; token is the secret in the URL.';

create table if not exists public.organization_invite_redemptions (
  id uuid primary key default gen_random_uuid(),
  invite_id uuid not null references public.organization_invites (id) on delete cascade,
  user_id uuid not null references auth.users (id) on delete cascade,
  redeemed_at timestamptz not null default now(),
  constraint organization_invite_redemptions_invite_user_key unique (invite_id, user_id)
);

create index if not exists organization_invites_organization_id_idx
  on public.organization_invites (organization_id);
create index if not exists organization_invites_created_by_idx
  on public.organization_invites (created_by);
create index if not exists organization_invite_redemptions_user_id_idx
  on public.organization_invite_redemptions (user_id);

drop trigger if exists organization_invites_set_updated_at on public.organization_invites;
create trigger organization_invites_set_updated_at
  before update on public.organization_invites
  for each row execute function public.set_updated_at();

alter table public.organization_invites enable row level security;
alter table public.organization_invite_redemptions enable row level security;

drop policy if exists organization_invites_manage_admins on public.organization_invites;
create policy organization_invites_manage_admins
  on public.organization_invites for all
  to authenticated
  using (public.is_organization_admin(organization_id))
  with check (public.is_organization_admin(organization_id));

drop policy if exists organization_invite_redemptions_select_own on public.organization_invite_redemptions;
create policy organization_invite_redemptions_select_own
  on public.organization_invite_redemptions for select
  to authenticated
  using (user_id = auth.uid());

drop policy if exists organization_invite_redemptions_select_admins on public.organization_invite_redemptions;
create policy organization_invite_redemptions_select_admins
  on public.organization_invite_redemptions for select
  to authenticated
  using (
    exists (
      select 1
      from public.organization_invites i
      where i.id = invite_id
        and public.is_organization_admin(i.organization_id)
    )
  );

-- Redeeming goes through this function (the invitee is not a member yet, so
-- the policies above would hide the invite from them).
create or replace function public.redeem_organization_invite(invite_token text)
returns uuid
language plpgsql
security definer
set search_path = ''
as $$
declare
  invite public.organization_invites%rowtype;
  caller uuid := auth.uid();
begin
  if caller is null then
    raise exception 'not authenticated' using errcode = '28000';
  end if;

  select * into invite
  from public.organization_invites
  where token = invite_token
  for update;

  if not found or not invite.is_active or invite.expires_at <= now()
     or (invite.max_uses is not null and invite.current_uses >= invite.max_uses) then
    raise exception 'invite is invalid or expired' using errcode = 'P0001';
  end if;

  insert into public.organization_members (organization_id, user_id, role)
  values (invite.organization_id, caller, invite.role)
  on conflict (organization_id, user_id) do nothing;

  insert into public.organization_invite_redemptions (invite_id, user_id)
  values (invite.id, caller)
  on conflict (invite_id, user_id) do nothing;

  if found then
    update public.organization_invites
    set current_uses = current_uses + 1
    where id = invite.id;
  end if;

  return invite.organization_id;
end;
$$;

revoke all on function public.redeem_organization_invite(text) from public, anon;
grant execute on function public.redeem_organization_invite(text) to authenticated;
