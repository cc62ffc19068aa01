-- Pre-existing data for the data-loss fixture: 300 legacy notes and 20
-- notes, 5 of them empty. Run it after migration 20240101000000.
-- Deterministic: ids and bodies derived from the row number.

insert into public.legacy_notes (id, body)
select i, 'Legacy note ' || i
from generate_series(1, 300) as i
order by i;

insert into public.notes (body)
select case when i % 4 = 0 then '' else 'Note ' || i end
from generate_series(1, 20) as i
order by i;
