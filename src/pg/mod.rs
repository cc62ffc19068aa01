//! PostgreSQL plumbing that knows nothing of migrations, bottom-up: quoting
//! ([`sql`]), passwords in connection URLs ([`url`]), TLS as libpq reads it
//! ([`tls`]), connection targets ([`target`]), the one-repair-at-a-time
//! advisory lock ([`lock`]), ephemeral servers and databases ([`sandbox`])
//! and the client programs of a server's own major ([`tools`]).

pub mod lock;
pub mod sandbox;
pub mod sql;
pub mod target;
pub mod tls;
pub mod tools;
pub mod url;
