//! The limits the model enforces when a process is created or started: each checked in
//! one place, each message written once.

use crate::config::Limits;
use crate::error::{ErrorKind, ProcessError};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

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

/// `args`, for a result: a target's return value of `len` bytes.
pub(super) fn check_result(limits: &Limits, len: usize) -> Result<()> {
    let limit = limits.args;
    if len as u64 > limit {
        return Err(exceeded(format!(
            "a result of {len} bytes exceeds limit args = {limit} bytes"
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
pub(super) fn processes_reached(limit: u64, live: u64) -> ProcessError {
    exceeded(format!(
        "limit processes = {limit} reached: the run has {live} live processes"
    ))
}

/// What one run's child records cost the host, counted against `held`: a record's fixed
/// part, its name and its start arguments.
pub(crate) const RECORD_BYTES: u64 = 1024;

/// Bytes the host holds for a run's processes (the `held` limit's account), shared by the
/// [`Charge`]s taken from it.
#[derive(Clone, Default)]
pub(crate) struct Held(Arc<AtomicU64>);

impl Held {
    /// Charges `n` more bytes for `what` (words such as "start arguments of 12 bytes"), or
    /// refuses them when the account would exceed `held`.
    pub(super) fn charge(&self, limits: &Limits, n: u64, what: &str) -> Result<Charge> {
        let limit = limits.held;
        let before = self.0.fetch_add(n, Ordering::Relaxed);
        if before.saturating_add(n) > limit {
            self.0.fetch_sub(n, Ordering::Relaxed);
            return Err(exceeded(format!(
                "{what} would exceed limit held = {limit} bytes: the host holds {before} bytes \
                 for this run's processes"
            )));
        }
        Ok(Charge {
            account: Some(self.0.clone()),
            n,
        })
    }

    /// Bytes held now.
    #[cfg(test)]
    pub(super) fn now(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Bytes counted in a [`Held`] account until dropped.
#[derive(Debug, Default)]
pub(crate) struct Charge {
    account: Option<Arc<AtomicU64>>,
    n: u64,
}

impl Drop for Charge {
    fn drop(&mut self) {
        if let Some(account) = &self.account {
            account.fetch_sub(self.n, Ordering::Relaxed);
        }
    }
}

/// Start arguments, with what they are charged (nothing where no account counts them).
#[derive(Default)]
pub(crate) struct Args {
    pub bytes: Vec<u8>,
    pub _charge: Charge,
}

impl Args {
    /// Arguments no account counts.
    pub fn uncounted(bytes: Vec<u8>) -> Self {
        Args {
            bytes,
            _charge: Charge::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_are_refused_over_the_limit_and_returned_when_dropped() {
        let limits = Limits {
            held: 100,
            ..Limits::default()
        };
        let held = Held::default();
        let a = held.charge(&limits, 60, "a").unwrap();
        assert_eq!(
            held.charge(&limits, 41, "start arguments of 41 bytes")
                .unwrap_err()
                .message,
            "start arguments of 41 bytes would exceed limit held = 100 bytes: the host holds \
             60 bytes for this run's processes"
        );
        let b = held.charge(&limits, 40, "b").unwrap();
        assert_eq!(held.now(), 100);
        drop(a);
        drop(b);
        assert_eq!(held.now(), 0);
    }
}
