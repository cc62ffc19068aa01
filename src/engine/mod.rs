//! The repair engine, in pipeline order: what each migration does
//! ([`effects`]), one status per migration ([`diagnose`], read together by
//! [`inspect`]), the [`plan`], Phase 1's [`backup`], the success checklist
//! ([`verify`]), the execution log ([`journal`]), running a plan
//! ([`execute`]), trying it on a copy first ([`predict`]), the three
//! [`rollback`] procedures, and the whole procedure as the CLI runs it
//! ([`repair`]).

pub mod backup;
pub mod diagnose;
pub mod effects;
pub mod environment;
pub mod execute;
pub mod inspect;
pub mod journal;
pub mod outcome;
pub mod plan;
pub mod predict;
pub mod repair;
pub mod restore_file;
pub mod rollback;
pub mod variants;
pub mod verify;
