//! The objects of one run: queues and pipe directions (channels), events, locks and
//! semaphores, and the registry that counts them against the run's limits.

use super::coord::{BarrierObj, CondObj, DictObj, ListObj, MemoryObj, Unfinished};
use super::word::{self, Arena, Give, SlotRef, Take};
use super::{HANDLE_BIT, LockKind};
use crate::config::Limits;
use crate::error::{ErrorKind, ProcessError};
use crate::lock;
use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

type Result<T, E = ProcessError> = std::result::Result<T, E>;

/// What one run's objects are counted against.
pub(super) struct Accounts {
    pub(super) limits: Limits,
    /// Bytes waiting in all channels.
    pub(super) queued: AtomicU64,
    /// Objects alive.
    pub(super) objects: AtomicU64,
}

/// Objects set aside for a child, with their handles.
pub(crate) type SharedObjects = Vec<(u64, Arc<Object>)>;

/// Every sync object of one run, and the shares waiting for their child.
pub(crate) struct Registry {
    pub(super) accounts: Arc<Accounts>,
    pub(super) next_id: AtomicU64,
    pub(super) next_owner: AtomicU64,
    pub(super) shares: Mutex<HashMap<u64, SharedObjects>>,
    /// Open connections of native processes, by OS pid.
    pub(super) connections: Mutex<HashMap<u32, usize>>,
    pub(super) disconnected: Notify,
    /// Where the run's lifecycle events go: the root host's.
    events: std::sync::OnceLock<Arc<crate::events::EventBus>>,
    /// Where the run's locks keep their state, shared with its native processes (none:
    /// on the heap).
    pub(super) arena: std::sync::OnceLock<Arc<Arena>>,
    /// The channels that were given items carrying objects, by address: emptied when the
    /// registry goes, so that a queue kept inside itself (or two inside each other) does
    /// not outlive its run.
    carriers: Mutex<HashMap<usize, std::sync::Weak<Channel>>>,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let carriers = std::mem::take(self.carriers.get_mut().unwrap_or_else(|e| e.into_inner()));
        for channel in carriers.into_values().filter_map(|w| w.upgrade()) {
            while channel.rx.try_recv().is_ok() {}
        }
    }
}

impl Registry {
    pub fn new(limits: Limits) -> Arc<Self> {
        Arc::new(Registry {
            accounts: Arc::new(Accounts {
                limits,
                queued: AtomicU64::new(0),
                objects: AtomicU64::new(0),
            }),
            next_id: AtomicU64::new(1),
            next_owner: AtomicU64::new(1),
            shares: Mutex::new(HashMap::new()),
            connections: Mutex::new(HashMap::new()),
            disconnected: Notify::new(),
            events: std::sync::OnceLock::new(),
            arena: std::sync::OnceLock::new(),
            carriers: Mutex::new(HashMap::new()),
        })
    }

    /// Notes that `channel` holds items carrying objects (see `carriers`).
    pub(super) fn carries(&self, channel: &Arc<Channel>) {
        let mut carriers = lock(&self.carriers);
        let len = carriers.len();
        if len >= 64 && len.is_power_of_two() {
            carriers.retain(|_, w| w.strong_count() > 0);
        }
        carriers.insert(Arc::as_ptr(channel) as usize, Arc::downgrade(channel));
    }

    /// Keeps the state of the run's locks made from now on in `arena`.
    pub fn set_arena(&self, arena: Arc<Arena>) {
        let _ = self.arena.set(arena);
    }

    /// Sends the run's lifecycle events to `bus` (once; the root host's).
    pub fn set_events(&self, bus: Arc<crate::events::EventBus>) {
        let _ = self.events.set(bus);
    }

    /// Publishes a lifecycle event of one of the run's processes.
    pub fn publish(&self, event: crate::events::ProcessEvent) {
        if let Some(bus) = self.events.get() {
            bus.publish(event);
        }
    }

    /// A native process `pid` connected.
    pub fn connected(&self, pid: u32) {
        *lock(&self.connections).entry(pid).or_default() += 1;
    }

