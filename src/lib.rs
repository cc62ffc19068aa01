//! phantom-sync: find, plan, rehearse and repair "phantom migrations" — rows of
//! a Supabase project's migration ledger (`supabase_migrations.schema_migrations`)
//! whose schema changes never reached the database.
//!
//! Data flows one way: a migrations folder ([`project`], [`split`]) and a live
//! database ([`ledger`], [`catalog`]) → the effects each migration should have
//! ([`effects`], read together by [`inspect`]) → a [`diagnose`]d status per
//! migration → a [`plan`], tried first on a copy ([`predict`]) → its execution
//! with a [`journal`] ([`execute`]) after a [`backup`], then [`verify`] and,
//! if needed, [`rollback`] → a [`report`]. [`repair`] runs that chain as the
//! CLI does, and [`rehearse`] runs it on an ephemeral copy of a captured
//! database. The [`harness`] starts ephemeral PostgreSQL; [`scenario`] builds
//! broken states on it and [`matrix`] runs the engine against them, exactly as
//! the CLI does. [`tools`] runs pg_dump and friends of the server's own major.
//! A [`target`] names a database; [`tls`] gives its connections (and the
//! tools') TLS as libpq would.
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
pub mod tls;
pub mod tools;
pub mod verify;

pub use error::{Error, Result};
