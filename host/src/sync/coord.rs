//! The objects that coordinate processes beyond a lock: joinable queues' task counts,
//! condition variables, barriers, and shared blocks of bytes (Python's `Value`/`Array`).

use super::objects::{Accounts, Changed, Kind, LockObj, Object, Owner, deadline};
use super::word::{self, Arena, SlotRef};
use crate::error::{ErrorKind, ProcessError};
use crate::lock;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

type Result<T, E = ProcessError> = std::result::Result<T, E>;

// ---------------------------------------------------------------------------------------
// Joinable queues
// ---------------------------------------------------------------------------------------

/// The unfinished tasks of a joinable queue: items put and not yet marked done.
#[derive(Default)]
pub(super) struct Unfinished {
    count: AtomicU64,
    changed: Changed,
}

impl Unfinished {
    /// An item is about to be appended (counted first, so that a `task_done` of a getter
    /// that took it never finds the count at zero).
    pub(super) fn add(&self) {
        self.count.fetch_add(1, Ordering::SeqCst);
    }

    /// An item counted by [`add`](Self::add) was not appended after all.
    pub(super) fn undo(&self) {
        if self.count.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.changed.notify();
        }
    }

    /// `queue-task-done`.
    pub(super) fn done(&self) -> Result<()> {
        self.count
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .map_err(|_| ProcessError::invalid_state("task_done() called too many times"))?;
        if self.count.load(Ordering::SeqCst) == 0 {
            self.changed.notify();
        }
        Ok(())
    }

    /// `queue-join`: whether no task is unfinished, waiting up to `timeout` for that.
    pub(super) async fn join(&self, timeout: Option<u64>) -> bool {
        let idle = || (self.count.load(Ordering::SeqCst) == 0).then_some(());
        self.changed
            .wait_for(idle, true, deadline(timeout))
            .await
            .is_some()
    }
}

// ---------------------------------------------------------------------------------------
// Conditions
// ---------------------------------------------------------------------------------------

/// A condition variable over a lock or rlock of the run.
pub(super) struct CondObj {
    /// The lock (an [`Object`] of kind [`Kind::Lock`]), kept alive by the condition.
    lock: Arc<Object>,
    state: Mutex<CondState>,
    changed: Changed,
}

#[derive(Default)]
struct CondState {
    next: u64,
    /// The tickets of the waiters not yet notified, the longest waiting first.
    waiting: VecDeque<u64>,
    /// The tickets of the waiters notified that have not yet seen it.
    woken: Vec<u64>,
}

/// A waiter's place on a condition; leaving (however the wait ends) gives it up.
struct Ticket<'a> {
    cond: &'a CondObj,
    id: u64,
}

impl Ticket<'_> {
    /// Whether this waiter was notified (and takes the notification).
    fn take_woken(&self) -> bool {
        let mut state = lock(&self.cond.state);
        match state.woken.iter().position(|&t| t == self.id) {
            Some(i) => {
                state.woken.swap_remove(i);
                true
            }
            None => false,
        }
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        let mut state = lock(&self.cond.state);
        state.waiting.retain(|&t| t != self.id);
        state.woken.retain(|&t| t != self.id);
    }
}

impl CondObj {
    /// A condition over `lock`, which must be a lock or an rlock.
    pub(super) fn new(lock: Arc<Object>) -> Option<CondObj> {
        match &lock.kind {
            Kind::Lock(l) if l.owned() => Some(CondObj {
                lock,
                state: Mutex::default(),
                changed: Changed::default(),
            }),
            _ => None,
        }
    }

    fn lock_obj(&self) -> Result<&LockObj> {
        match &self.lock.kind {
            Kind::Lock(l) => Ok(l),
            // `new` admits locks only.
            _ => Err(ProcessError::host_failure(
                "internal error: a condition's lock is not a lock",
            )),
        }
    }

