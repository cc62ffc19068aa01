//! phantom-sync: find, plan, rehearse and repair "phantom migrations" — rows of
//! a Supabase project's migration ledger (`supabase_migrations.schema_migrations`)
//! whose schema changes never reached the database.
//!
//! Data flows one way: a migrations folder ([`project`], [`split`]) and a live
//! database ([`ledger`], [`catalog`]) → the effects each migration should have
//! ([`effects`]) → a [`diagnose`]d status per migration → a [`plan`] →
//! its execution with a journal ([`execute`]), [`verify`] and [`rollback`] →
//! a [`report`]. The [`harness`] starts ephemeral PostgreSQL for tests and
//! rehearsals, and [`scenario`] builds broken states on it; both call the
//! engine exactly as the CLI does.
#![forbid(unsafe_code)]

pub mod backup;
pub mod catalog;
pub mod diagnose;
pub mod effects;
pub mod error;
pub mod execute;
pub mod harness;
pub mod inspect;
pub mod journal;
pub mod ledger;
pub mod matrix;
pub mod plan;
pub mod predict;
pub mod project;
pub mod redact;
pub mod rehearse;
pub mod repair;
pub mod report;
pub mod rollback;
pub mod scenario;
pub mod split;
mod sql;
pub mod target;
pub mod tools;
pub mod verify;

pub use error::{Error, Result};