    /// A connection of native process `pid` is gone, with its table.
    pub fn disconnected(&self, pid: u32) {
        let mut connections = lock(&self.connections);
        if let Some(n) = connections.get_mut(&pid) {
            *n -= 1;
            if *n == 0 {
                connections.remove(&pid);
            }
        }
        drop(connections);
        self.disconnected.notify_waiters();
    }

    /// Waits until native process `pid` has no connection left.
    pub async fn gone(&self, pid: u32) {
        loop {
            let notified = self.disconnected.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if !lock(&self.connections).contains_key(&pid) {
                return;
            }
            notified.await;
        }
    }

    /// Keeps `objects` for a child until it claims them with the returned token.
    pub fn share(&self, objects: Vec<(u64, Arc<Object>)>) -> u64 {
        let token = self.next_owner.fetch_add(1, Ordering::Relaxed);
        lock(&self.shares).insert(token, objects);
        token
    }

    /// Takes the objects shared under `token` (none for 0 or an unknown token).
    pub fn claim(&self, token: u64) -> Vec<(u64, Arc<Object>)> {
        lock(&self.shares).remove(&token).unwrap_or_default()
    }

    pub(super) fn new_object(&self, kind: Kind) -> Result<(u64, Arc<Object>)> {
        let limit = self.accounts.limits.objects;
        let live = self.accounts.objects.fetch_add(1, Ordering::Relaxed);
        if live >= limit {
            self.accounts.objects.fetch_sub(1, Ordering::Relaxed);
            return Err(ProcessError::new(
                ErrorKind::LimitExceeded,
                format!("limit objects = {limit} reached: the run has {limit} live objects"),
            ));
        }
        let id = HANDLE_BIT | self.next_id.fetch_add(1, Ordering::Relaxed);
        Ok((
            id,
            Arc::new(Object {
                kind,
                accounts: self.accounts.clone(),
            }),
        ))
    }

    pub(super) fn channel(&self, maxsize: u32) -> Arc<Channel> {
        self.queue_channel(maxsize, false)
    }

    /// A channel for a queue; a joinable one counts its unfinished tasks.
    pub(super) fn queue_channel(&self, maxsize: u32, joinable: bool) -> Arc<Channel> {
        let (tx, rx) = match maxsize {
            0 => crossbeam_channel::unbounded(),
            n => crossbeam_channel::bounded(n as usize),
        };
        Arc::new(Channel {
            maxsize: maxsize as usize,
            tx,
            rx,
            bytes: AtomicU64::new(0),
            no_receiver: std::sync::atomic::AtomicBool::new(false),
            no_sender: std::sync::atomic::AtomicBool::new(false),
            changed: Changed::default(),
            accounts: self.accounts.clone(),
            unfinished: joinable.then(Arc::default),
        })
    }
}

/// A sync object.
pub(crate) struct Object {
    pub(super) kind: Kind,
    pub(super) accounts: Arc<Accounts>,
}

impl Object {
    pub(super) fn is_queue(&self) -> bool {
        matches!(self.kind, Kind::Queue(_))
    }
}

impl Drop for Object {
    fn drop(&mut self) {
        self.accounts.objects.fetch_sub(1, Ordering::Relaxed);
    }
}

pub(super) enum Kind {
    Queue(Arc<Channel>),
    Conn(ConnEnd),
    Event(EventObj),
    Lock(LockObj),
    Cond(Arc<CondObj>),
    Barrier(Arc<BarrierObj>),
    Memory(MemoryObj),
    Dict(DictObj),
    List(ListObj),
}

/// A FIFO of messages: a queue, or one direction of a pipe. The items are in a lock-free
/// channel (crossbeam's), so that a producer and a consumer on two cores do not contend for
/// one lock on every item.
pub(super) struct Channel {
    /// At most this many items (0: unbounded).
    pub(super) maxsize: usize,
    pub(super) tx: crossbeam_channel::Sender<Item>,
    pub(super) rx: crossbeam_channel::Receiver<Item>,
    /// Bytes waiting in this channel (counted in the run's `queued` too).
    pub(super) bytes: AtomicU64,
    /// No connection end can receive from this channel any more.
    pub(super) no_receiver: std::sync::atomic::AtomicBool,
    /// No connection end can send to this channel any more.
    pub(super) no_sender: std::sync::atomic::AtomicBool,
    /// Notified on every change a waiter may care about.
    pub(super) changed: Changed,
    pub(super) accounts: Arc<Accounts>,
    /// A joinable queue's unfinished tasks.
    pub(super) unfinished: Option<Arc<Unfinished>>,
}

