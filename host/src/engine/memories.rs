//! Linear memories kept for reuse.
//!
//! Every process of the `wasm` backend has a linear memory of its own: a reservation of
//! address space (4 GiB plus a guard region by default) of which the first pages are
//! accessible. Wasmtime's default maps a fresh reservation for each process and unmaps it
//! when the process ends. Unmapping frees page tables, and the kernel must then interrupt
//! every other core that ran the host (a TLB shootdown, even to idle cores), a noticeable
//! part of a start+join. This creator keeps the reservations of ended
//! processes (up to a bound) instead: the few pages a process touched are zeroed in place,
//! anything else is given back to the kernel with `madvise(MADV_DONTNEED)` (see
//! [`Region::zero`]), the page tables stay, and the next process takes the reservation over.
//!
//! Outside the accessible part, a reservation is always `PROT_NONE`: compiled code leaves
//! out bounds checks because an access there traps.

use rustix::mm::{Advice, MapFlags, MprotectFlags, ProtFlags};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use wasmtime::{LinearMemory, MemoryCreator, MemoryType};

/// Set in a native child process, which runs one guest process and then exits: the linear
/// memory of its guest is then left for the exit to unmap, rather than zeroed or discarded
/// for a next process that never comes.
static LAST_PROCESS: AtomicBool = AtomicBool::new(false);

/// Marks this OS process as one whose guest process is its last ([`LAST_PROCESS`]).
pub(crate) fn run_last_process_only() {
    LAST_PROCESS.store(true, Ordering::Relaxed);
}

/// How many unused reservations are kept at most: 4 GiB of address space each (the host
/// has 128 TiB), two kernel mappings each, and no memory.
const KEEP: usize = 64;

/// Most bytes of a released memory zeroed in place rather than given back to the kernel,
/// so at most `KEEP` × 256 KiB stays resident in unused reservations.
const KEEP_RESIDENT: usize = 256 << 10;

/// One reservation: `len` bytes of address space from `base`, of which the first
/// `accessible` are readable and writable and the rest `PROT_NONE`.
pub(crate) struct Region {
    base: *mut u8,
    /// The reservation plus the guard region after it.
    len: usize,
    /// The part growth may use (the reservation without its guard).
    capacity: usize,
    accessible: usize,
}

// SAFETY: a region is plain memory owned by exactly one linear memory or by the free list.
unsafe impl Send for Region {}
// SAFETY: as for `Send`; the region is never accessed through a shared reference here.
unsafe impl Sync for Region {}

fn round_up(n: usize) -> Option<usize> {
    let page = rustix::param::page_size();
    n.checked_next_multiple_of(page)
}

fn os_error(what: &str, e: rustix::io::Errno) -> String {
    format!("cannot {what} a linear memory: {e}")
}

impl Region {
    fn map(capacity: usize, guard: usize) -> Result<Region, String> {
        let len = capacity
            .checked_add(guard)
            .ok_or_else(|| format!("a reservation of {capacity} + {guard} bytes is too large"))?;
        // SAFETY: a new anonymous mapping at an address the kernel chooses; nothing else
        // refers to it.
        let base = unsafe {
            rustix::mm::mmap_anonymous(
                std::ptr::null_mut(),
                len,
                ProtFlags::empty(),
                MapFlags::PRIVATE | MapFlags::NORESERVE,
            )
        }
        .map_err(|e| os_error("reserve", e))?;
        Ok(Region {
            base: base.cast(),
            len,
            capacity,
            accessible: 0,
        })
    }

    /// Makes exactly the first `size` bytes (rounded up to pages) accessible.
    fn set_accessible(&mut self, size: usize) -> Result<(), String> {
        let size = round_up(size).ok_or_else(|| format!("{size} bytes is too large"))?;
        if size > self.capacity {
            return Err(format!(
                "{size} bytes do not fit in the reservation of {} bytes",
                self.capacity
            ));
        }
        if size > self.accessible {
            // SAFETY: pages of this region's own mapping, past what the guest may use so far.
            unsafe {
                rustix::mm::mprotect(
                    self.base.add(self.accessible).cast(),
                    size - self.accessible,
                    MprotectFlags::READ | MprotectFlags::WRITE,
                )
            }
            .map_err(|e| os_error("grow", e))?;
        } else if size < self.accessible {
            // SAFETY: zeroed pages of this region no guest uses (the region is being taken
            // over by a new memory that must not reach them).
            unsafe {
                rustix::mm::mprotect(
                    self.base.add(size).cast(),
                    self.accessible - size,
                    MprotectFlags::empty(),
                )
            }
            .map_err(|e| os_error("shrink", e))?;
        }
        self.accessible = size;
        Ok(())
    }

