//! The library's `tracing` events on stderr: progress lines (target
//! `phantom_sync::progress` — rehearsal phases, image build steps) as
//! `==> …`, warnings and errors from anywhere as `warning: …` / `error: …`.
//! A small subscriber of its own, so that the binary needs no formatting
//! crate for a handful of lines; spans are not used by the library.

use std::fmt::Write as _;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// The target of the library's progress events.
const PROGRESS: &str = "phantom_sync::progress";

/// Prints progress (unless `quiet`) and every warning or error to stderr.
pub fn install(quiet: bool) {
    // Only fails if a subscriber is already set; then that one prints.
    let _ = tracing::subscriber::set_global_default(Stderr { quiet });
}

struct Stderr {
    quiet: bool,
}

impl Subscriber for Stderr {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        let level = *metadata.level();
        level <= Level::WARN || (!self.quiet && level <= Level::INFO && is_progress(metadata))
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(tracing::level_filters::LevelFilter::INFO)
    }

    fn new_span(&self, _span: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _span: &Id, _values: &Record<'_>) {}

    fn record_follows_from(&self, _span: &Id, _follows: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut text = Message(String::new());
        event.record(&mut text);
        let metadata = event.metadata();
        let line = if *metadata.level() <= Level::ERROR {
            format!("error: {}", text.0)
        } else if *metadata.level() <= Level::WARN {
            format!("warning: {}", text.0)
        } else {
            format!("==> {}", text.0)
        };
        eprintln!("{line}");
    }

    fn enter(&self, _span: &Id) {}

    fn exit(&self, _span: &Id) {}
}

fn is_progress(metadata: &Metadata<'_>) -> bool {
    metadata.target() == PROGRESS
}

/// The event's message, then its other fields as `name=value`.
struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }
}
