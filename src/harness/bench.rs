//! (bench: work in progress)
