//! What the repair starts from: a migrations folder ([`project`], cut into
//! statements by [`split`]) and a live database's migration history
//! ([`ledger`]) and schema ([`catalog`]).

pub mod catalog;
pub mod environment;
pub mod ledger;
pub mod project;
pub mod split;
