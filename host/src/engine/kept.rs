//! Resources of ended processes kept for the next ones ([`Kept`]).

use crate::lock;
use std::sync::Mutex;

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
        let mut free = lock(&self.free);
        let i = free.iter().position(fits)?;
        Some(free.swap_remove(i))
    }

    /// Keeps `item` for a later process, or drops it (outside the lock) when `KEEP` are
    /// kept already.
    pub fn give(&self, item: T) {
        let rejected = {
            let mut free = lock(&self.free);
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
        lock(&self.free).len()
    }
}
