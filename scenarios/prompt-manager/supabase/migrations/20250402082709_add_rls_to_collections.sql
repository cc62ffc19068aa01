-- Re-enable row level security on collections with one policy per operation
-- and role: authenticated users own their rows, anon sees nothing.

alter table public.collections enable row level security;

create policy collections_select_authenticated
  on public.collections for select
  to authenticated
  using (auth.uid() = user_id);

create policy collections_insert_authenticated
  on public.collections for insert
  to authenticated
  with check (auth.uid() = user_id);

create policy collections_update_authenticated
  on public.collections for update
  to authenticated
  using (auth.uid() = user_id)
  with check (auth.uid() = user_id);

create policy collections_delete_authenticated
  on public.collections for delete
  to authenticated
  using (auth.uid() = user_id);

create policy collections_select_anon
  on public.collections for select
  to anon
  using (false);
