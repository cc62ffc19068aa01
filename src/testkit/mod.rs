//! Proof that the engine works: broken states built for real from scenario
//! files ([`scenario`]), the engine run against each one as the CLI runs it
//! ([`matrix`]), stable placeholders for what varies ([`redact`]), and a
//! headless [`browser`] that looks at the pages the tool writes.

pub mod browser;
pub mod matrix;
pub mod redact;
pub mod scenario;
