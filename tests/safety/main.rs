//! Production safety, attacked as a reviewer would: two repairs at once,
//! tampered or foreign backups, tampered plans, destructive migrations,
//! passwords of every shape, and real faults — SIGKILL, SIGINT/SIGTERM, a
//! server restart and a cut connection in the middle of a migration. Each
//! test runs the real binary (or the library) against harness databases.

#[path = "../common/mod.rs"]
mod common;

mod backups;
mod faults;
mod passwords;
mod plans;
mod race;
mod support;