    /// `condition-wait`.
    pub(super) async fn wait(&self, me: &Owner, timeout: Option<u64>) -> Result<bool> {
        let l = self.lock_obj()?;
        // The ticket is taken before the lock is let go, so that a notify made by whoever
        // takes the lock next cannot be missed.
        let ticket = {
            let mut state = lock(&self.state);
            state.next += 1;
            let id = state.next;
            state.waiting.push_back(id);
            Ticket { cond: self, id }
        };
        let depth = l
            .release_all(me)
            .ok_or_else(|| ProcessError::invalid_state("cannot wait on un-acquired lock"))?;
        let woken = || ticket.take_woken().then_some(());
        let notified = self
            .changed
            .wait_for(woken, true, deadline(timeout))
            .await
            .is_some()
            // A notify that crossed the timeout is taken all the same.
            || ticket.take_woken();
        drop(ticket);
        let reacquired = l.acquire(me, true, None).await;
        l.restore_depth(me, depth);
        reacquired.map(|_| notified)
    }

    /// `condition-notify`.
    pub(super) fn notify(&self, me: &Owner, n: Option<u32>) -> Result<()> {
        if !self.lock_obj()?.is_owner(me) {
            return Err(ProcessError::invalid_state(
                "cannot notify on un-acquired lock",
            ));
        }
        let mut state = lock(&self.state);
        let n = n
            .map_or(usize::MAX, |n| n as usize)
            .min(state.waiting.len());
        let woken: Vec<u64> = state.waiting.drain(..n).collect();
        state.woken.extend(woken);
        drop(state);
        if n > 0 {
            self.changed.notify();
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// Barriers
// ---------------------------------------------------------------------------------------

/// Where a barrier's round is (CPython's `threading.Barrier` states, and one for the
/// action a party runs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Parties are arriving.
    Filling,
    /// Every party arrived; the last one runs the barrier's action.
    Action,
    /// The round is complete; its parties are leaving.
    Draining,
    /// `reset` was called while parties waited; they leave with `broken-barrier`.
    Resetting,
    Broken,
}

pub(super) struct BarrierObj {
    parties: u32,
    action: bool,
    /// The default timeout of a wait.
    timeout: Option<u64>,
    state: Mutex<BarrierState>,
    changed: Changed,
}

struct BarrierState {
    phase: Phase,
    /// Parties inside a wait (or running the action).
    count: u32,
    /// The owner token of the party running the action.
    runner: Option<u64>,
}

/// A party inside `barrier-wait`; one that goes away while waiting (its process ended)
/// breaks the barrier.
struct Party<'a> {
    barrier: &'a BarrierObj,
    armed: bool,
}

impl Drop for Party<'_> {
    fn drop(&mut self) {
        if self.armed {
            let mut state = lock(&self.barrier.state);
            state.count -= 1;
            state.phase = Phase::Broken;
            drop(state);
            self.barrier.changed.notify();
        }
    }
}

fn broken() -> ProcessError {
    ProcessError::new(ErrorKind::BrokenBarrier, "the barrier is broken")
}

impl BarrierObj {
    pub(super) fn new(parties: u32, action: bool, timeout: Option<u64>) -> Result<BarrierObj> {
        if parties == 0 {
            return Err(ProcessError::invalid_argument("parties must be >= 1"));
        }
        Ok(BarrierObj {
            parties,
            action,
            timeout,
            state: Mutex::new(BarrierState {
                phase: Phase::Filling,
                count: 0,
                runner: None,
            }),
            changed: Changed::default(),
        })
    }

    /// A party leaves: the last one to leave a drained or reset round opens the next.
    fn leave(&self, state: &mut BarrierState) {
        state.count -= 1;
        if state.count == 0 && matches!(state.phase, Phase::Draining | Phase::Resetting) {
            state.phase = Phase::Filling;
        }
    }

