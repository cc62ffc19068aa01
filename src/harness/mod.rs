//! Ephemeral PostgreSQL for tests and rehearsals (work in progress).