/// Where the objects of an item that carried some go: into its taker's table.
pub(super) type Adopt<'a> = &'a (dyn Fn(SharedObjects) + Sync);

/// An item in a channel. Small ones are kept inline: the bytes a guest puts arrive in a
/// buffer allocated on the putting thread, and a buffer freed on another thread (the
/// getter's) is several times slower to free than one freed where it was allocated.
pub(super) enum Item {
    Small {
        len: u8,
        bytes: [u8; SMALL],
    },
    Large(Vec<u8>),
    /// An item that carries sync objects, which its taker holds from then on.
    Objects(Box<(Vec<u8>, SharedObjects)>),
}

/// An item as the small-item fast path (`queue-try-get-small`) hands it out: at most 16
/// bytes (the length, then the bytes, zero-padded), or more.
pub(crate) enum Taken {
    Small(u8, [u8; 16]),
    Large(Vec<u8>),
}

/// The largest item kept inline.
pub(super) const SMALL: usize = 46;

impl Item {
    pub(super) fn new(bytes: Vec<u8>) -> Item {
        if bytes.len() <= SMALL {
            Item::from_slice(&bytes)
        } else {
            Item::Large(bytes)
        }
    }

    pub(super) fn from_slice(bytes: &[u8]) -> Item {
        if bytes.len() <= SMALL {
            let mut inline = [0u8; SMALL];
            inline[..bytes.len()].copy_from_slice(bytes);
            // `bytes.len() <= SMALL < 256`.
            Item::Small {
                len: bytes.len() as u8,
                bytes: inline,
            }
        } else {
            Item::Large(bytes.to_vec())
        }
    }

    pub(super) fn len(&self) -> usize {
        match self {
            Item::Small { len, .. } => usize::from(*len),
            Item::Large(v) => v.len(),
            Item::Objects(o) => o.0.len(),
        }
    }

    /// As the small-item fast path hands it out.
    pub(super) fn taken(self) -> Taken {
        match self {
            Item::Small { len, bytes } if len <= 16 => {
                let mut small = [0u8; 16];
                small.copy_from_slice(&bytes[..16]);
                Taken::Small(len, small)
            }
            other => Taken::Large(other.into_vec()),
        }
    }

    pub(super) fn into_vec(self) -> Vec<u8> {
        match self {
            Item::Small { len, bytes } => bytes[..usize::from(len)].to_vec(),
            Item::Large(v) => v,
            Item::Objects(o) => o.0,
        }
    }
}

impl Drop for Channel {
    fn drop(&mut self) {
        let bytes = *self.bytes.get_mut();
        self.accounts.queued.fetch_sub(bytes, Ordering::Relaxed);
    }
}

/// Wakes the processes waiting for a change of one object. Counting the waiters keeps a
/// put or get with nobody waiting free of the notifier's lock.
#[derive(Default)]
pub(super) struct Changed {
    pub(super) notify: Notify,
    pub(super) waiters: std::sync::atomic::AtomicUsize,
}

/// Counts one waiter while it lives.
pub(super) struct Waiting<'a>(&'a Changed);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.waiters.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Changed {
    /// Wakes every waiter (after the change was made, under the object's lock or not).
    pub(super) fn notify(&self) {
        // Pairs with the fence in `waiting`: either the waiter sees the change, or this
        // sees the waiter.
        std::sync::atomic::fence(Ordering::SeqCst);
        if self.waiters.load(Ordering::SeqCst) > 0 {
            self.notify.notify_waiters();
        }
    }

