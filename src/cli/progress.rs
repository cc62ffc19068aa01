//! What a person sees while a command works. The library reports progress as
//! `tracing` spans and events under the target `phantom_sync::progress`: a
//! span is a task (its `task` field says what), with a `total` it is a bar,
//! and events inside it move it (`done`) or say something (a message). On a
//! terminal they become indicatif spinners and bars on stderr; elsewhere (CI
//! logs, pipes) the task and message lines are printed plainly; `--quiet`
//! and `--json` show nothing. `-v` also prints the SQL being run (events
//! under `phantom_sync::sql`) and the engine's debug notes.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// The library's progress target.
const PROGRESS: &str = "phantom_sync::progress";
/// The library's SQL target (`-v`).
const SQL: &str = "phantom_sync::sql";

/// How much to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Show {
    /// Nothing (`--quiet`, `--json`).
    Nothing,
    /// Bars on a terminal, lines elsewhere.
    Progress,
    /// Progress, every SQL statement and the engine's debug notes (`-v`).
    Verbose,
}

/// Installs the subscriber for this process.
pub fn install(show: Show) {
    let terminal = std::io::stderr().is_terminal();
    let progress = (show != Show::Nothing).then(|| ProgressLayer::new(terminal));
    let sql = (show == Show::Verbose).then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_target(false)
            .without_time()
            .with_filter(tracing_subscriber::filter::filter_fn(|m| {
                m.target() == SQL
                    || (m.target().starts_with("phantom_sync") && *m.level() <= Level::DEBUG)
            }))
    });
    let warnings = (show != Show::Verbose).then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_target(false)
            .without_time()
            .with_filter(tracing_subscriber::filter::filter_fn(|m| {
                m.target().starts_with("phantom_sync") && *m.level() <= Level::WARN
            }))
    });
    let subscriber = tracing_subscriber::registry()
        .with(progress)
        .with(sql)
        .with(warnings);
    let _ = tracing::subscriber::set_global_default(subscriber);
}

/// Draws the library's progress spans.
struct ProgressLayer {
    /// `None` when stderr is not a terminal: lines instead of bars.
    multi: Option<MultiProgress>,
    /// Bars by span, and whether the span sits inside another task (then it
    /// leaves no line behind when it ends).
    bars: Mutex<HashMap<Id, (ProgressBar, bool)>>,
    /// Without bars: the top-level tasks running, their words and start time.
    plain: Mutex<HashMap<Id, (String, std::time::Instant)>>,
}

impl ProgressLayer {
    fn new(terminal: bool) -> ProgressLayer {
        ProgressLayer {
            multi: terminal.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr())),
            bars: Mutex::new(HashMap::new()),
            plain: Mutex::new(HashMap::new()),
        }
    }

    fn line(&self, text: &str) {
        match &self.multi {
            Some(multi) => {
                let _ = multi.println(format!("  {text}"));
            }
            None => eprintln!("phantom-sync: {text}"),
        }
    }
}

/// The fields the library uses.
#[derive(Default)]
struct Fields {
    task: Option<String>,
    message: Option<String>,
    total: Option<u64>,
    done: Option<u64>,
}

impl Visit for Fields {
    fn record_u64(&mut self, field: &Field, value: u64) {
        match field.name() {
            "total" => self.total = Some(value),
            "done" => self.done = Some(value),
            _ => {}
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.record_u64(field, value.max(0) as u64);
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "task" => self.task = Some(value.to_string()),
            "message" => self.message = Some(value.to_string()),
            _ => {}
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "task" => self.task = Some(format!("{value:?}").trim_matches('"').to_string()),
            "message" => self.message = Some(format!("{value:?}")),
            _ => {}
        }
    }
}

impl<S> Layer<S> for ProgressLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if attrs.metadata().target() != PROGRESS {
            return;
        }
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        let task = fields
            .task
            .unwrap_or_else(|| attrs.metadata().name().to_string());
        let nested = ctx
            .span(id)
            .and_then(|span| {
                span.scope()
                    .skip(1)
                    .find(|s| s.metadata().target() == PROGRESS)
            })
            .is_some();
        let Some(multi) = &self.multi else {
            if !nested {
                self.line(&format!("{task}…"));
                self.plain
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(id.clone(), (task, std::time::Instant::now()));
            }
            return;
        };
        let bar = match fields.total {
            Some(total) => ProgressBar::new(total).with_style(
                ProgressStyle::with_template("{spinner} {msg} [{bar:30}] {pos}/{len} ({elapsed})")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            ),
            None => ProgressBar::new_spinner().with_style(
                ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            ),
        };
        let bar = multi.add(bar);
        bar.set_message(task);
        bar.enable_steady_tick(Duration::from_millis(120));
        self.bars
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.clone(), (bar, nested));
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        if event.metadata().target() != PROGRESS {
            return;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        let bars = self.bars.lock().unwrap_or_else(|p| p.into_inner());
        let bar = ctx
            .event_span(event)
            .and_then(|span| bars.get(&span.id()).map(|(bar, _)| bar.clone()));
        match (bar, fields.done, fields.message) {
            (Some(bar), Some(done), _) => bar.set_position(done),
            (None, Some(_), _) => {}
            (_, None, Some(message)) => {
                drop(bars);
                self.line(&message);
            }
            _ => {}
        }
    }

    fn on_close(&self, id: Id, _ctx: Context<'_, S>) {
        let plain = self
            .plain
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
        if let Some((task, started)) = plain {
            self.line(&format!(
                "✓ {task} ({:.1} s)",
                started.elapsed().as_secs_f64()
            ));
        }
        let bar = self
            .bars
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
        if let Some((bar, nested)) = bar {
            let message = bar.message();
            bar.finish_and_clear();
            if !nested {
                self.line(&format!(
                    "✓ {message} ({:.1} s)",
                    bar.elapsed().as_secs_f64()
                ));
            }
        }
    }
}
