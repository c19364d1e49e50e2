//! The handles a process names processes by, and the one place a handle is resolved
//! ([`Objects::child`], [`Objects::waitable`]): a process reaches only itself, its parent
//! and the children it created.

use super::core::ProcessCore;
use super::limits::{Args, Charge};
use crate::error::ProcessError;
use crate::output::Captured;
use crate::program::Program;
use crate::sync::Shares;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

type Result<T, E = ProcessError> = std::result::Result<T, E>;

/// Hands out process handles, unique within a host; hosts in different OS processes use
/// disjoint ranges (the OS pid in the high bits), so that a handle passed between them
/// never names another's process.
pub(crate) struct Handles {
    next: AtomicU64,
}

impl Handles {
    /// The handles of the host in OS process `os_pid`.
    pub fn for_os_process(os_pid: u32) -> Self {
        Handles {
            next: AtomicU64::new(u64::from(os_pid) << 24),
        }
    }

    pub fn next(&self) -> u64 {
        self.next.fetch_add(1, Ordering::Relaxed)
    }
}

/// A child process object held by its creator.
pub(super) struct ChildEntry {
    pub core: Arc<ProcessCore>,
    pub program: Program,
    pub name: String,
    pub daemon: bool,
    pub target: String,
    pub args: Option<Args>,
    /// What the record itself (its fixed part and name) is charged against `held`.
    pub record: Charge,
    pub closed: bool,
    /// How many guest-side references exist (see `release`).
    pub refs: u32,
    /// The captured output, once started in capture mode.
    pub captured: Option<Captured>,
    /// The sync objects the child will hold, until it starts.
    pub shares: Shares,
    /// The limits and grants it will run under.
    pub bounds: super::Bounds,
}

pub(super) enum Object {
    Child(Box<ChildEntry>),
    Myself,
    Parent,
}

/// The processes one process can name, by handle.
#[derive(Default)]
pub(super) struct Objects {
    pub map: HashMap<u64, Object>,
    /// Started children, in start order (pruned lazily).
    pub started: Vec<u64>,
}

impl Objects {
    /// The child `h` names, for an operation only children allow; `not_child` is the
    /// error's message when `h` names no child.
    pub fn child(&mut self, h: u64, not_child: &str) -> Result<&mut ChildEntry> {
        match self.map.get_mut(&h) {
            Some(Object::Child(c)) if c.closed => Err(ProcessError::closed()),
            Some(Object::Child(c)) => Ok(c),
            _ => Err(ProcessError::not_a_child(not_child)),
        }
    }

    /// What `h` names: the caller itself, its parent, or (otherwise) the child for an
    /// operation only children allow, as [`Objects::child`].
    pub fn resolve(&mut self, h: u64, not_child: &str) -> Result<Named<'_>> {
        match self.map.get(&h) {
            Some(Object::Myself) => Ok(Named::Myself),
            Some(Object::Parent) => Ok(Named::Parent),
            _ => self.child(h, not_child).map(Named::Child),
        }
    }

    /// Forgets children that have ended and that the guest no longer refers to.
    pub fn reap(&mut self) {
        let Objects { map, started } = self;
        started.retain(|h| match map.get(h) {
            Some(Object::Child(c)) if c.refs == 0 && !c.core.is_alive() => {
                map.remove(h);
                false
            }
            Some(Object::Child(_)) => true,
            _ => false,
        });
    }
}

/// What a handle names, resolved.
pub(super) enum Named<'a> {
    Myself,
    Parent,
    Child(&'a mut ChildEntry),
}