    /// Makes the accessible part read as zeros again. The pages a process touched (the
    /// resident ones, found with `mincore`) are zeroed in place, when they lie within
    /// [`KEEP_RESIDENT`] bytes of each other: the next process then touches them without
    /// a page fault, and no core is interrupted. Every other page is given back to the
    /// kernel with `MADV_DONTNEED`, which also covers pages that were swapped out (not
    /// resident, not zero) and costs no TLB flush for pages that were never present.
    fn zero(&mut self) -> Result<(), rustix::io::Errno> {
        let page = rustix::param::page_size();
        let pages = self.accessible / page;
        if pages == 0 {
            return Ok(());
        }
        let mut resident = vec![0u8; pages];
        // SAFETY: the accessible part of this region's own mapping; `resident` has one byte
        // for each of its pages.
        let rc = unsafe { libc::mincore(self.base.cast(), self.accessible, resident.as_mut_ptr()) };
        let span = (rc == 0)
            .then(|| {
                let lo = resident.iter().position(|r| r & 1 != 0)?;
                let hi = resident.iter().rposition(|r| r & 1 != 0)? + 1;
                ((hi - lo) * page <= KEEP_RESIDENT).then_some((lo, hi))
            })
            .flatten();
        let Some((lo, hi)) = span else {
            return self.discard(0, pages);
        };
        self.discard(0, lo)?;
        self.discard(hi, pages)?;
        // SAFETY: pages of this region's own accessible part, which its memory (now
        // dropped) no longer uses and nothing else refers to.
        unsafe { std::ptr::write_bytes(self.base.add(lo * page), 0, (hi - lo) * page) };
        Ok(())
    }

    /// Gives pages `from..to` back to the kernel: they read as zeros afterwards.
    fn discard(&mut self, from: usize, to: usize) -> Result<(), rustix::io::Errno> {
        if from >= to {
            return Ok(());
        }
        let page = rustix::param::page_size();
        // SAFETY: pages of the accessible part of this region's own mapping, which its
        // memory (now dropped) no longer uses.
        unsafe {
            rustix::mm::madvise(
                self.base.add(from * page).cast(),
                (to - from) * page,
                Advice::LinuxDontNeed,
            )
        }
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: the mapping was made by `Region::map` and nothing refers to it any more.
        let _ = unsafe { rustix::mm::munmap(self.base.cast(), self.len) };
    }
}

/// The reservations no memory uses.
pub(crate) type MemoryPool = super::kept::Kept<Region, KEEP>;

/// The creator wasmtime calls (`Config::with_host_memory`).
pub(crate) struct PooledMemories(pub Arc<MemoryPool>);

/// A linear memory in use; its reservation goes back to the pool when it is dropped.
struct PooledMemory {
    region: Option<Region>,
    pool: Arc<MemoryPool>,
}

// SAFETY: every memory is page aligned, zero-filled when handed out (a fresh mapping, or
// one whose pages were discarded with `MADV_DONTNEED`), and followed by at least
// `guard_size_in_bytes` of `PROT_NONE` address space: the reservation wasmtime asks for
// is `reserved_size_in_bytes`, all of it inaccessible beyond the memory's size, plus the
// guard. Growth never moves the base. A reservation belongs to one memory at a time.
unsafe impl MemoryCreator for PooledMemories {
    fn new_memory(
        &self,
        _ty: MemoryType,
        minimum: usize,
        maximum: Option<usize>,
        reserved_size_in_bytes: Option<usize>,
        guard_size_in_bytes: usize,
    ) -> Result<Box<dyn LinearMemory>, String> {
        let wanted = reserved_size_in_bytes
            .or(maximum)
            .unwrap_or(minimum)
            .max(minimum);
        let capacity = round_up(wanted).ok_or_else(|| format!("{wanted} bytes is too large"))?;
        let guard = round_up(guard_size_in_bytes)
            .ok_or_else(|| format!("a guard of {guard_size_in_bytes} bytes is too large"))?;
        let reused = self
            .0
            .take(|r| r.capacity == capacity && r.len == capacity + guard);
        let mut region = match reused {
            Some(region) => region,
            None => Region::map(capacity, guard)?,
        };
        region.set_accessible(minimum)?;
        crate::engine::maps::memory_made();
        Ok(Box::new(PooledMemory {
            region: Some(region),
            pool: self.0.clone(),
        }))
    }
}

impl PooledMemory {
    fn region(&self) -> &Region {
        self.region.as_ref().expect("present until dropped")
    }
}

// SAFETY: see `PooledMemories`.
unsafe impl LinearMemory for PooledMemory {
    fn byte_size(&self) -> usize {
        self.region().accessible
    }

    fn byte_capacity(&self) -> usize {
        self.region().capacity
    }

