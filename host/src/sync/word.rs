//! The state of a lock or semaphore as one word, which a native child process can change
//! without a round trip to the run's object server when nobody waits.
//!
//! A [`Slot`] holds the word and an rlock's depth. Under the `wasm` backend a slot is on
//! the host's heap; under `native` it is in the run's [`Arena`], a file in the run's
//! directory that the root host and every native child process of the run map (never
//! into a guest's linear memory: only host code touches it). The word is:
//!
//! - a lock or rlock: the token of the owner's table, 0 when free, or [`DIED`] when free
//!   because its owner ended while holding it (the next acquire reports `owner-died`);
//! - a semaphore: its value, in the low 32 bits;
//! - an event: [`SET`] or 0;
//! - a shared block of at most [`WORD_BYTES`] bytes (a `Value` of a scalar): its bytes,
//!   little-endian, with no [`WAITING`] bit (nobody waits for a block);
//!
//! and in either case the bit [`WAITING`], set while a process waits for the object in the
//! root host. A native child changes the word itself only when [`WAITING`] is clear and the
//! change needs no report (its *fast* attempts below); anything else goes to the root host,
//! which wakes its waiters after every change it makes.

use super::LockKind;
use std::fs::File;
use std::path::Path;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Set while a process waits for the object in the root host.
pub(crate) const WAITING: u64 = 1 << 63;
/// A lock's owner bits when its owner ended while holding it.
pub(crate) const DIED: u64 = WAITING - 1;
/// A semaphore's value.
const VALUE: u64 = u32::MAX as u64;
/// An event's flag.
pub(crate) const SET: u64 = 1;

/// One lock's or semaphore's state.
#[repr(C)]
pub(crate) struct Slot {
    pub(crate) word: AtomicU64,
    /// How many times an rlock's owner acquired it (only its owner changes it).
    pub(crate) depth: AtomicU32,
    _pad: AtomicU32,
}

impl Slot {
    fn new(word: u64) -> Self {
        Slot {
            word: AtomicU64::new(word),
            depth: AtomicU32::new(0),
            _pad: AtomicU32::new(0),
        }
    }

    /// The owner bits of a lock's word.
    pub(crate) fn owner(&self) -> u64 {
        self.word.load(Ordering::SeqCst) & !WAITING
    }
}

/// What an attempt to acquire did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Take {
    Taken,
    /// Taken, and its previous owner had ended while holding it.
    TakenFromDead,
    /// Not taken: the acquire must wait (or, a fast attempt, go to the root host).
    Busy,
}

/// What an attempt to release did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Give {
    /// Released: waiters may proceed.
    Given,
    /// An rlock's depth went down; it is still held.
    Kept,
    /// A release without the lock: "cannot release un-acquired lock".
    NotOwner,
    /// A release of a free lock or a full semaphore: "released too many times".
    TooMany,
    /// A fast attempt that must go to the root host.
    Busy,
}

/// Whether locks of `kind` have an owner.
fn owned(kind: LockKind) -> bool {
    matches!(kind, LockKind::Lock | LockKind::RLock)
}

/// The first word of a new object of `kind` with `value`.
pub(crate) fn initial_word(kind: LockKind, value: u32) -> u64 {
    if owned(kind) { 0 } else { u64::from(value) }
}

/// One attempt by the table whose token is `me` to acquire `slot` of `kind`, never
/// waiting. A `fast` attempt (a native child's own) is `Busy` whenever the root host must
/// see the change: someone waits there, or the previous owner died.
pub(crate) fn take(slot: &Slot, kind: LockKind, me: u64, fast: bool) -> Take {
    let mut w = slot.word.load(Ordering::SeqCst);
    if kind == LockKind::RLock && w & !WAITING == me {
        slot.depth.fetch_add(1, Ordering::Relaxed);
        return Take::Taken;
    }
    loop {
        if fast && w & WAITING != 0 {
            return Take::Busy;
        }
        let (new, outcome) = if owned(kind) {
            match w & !WAITING {
                0 => (me | (w & WAITING), Take::Taken),
                DIED if !fast => (me | (w & WAITING), Take::TakenFromDead),
                _ => return Take::Busy,
            }
        } else if w & VALUE == 0 {
            return Take::Busy;
        } else {
            (w - 1, Take::Taken)
        };
        match slot
            .word
            .compare_exchange(w, new, Ordering::SeqCst, Ordering::SeqCst)
        {
            Ok(_) => {
                if owned(kind) {
                    slot.depth.store(1, Ordering::Relaxed);
                }
                return outcome;
            }
            Err(now) => w = now,
        }
    }
}