    /// `barrier-wait`.
    pub(super) async fn wait(&self, me: &Owner, timeout: Option<u64>) -> Result<u32> {
        let deadline = deadline(timeout.or(self.timeout));
        // Wait for the previous round to drain or reset (or its action to end); a party
        // that times out doing so breaks the barrier, as one that waits in a round does.
        let open = || {
            let state = lock(&self.state);
            matches!(state.phase, Phase::Filling | Phase::Broken).then_some(())
        };
        let index = loop {
            if self.changed.wait_for(open, true, deadline).await.is_none() {
                lock(&self.state).phase = Phase::Broken;
                self.changed.notify();
                return Err(broken());
            }
            let mut state = lock(&self.state);
            match state.phase {
                Phase::Filling => {}
                Phase::Broken => return Err(broken()),
                // Changed between the wait and this lock: wait again.
                _ => continue,
            }
            let index = state.count;
            state.count += 1;
            if state.count == self.parties {
                if self.action {
                    state.phase = Phase::Action;
                    state.runner = Some(me.token);
                    return Ok(index);
                }
                state.phase = Phase::Draining;
                self.leave(&mut state);
                drop(state);
                self.changed.notify();
                return Ok(index);
            }
            break index;
        };
        let mut party = Party {
            barrier: self,
            armed: true,
        };
        let released = || {
            let state = lock(&self.state);
            (!matches!(state.phase, Phase::Filling | Phase::Action)).then_some(state.phase)
        };
        let phase = self.changed.wait_for(released, true, deadline).await;
        party.armed = false;
        let mut state = lock(&self.state);
        let phase = match phase {
            Some(phase) => phase,
            None => {
                // Timed out: that breaks the barrier, unless the round ended meanwhile.
                if matches!(state.phase, Phase::Filling | Phase::Action) {
                    state.phase = Phase::Broken;
                    self.changed.notify();
                }
                state.phase
            }
        };
        self.leave(&mut state);
        drop(state);
        self.changed.notify();
        match phase {
            Phase::Draining => Ok(index),
            _ => Err(broken()),
        }
    }

    /// `barrier-action-done`.
    pub(super) fn action_done(&self, me: &Owner, ok: bool) -> Result<()> {
        let mut state = lock(&self.state);
        if state.runner != Some(me.token) {
            return Err(ProcessError::invalid_state(
                "this process runs no action of the barrier",
            ));
        }
        state.runner = None;
        if state.phase == Phase::Action {
            state.phase = if ok { Phase::Draining } else { Phase::Broken };
        }
        self.leave(&mut state);
        drop(state);
        self.changed.notify();
        Ok(())
    }

    /// The action's runner `owner` ended (or let go of the barrier) before finishing it.
    pub(super) fn abandon(&self, owner: &Owner) {
        let mut state = lock(&self.state);
        if state.runner == Some(owner.token) {
            state.runner = None;
            state.phase = Phase::Broken;
            self.leave(&mut state);
            drop(state);
            self.changed.notify();
        }
    }

    /// `barrier-reset`.
    pub(super) fn reset(&self) {
        let mut state = lock(&self.state);
        state.phase = if state.count > 0 {
            match state.phase {
                Phase::Filling | Phase::Broken => Phase::Resetting,
                other => other,
            }
        } else {
            Phase::Filling
        };
        drop(state);
        self.changed.notify();
    }

    /// `barrier-abort`.
    pub(super) fn abort(&self) {
        lock(&self.state).phase = Phase::Broken;
        self.changed.notify();
    }

    /// `barrier-state`: parties, parties waiting, broken.
    pub(super) fn state(&self) -> (u32, u32, bool) {
        let state = lock(&self.state);
        let waiting = if state.phase == Phase::Filling {
            state.count
        } else {
            0
        };
        (self.parties, waiting, state.phase == Phase::Broken)
    }
}

// ---------------------------------------------------------------------------------------
// Shared blocks
// ---------------------------------------------------------------------------------------

/// A block of bytes every holder reads and writes (Python's `Value` and `Array` data).
pub(super) struct MemoryObj {
    data: Block,
    accounts: Arc<Accounts>,
}

/// Where a shared block's bytes are.
enum Block {
    Bytes(Mutex<Vec<u8>>),
    /// At most [`word::WORD_BYTES`] bytes (a `Value` of a scalar), little-endian in a word
    /// that a native child reads and writes itself ([`super::word`]).
    Word {
        slot: SlotRef,
        len: u32,
    },
}

impl Drop for MemoryObj {
    fn drop(&mut self) {
        self.accounts
            .queued
            .fetch_sub(u64::from(self.len()), Ordering::Relaxed);
    }
}

