//! Benchmarks that print figures (`make bench`): provisioning of ephemeral
//! databases ([`provision`]), the rehearsal by phase ([`rehearsal`]) and
//! `diagnose` on synthetic projects of growing size ([`diagnose`]).

pub mod diagnose;
pub mod provision;
pub mod rehearsal;
