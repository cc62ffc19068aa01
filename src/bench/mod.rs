//! Benchmarks that print figures (`make bench`): provisioning of ephemeral
//! databases ([`provision`]).

pub mod provision;