impl MemoryObj {
    /// `size` zero bytes, counted against `message` (for one block) and `queued` (for
    /// every byte the run's objects hold). A block of at most a word's bytes is a word in
    /// `arena` when there is one.
    pub(super) fn new(
        size: u32,
        accounts: &Arc<Accounts>,
        arena: Option<&Arc<Arena>>,
    ) -> Result<MemoryObj> {
        let len = u64::from(size);
        let message = accounts.limits.message;
        if len > message {
            return Err(ProcessError::new(
                ErrorKind::LimitExceeded,
                format!("a shared block of {len} bytes exceeds limit message = {message} bytes"),
            ));
        }
        let queued = accounts.limits.queued;
        let before = accounts.queued.fetch_add(len, Ordering::Relaxed);
        if before.saturating_add(len) > queued {
            accounts.queued.fetch_sub(len, Ordering::Relaxed);
            return Err(ProcessError::new(
                ErrorKind::LimitExceeded,
                format!(
                    "a shared block of {len} bytes would exceed limit queued = {queued} bytes \
                     held in the run's queues, pipes and shared blocks"
                ),
            ));
        }
        let slot = arena
            .filter(|_| size as usize <= word::WORD_BYTES)
            .and_then(|a| a.alloc(0));
        let data = match slot {
            Some(slot) => Block::Word { slot, len: size },
            None => Block::Bytes(Mutex::new(vec![0; size as usize])),
        };
        Ok(MemoryObj {
            data,
            accounts: accounts.clone(),
        })
    }

    fn len(&self) -> u32 {
        match &self.data {
            Block::Bytes(bytes) => lock(bytes).len() as u32,
            Block::Word { len, .. } => *len,
        }
    }

    /// The block's slot in the run's arena, and its length, if it is a word there.
    pub(super) fn slot(&self) -> Option<(u32, u32)> {
        match &self.data {
            Block::Word { slot, len } => slot.index().map(|i| (i, *len)),
            Block::Bytes(_) => None,
        }
    }

    /// `memory-read`.
    pub(super) fn read(&self, offset: u32, n: u32) -> Result<Vec<u8>> {
        match &self.data {
            Block::Bytes(bytes) => {
                let bytes = lock(bytes);
                Ok(bytes[word::block_range(bytes.len(), offset, n as usize)?].to_vec())
            }
            Block::Word { slot, len } => word::read_block(slot, *len, offset, n),
        }
    }