    fn grow_to(&mut self, new_size: usize) -> wasmtime::Result<()> {
        let region = self.region.as_mut().expect("present until dropped");
        region
            .set_accessible(new_size)
            .map_err(wasmtime::Error::msg)
    }

    fn as_ptr(&self) -> *mut u8 {
        self.region().base
    }
}

impl Drop for PooledMemory {
    fn drop(&mut self) {
        let Some(mut region) = self.region.take() else {
            return;
        };
        if LAST_PROCESS.load(Ordering::Relaxed) {
            // The OS process exits next; its exit unmaps everything at once.
            std::mem::forget(region);
            return;
        }
        // A region whose pages could not be discarded is unmapped (by its drop), never
        // handed to another process.
        if region.zero().is_ok() {
            self.pool.give(region);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creator() -> PooledMemories {
        PooledMemories(Arc::default())
    }

    const WASM_PAGE: usize = 65536;

    fn new(c: &PooledMemories, pages: usize) -> Box<dyn LinearMemory> {
        let ty = MemoryType::new(1, None);
        c.new_memory(ty, pages * WASM_PAGE, None, Some(1 << 32), 1 << 25)
            .expect("a memory")
    }

    #[test]
    fn a_reused_memory_is_zeroed_and_sized_anew() {
        let c = creator();
        let mut m = new(&c, 2);
        assert_eq!(m.byte_size(), 2 * WASM_PAGE);
        assert_eq!(m.byte_capacity(), 1 << 32);
        m.grow_to(5 * WASM_PAGE).expect("growth");
        let base = m.as_ptr();
        // SAFETY: inside the accessible five pages.
        unsafe {
            base.write(7);
            base.add(5 * WASM_PAGE - 1).write(9);
        }
        drop(m);
        assert_eq!(c.0.len(), 1);

        let m = new(&c, 1);
        assert_eq!(m.as_ptr(), base, "the reservation is reused");
        assert_eq!(m.byte_size(), WASM_PAGE);
        assert_eq!(c.0.len(), 0);
        // SAFETY: the first page is accessible.
        assert_eq!(
            unsafe { m.as_ptr().read() },
            0,
            "discarded pages read as zero"
        );
    }

    #[test]
    fn pages_zeroed_in_place_and_given_back_read_as_zero() {
        let c = creator();
        let page = rustix::param::page_size();
        let mut m = new(&c, 1);
        m.grow_to(8 * WASM_PAGE).expect("growth");
        let base = m.as_ptr();
        // Two pages close together (zeroed in place) and one far from them (given back).
        let near = [100, 3 * page + 5];
        let far = 8 * WASM_PAGE - 1;
        // SAFETY: inside the accessible eight pages.
        unsafe {
            for at in near {
                base.add(at).write(0xa5);
            }
            base.add(far).write(0x5a);
        }
        drop(m);
        let mut m = new(&c, 1);
        assert_eq!(m.as_ptr(), base, "the reservation is reused");
        m.grow_to(8 * WASM_PAGE).expect("growth");
        // SAFETY: inside the accessible eight pages.
        unsafe {
            for at in near.into_iter().chain([far]) {
                assert_eq!(base.add(at).read(), 0, "byte {at} of a reused memory");
            }
        }
        drop(m);
        // With nothing far from them, the near pages are zeroed in place: they stay
        // resident.
        let m = new(&c, 1);
        // SAFETY: inside the accessible first page.
        unsafe {
            for at in near {
                m.as_ptr().add(at).write(0xa5);
            }
        }
        drop(m);
        let m = new(&c, 1);
        let mut resident = [0u8; 4];
        // SAFETY: the first four pages of the reused, accessible memory.
        assert_eq!(
            unsafe { libc::mincore(m.as_ptr().cast(), 4 * page, resident.as_mut_ptr()) },
            0
        );
        assert_eq!(
            resident.map(|r| r & 1),
            [1, 1, 1, 1],
            "pages 0 to 3 stay resident"
        );
        // SAFETY: inside the accessible first page.
        unsafe {
            assert_eq!(m.as_ptr().add(100).read(), 0);
            assert_eq!(m.as_ptr().add(3 * page + 5).read(), 0);
        }
    }

    #[test]
    fn growth_past_the_reservation_fails() {
        let c = creator();
        let mut m = c
            .new_memory(
                MemoryType::new(1, None),
                WASM_PAGE,
                None,
                Some(4 * WASM_PAGE),
                0,
            )
            .expect("a memory");
        assert!(m.grow_to(4 * WASM_PAGE).is_ok());
        let e = m.grow_to(5 * WASM_PAGE).unwrap_err();
        assert!(e.to_string().contains("do not fit"), "{e}");
        assert_eq!(m.byte_size(), 4 * WASM_PAGE);
    }
}
