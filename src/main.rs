//! `phantom-sync`: parses the command line, runs the command on a Tokio
//! runtime and exits with the documented code (see `cli::exit`).
#![forbid(unsafe_code)]

mod cli;

use std::process::ExitCode;

use clap::Parser;
use phantom_sync::pg::target::redact_url;

fn main() -> ExitCode {
    let args = cli::args::Cli::parse();
    let show = if args.quiet || args.command.json() {
        cli::progress::Show::Nothing
    } else if args.verbose {
        cli::progress::Show::Verbose
    } else {
        cli::progress::Show::Progress
    };
    cli::progress::install(show);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(cli::exit::ENVIRONMENT);
        }
    };
    let outcome = runtime.block_on(async {
        let cancel = phantom_sync::engine::execute::Cancel::new();
        let signals = tokio::spawn(forward_signals(cancel.clone()));
        let handles = cli::handles_cancel(&args.command);
        let running = cli::run(args.command, args.quiet, cancel.clone());
        tokio::pin!(running);
        // A repair or rollback stops cleanly on the first signal and is
        // dropped on the second; other commands are dropped on the first.
        // Dropping the future drops its temporary folders and containers.
        let first = tokio::select! {
            result = &mut running => return result,
            by = cancel.cancelled() => by,
        };
        let stop_now = async {
            if handles {
                second_signal().await;
            }
        };
        tokio::select! {
            result = &mut running, if handles => {
                signals.abort();
                result
            }
            () = stop_now => Err(phantom_sync::Error::Interrupted {
                step: "none".into(),
                by: first,
            }),
        }
    });
    match outcome {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {}", redact_url(&e.to_string()));
            ExitCode::from(cli::exit::of_error(e.kind()))
        }
    }
}

/// Turns the first SIGINT or SIGTERM into a cancellation.
async fn forward_signals(cancel: phantom_sync::engine::execute::Cancel) {
    let by = next_signal().await;
    cancel.cancel(by);
}

/// The next SIGINT or SIGTERM, by name.
async fn next_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => "SIGINT",
        _ = term.recv() => "SIGTERM",
    }
}

/// A second signal after the first: stop without waiting.
async fn second_signal() {
    next_signal().await;
}
