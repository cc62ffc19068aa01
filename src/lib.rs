//! phantom-sync: find, plan, rehearse and repair "phantom migrations" — rows of
//! a Supabase project's migration ledger (`supabase_migrations.schema_migrations`)
//! whose schema changes never reached the database.
//!
//! The folders are the pipeline, and imports only run down this list:
//!
//! * [`bench`](mod@bench) — benchmarks that print figures;
//! * [`rehearse`] — the main job: capture a database, repair a copy, drill
//!   every rollback, write the runbook;
//! * [`testkit`] — scenario files, broken states built for real, the matrix;
//! * [`report`] — Markdown and HTML renderings of what the engine returns;
//! * [`engine`] — effects → diagnosis → plan → prediction → execution with a
//!   journal → verification and rollback;
//! * [`source`] — the migrations folder, the ledger and the live catalog;
//! * [`pg`] — connection targets, quoting, client tools of the server's
//!   major, ephemeral PostgreSQL;
//! * [`error`] — the one error type;
//! * [`text`] — words for counts (`1 statement`, `2 statements`).
#![forbid(unsafe_code)]
// The library returns values; only the binary prints.
#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod bench;
pub mod engine;
pub mod error;
pub mod files;
pub mod pg;
mod recent;
pub mod rehearse;
pub mod report;
pub mod source;
pub mod testkit;
pub mod text;

pub use error::{Error, Result};