    pub(super) fn waiting(&self) -> Waiting<'_> {
        self.waiters.fetch_add(1, Ordering::SeqCst);
        std::sync::atomic::fence(Ordering::SeqCst);
        Waiting(self)
    }

    /// Calls `check` until it decides, waiting for a change between calls (unless
    /// `block` is false) until `deadline`; none when it did not decide in time.
    pub(super) async fn wait_for<R>(
        &self,
        mut check: impl FnMut() -> Option<R>,
        block: bool,
        deadline: Option<Instant>,
    ) -> Option<R> {
        if let Some(r) = check() {
            return Some(r);
        }
        if !block {
            return None;
        }
        let _waiting = self.waiting();
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(r) = check() {
                return Some(r);
            }
            if !until(notified, deadline).await {
                return None;
            }
        }
    }
}

/// Waits for `notified` until `deadline`; false when the deadline passed first.
pub(super) async fn until(
    notified: Pin<&mut tokio::sync::futures::Notified<'_>>,
    deadline: Option<Instant>,
) -> bool {
    match deadline {
        None => {
            notified.await;
            true
        }
        Some(d) => tokio::time::timeout_at(d, notified).await.is_ok(),
    }
}

pub(super) fn deadline(timeout: Option<u64>) -> Option<Instant> {
    timeout.map(|ns| {
        let now = Instant::now();
        now.checked_add(Duration::from_nanos(ns))
            .unwrap_or_else(|| now + Duration::from_secs(86_400 * 365 * 30))
    })
}

impl Channel {
    pub(super) fn check_size(&self, len: usize) -> Result<()> {
        let limit = self.accounts.limits.message;
        if len as u64 > limit {
            return Err(ProcessError::new(
                ErrorKind::LimitExceeded,
                format!("an item of {len} bytes exceeds limit message = {limit} bytes"),
            ));
        }
        Ok(())
    }

    /// Appends `item` if there is room; gives it back when the channel is full.
    pub(super) fn try_put(&self, item: Vec<u8>) -> Result<Option<Vec<u8>>> {
        Ok(self.try_put_item(Item::new(item))?.map(Item::into_vec))
    }

    /// `try_put` of an item already made: gives it back when a bounded queue is full.
    pub(super) fn try_put_item(&self, item: Item) -> Result<Option<Item>> {
        self.try_put_item_waking(item, true)
    }

