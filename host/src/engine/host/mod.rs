//! The host side of the WIT imports a guest calls, one file per interface (`process.rs`,
//! `sync.rs`): each import translates its arguments and delegates to the process's
//! [`ProcessCtx`] or its sync [`crate::sync::Client`].

mod process;
mod sync;

use super::bindings::wasmproc::process::types::{self, Error as WitError};
use super::state::ProcState;
use crate::error::ProcessError;
use crate::model::ProcessCtx;
use std::sync::Arc;
use std::time::Duration;

/// What an import returns: a trap (the outer error), or the call's result.
type HostResult<T> = wasmtime::Result<Result<T, WitError>>;

fn to_wit(e: ProcessError) -> WitError {
    use crate::error::ErrorKind as K;
    use types::ErrorKind as W;
    let kind = match e.kind {
        K::InvalidState => W::InvalidState,
        K::NotAChild => W::NotAChild,
        K::Closed => W::Closed,
        K::UnknownTarget => W::UnknownTarget,
        K::InvalidArgument => W::InvalidArgument,
        K::LimitExceeded => W::LimitExceeded,
        K::HostFailure => W::HostFailure,
        K::Empty => W::Empty,
        K::Full => W::Full,
        K::Eof => W::Eof,
        K::BrokenPipe => W::BrokenPipe,
        K::OwnerDied => W::OwnerDied,
        K::BrokenBarrier => W::BrokenBarrier,
    };
    WitError {
        kind,
        message: e.message,
    }
}

fn duration(ns: Option<u64>) -> Option<Duration> {
    ns.map(Duration::from_nanos)
}

impl ProcState {
    /// The calling process's context; a trap while a program is only being inspected.
    fn model(&self) -> wasmtime::Result<&Arc<ProcessCtx>> {
        self.ctx.as_ref().ok_or_else(|| {
            wasmtime::format_err!("wasmproc imports are not available while a program is inspected")
        })
    }

    /// `f` on the calling process's context, its error handed to the guest.
    fn call<T>(
        &self,
        f: impl FnOnce(&Arc<ProcessCtx>) -> Result<T, ProcessError>,
    ) -> HostResult<T> {
        Ok(f(self.model()?).map_err(to_wit))
    }
}

impl types::Host for ProcState {}
