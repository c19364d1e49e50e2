//! The process model, written once for every backend: identities and names, the lifecycle
//! of a process object, ownership checks, daemon rules, the exit handler and the one path
//! by which every process ends (SPEC §3–4).
//!
//! - [`ProcessCtx`] (`ctx.rs`): a running process's own view of the world, holding the
//!   objects it may name by handle (its children, itself, its parent). Every guest call and
//!   every call of the library's [`crate::Process`] goes through one, so the rules apply
//!   the same way to both. Handles are resolved in `handles.rs`, limits checked in
//!   `limits.rs`, `connection.wait` is `wait.rs`.
//! - [`ProcessCore`] (`core.rs`): one process as others see it, and [`supervise`], where
//!   a process that runs in this OS process ends; a process in another OS process ends
//!   through the same `finish`.
//! - [`HostState`] and [`Run`] (`run.rs`): what a host's processes share, and what one
//!   run's processes share (its backend part, its sync objects).
//! - `sched.rs`: where the task of a process that runs here starts.
//!
//! The model reaches a backend only through the traits of [`crate::backend`] and the sync
//! objects only through [`crate::sync::Client`] and [`crate::sync::Link`].

mod core;
mod ctx;
mod handles;
mod limits;
mod run;
mod sched;
mod wait;

pub(crate) use self::core::{ParentLink, ProcessCore, supervise};
pub(crate) use self::ctx::{NewCtx, ProcessCtx};
pub(crate) use self::limits::Args;
pub(crate) use self::run::{Entry, HostState, NewHost, Run, Runner};
pub(crate) use self::sched::flushing;

use crate::config::{Grants, Limits};
use std::sync::Arc;

/// The limits and grants a process runs under: its host's, or lower ones given when it was
/// created from Rust; its children inherit them.
#[derive(Clone)]
pub(crate) struct Bounds {
    pub limits: Arc<Limits>,
    pub grants: Arc<Grants>,
}

impl Bounds {
    /// The bounds of `config`.
    pub fn of(config: &crate::Config) -> Self {
        Bounds {
            limits: Arc::new(config.limits.clone()),
            grants: Arc::new(config.grants.clone()),
        }
    }
}
