//! The kernel's budget of memory mappings, which every process of the `wasm` backend spends.
//!
//! Linux lets one OS process have at most `vm.max_map_count` mappings (lines of
//! `/proc/self/maps`). Each live process of the `wasm` backend holds a few (its linear
//! memory's reservation, its fiber stack and their guards, split where the protection
//! changes). Past the budget every `mmap` fails: a memory cannot grow, and soon an
//! allocation of the host's own fails and the host aborts, taking every process with it. So
//! a `wasm` start is refused with `limit-exceeded` ([`crate::model`]'s `maps_reached`) before
//! the budget is gone, keeping [`reserve`] mappings for the host itself (its threads, heaps
//! and code, the reservations kept for reuse).
//!
//! How the mappings are counted: the kernel merges neighbouring mappings of the same kind
//! (the stack of one process and the memory of the next, say), so what a process costs is
//! known only by asking the kernel. The count is therefore read from `/proc/self/maps`, but
//! only now and then: after a reading, every start is charged the most mappings one
//! process can make ([`Budget::per_start`]), and the file is read again only when these
//! charges would pass the budget. A reading cannot see the mappings of processes that are
//! started but have not yet made their memory (a parent may start many before any of them
//! runs); they are charged in full on top of it ([`PENDING`], counted down as memories are
//! made). The count is shared by every host of this OS process, as the kernel's limit is.
//! When the file cannot be read, each live process is charged in full instead.

use std::sync::Mutex;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// The kernel's default `vm.max_map_count`, used when `/proc/sys/vm/max_map_count` cannot
/// be read.
pub const DEFAULT_MAX_MAP_COUNT: u64 = 65_530;

/// Live processes of the `wasm` backend in this OS process, over all hosts.
static LIVE: AtomicU64 = AtomicU64::new(0);

/// Started processes of the `wasm` backend that may not have made their linear memory yet.
/// Counted down for every memory made (also those of main processes, which were never
/// counted up: it saturates at zero), and never taken as more than [`LIVE`].
static PENDING: AtomicU64 = AtomicU64::new(0);

/// Whether a process ended since the last reading (a refused start reads again only then).
static ENDED: AtomicBool = AtomicBool::new(false);

/// The last reading and the charges since.
struct State {
    /// Mappings at the last reading (`None`: never read).
    read: Option<u64>,
    /// Mappings charged since it.
    charged: u64,
    /// Whether a process was charged since it.
    started: bool,
    /// [`PENDING`] when it was read.
    pending: u64,
    /// When it was read.
    at: Option<std::time::Instant>,
    /// Whether a start was refused since it.
    refused: bool,
}

/// How long after a reading that refused a start the next refused start waits before it
/// reads the count again: near the budget, a spawn bomb's thousands of refusals would each
/// read a file of tens of thousands of lines (while processes end and start, each of them
/// changes the count).
const REREAD_AFTER: std::time::Duration = std::time::Duration::from_millis(20);

static STATE: Mutex<State> = Mutex::new(State {
    read: None,
    charged: 0,
    started: false,
    pending: 0,
    at: None,
    refused: false,
});

/// The kernel's `vm.max_map_count`, read once.
pub fn kernel_max_map_count() -> u64 {
    static MAX: OnceLock<u64> = OnceLock::new();
    *MAX.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/vm/max_map_count")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(DEFAULT_MAX_MAP_COUNT)
    })
}

/// The mappings kept for the host itself out of a budget of `max`.
pub fn reserve(max: u64) -> u64 {
    max / 16
}

/// The lines of `/proc/self/maps`.
fn count_mappings() -> Option<u64> {
    use std::io::Read;
    let mut file = std::fs::File::open("/proc/self/maps").ok()?;
    let mut buf = vec![0u8; 64 << 10];
    let mut lines = 0u64;
    loop {
        match file.read(&mut buf) {
            Ok(0) => return Some(lines),
            Ok(n) => lines += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
}

/// One host's view of the budget.
pub struct Budget {
    /// The `vm.max_map_count` this host goes by.
    pub max: u64,
    /// The most mappings one started process makes, whatever its program.
    pub per_start: u64,
}

/// A live process's place in the count, given back when it is dropped.
pub struct Charge(());

impl Drop for Charge {
    fn drop(&mut self) {
        LIVE.fetch_sub(1, Ordering::Relaxed);
        ENDED.store(true, Ordering::Relaxed);
    }
}

/// Why a start was refused: `live` processes of the `wasm` backend were live in this OS
/// process.
pub struct Exhausted {
    pub live: u64,
}

impl Budget {
    /// Charges one more process, which makes at most `maps` mappings (no more than
    /// [`Budget::per_start`]), if it fits within the budget.
    pub fn charge(&self, maps: u64) -> Result<Charge, Exhausted> {
        let maps = maps.min(self.per_start);
        let limit = self.max.saturating_sub(reserve(self.max));
        let mut state = crate::lock(&STATE);
        let fits = |s: &State| s.read.is_some_and(|read| read + s.charged + maps <= limit);
        // A start that does not fit reads the count again when something that changes it
        // happened since the last reading (a start, an end, a memory made), unless that
        // reading already refused a start and is less than [`REREAD_AFTER`] old.
        let stale = |s: &State| {
            let changed = s.started
                || ENDED.load(Ordering::Relaxed)
                || PENDING.load(Ordering::Relaxed) < s.pending;
            s.read.is_none()
                || (changed && (!s.refused || s.at.is_none_or(|at| at.elapsed() >= REREAD_AFTER)))
        };
        if !fits(&state) && stale(&state) {
            ENDED.store(false, Ordering::Relaxed);
            let live = LIVE.load(Ordering::Relaxed);
            let pending = PENDING.load(Ordering::Relaxed);
            let (read, charged) = match count_mappings() {
                Some(read) => (read, pending.min(live) * self.per_start),
                None => (0, live * self.per_start),
            };
            *state = State {
                read: Some(read),
                charged,
                started: false,
                pending,
                at: Some(std::time::Instant::now()),
                refused: false,
            };
        }
        if !fits(&state) {
            state.refused = true;
            return Err(Exhausted {
                live: LIVE.load(Ordering::Relaxed),
            });
        }
        state.charged += maps;
        state.started = true;
        LIVE.fetch_add(1, Ordering::Relaxed);
        PENDING.fetch_add(1, Ordering::Relaxed);
        Ok(Charge(()))
    }
}

/// A linear memory was made: a started process (or a main process) now has its mappings.
pub fn memory_made() {
    let _ = PENDING.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
}
