//! Ephemeral PostgreSQL 14–18 for tests and rehearsals: image resolution and
//! local builds ([`image`]), containers started through Testcontainers
//! ([`server`]), the image's own client programs copied out to the host
//! (`clients`) and per-scenario databases cloned from a template that holds
//! the Supabase shim ([`database`]).

mod admin;
mod clients;
pub mod database;
pub mod image;
pub mod server;

pub use database::{Database, SUPABASE_SHIM, shim_enabled};
pub use image::{ImageOrigin, ImageRef, SUPPORTED_MAJORS, parse_versions, versions_from_env};
pub use server::{PgServer, ServerOptions, ServerTls};
