-- Policies for notes: owners read and write their own notes.

create policy "Users can read their own notes"
  on public.notes for select
  to authenticated
  using (auth.uid() = user_id);

create policy "Users can write their own notes"
  on public.notes for insert
  to authenticated
  with check (auth.uid() = user_id);
