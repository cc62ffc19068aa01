//! Proof that the engine works: broken states built for real from scenario
//! files ([`scenario`]), the engine run against each one as the CLI runs it
//! ([`matrix`]), and stable placeholders for what varies ([`redact`]).

pub mod matrix;
pub mod redact;
pub mod scenario;
