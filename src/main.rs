//! `phantom-sync`: parses the command line, runs the command on a Tokio
//! runtime and exits with the documented code (see `cli::exit`).
#![forbid(unsafe_code)]

mod cli;

use std::process::ExitCode;

use clap::Parser;
use phantom_sync::pg::target::redact_url;

fn main() -> ExitCode {
    let args = cli::args::Cli::parse();
    cli::progress::install(args.command.quiet());
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
    match runtime.block_on(cli::run(args.command)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {}", redact_url(&e.to_string()));
            ExitCode::from(cli::exit::of_error(e.kind()))
        }
    }
}