    /// Appends `items` in order while there is room, waking waiters once: how many went
    /// in. An item that fails ends the call; the failure is the answer only when it was the
    /// first.
    pub(super) fn try_put_many(&self, items: Vec<Vec<u8>>) -> Result<u32> {
        let mut appended = 0u32;
        let mut failure = None;
        for item in items {
            let put = self
                .check_size(item.len())
                .and_then(|()| self.try_put_item_waking(Item::new(item), false));
            match put {
                Ok(None) => appended += 1,
                Ok(Some(_)) => break,
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        if appended > 0 {
            self.changed.notify();
            return Ok(appended);
        }
        failure.map_or(Ok(0), Err)
    }

    /// `try_put_item`, waking waiters only if `wake`.
    pub(super) fn try_put_item_waking(&self, item: Item, wake: bool) -> Result<Option<Item>> {
        if self.no_receiver.load(Ordering::Acquire) {
            return Err(ProcessError::new(
                ErrorKind::BrokenPipe,
                "the other end of the connection is closed",
            ));
        }
        let len = item.len() as u64;
        let limit = self.accounts.limits.queued;
        let before = self.accounts.queued.fetch_add(len, Ordering::Relaxed);
        if before.saturating_add(len) > limit {
            self.accounts.queued.fetch_sub(len, Ordering::Relaxed);
            return Err(ProcessError::new(
                ErrorKind::LimitExceeded,
                format!(
                    "an item of {len} bytes would exceed limit queued = {limit} bytes \
                     waiting in the run's queues and pipes"
                ),
            ));
        }
        // Counted before it is visible, so that a get never subtracts first.
        self.bytes.fetch_add(len, Ordering::Relaxed);
        if let Some(u) = &self.unfinished {
            u.add();
        }
        match self.tx.try_send(item) {
            Ok(()) => {
                if wake {
                    self.changed.notify();
                }
                Ok(None)
            }
            Err(e) => {
                self.bytes.fetch_sub(len, Ordering::Relaxed);
                self.accounts.queued.fetch_sub(len, Ordering::Relaxed);
                if let Some(u) = &self.unfinished {
                    u.undo();
                }
                // Full (a bounded queue); the receiver is never gone (the channel holds it).
                Ok(Some(e.into_inner()))
            }
        }
    }

    pub(super) async fn put(&self, item: Vec<u8>, block: bool, timeout: Option<u64>) -> Result<()> {
        self.put_item(Item::new(item), block, timeout).await
    }

    /// `put` of an item already made.
    pub(super) async fn put_item(
        &self,
        item: Item,
        block: bool,
        timeout: Option<u64>,
    ) -> Result<()> {
        self.check_size(item.len())?;
        let mut item = Some(item);
        let put = || match self.try_put_item(item.take()?) {
            Ok(Some(back)) => {
                item = Some(back);
                None
            }
            Ok(None) => Some(Ok(())),
            Err(e) => Some(Err(e)),
        };
        self.changed
            .wait_for(put, block, deadline(timeout))
            .await
            .unwrap_or_else(|| Err(ProcessError::new(ErrorKind::Full, "the queue is full")))
    }

    /// The oldest item, if any; `Err` at end-of-file. The objects an item carries go to
    /// `adopt` (the taker's table).
    pub(super) fn try_get(&self, eof: bool, adopt: Adopt<'_>) -> Result<Option<Vec<u8>>> {
        Ok(self.try_get_item(eof, adopt)?.map(Item::into_vec))
    }

    /// `try_get`, giving the item as it was kept (one that carried objects as its bytes).
    pub(super) fn try_get_item(&self, eof: bool, adopt: Adopt<'_>) -> Result<Option<Item>> {
        let item = match self.rx.try_recv() {
            Ok(item) => item,
            Err(_) if eof && self.no_sender.load(Ordering::Acquire) => {
                // Every send happened before the last sender went: look once more.
                match self.rx.try_recv() {
                    Ok(item) => item,
                    Err(_) => {
                        return Err(ProcessError::new(
                            ErrorKind::Eof,
                            "the other end of the connection is closed and every message has \
                             been received",
                        ));
                    }
                }
            }
            Err(_) => return Ok(None),
        };
        let len = item.len() as u64;
        self.bytes.fetch_sub(len, Ordering::Relaxed);
        self.accounts.queued.fetch_sub(len, Ordering::Relaxed);
        if self.maxsize != 0 {
            self.changed.notify();
        }
        let item = match item {
            Item::Objects(o) => {
                let (bytes, objects) = *o;
                adopt(objects);
                Item::Large(bytes)
            }
            item => item,
        };
        Ok(Some(item))
    }

    /// `first` and then the items waiting behind it, `max` in all.
    pub(super) fn take_more(
        &self,
        first: Vec<u8>,
        max: u32,
        adopt: Adopt<'_>,
    ) -> Result<Vec<Vec<u8>>> {
        let mut items = Vec::with_capacity((max as usize).min(self.len() + 1));
        items.push(first);
        while items.len() < max as usize {
            match self.try_get(false, adopt)? {
                Some(item) => items.push(item),
                None => break,
            }
        }
        Ok(items)
    }

    pub(super) async fn get(
        &self,
        block: bool,
        timeout: Option<u64>,
        eof: bool,
        adopt: Adopt<'_>,
    ) -> Result<Vec<u8>> {
        self.changed
            .wait_for(
                || self.try_get(eof, adopt).transpose(),
                block,
                deadline(timeout),
            )
            .await
            .unwrap_or_else(|| Err(ProcessError::new(ErrorKind::Empty, "the queue is empty")))
    }

    /// Whether a receive would not block: an item is waiting, or end-of-file.
    pub(super) fn ready(&self) -> bool {
        !self.rx.is_empty() || self.no_sender.load(Ordering::Acquire)
    }

    pub(super) fn len(&self) -> usize {
        self.rx.len()
    }

    /// Marks the channel as having no receiver or no sender any more.
    pub(super) fn mark(&self, flag: &std::sync::atomic::AtomicBool) {
        flag.store(true, Ordering::Release);
        self.changed.notify();
    }
}

/// One end of a pipe.
pub(super) struct ConnEnd {
    /// Where this end receives from (none: the sending end of a one-way pipe).
    pub(super) recv: Option<Arc<Channel>>,
    /// Where this end sends to (none: the receiving end of a one-way pipe).
    pub(super) send: Option<Arc<Channel>>,
}

impl Drop for ConnEnd {
    fn drop(&mut self) {
        if let Some(c) = &self.recv {
            c.mark(&c.no_receiver);
        }
        if let Some(c) = &self.send {
            c.mark(&c.no_sender);
        }
    }
}

impl ConnEnd {
    pub(super) fn recv_channel(&self) -> Result<&Arc<Channel>> {
        self.recv
            .as_ref()
            .ok_or_else(|| ProcessError::invalid_state("connection is write-only"))
    }

    pub(super) fn send_channel(&self) -> Result<&Arc<Channel>> {
        self.send
            .as_ref()
            .ok_or_else(|| ProcessError::invalid_state("connection is read-only"))
    }
}

pub(super) struct EventObj {
    /// The flag, which a native child may change without the root host
    /// ([`super::word`]).
    pub(super) slot: SlotRef,
    /// Processes waiting in this host (while there are some, the word has
    /// [`word::WAITING`]).
    waiters: Mutex<u32>,
    pub(super) changed: Changed,
}

impl EventObj {
    pub(super) fn new(arena: Option<&Arc<Arena>>) -> Self {
        EventObj {
            slot: arena
                .and_then(|a| a.alloc(0))
                .unwrap_or_else(|| Arena::heap(0)),
            waiters: Mutex::new(0),
            changed: Changed::default(),
        }
    }

    pub(super) fn set(&self) {
        word::set_event(&self.slot, false);
        self.changed.notify();
    }

    pub(super) fn clear(&self) {
        word::clear_event(&self.slot);
    }

    pub(super) fn is_set(&self) -> bool {
        word::event_is_set(&self.slot)
    }

    /// Waits until the event is set or `timeout` passed: whether it is set.
    pub(super) async fn wait(&self, timeout: Option<u64>) -> bool {
        if self.is_set() {
            return true;
        }
        *lock(&self.waiters) += 1;
        self.slot.word.fetch_or(word::WAITING, Ordering::SeqCst);
        let _mark = EventMark(self);
        self.changed
            .wait_for(|| self.is_set().then_some(()), true, deadline(timeout))
            .await
            .is_some()
    }
}

/// Counts a process waiting for an event while it lives.
struct EventMark<'a>(&'a EventObj);

impl Drop for EventMark<'_> {
    fn drop(&mut self) {
        let mut waiters = lock(&self.0.waiters);
        *waiters -= 1;
        if *waiters == 0 {
            self.0.slot.word.fetch_and(!word::WAITING, Ordering::SeqCst);
        }
    }
}

