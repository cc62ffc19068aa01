//! Benchmarks that print figures (`make bench`): provisioning of ephemeral
//! databases ([`provision`]) and the rehearsal by phase ([`rehearsal`]).

pub mod provision;
pub mod rehearsal;
