//! Fiber stacks kept for reuse.
//!
//! Every process of the `wasm` backend runs on a fiber with a stack of its own. Wasmtime's
//! default maps a fresh stack for each one and unmaps it when the process ends; unmapping
//! in a multi-threaded host costs a TLB shootdown on every other core. This creator keeps
//! the stacks of ended processes (up to a bound) and hands them to the next ones.

use std::ops::Range;
use std::sync::Arc;
use wasmtime::{StackCreator, StackMemory};

/// How many unused stacks are kept at most (each is `async_stack_size`, 2 MiB by default,
/// of address space; only the pages a process touched are memory).
const KEEP: usize = 64;

/// One mapping: a guard (at least a page) at the bottom, then the stack.
pub(crate) struct Region {
    base: *mut u8,
    len: usize,
    guard: usize,
}

// SAFETY: a region is plain memory owned by exactly one stack or by the pool's free list.
unsafe impl Send for Region {}
// SAFETY: as for `Send`; the region is never accessed through a shared reference here.
unsafe impl Sync for Region {}

impl Region {
    fn map(size: usize) -> wasmtime::Result<Region> {
        use rustix::mm::{MapFlags, MprotectFlags, ProtFlags};
        // The whole mapping is a multiple of 2 MiB, the rest of it below the stack its guard:
        // the kernel places such a mapping on a 2 MiB boundary, as it does a linear memory's
        // reservation (whose size is one too), so that the two lie side by side and the
        // kernel merges the stack's guard with the memory's inaccessible part, and the
        // stack with the accessible part of the next memory.
        const ALIGN: usize = 2 << 20;
        let page = rustix::param::page_size();
        let len = size
            .checked_add(page)
            .and_then(|n| n.checked_next_multiple_of(ALIGN))
            .ok_or_else(|| wasmtime::format_err!("stack size {size} is too large"))?;
        let guard = len - size;
        // SAFETY: a new anonymous mapping at an address the kernel chooses; nothing else
        // refers to it.
        let base = unsafe {
            rustix::mm::mmap_anonymous(
                std::ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                // The flags of a linear memory's reservation: the kernel merges neighbouring
                // mappings only when their flags match, so a stack and the memory next to
                // it (or its guard and the inaccessible part of a memory) take one mapping
                // where they would take two (the kernel allows 65,530 per OS process).
                MapFlags::PRIVATE | MapFlags::NORESERVE,
            )
        }?;
        // SAFETY: the guard of the mapping just made, which nothing uses yet.
        unsafe { rustix::mm::mprotect(base, guard, MprotectFlags::empty()) }?;
        Ok(Region {
            base: base.cast(),
            len,
            guard,
        })
    }

    fn size(&self) -> usize {
        self.len - self.guard
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: the mapping was made by `Region::map` and nothing refers to it any more.
        let _ = unsafe { rustix::mm::munmap(self.base.cast(), self.len) };
    }
}

/// Hands out fiber stacks, reusing those of ended processes.
pub(crate) type StackPool = super::kept::Kept<Region, KEEP>;

/// A stack in use; goes back to the pool when dropped.
struct PooledStack {
    region: Option<Region>,
    pool: Arc<StackPool>,
}

/// The creator wasmtime calls (`Config::with_host_stack`).
pub(crate) struct PooledStacks(pub Arc<StackPool>);

// SAFETY: every stack is a mapping of its own with a guard of at least a page at the bottom, page
// aligned, owned by one fiber at a time (it returns to the pool only when wasmtime drops
// it), and zeroed when asked (`madvise(DONTNEED)` gives zero pages back).
unsafe impl StackCreator for PooledStacks {
    fn new_stack(&self, size: usize, zeroed: bool) -> wasmtime::Result<Box<dyn StackMemory>> {
        let page = rustix::param::page_size();
        let size = size.div_ceil(page) * page;
        let region = match self.0.take(|r| r.size() == size) {
            Some(region) => {
                if zeroed {
                    // SAFETY: the stack part of a region no fiber uses.
                    unsafe {
                        rustix::mm::madvise(
                            region.base.add(region.guard).cast(),
                            size,
                            rustix::mm::Advice::LinuxDontNeed,
                        )
                    }?;
                }
                region
            }
            None => Region::map(size)?,
        };
        Ok(Box::new(PooledStack {
            region: Some(region),
            pool: self.0.clone(),
        }))
    }
}

impl PooledStack {
    fn region(&self) -> &Region {
        self.region.as_ref().expect("present until dropped")
    }
}

// SAFETY: see `PooledStacks`.
unsafe impl StackMemory for PooledStack {
    fn top(&self) -> *mut u8 {
        let r = self.region();
        // SAFETY: one past the end of the mapping, which is the stack's top.
        unsafe { r.base.add(r.len) }
    }

    fn range(&self) -> Range<usize> {
        let r = self.region();
        r.base as usize + r.guard..r.base as usize + r.len
    }

    fn guard_range(&self) -> Range<*mut u8> {
        let r = self.region();
        // SAFETY: the guard is the start of the mapping.
        r.base..unsafe { r.base.add(r.guard) }
    }
}

impl Drop for PooledStack {
    fn drop(&mut self) {
        if let Some(region) = self.region.take() {
            self.pool.give(region);
        }
    }
}
