//! Printing what the library returns: JSON for machines, Markdown for people.

use phantom_sync::engine::journal::Journal;
use phantom_sync::files::write_atomic;
use phantom_sync::report;

/// Pretty JSON of any serialisable value.
pub fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

/// The journal on stdout, as JSON or as the execution log.
pub fn print_journal(journal: &Journal, as_json: bool) {
    if as_json {
        println!("{}", json(journal));
    } else {
        print!("{}", report::journal_markdown(journal));
    }
}

/// `journal.md` beside the journal's `journal.json`, for people to read.
pub fn save_journal_markdown(journal: &Journal) {
    if let Some(path) = &journal.path
        && let Err(e) = write_atomic(
            &path.with_extension("md"),
            &report::journal_markdown(journal),
        )
    {
        eprintln!("warning: {e}");
    }
}

/// Where to wrap text for stdout: the terminal's width (at most 120), else 100.
pub fn width() -> usize {
    let term = console::Term::stdout();
    match term.is_term().then(|| term.size_checked()).flatten() {
        Some((_, columns)) => usize::from(columns).clamp(40, 120),
        None => 100,
    }
}