    /// `memory-write`.
    pub(super) fn write(&self, offset: u32, data: &[u8]) -> Result<()> {
        match &self.data {
            Block::Bytes(bytes) => {
                let mut bytes = lock(bytes);
                let range = word::block_range(bytes.len(), offset, data.len())?;
                bytes[range].copy_from_slice(data);
                Ok(())
            }
            Block::Word { slot, len } => word::write_block(slot, *len, offset, data),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Shared dictionaries and lists (Python's `Manager().dict()` and `.list()`)
// ---------------------------------------------------------------------------------------

/// The bytes one dictionary or list holds, counted in the run's `queued`.
struct Held {
    accounts: Arc<Accounts>,
    bytes: u64,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.accounts
            .queued
            .fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

impl Held {
    fn new(accounts: &Arc<Accounts>) -> Held {
        Held {
            accounts: accounts.clone(),
            bytes: 0,
        }
    }

    /// Counts `add` more bytes and `sub` fewer, when that stays within `queued`; `each`
    /// (a key's or item's length) must be within `message`.
    fn change(&mut self, each: &[usize], add: u64, sub: u64) -> Result<()> {
        let message = self.accounts.limits.message;
        if let Some(&len) = each.iter().find(|&&l| l as u64 > message) {
            return Err(ProcessError::new(
                ErrorKind::LimitExceeded,
                format!("an item of {len} bytes exceeds limit message = {message} bytes"),
            ));
        }
        let limit = self.accounts.limits.queued;
        let before = self.accounts.queued.fetch_add(add, Ordering::Relaxed);
        if add > sub && before.saturating_add(add - sub) > limit {
            self.accounts.queued.fetch_sub(add, Ordering::Relaxed);
            return Err(ProcessError::new(
                ErrorKind::LimitExceeded,
                format!(
                    "{add} more bytes would exceed limit queued = {limit} bytes held in the \
                     run's queues, pipes and shared objects"
                ),
            ));
        }
        self.accounts.queued.fetch_sub(sub, Ordering::Relaxed);
        self.bytes = self.bytes + add - sub;
        Ok(())
    }

    /// Refuses a snapshot of `total` bytes beyond `message`.
    fn snapshot(&self, total: usize) -> Result<()> {
        let message = self.accounts.limits.message;
        if total as u64 > message {
            return Err(ProcessError::new(
                ErrorKind::LimitExceeded,
                format!("a snapshot of {total} bytes exceeds limit message = {message} bytes"),
            ));
        }
        Ok(())
    }
}

/// A dictionary's keys and values, in the order the keys were first set.
type Entries = indexmap::IndexMap<Vec<u8>, Vec<u8>>;

pub(super) struct DictObj {
    state: Mutex<(Entries, Held)>,
}

impl DictObj {
    pub(super) fn new(accounts: &Arc<Accounts>) -> DictObj {
        DictObj {
            state: Mutex::new((Entries::new(), Held::new(accounts))),
        }
    }

    pub(super) fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        lock(&self.state).0.get(key).cloned()
    }

    pub(super) fn set(&self, key: Vec<u8>, value: Vec<u8>) -> Result<()> {
        let mut state = lock(&self.state);
        let (map, held) = &mut *state;
        let old = map.get(&key).map_or(0, |v| (key.len() + v.len()) as u64);
        held.change(
            &[key.len(), value.len()],
            (key.len() + value.len()) as u64,
            old,
        )?;
        map.insert(key, value);
        Ok(())
    }

    pub(super) fn remove(&self, key: &[u8]) -> Option<Vec<u8>> {
        let mut state = lock(&self.state);
        let (map, held) = &mut *state;
        let (k, v) = map.shift_remove_entry(key)?;
        // Removing never exceeds a limit.
        let _ = held.change(&[], 0, (k.len() + v.len()) as u64);
        Some(v)
    }

    pub(super) fn len(&self) -> u32 {
        u32::try_from(lock(&self.state).0.len()).unwrap_or(u32::MAX)
    }

    pub(super) fn items(&self) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let state = lock(&self.state);
        state.1.snapshot(state.1.bytes as usize)?;
        Ok(state
            .0
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    pub(super) fn clear(&self) {
        let mut state = lock(&self.state);
        let (map, held) = &mut *state;
        map.clear();
        let bytes = held.bytes;
        let _ = held.change(&[], 0, bytes);
    }
}

pub(super) struct ListObj {
    state: Mutex<(Vec<Vec<u8>>, Held)>,
}

fn out_of_range() -> ProcessError {
    ProcessError::invalid_argument("list index out of range")
}

impl ListObj {
    pub(super) fn new(accounts: &Arc<Accounts>) -> ListObj {
        ListObj {
            state: Mutex::new((Vec::new(), Held::new(accounts))),
        }
    }

    pub(super) fn len(&self) -> u32 {
        u32::try_from(lock(&self.state).0.len()).unwrap_or(u32::MAX)
    }

    pub(super) fn get(&self, index: u32) -> Result<Vec<u8>> {
        lock(&self.state)
            .0
            .get(index as usize)
            .cloned()
            .ok_or_else(out_of_range)
    }

    pub(super) fn set(&self, index: u32, item: Vec<u8>) -> Result<()> {
        let mut state = lock(&self.state);
        let (items, held) = &mut *state;
        let slot = items.get_mut(index as usize).ok_or_else(out_of_range)?;
        held.change(&[item.len()], item.len() as u64, slot.len() as u64)?;
        *slot = item;
        Ok(())
    }

    pub(super) fn insert(&self, index: u32, item: Vec<u8>) -> Result<()> {
        let mut state = lock(&self.state);
        let (items, held) = &mut *state;
        held.change(&[item.len()], item.len() as u64, 0)?;
        let at = (index as usize).min(items.len());
        items.insert(at, item);
        Ok(())
    }

    pub(super) fn pop(&self, index: Option<u32>) -> Result<Vec<u8>> {
        let mut state = lock(&self.state);
        let (items, held) = &mut *state;
        if items.is_empty() {
            return Err(ProcessError::invalid_argument("pop from empty list"));
        }
        let at = index.map_or(items.len() - 1, |i| i as usize);
        if at >= items.len() {
            return Err(ProcessError::invalid_argument("pop index out of range"));
        }
        let item = items.remove(at);
        let _ = held.change(&[], 0, item.len() as u64);
        Ok(item)
    }

    pub(super) fn items(&self) -> Result<Vec<Vec<u8>>> {
        let state = lock(&self.state);
        state.1.snapshot(state.1.bytes as usize)?;
        Ok(state.0.clone())
    }
}