/// Who holds a lock: a process, by its table's token and its name.
#[derive(Clone)]
pub(super) struct Owner {
    pub(super) token: u64,
    pub(super) name: String,
}

pub(super) struct LockObj {
    pub(super) kind: LockKind,
    /// A semaphore's initial value (a bounded semaphore's maximum).
    pub(super) initial: u32,
    /// The state a native child may change without the root host ([`super::word`]).
    pub(super) slot: SlotRef,
    pub(super) state: Mutex<LockState>,
    pub(super) changed: Changed,
}

/// What only the root host keeps of a lock.
pub(super) struct LockState {
    /// The name of an owner that ended while holding the lock, until the next acquire.
    pub(super) died: Option<String>,
    /// Processes waiting in this host (while there are some, the word has
    /// [`word::WAITING`]).
    pub(super) waiters: u32,
}

/// Counts a waiting process while it lives.
struct WaitMark<'a>(&'a LockObj);

impl Drop for WaitMark<'_> {
    fn drop(&mut self) {
        let mut state = lock(&self.0.state);
        state.waiters -= 1;
        if state.waiters == 0 {
            self.0.slot.word.fetch_and(!word::WAITING, Ordering::SeqCst);
        }
    }
}

impl LockObj {
    pub(super) fn new(kind: LockKind, value: u32, arena: Option<&Arc<Arena>>) -> Self {
        let value = match kind {
            LockKind::Lock | LockKind::RLock => 1,
            LockKind::Semaphore | LockKind::BoundedSemaphore => value,
        };
        let first = word::initial_word(kind, value);
        LockObj {
            kind,
            initial: value,
            slot: arena
                .and_then(|a| a.alloc(first))
                .unwrap_or_else(|| Arena::heap(first)),
            state: Mutex::new(LockState {
                died: None,
                waiters: 0,
            }),
            changed: Changed::default(),
        }
    }