/// One release of `slot` of `kind` (a bounded semaphore's maximum: `initial`) by the table
/// whose token is `me`. A `fast` attempt is `Busy` when someone waits in the root host,
/// and on any error (the root host reports it).
pub(crate) fn give(slot: &Slot, kind: LockKind, initial: u32, me: u64, fast: bool) -> Give {
    let mut w = slot.word.load(Ordering::SeqCst);
    loop {
        let refused = match kind {
            LockKind::RLock if w & !WAITING != me => Some(Give::NotOwner),
            LockKind::Lock if matches!(w & !WAITING, 0 | DIED) => Some(Give::TooMany),
            LockKind::BoundedSemaphore if w & VALUE >= u64::from(initial) => Some(Give::TooMany),
            LockKind::Semaphore if w & VALUE == VALUE => Some(Give::TooMany),
            _ => None,
        };
        if let Some(refused) = refused {
            return if fast { Give::Busy } else { refused };
        }
        if kind == LockKind::RLock {
            let depth = slot.depth.load(Ordering::Relaxed);
            if depth > 1 {
                slot.depth.store(depth - 1, Ordering::Relaxed);
                return Give::Kept;
            }
        }
        if fast && w & WAITING != 0 {
            return Give::Busy;
        }
        let new = if owned(kind) { w & WAITING } else { w + 1 };
        match slot
            .word
            .compare_exchange(w, new, Ordering::SeqCst, Ordering::SeqCst)
        {
            Ok(_) => return Give::Given,
            Err(now) => w = now,
        }
    }
}

/// Whether `slot` of `kind` would give a unit now: 1 or 0 for a lock, a semaphore's value.
pub(crate) fn value(slot: &Slot, kind: LockKind) -> u32 {
    let w = slot.word.load(Ordering::SeqCst);
    if owned(kind) {
        u32::from(matches!(w & !WAITING, 0 | DIED))
    } else {
        (w & VALUE) as u32
    }
}

/// Sets the event of `slot`: true when done; false for a `fast` attempt that must go to
/// the root host (someone waits there to be woken).
pub(crate) fn set_event(slot: &Slot, fast: bool) -> bool {
    let mut w = slot.word.load(Ordering::SeqCst);
    loop {
        if w & SET != 0 {
            return true;
        }
        if fast && w & WAITING != 0 {
            return false;
        }
        match slot
            .word
            .compare_exchange(w, w | SET, Ordering::SeqCst, Ordering::SeqCst)
        {
            Ok(_) => return true,
            Err(now) => w = now,
        }
    }
}

/// Clears the event of `slot` (nobody waits for a clear).
pub(crate) fn clear_event(slot: &Slot) {
    slot.word.fetch_and(!SET, Ordering::SeqCst);
}

/// Whether the event of `slot` is set.
pub(crate) fn event_is_set(slot: &Slot) -> bool {
    slot.word.load(Ordering::SeqCst) & SET != 0
}

/// The most bytes a shared block kept in a word has.
pub(crate) const WORD_BYTES: usize = 8;

/// The bytes `offset..offset + n` of a block of `len` bytes, if it has them.
pub(crate) fn block_range(
    len: usize,
    offset: u32,
    n: usize,
) -> Result<std::ops::Range<usize>, crate::error::ProcessError> {
    let start = offset as usize;
    match start.checked_add(n) {
        Some(end) if end <= len => Ok(start..end),
        _ => Err(crate::error::ProcessError::invalid_argument(format!(
            "bytes {start}..{} are outside the shared block of {len} bytes",
            start.saturating_add(n)
        ))),
    }
}

/// `n` bytes at `offset` of the block of `len` bytes in `slot`, read at once.
pub(crate) fn read_block(
    slot: &Slot,
    len: u32,
    offset: u32,
    n: u32,
) -> Result<Vec<u8>, crate::error::ProcessError> {
    let range = block_range(len as usize, offset, n as usize)?;
    Ok(slot.word.load(Ordering::SeqCst).to_le_bytes()[range].to_vec())
}

/// Writes `data` at `offset` of the block of `len` bytes in `slot`, at once.
pub(crate) fn write_block(
    slot: &Slot,
    len: u32,
    offset: u32,
    data: &[u8],
) -> Result<(), crate::error::ProcessError> {
    let range = block_range(len as usize, offset, data.len())?;
    let mut w = slot.word.load(Ordering::SeqCst);
    loop {
        let mut bytes = w.to_le_bytes();
        bytes[range.clone()].copy_from_slice(data);
        match slot.word.compare_exchange(
            w,
            u64::from_le_bytes(bytes),
            Ordering::SeqCst,
            Ordering::SeqCst,
        ) {
            Ok(_) => return Ok(()),
            Err(now) => w = now,
        }
    }
}

/// Where a lock's slot is.
pub(crate) enum SlotRef {
    /// On this host's heap (the `wasm` backend, or a full arena).
    Heap(Box<Slot>),
    /// In the run's arena, which native processes map.
    Shared { arena: Arc<Arena>, index: u32 },
}

