//! PostgreSQL plumbing that knows nothing of migrations: connection targets
//! ([`target`]), quoting ([`sql`]), the client programs of a server's own
//! major ([`tools`]) and ephemeral servers and databases ([`sandbox`]).

pub mod sandbox;
pub mod sql;
pub mod target;
pub mod tools;
