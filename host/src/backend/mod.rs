//! The seam between the process model and the ways of running a process.
//!
//! The model ([`crate::model`]) decides everything a user can observe; a backend only
//! starts a process for a [`SpawnRequest`], delivers signals through the [`Control`] it
//! returns, and reports the end through [`crate::model::supervise`].

mod hugetext;
mod memories;
pub(crate) mod native;
mod stacks;
pub(crate) mod wasm;
mod zygote;

use crate::error::{Error, ProcessError};
use crate::exit::Signal;
use crate::model::{ParentLink, ProcessCore, RunShared, Tree};
use crate::output::ProcessOutput;
use crate::program::Program;
use std::sync::{Arc, Mutex};

/// Set in a native child process, which runs one guest process and then exits: the linear
/// memory of its guest is then left for the exit to unmap, rather than zeroed or discarded
/// for a next process that never comes.
static LAST_PROCESS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Marks this OS process as one whose guest process is its last ([`LAST_PROCESS`]).
pub(crate) fn run_last_process_only() {
    LAST_PROCESS.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// Whether this OS process runs no guest process after the current one.
fn last_process() -> bool {
    LAST_PROCESS.load(std::sync::atomic::Ordering::Relaxed)
}

/// Resources of ended processes (fiber stacks, linear memories) kept for the next ones, at
/// most `KEEP` of them: handing one over maps nothing, and dropping one unmaps nothing.
pub(crate) struct Kept<T, const KEEP: usize> {
    free: Mutex<Vec<T>>,
}

impl<T, const KEEP: usize> Default for Kept<T, KEEP> {
    fn default() -> Self {
        Kept {
            free: Mutex::new(Vec::new()),
        }
    }
}

impl<T, const KEEP: usize> Kept<T, KEEP> {
    /// A kept resource that `fits`, if there is one.
    pub fn take(&self, fits: impl Fn(&T) -> bool) -> Option<T> {
        let mut free = crate::model::lock(&self.free);
        let i = free.iter().position(fits)?;
        Some(free.swap_remove(i))
    }

    /// Keeps `item` for a later process, or drops it (outside the lock) when `KEEP` are
    /// kept already.
    pub fn give(&self, item: T) {
        let rejected = {
            let mut free = crate::model::lock(&self.free);
            if free.len() < KEEP {
                free.push(item);
                None
            } else {
                Some(item)
            }
        };
        drop(rejected);
    }

    /// How many are kept now.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        crate::model::lock(&self.free).len()
    }
}

/// Everything a backend needs to start one child process.
pub(crate) struct SpawnRequest {
    /// The child's shared record; the backend reports its end there.
    pub core: Arc<ProcessCore>,
    pub name: String,
    pub daemon: bool,
    pub target: String,
    pub args: Vec<u8>,
    pub parent: ParentLink,
    pub program: Program,
    pub tree: Arc<Tree>,
    pub output: ProcessOutput,
    /// The sync objects the parent shares with the child.
    pub shares: crate::model::Shares,
}

/// A started process as its backend returns it.
pub(crate) struct Spawned {
    pub pid: u64,
    pub control: Box<dyn Control>,
}

/// Delivers signals to one running process.
pub(crate) trait Control: Send + Sync {
    /// Ends the process as `sig` would. Only the first signal counts.
    fn signal(&self, sig: Signal);
}

/// A way of running processes.
pub(crate) trait Backend: Send + Sync {
    /// The shared state of a new run (a main process and its descendants).
    fn new_tree(&self, config: &crate::Config) -> Result<Tree, Error>;

    /// The pid of a main process run in this host process.
    fn main_pid(&self) -> u64;

    /// Starts the child described by `request`; it runs until it ends or is signalled.
    fn spawn(
        &self,
        request: SpawnRequest,
        shared: &Arc<RunShared>,
    ) -> Result<Spawned, ProcessError>;
}
