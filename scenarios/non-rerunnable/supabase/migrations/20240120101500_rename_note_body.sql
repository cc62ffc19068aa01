-- Notes get a title, and body becomes content to match the API.

alter table public.notes rename column body to content;

alter table public.notes add column title text;

comment on column public.notes.content is 'Markdown text of the note.';
