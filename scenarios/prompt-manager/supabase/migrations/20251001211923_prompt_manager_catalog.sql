-- Prompt manager catalog: collections of prompts, split into segments, owned
-- by an organization. Re-runnable like 20250413093000. Seed rows reference
-- the 10xdevs organization by slug: without it they insert nothing.

create table if not exists public.prompt_collections (
  id uuid primary key default gen_random_uuid(),
  organization_id uuid not null references public.organizations (id) on delete cascade,
  slug text not null,
  title text not null,
  description text,
  sort_order integer not null default 0,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint prompt_collections_organization_slug_key unique (organization_id, slug)
);

create table if not exists public.prompt_collection_segments (
  id uuid primary key default gen_random_uuid(),
  collection_id uuid not null references public.prompt_collections (id) on delete cascade,
  slug text not null,
  title text not null,
  sort_order integer not null default 0,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint prompt_collection_segments_collection_slug_key unique (collection_id, slug)
);

create table if not exists public.prompts (
  id uuid primary key default gen_random_uuid(),
  organization_id uuid not null references public.organizations (id) on delete cascade,
  collection_id uuid not null references public.prompt_collections (id) on delete cascade,
  segment_id uuid references public.prompt_collection_segments (id) on delete set null,
  slug text not null,
  title text not null,
  markdown_body text not null,
  status text not null default 'draft' check (status in ('draft', 'published')),
  sort_order integer not null default 0,
  created_by uuid references auth.users (id) on delete set null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint prompts_collection_slug_key unique (collection_id, slug)
);

comment on table public.prompts is 'Prompt templates (Markdown) published to the members of an organization.';

create index if not exists prompt_collections_organization_id_idx
  on public.prompt_collections (organization_id);
create index if not exists prompt_collection_segments_collection_id_idx
  on public.prompt_collection_segments (collection_id);
create index if not exists prompts_organization_id_idx on public.prompts (organization_id);
create index if not exists prompts_collection_id_idx on public.prompts (collection_id);
create index if not exists prompts_segment_id_idx on public.prompts (segment_id);
create index if not exists prompts_created_by_idx on public.prompts (created_by);

drop trigger if exists prompt_collections_set_updated_at on public.prompt_collections;
create trigger prompt_collections_set_updated_at
  before update on public.prompt_collections
  for each row execute function public.set_updated_at();

drop trigger if exists prompt_collection_segments_set_updated_at on public.prompt_collection_segments;
create trigger prompt_collection_segments_set_updated_at
  before update on public.prompt_collection_segments
  for each row execute function public.set_updated_at();

drop trigger if exists prompts_set_updated_at on public.prompts;
create trigger prompts_set_updated_at
  before update on public.prompts
  for each row execute function public.set_updated_at();

alter table public.prompt_collections enable row level security;
alter table public.prompt_collection_segments enable row level security;
alter table public.prompts enable row level security;

drop policy if exists prompt_collections_select_members on public.prompt_collections;
create policy prompt_collections_select_members
  on public.prompt_collections for select
  to authenticated
  using (public.is_organization_member(organization_id));

drop policy if exists prompt_collections_manage_admins on public.prompt_collections;
create policy prompt_collections_manage_admins
  on public.prompt_collections for all
  to authenticated
  using (public.is_organization_admin(organization_id))
  with check (public.is_organization_admin(organization_id));

drop policy if exists prompt_collection_segments_select_members on public.prompt_collection_segments;
create policy prompt_collection_segments_select_members
  on public.prompt_collection_segments for select
  to authenticated
  using (
    exists (
      select 1
      from public.prompt_collections c
      where c.id = collection_id
        and public.is_organization_member(c.organization_id)
    )
  );

drop policy if exists prompt_collection_segments_manage_admins on public.prompt_collection_segments;
create policy prompt_collection_segments_manage_admins
  on public.prompt_collection_segments for all
  to authenticated
  using (
    exists (
      select 1
      from public.prompt_collections c
      where c.id = collection_id
        and public.is_organization_admin(c.organization_id)
    )
  )
  with check (
    exists (
      select 1
      from public.prompt_collections c
      where c.id = collection_id
        and public.is_organization_admin(c.organization_id)
    )
  );

drop policy if exists prompts_select_published_members on public.prompts;
create policy prompts_select_published_members
  on public.prompts for select
  to authenticated
  using (status = 'published' and public.is_organization_member(organization_id));

drop policy if exists prompts_manage_admins on public.prompts;
create policy prompts_manage_admins
  on public.prompts for all
  to authenticated
  using (public.is_organization_admin(organization_id))
  with check (public.is_organization_admin(organization_id));

insert into public.prompt_collections (organization_id, slug, title, description, sort_order)
select o.id, v.slug, v.title, v.description, v.sort_order
from public.organizations o
cross join (
  values
    ('fundamentals', 'Fundamentals', 'Prompts every project needs from day one.', 1),
    ('advanced', 'Advanced', 'Prompts for larger codebases and teams.', 2)
) as v (slug, title, description, sort_order)
where o.slug = '10xdevs'
on conflict (organization_id, slug) do nothing;

insert into public.prompt_collection_segments (collection_id, slug, title, sort_order)
select c.id, v.slug, v.title, v.sort_order
from public.prompt_collections c
join public.organizations o on o.id = c.organization_id
cross join (
  values
    ('getting-started', 'Getting Started', 1),
    ('best-practices', 'Best Practices', 2)
) as v (slug, title, sort_order)
where o.slug = '10xdevs'
  and c.slug = 'fundamentals'
on conflict (collection_id, slug) do nothing;

-- 20251002100000 replaces title/markdown_body with per-language columns, so
-- this seed only runs while the table still has the original shape.
do $$
begin
  if exists (
    select 1
    from information_schema.columns
    where table_schema = 'public'
      and table_name = 'prompts'
      and column_name = 'markdown_body'
  ) then
    insert into public.prompts
      (organization_id, collection_id, segment_id, slug, title, markdown_body, status, sort_order)
    select o.id, c.id, s.id, v.slug, v.title, v.markdown_body, 'published', v.sort_order
    from public.organizations o
    join public.prompt_collections c
      on c.organization_id = o.id and c.slug = 'fundamentals'
    cross join (
      values
        ('project-setup-guide', 'getting-started', 'Project Setup Guide',
         E'# Project Setup Guide\n\nDescribe the stack, the folder layout and the first commands to run.', 1),
        ('code-review-checklist', 'best-practices', 'Code Review Checklist',
         E'# Code Review Checklist\n\n- Tests cover the change\n- Names say what things are\n- No secrets in the diff', 2)
    ) as v (slug, segment_slug, title, markdown_body, sort_order)
    join public.prompt_collection_segments s
      on s.collection_id = c.id and s.slug = v.segment_slug
    where o.slug = '10xdevs'
    on conflict (collection_id, slug) do nothing;
  end if;
end
$$;