impl SlotRef {
    /// Its index in the run's arena, if it is in it.
    pub(crate) fn index(&self) -> Option<u32> {
        match self {
            SlotRef::Heap(_) => None,
            SlotRef::Shared { index, .. } => Some(*index),
        }
    }
}

impl std::ops::Deref for SlotRef {
    type Target = Slot;

    fn deref(&self) -> &Slot {
        match self {
            SlotRef::Heap(slot) => slot,
            SlotRef::Shared { arena, index } => arena
                .slot(*index)
                .expect("an arena slot handed out is within the arena"),
        }
    }
}

impl Drop for SlotRef {
    fn drop(&mut self) {
        if let SlotRef::Shared { arena, index } = self {
            crate::lock(&arena.free).released.push(*index);
        }
    }
}

/// The slots of a run's locks and semaphores, in a file of the run's directory mapped
/// shared by the root host and the run's native child processes.
pub(crate) struct Arena {
    base: NonNull<Slot>,
    len: u32,
    /// Slots never handed out start at `next`; `released` were handed out and are free.
    free: Mutex<Free>,
}

struct Free {
    next: u32,
    released: Vec<u32>,
}

// SAFETY: the mapping is only ever accessed through the atomics of its `Slot`s, and it
// stays mapped until the `Arena` is dropped.
unsafe impl Send for Arena {}
// SAFETY: as for `Send`.
unsafe impl Sync for Arena {}

impl Arena {
    /// The most slots an arena has.
    pub(crate) const MAX_SLOTS: u32 = 1 << 20;

    /// Makes the arena file at `path` (which must not exist) with `slots` slots, private to
    /// this user, and maps it.
    pub(crate) fn create(path: &Path, slots: u32) -> std::io::Result<Arc<Arena>> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)?;
        file.set_len(u64::from(slots) * size_of::<Slot>() as u64)?;
        Self::map(&file, slots).map(Arc::new)
    }

    /// Maps the arena file a run's root host made at `path`.
    pub(crate) fn open(path: &Path) -> std::io::Result<Arc<Arena>> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)?;
        let len = file.metadata()?.len();
        let slots = len / size_of::<Slot>() as u64;
        if len % size_of::<Slot>() as u64 != 0 || slots == 0 || slots > u64::from(Self::MAX_SLOTS) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("the run's lock arena has {len} bytes"),
            ));
        }
        Self::map(&file, slots as u32).map(Arc::new)
    }

    fn map(file: &File, slots: u32) -> std::io::Result<Arena> {
        use rustix::mm::{MapFlags, ProtFlags, mmap};
        let len = slots as usize * size_of::<Slot>();
        // SAFETY: a new shared mapping of a file this process opened, at an address the
        // kernel chooses; nothing else is mapped over it.
        let base = unsafe {
            mmap(
                std::ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED,
                file,
                0,
            )
        }?;
        let base = NonNull::new(base.cast::<Slot>()).ok_or_else(|| {
            std::io::Error::other("the kernel mapped the lock arena at address 0")
        })?;
        Ok(Arena {
            base,
            len: slots,
            free: Mutex::new(Free {
                next: 0,
                released: Vec::new(),
            }),
        })
    }

    /// Slot `index`, if the arena has it.
    pub(crate) fn slot(&self, index: u32) -> Option<&Slot> {
        // SAFETY: within the mapping, which lives as long as `self`; a page-aligned base
        // and 16-byte slots keep every slot aligned; slots are atomics only.
        (index < self.len).then(|| unsafe { &*self.base.as_ptr().add(index as usize) })
    }

    /// A free slot, set to `word`; none when every slot is in use.
    pub(crate) fn alloc(self: &Arc<Self>, word: u64) -> Option<SlotRef> {
        let index = {
            let mut free = crate::lock(&self.free);
            match free.released.pop() {
                Some(index) => index,
                None if free.next < self.len => {
                    free.next += 1;
                    free.next - 1
                }
                None => return None,
            }
        };
        let slot = self.slot(index)?;
        slot.depth.store(0, Ordering::Relaxed);
        slot.word.store(word, Ordering::SeqCst);
        Some(SlotRef::Shared {
            arena: self.clone(),
            index,
        })
    }

    /// A slot on the heap, for when there is no arena or it is full.
    pub(crate) fn heap(word: u64) -> SlotRef {
        SlotRef::Heap(Box::new(Slot::new(word)))
    }
}

