//! The limits the model enforces when a process is created or started: each checked in
//! one place, each message written once.

use crate::config::Limits;
use crate::error::{ErrorKind, ProcessError};

type Result<T, E = ProcessError> = std::result::Result<T, E>;

fn exceeded(message: String) -> ProcessError {
    ProcessError::new(ErrorKind::LimitExceeded, message)
}

/// `args`: start arguments of `len` bytes.
pub(super) fn check_args(limits: &Limits, len: usize) -> Result<()> {
    let limit = limits.args;
    if len as u64 > limit {
        return Err(exceeded(format!(
            "start arguments of {len} bytes exceed limit args = {limit} bytes"
        )));
    }
    Ok(())
}

/// `depth`: a child whose identity has `depth` numbers (a child of main has one).
pub(super) fn check_depth(limits: &Limits, depth: u64) -> Result<()> {
    if depth > limits.depth {
        return Err(exceeded(format!(
            "limit depth = {} reached: a process at depth {} cannot start children",
            limits.depth,
            depth - 1
        )));
    }
    Ok(())
}

/// `children`: a process with `live` live children starting one more.
pub(super) fn check_children(limits: &Limits, live: u64) -> Result<()> {
    if live >= limits.children {
        return Err(exceeded(format!(
            "limit children = {} reached: this process has {live} live children",
            limits.children
        )));
    }
    Ok(())
}

/// The kernel's `vm.max_map_count` (as the host goes by it): this OS process had `live`
/// live processes of the `wasm` backend when its mappings would have run out.
pub(super) fn maps_reached(max: u64, live: u64) -> ProcessError {
    exceeded(format!(
        "limit vm.max_map_count = {max} reached: the host has {live} live processes"
    ))
}

/// `processes`: the run had `live` live processes when its backend refused one more.
pub(super) fn processes_reached(limits: &Limits, live: u64) -> ProcessError {
    exceeded(format!(
        "limit processes = {} reached: the run has {live} live processes",
        limits.processes
    ))
}
