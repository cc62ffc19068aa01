-- Move the legacy notes over, drop their table and the empty notes.
insert into public.notes (body) select body from public.legacy_notes;

drop table public.legacy_notes;

delete from public.notes where body = '';
