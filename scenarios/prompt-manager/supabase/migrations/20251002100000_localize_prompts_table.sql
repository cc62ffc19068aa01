-- Localize prompts: title/markdown_body become title_en/markdown_body_en, with
-- Polish variants next to them. Only runs if the prompts table exists, and
-- every step checks the current shape, so a re-run changes nothing.

do $$
begin
  if to_regclass('public.prompts') is null then
    raise notice 'public.prompts does not exist, skipping localization';
    return;
  end if;

  alter table public.prompts add column if not exists title_en text;
  alter table public.prompts add column if not exists title_pl text;
  alter table public.prompts add column if not exists markdown_body_en text;
  alter table public.prompts add column if not exists markdown_body_pl text;

  if exists (
    select 1
    from information_schema.columns
    where table_schema = 'public'
      and table_name = 'prompts'
      and column_name = 'title'
  ) then
    update public.prompts
    set title_en = coalesce(title_en, title),
        markdown_body_en = coalesce(markdown_body_en, markdown_body);

    alter table public.prompts drop column title;
    alter table public.prompts drop column markdown_body;
  end if;

  alter table public.prompts alter column title_en set not null;
  alter table public.prompts alter column markdown_body_en set not null;

  update public.prompts
  set title_pl = 'Przewodnik konfiguracji projektu'
  where slug = 'project-setup-guide' and title_pl is null;

  update public.prompts
  set title_pl = 'Lista kontrolna przeglądu kodu'
  where slug = 'code-review-checklist' and title_pl is null;

  comment on column public.prompts.title_en is 'Prompt title in English (required).';
  comment on column public.prompts.title_pl is 'Prompt title in Polish; the client falls back to title_en when null.';
end
$$;