    pub(super) fn owned(&self) -> bool {
        matches!(self.kind, LockKind::Lock | LockKind::RLock)
    }

    /// One attempt: `Some` with the outcome once decided, `None` to wait.
    pub(super) fn try_acquire(&self, me: &Owner) -> Option<Result<bool>> {
        match word::take(&self.slot, self.kind, me.token, false) {
            Take::Taken => Some(Ok(true)),
            Take::Busy => None,
            Take::TakenFromDead => {
                let dead = lock(&self.state).died.take().unwrap_or_default();
                Some(Err(ProcessError::new(
                    ErrorKind::OwnerDied,
                    format!(
                        "the lock was acquired, but its previous owner {dead} ended while \
                         holding it"
                    ),
                )))
            }
        }
    }

    pub(super) async fn acquire(
        &self,
        me: &Owner,
        block: bool,
        timeout: Option<u64>,
    ) -> Result<bool> {
        if let Some(r) = self.try_acquire(me) {
            return r;
        }
        if !block {
            return Ok(false);
        }
        let _mark = {
            let mut state = lock(&self.state);
            state.waiters += 1;
            self.slot.word.fetch_or(word::WAITING, Ordering::SeqCst);
            WaitMark(self)
        };
        self.changed
            .wait_for(|| self.try_acquire(me), block, deadline(timeout))
            .await
            .unwrap_or(Ok(false))
    }

    pub(super) fn release(&self, me: &Owner) -> Result<()> {
        match word::give(&self.slot, self.kind, self.initial, me.token, false) {
            Give::Given => {
                self.changed.notify();
                Ok(())
            }
            Give::Kept => Ok(()),
            Give::NotOwner => Err(ProcessError::invalid_state(
                "cannot release un-acquired lock",
            )),
            Give::TooMany | Give::Busy => Err(ProcessError::invalid_state(
                "semaphore or lock released too many times",
            )),
        }
    }

    /// Releases the lock if `owner` holds it, for the next owner to learn of.
    pub(super) fn abandon(&self, owner: &Owner) {
        if !self.owned() {
            return;
        }
        let mut state = lock(&self.state);
        let word = &self.slot.word;
        let mut w = word.load(Ordering::SeqCst);
        while w & !word::WAITING == owner.token {
            match word.compare_exchange(
                w,
                word::DIED | (w & word::WAITING),
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
                Ok(_) => {
                    state.died = Some(owner.name.clone());
                    drop(state);
                    self.changed.notify();
                    return;
                }
                Err(now) => w = now,
            }
        }
    }

    pub(super) fn value(&self) -> u32 {
        word::value(&self.slot, self.kind)
    }

    /// Whether `me` owns the lock (a lock or rlock).
    pub(super) fn is_owner(&self, me: &Owner) -> bool {
        self.owned() && self.slot.owner() == me.token
    }

    /// Releases a lock or rlock `me` owns, every level of it: how many levels it had
    /// (none when `me` does not own it).
    pub(super) fn release_all(&self, me: &Owner) -> Option<u32> {
        if !self.is_owner(me) {
            return None;
        }
        let depth = self.slot.depth.load(Ordering::Relaxed);
        self.slot.depth.store(1, Ordering::Relaxed);
        match word::give(&self.slot, self.kind, self.initial, me.token, false) {
            Give::Given => {
                self.changed.notify();
                Some(depth)
            }
            _ => None,
        }
    }

    /// Gives an rlock `me` acquired again the levels [`release_all`](Self::release_all)
    /// took.
    pub(super) fn restore_depth(&self, me: &Owner, depth: u32) {
        if self.kind == LockKind::RLock && self.is_owner(me) {
            self.slot.depth.store(depth.max(1), Ordering::Relaxed);
        }
    }
}