impl Drop for Arena {
    fn drop(&mut self) {
        // SAFETY: the mapping `map` made; no `Slot` reference outlives the arena.
        let _ = unsafe {
            rustix::mm::munmap(
                self.base.as_ptr().cast(),
                self.len as usize * size_of::<Slot>(),
            )
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fast_attempt_leaves_waiting_and_dead_owners_to_the_root() {
        let slot = Slot::new(0);
        assert_eq!(take(&slot, LockKind::Lock, 7, true), Take::Taken);
        assert_eq!(take(&slot, LockKind::Lock, 8, true), Take::Busy);
        slot.word.fetch_or(WAITING, Ordering::SeqCst);
        assert_eq!(give(&slot, LockKind::Lock, 1, 7, true), Give::Busy);
        assert_eq!(give(&slot, LockKind::Lock, 1, 7, false), Give::Given);
        assert_eq!(slot.word.load(Ordering::SeqCst), WAITING);
        assert_eq!(take(&slot, LockKind::Lock, 8, true), Take::Busy);
        slot.word.store(DIED, Ordering::SeqCst);
        assert_eq!(take(&slot, LockKind::Lock, 8, true), Take::Busy);
        assert_eq!(take(&slot, LockKind::Lock, 8, false), Take::TakenFromDead);
        assert_eq!(slot.owner(), 8);
    }

    #[test]
    fn rlocks_count_depth_and_semaphores_their_value() {
        let slot = Slot::new(0);
        assert_eq!(take(&slot, LockKind::RLock, 3, true), Take::Taken);
        assert_eq!(take(&slot, LockKind::RLock, 3, true), Take::Taken);
        assert_eq!(give(&slot, LockKind::RLock, 1, 4, false), Give::NotOwner);
        assert_eq!(give(&slot, LockKind::RLock, 1, 3, true), Give::Kept);
        assert_eq!(give(&slot, LockKind::RLock, 1, 3, true), Give::Given);
        assert_eq!(give(&slot, LockKind::RLock, 1, 3, false), Give::NotOwner);

        let sem = Slot::new(initial_word(LockKind::BoundedSemaphore, 2));
        assert_eq!(
            give(&sem, LockKind::BoundedSemaphore, 2, 1, false),
            Give::TooMany
        );
        assert_eq!(take(&sem, LockKind::BoundedSemaphore, 1, true), Take::Taken);
        assert_eq!(value(&sem, LockKind::BoundedSemaphore), 1);
        assert_eq!(take(&sem, LockKind::BoundedSemaphore, 1, true), Take::Taken);
        assert_eq!(take(&sem, LockKind::BoundedSemaphore, 1, true), Take::Busy);
        assert_eq!(
            give(&sem, LockKind::BoundedSemaphore, 2, 1, true),
            Give::Given
        );
        assert_eq!(value(&sem, LockKind::BoundedSemaphore), 1);
    }

    #[test]
    fn an_event_set_goes_to_the_root_only_when_someone_waits_there() {
        let slot = Slot::new(0);
        assert!(!event_is_set(&slot));
        assert!(set_event(&slot, true));
        assert!(event_is_set(&slot));
        clear_event(&slot);
        slot.word.fetch_or(WAITING, Ordering::SeqCst);
        assert!(!set_event(&slot, true));
        assert!(!event_is_set(&slot));
        assert!(set_event(&slot, false));
        assert!(event_is_set(&slot));
        assert!(set_event(&slot, true), "already set: nothing to wake");
        clear_event(&slot);
        assert_eq!(slot.word.load(Ordering::SeqCst), WAITING);
    }

    #[test]
    fn a_small_block_is_read_and_written_in_its_word() {
        let slot = Slot::new(0);
        write_block(&slot, 8, 0, &(-2i64).to_le_bytes()).unwrap();
        assert_eq!(read_block(&slot, 8, 0, 8).unwrap(), (-2i64).to_le_bytes());
        write_block(&slot, 8, 2, &[7, 9]).unwrap();
        assert_eq!(read_block(&slot, 8, 1, 3).unwrap(), [0xff, 7, 9]);
        assert_eq!(
            read_block(&slot, 4, 2, 4).unwrap_err().message,
            "bytes 2..6 are outside the shared block of 4 bytes"
        );
        assert!(write_block(&slot, 4, 4, &[1]).is_err());
    }

    #[test]
    fn an_arena_hands_out_each_slot_once_and_reuses_freed_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("locks");
        let arena = Arena::create(&path, 2).unwrap();
        let a = arena.alloc(5).unwrap();
        let b = arena.alloc(0).unwrap();
        assert!(arena.alloc(0).is_none());
        assert_eq!((a.index(), b.index()), (Some(0), Some(1)));
        // Another mapping of the same file sees the same words.
        let other = Arena::open(&path).unwrap();
        assert_eq!(other.slot(0).unwrap().word.load(Ordering::SeqCst), 5);
        assert!(other.slot(2).is_none());
        drop(a);
        let c = arena.alloc(9).unwrap();
        assert_eq!(c.index(), Some(0));
        assert_eq!(other.slot(0).unwrap().word.load(Ordering::SeqCst), 9);
        assert!(Arena::create(&path, 2).is_err(), "the file exists");
    }
}
