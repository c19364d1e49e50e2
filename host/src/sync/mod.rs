//! Queues, pipes, events, locks and semaphores shared between the processes of one run
//! (the WIT interface `sync`).
//!
//! Every object lives in the run's root host, in a [`Registry`]. A process holds objects
//! in its [`SyncTable`]: the ones it created and the ones its parent shared with it when
//! creating it. Every operation is a [`Request`] served by [`SyncTable::serve`], directly
//! for processes in the root host (the `wasm` backend, and the main process of a `native`
//! run) and over a Unix socket for native child processes ([`remote`]), so the rules are
//! written once.
//!
//! An object lives while any table (or a pending share) holds it. When a table goes away
//! (its process ended, however it ended), every lock its process owned is released and
//! marked so that the next owner learns of it (`owner-died`); a connection no table holds
//! any more gives its peer end-of-file.

pub(crate) mod remote;

use crate::config::Limits;
use crate::error::{ErrorKind, ProcessError};
use crate::model::lock;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

type Result<T, E = ProcessError> = std::result::Result<T, E>;

/// Handles of sync objects have this bit set; process handles never do.
pub(crate) const HANDLE_BIT: u64 = 1 << 63;

/// Whether `h` names a sync object (rather than a process).
pub(crate) fn is_sync_handle(h: u64) -> bool {
    h & HANDLE_BIT != 0
}

/// What `lock-new` makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum LockKind {
    Lock,
    RLock,
    Semaphore,
    BoundedSemaphore,
}

/// One operation of a process on its sync objects. Timeouts are in nanoseconds.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Request {
    QueueNew {
        maxsize: u32,
    },
    QueuePut {
        h: u64,
        item: Vec<u8>,
        block: bool,
        timeout: Option<u64>,
    },
    QueueGet {
        h: u64,
        block: bool,
        timeout: Option<u64>,
    },
    /// Appends `items` while there is room, without waiting; answers how many.
    QueuePutMany {
        h: u64,
        items: Vec<Vec<u8>>,
    },
    /// The oldest items, at most `max`: waits as [`Request::QueueGet`] for the first.
    QueueGetMany {
        h: u64,
        max: u32,
        block: bool,
        timeout: Option<u64>,
    },
    QueueSize {
        h: u64,
    },
    PipeNew {
        duplex: bool,
    },
    ConnSend {
        h: u64,
        message: Vec<u8>,
    },
    ConnRecv {
        h: u64,
    },
    ConnPoll {
        h: u64,
        timeout: Option<u64>,
    },
    EventNew,
    EventSet {
        h: u64,
    },
    EventClear {
        h: u64,
    },
    EventIsSet {
        h: u64,
    },
    EventWait {
        h: u64,
        timeout: Option<u64>,
    },
    LockNew {
        kind: LockKind,
        value: u32,
    },
    LockAcquire {
        h: u64,
        block: bool,
        timeout: Option<u64>,
    },
    LockRelease {
        h: u64,
    },
    LockValue {
        h: u64,
    },
    Close {
        h: u64,
    },
    /// Which of `handles` (connections and queues) would not block on receive; waits up
    /// to `timeout` for one to be.
    Ready {
        handles: Vec<u64>,
        timeout: Option<u64>,
    },
    /// Sets aside `handles` for a child about to be created; answers with a token the
    /// child claims its objects with.
    Share {
        handles: Vec<u64>,
    },
    /// Drops a share that no child claimed (the child never started, or ended first).
    Revoke {
        token: u64,
    },
    /// Waits until the server has dropped every connection of OS process `pid`.
    Gone {
        pid: u32,
    },
}

/// The answer to a [`Request`].
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Response {
    Unit,
    Handle(u64),
    Pair(u64, u64),
    Bytes(Vec<u8>),
    Bool(bool),
    Count(u32),
    Handles(Vec<u64>),
    Items(Vec<Vec<u8>>),
    Error(WireError),
    /// The request was cancelled before it completed (remote waits only).
    Cancelled,
}

/// A [`ProcessError`] on the wire.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct WireError {
    kind: u8,
    message: String,
}

impl WireError {
    /// The same error with `prefix` before its message.
    fn prefixed(self, prefix: &str) -> WireError {
        WireError {
            kind: self.kind,
            message: format!("{prefix}{}", self.message),
        }
    }
}

impl From<ProcessError> for WireError {
    fn from(e: ProcessError) -> Self {
        WireError {
            kind: e.kind as u8,
            message: e.message,
        }
    }
}

impl From<WireError> for ProcessError {
    fn from(e: WireError) -> Self {
        let kind = ErrorKind::ALL
            .get(usize::from(e.kind))
            .copied()
            .unwrap_or(ErrorKind::HostFailure);
        ProcessError::new(kind, e.message)
    }
}

impl Response {
    fn from_result<T>(r: Result<T>, ok: impl FnOnce(T) -> Response) -> Response {
        match r {
            Ok(v) => ok(v),
            Err(e) => Response::Error(e.into()),
        }
    }

    fn unexpected(self) -> ProcessError {
        match self {
            Response::Error(e) => e.into(),
            Response::Cancelled => ProcessError::host_failure("the call was cancelled"),
            other => ProcessError::host_failure(format!(
                "internal error: unexpected answer {other:?} from the run's object server"
            )),
        }
    }

    pub fn unit(self) -> Result<()> {
        match self {
            Response::Unit => Ok(()),
            other => Err(other.unexpected()),
        }
    }

    pub fn handle(self) -> Result<u64> {
        match self {
            Response::Handle(h) => Ok(h),
            other => Err(other.unexpected()),
        }
    }

    pub fn pair(self) -> Result<(u64, u64)> {
        match self {
            Response::Pair(a, b) => Ok((a, b)),
            other => Err(other.unexpected()),
        }
    }

    pub fn bytes(self) -> Result<Vec<u8>> {
        match self {
            Response::Bytes(b) => Ok(b),
            other => Err(other.unexpected()),
        }
    }

    pub fn bool(self) -> Result<bool> {
        match self {
            Response::Bool(b) => Ok(b),
            other => Err(other.unexpected()),
        }
    }

    pub fn count(self) -> Result<u32> {
        match self {
            Response::Count(n) => Ok(n),
            other => Err(other.unexpected()),
        }
    }

    pub fn handles(self) -> Result<Vec<u64>> {
        match self {
            Response::Handles(h) => Ok(h),
            other => Err(other.unexpected()),
        }
    }

    pub fn items(self) -> Result<Vec<Vec<u8>>> {
        match self {
            Response::Items(items) => Ok(items),
            other => Err(other.unexpected()),
        }
    }
}

/// What one run's objects are counted against.
struct Accounts {
    limits: Limits,
    /// Bytes waiting in all channels.
    queued: AtomicU64,
    /// Objects alive.
    objects: AtomicU64,
}

/// Objects set aside for a child, with their handles.
pub(crate) type Shared = Vec<(u64, Arc<Object>)>;

/// Every sync object of one run, and the shares waiting for their child.
pub(crate) struct Registry {
    accounts: Arc<Accounts>,
    next_id: AtomicU64,
    next_owner: AtomicU64,
    shares: Mutex<HashMap<u64, Shared>>,
    /// Open connections of native processes, by OS pid.
    connections: Mutex<HashMap<u32, usize>>,
    disconnected: Notify,
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
        })
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

    fn new_object(&self, kind: Kind) -> Result<(u64, Arc<Object>)> {
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

    fn channel(&self, maxsize: u32) -> Arc<Channel> {
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
        })
    }
}

/// A sync object.
pub(crate) struct Object {
    kind: Kind,
    accounts: Arc<Accounts>,
}

impl Drop for Object {
    fn drop(&mut self) {
        self.accounts.objects.fetch_sub(1, Ordering::Relaxed);
    }
}

enum Kind {
    Queue(Arc<Channel>),
    Conn(ConnEnd),
    Event(EventObj),
    Lock(LockObj),
}

/// A FIFO of messages: a queue, or one direction of a pipe. The items are in a lock-free
/// channel (crossbeam's), so that a producer and a consumer on two cores do not contend for
/// one lock on every item.
struct Channel {
    /// At most this many items (0: unbounded).
    maxsize: usize,
    tx: crossbeam_channel::Sender<Item>,
    rx: crossbeam_channel::Receiver<Item>,
    /// Bytes waiting in this channel (counted in the run's `queued` too).
    bytes: AtomicU64,
    /// No connection end can receive from this channel any more.
    no_receiver: std::sync::atomic::AtomicBool,
    /// No connection end can send to this channel any more.
    no_sender: std::sync::atomic::AtomicBool,
    /// Notified on every change a waiter may care about.
    changed: Changed,
    accounts: Arc<Accounts>,
}

/// An item in a channel. Small ones are kept inline: the bytes a guest puts arrive in a
/// buffer allocated on the putting thread, and a buffer freed on another thread (the
/// getter's) is several times slower to free than one freed where it was allocated.
enum Item {
    Small { len: u8, bytes: [u8; SMALL] },
    Large(Vec<u8>),
}

/// An item as the small-item fast path (`queue-try-get-small`) hands it out: at most 16
/// bytes (the length, then the bytes, zero-padded), or more.
pub(crate) enum Taken {
    Small(u8, [u8; 16]),
    Large(Vec<u8>),
}

/// The largest item kept inline.
const SMALL: usize = 46;

impl Item {
    fn new(bytes: Vec<u8>) -> Item {
        if bytes.len() <= SMALL {
            Item::from_slice(&bytes)
        } else {
            Item::Large(bytes)
        }
    }

    fn from_slice(bytes: &[u8]) -> Item {
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

    fn len(&self) -> usize {
        match self {
            Item::Small { len, .. } => usize::from(*len),
            Item::Large(v) => v.len(),
        }
    }

    /// As the small-item fast path hands it out.
    fn taken(self) -> Taken {
        match self {
            Item::Small { len, bytes } if len <= 16 => {
                let mut small = [0u8; 16];
                small.copy_from_slice(&bytes[..16]);
                Taken::Small(len, small)
            }
            other => Taken::Large(other.into_vec()),
        }
    }

    fn into_vec(self) -> Vec<u8> {
        match self {
            Item::Small { len, bytes } => bytes[..usize::from(len)].to_vec(),
            Item::Large(v) => v,
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
struct Changed {
    notify: Notify,
    waiters: std::sync::atomic::AtomicUsize,
}

/// Counts one waiter while it lives.
struct Waiting<'a>(&'a Changed);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.waiters.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Changed {
    /// Wakes every waiter (after the change was made, under the object's lock or not).
    fn notify(&self) {
        // Pairs with the fence in `waiting`: either the waiter sees the change, or this
        // sees the waiter.
        std::sync::atomic::fence(Ordering::SeqCst);
        if self.waiters.load(Ordering::SeqCst) > 0 {
            self.notify.notify_waiters();
        }
    }

    fn waiting(&self) -> Waiting<'_> {
        self.waiters.fetch_add(1, Ordering::SeqCst);
        std::sync::atomic::fence(Ordering::SeqCst);
        Waiting(self)
    }

    /// Calls `check` until it decides, waiting for a change between calls (unless
    /// `block` is false) until `deadline`; none when it did not decide in time.
    async fn wait_for<R>(
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
async fn until(
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

fn deadline(timeout: Option<u64>) -> Option<Instant> {
    timeout.map(|ns| {
        let now = Instant::now();
        now.checked_add(Duration::from_nanos(ns))
            .unwrap_or_else(|| now + Duration::from_secs(86_400 * 365 * 30))
    })
}

impl Channel {
    fn check_size(&self, len: usize) -> Result<()> {
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
    fn try_put(&self, item: Vec<u8>) -> Result<Option<Vec<u8>>> {
        Ok(self.try_put_item(Item::new(item))?.map(Item::into_vec))
    }

    /// `try_put` of an item already made: gives it back when a bounded queue is full.
    fn try_put_item(&self, item: Item) -> Result<Option<Item>> {
        self.try_put_item_waking(item, true)
    }

    /// Appends `items` in order while there is room, waking waiters once: how many went
    /// in. An item that fails ends the call; the failure is the answer only when it was the
    /// first.
    fn try_put_many(&self, items: Vec<Vec<u8>>) -> Result<u32> {
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
    fn try_put_item_waking(&self, item: Item, wake: bool) -> Result<Option<Item>> {
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
                // Full (a bounded queue); the receiver is never gone (the channel holds it).
                Ok(Some(e.into_inner()))
            }
        }
    }

    async fn put(&self, item: Vec<u8>, block: bool, timeout: Option<u64>) -> Result<()> {
        self.check_size(item.len())?;
        let mut item = Some(item);
        let put = || match self.try_put(item.take()?) {
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

    /// The oldest item, if any; `Err` at end-of-file.
    fn try_get(&self, eof: bool) -> Result<Option<Vec<u8>>> {
        Ok(self.try_get_item(eof)?.map(Item::into_vec))
    }

    /// `try_get`, giving the item as it was kept.
    fn try_get_item(&self, eof: bool) -> Result<Option<Item>> {
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
        Ok(Some(item))
    }

    /// `first` and then the items waiting behind it, `max` in all.
    fn take_more(&self, first: Vec<u8>, max: u32) -> Result<Vec<Vec<u8>>> {
        let mut items = Vec::with_capacity((max as usize).min(self.len() + 1));
        items.push(first);
        while items.len() < max as usize {
            match self.try_get(false)? {
                Some(item) => items.push(item),
                None => break,
            }
        }
        Ok(items)
    }

    async fn get(&self, block: bool, timeout: Option<u64>, eof: bool) -> Result<Vec<u8>> {
        self.changed
            .wait_for(|| self.try_get(eof).transpose(), block, deadline(timeout))
            .await
            .unwrap_or_else(|| Err(ProcessError::new(ErrorKind::Empty, "the queue is empty")))
    }

    /// Whether a receive would not block: an item is waiting, or end-of-file.
    fn ready(&self) -> bool {
        !self.rx.is_empty() || self.no_sender.load(Ordering::Acquire)
    }

    fn len(&self) -> usize {
        self.rx.len()
    }

    /// Marks the channel as having no receiver or no sender any more.
    fn mark(&self, flag: &std::sync::atomic::AtomicBool) {
        flag.store(true, Ordering::Release);
        self.changed.notify();
    }
}

/// One end of a pipe.
struct ConnEnd {
    /// Where this end receives from (none: the sending end of a one-way pipe).
    recv: Option<Arc<Channel>>,
    /// Where this end sends to (none: the receiving end of a one-way pipe).
    send: Option<Arc<Channel>>,
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
    fn recv_channel(&self) -> Result<&Arc<Channel>> {
        self.recv
            .as_ref()
            .ok_or_else(|| ProcessError::invalid_state("connection is write-only"))
    }

    fn send_channel(&self) -> Result<&Arc<Channel>> {
        self.send
            .as_ref()
            .ok_or_else(|| ProcessError::invalid_state("connection is read-only"))
    }
}

struct EventObj {
    set: Mutex<bool>,
    changed: Changed,
}

/// Who holds a lock: a process, by its table's token and its name.
#[derive(Clone)]
struct Owner {
    token: u64,
    name: String,
}

struct LockObj {
    kind: LockKind,
    /// A semaphore's initial value (a bounded semaphore's maximum).
    initial: u32,
    state: Mutex<LockState>,
    changed: Changed,
}

struct LockState {
    /// Units available: a semaphore's count; 1 for a free lock, 0 for a held one.
    value: u32,
    owner: Option<Owner>,
    /// How many times the owner of an rlock acquired it.
    depth: u32,
    /// The name of an owner that ended while holding the lock, until the next acquire.
    died: Option<String>,
}

impl LockObj {
    fn new(kind: LockKind, value: u32) -> Self {
        let value = match kind {
            LockKind::Lock | LockKind::RLock => 1,
            LockKind::Semaphore | LockKind::BoundedSemaphore => value,
        };
        LockObj {
            kind,
            initial: value,
            state: Mutex::new(LockState {
                value,
                owner: None,
                depth: 0,
                died: None,
            }),
            changed: Changed::default(),
        }
    }

    fn owned(&self) -> bool {
        matches!(self.kind, LockKind::Lock | LockKind::RLock)
    }

    /// One attempt: `Some` with the outcome once decided, `None` to wait.
    fn try_acquire(&self, me: &Owner) -> Option<Result<bool>> {
        let mut state = lock(&self.state);
        if self.kind == LockKind::RLock && state.owner.as_ref().is_some_and(|o| o.token == me.token)
        {
            state.depth += 1;
            return Some(Ok(true));
        }
        if state.value == 0 {
            return None;
        }
        state.value -= 1;
        if self.owned() {
            state.owner = Some(me.clone());
            state.depth = 1;
            if let Some(dead) = state.died.take() {
                return Some(Err(ProcessError::new(
                    ErrorKind::OwnerDied,
                    format!(
                        "the lock was acquired, but its previous owner {dead} ended while \
                         holding it"
                    ),
                )));
            }
        }
        Some(Ok(true))
    }

    async fn acquire(&self, me: &Owner, block: bool, timeout: Option<u64>) -> Result<bool> {
        self.changed
            .wait_for(|| self.try_acquire(me), block, deadline(timeout))
            .await
            .unwrap_or(Ok(false))
    }

    fn release(&self, me: &Owner) -> Result<()> {
        let too_many = || ProcessError::invalid_state("semaphore or lock released too many times");
        let mut state = lock(&self.state);
        match self.kind {
            LockKind::RLock => {
                if state.owner.as_ref().is_none_or(|o| o.token != me.token) {
                    return Err(ProcessError::invalid_state(
                        "cannot release un-acquired lock",
                    ));
                }
                state.depth -= 1;
                if state.depth > 0 {
                    return Ok(());
                }
                state.owner = None;
                state.value = 1;
            }
            LockKind::Lock => {
                if state.value >= 1 {
                    return Err(too_many());
                }
                state.owner = None;
                state.depth = 0;
                state.value = 1;
            }
            LockKind::BoundedSemaphore => {
                if state.value >= self.initial {
                    return Err(too_many());
                }
                state.value += 1;
            }
            LockKind::Semaphore => {
                state.value = state.value.checked_add(1).ok_or_else(too_many)?;
            }
        }
        drop(state);
        self.changed.notify();
        Ok(())
    }

    /// Releases the lock if `owner` holds it, for the next owner to learn of.
    fn abandon(&self, owner: &Owner) {
        let mut state = lock(&self.state);
        if state.owner.as_ref().is_some_and(|o| o.token == owner.token) {
            state.owner = None;
            state.depth = 0;
            state.value = 1;
            state.died = Some(owner.name.clone());
            drop(state);
            self.changed.notify();
        }
    }

    fn value(&self) -> u32 {
        lock(&self.state).value
    }
}

/// Hashes handles (distinct u64s, chosen by the host) with one multiplication: the table
/// is looked up on every operation, and its keys need no protection from collisions.
#[derive(Clone, Copy, Default)]
struct HandleHasher;

impl std::hash::BuildHasher for HandleHasher {
    type Hasher = HandleHash;

    fn build_hasher(&self) -> HandleHash {
        HandleHash(0)
    }
}

struct HandleHash(u64);

impl std::hash::Hasher for HandleHash {
    fn finish(&self) -> u64 {
        // Fibonacci hashing spreads consecutive handles over the high bits too.
        self.0.wrapping_mul(0x9e37_79b9_7f4a_7c15)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// The objects one process holds.
pub(crate) struct SyncTable {
    registry: Arc<Registry>,
    owner: Owner,
    objects: Mutex<HashMap<u64, Arc<Object>, HandleHasher>>,
}

impl Drop for SyncTable {
    fn drop(&mut self) {
        let objects = std::mem::take(self.objects.get_mut().unwrap_or_else(|e| e.into_inner()));
        for object in objects.values() {
            if let Kind::Lock(l) = &object.kind {
                l.abandon(&self.owner);
            }
        }
    }
}

impl SyncTable {
    /// The table of process `name`, holding `objects` (shared by its parent).
    pub fn new(registry: Arc<Registry>, name: &str, objects: Vec<(u64, Arc<Object>)>) -> Self {
        let token = registry.next_owner.fetch_add(1, Ordering::Relaxed);
        SyncTable {
            registry,
            owner: Owner {
                token,
                name: name.to_string(),
            },
            objects: Mutex::new(objects.into_iter().collect()),
        }
    }

    #[cfg(test)]
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    fn insert(&self, (id, object): (u64, Arc<Object>)) -> u64 {
        lock(&self.objects).insert(id, object);
        id
    }

    /// The object `h` names; `what` is the noun phrase of the error ("a queue").
    fn object(&self, h: u64, what: &str) -> Result<Arc<Object>> {
        lock(&self.objects).get(&h).cloned().ok_or_else(|| {
            ProcessError::invalid_argument(format!("{h} is not {what} of this process"))
        })
    }

    /// `queue-try-put-small`: true when `item` was appended, false when the bounded queue
    /// is full.
    pub fn try_put_small(&self, h: u64, item: &[u8]) -> Result<bool> {
        self.with_queue(h, |q| {
            q.check_size(item.len())?;
            Ok(q.try_put_item(Item::from_slice(item))?.is_none())
        })?
    }

    /// `queue-try-get-small`: the oldest item, none when the queue is empty.
    pub fn try_get_small(&self, h: u64) -> Result<Option<Taken>> {
        Ok(self
            .with_queue(h, |q| q.try_get_item(false))??
            .map(Item::taken))
    }

    /// Runs `f` on queue `h` without taking a reference to it (the fast path).
    fn with_queue<T>(&self, h: u64, f: impl FnOnce(&Channel) -> T) -> Result<T> {
        match lock(&self.objects).get(&h).map(|o| &o.kind) {
            Some(Kind::Queue(q)) => Ok(f(q)),
            _ => Err(ProcessError::invalid_argument(format!(
                "{h} is not a queue of this process"
            ))),
        }
    }

    fn queue(&self, h: u64) -> Result<Arc<Channel>> {
        match &self.object(h, "a queue")?.kind {
            Kind::Queue(q) => Ok(q.clone()),
            _ => Err(ProcessError::invalid_argument(format!(
                "{h} is not a queue of this process"
            ))),
        }
    }

    fn with_conn<T>(&self, h: u64, f: impl FnOnce(&ConnEnd) -> Result<T>) -> Result<T> {
        let object = self.object(h, "a connection")?;
        match &object.kind {
            Kind::Conn(c) => f(c),
            _ => Err(ProcessError::invalid_argument(format!(
                "{h} is not a connection of this process"
            ))),
        }
    }

    fn with_event<T>(&self, h: u64, f: impl FnOnce(&EventObj) -> T) -> Result<T> {
        let object = self.object(h, "an event")?;
        match &object.kind {
            Kind::Event(e) => Ok(f(e)),
            _ => Err(ProcessError::invalid_argument(format!(
                "{h} is not an event of this process"
            ))),
        }
    }

    fn lock_obj(&self, h: u64) -> Result<Arc<Object>> {
        let object = self.object(h, "a lock")?;
        match &object.kind {
            Kind::Lock(_) => Ok(object),
            _ => Err(ProcessError::invalid_argument(format!(
                "{h} is not a lock of this process"
            ))),
        }
    }

    /// The channel a receive on `h` (a queue or a readable connection) reads.
    fn receivable(&self, h: u64) -> Result<Arc<Channel>> {
        let object = self.object(h, "a connection or queue")?;
        match &object.kind {
            Kind::Queue(q) => Ok(q.clone()),
            Kind::Conn(c) => c.recv_channel().cloned(),
            _ => Err(ProcessError::invalid_argument(format!(
                "{h} is not a connection or queue of this process"
            ))),
        }
    }

    /// The objects `handles` name, for a child about to be created.
    pub fn shares(&self, handles: &[u64]) -> Result<Vec<(u64, Arc<Object>)>> {
        let objects = lock(&self.objects);
        handles
            .iter()
            .map(|&h| {
                objects.get(&h).map(|o| (h, o.clone())).ok_or_else(|| {
                    ProcessError::invalid_argument(format!(
                        "{h} is not a queue, connection, event or lock of this process"
                    ))
                })
            })
            .collect()
    }

    /// Which of `handles` would not block on receive, in the order given; waits up to
    /// `timeout` (none: forever) for one to be.
    async fn ready(&self, handles: &[u64], timeout: Option<u64>) -> Result<Vec<u64>> {
        let channels = handles
            .iter()
            .map(|&h| self.receivable(h))
            .collect::<Result<Vec<_>>>()?;
        let deadline = deadline(timeout);
        let _waiting: Vec<Waiting<'_>> = channels.iter().map(|c| c.changed.waiting()).collect();
        loop {
            let mut waits: Vec<_> = channels
                .iter()
                .map(|c| Box::pin(c.changed.notify.notified()))
                .collect();
            for w in &mut waits {
                w.as_mut().enable();
            }
            let ready: Vec<u64> = handles
                .iter()
                .zip(&channels)
                .filter(|(_, c)| c.ready())
                .map(|(h, _)| *h)
                .collect();
            if !ready.is_empty() || channels.is_empty() || timeout == Some(0) {
                return Ok(ready);
            }
            let any = futures::future::select_all(waits);
            let woke = match deadline {
                None => {
                    any.await;
                    true
                }
                Some(d) => tokio::time::timeout_at(d, any).await.is_ok(),
            };
            if !woke {
                return Ok(Vec::new());
            }
        }
    }

    /// Carries out `request` at once if it needs no waiting (the common case of a put, a
    /// get, an acquire); gives it back otherwise, for [`serve`](Self::serve).
    pub fn serve_now(&self, request: Request) -> Result<Response, Request> {
        use Request as R;
        let full = || ProcessError::new(ErrorKind::Full, "the queue is full");
        let empty = || ProcessError::new(ErrorKind::Empty, "the queue is empty");
        match request {
            R::QueuePut {
                h,
                item,
                block,
                timeout,
            } => {
                let put = self.with_queue(h, |q| {
                    q.check_size(item.len())?;
                    q.try_put(item)
                });
                match put.and_then(|r| r) {
                    Ok(None) => Ok(Response::Unit),
                    Err(e) => Ok(Response::Error(e.into())),
                    Ok(Some(_)) if !block => Ok(Response::Error(full().into())),
                    Ok(Some(item)) => Err(R::QueuePut {
                        h,
                        item,
                        block,
                        timeout,
                    }),
                }
            }
            R::QueueGet { h, block, timeout } => {
                match self.with_queue(h, |q| q.try_get(false)).and_then(|r| r) {
                    Ok(Some(item)) => Ok(Response::Bytes(item)),
                    Err(e) => Ok(Response::Error(e.into())),
                    Ok(None) if !block => Ok(Response::Error(empty().into())),
                    Ok(None) => Err(R::QueueGet { h, block, timeout }),
                }
            }
            R::QueueGetMany { max: 0, .. } => Ok(Response::Error(no_items().into())),
            R::QueueGetMany {
                h,
                max,
                block,
                timeout,
            } => {
                let got = self.queue(h).and_then(|q| match q.try_get(false)? {
                    Some(first) => q.take_more(first, max).map(Some),
                    None => Ok(None),
                });
                match got {
                    Ok(Some(items)) => Ok(Response::Items(items)),
                    Err(e) => Ok(Response::Error(e.into())),
                    Ok(None) if !block => Ok(Response::Error(empty().into())),
                    Ok(None) => Err(R::QueueGetMany {
                        h,
                        max,
                        block,
                        timeout,
                    }),
                }
            }
            R::ConnRecv { h } => {
                match self
                    .with_conn(h, |c| c.recv_channel().cloned())
                    .and_then(|c| c.try_get(true))
                {
                    Ok(Some(item)) => Ok(Response::Bytes(item)),
                    Err(e) => Ok(Response::Error(e.into())),
                    Ok(None) => Err(R::ConnRecv { h }),
                }
            }
            R::LockAcquire { h, block, timeout } => {
                let object = match self.lock_obj(h) {
                    Ok(o) => o,
                    Err(e) => return Ok(Response::Error(e.into())),
                };
                let Kind::Lock(l) = &object.kind else {
                    unreachable!("lock_obj returns locks")
                };
                match l.try_acquire(&self.owner) {
                    Some(r) => Ok(Response::from_result(r, Response::Bool)),
                    None if !block => Ok(Response::Bool(false)),
                    None => Err(R::LockAcquire { h, block, timeout }),
                }
            }
            request @ (R::QueuePutMany { .. }
            | R::ConnSend { .. }
            | R::QueueSize { .. }
            | R::EventSet { .. }
            | R::EventClear { .. }
            | R::EventIsSet { .. }
            | R::LockRelease { .. }
            | R::LockValue { .. }
            | R::Close { .. }) => {
                // None of these ever waits.
                let mut served = std::pin::pin!(self.serve(request));
                let waker = std::task::Waker::noop();
                match served
                    .as_mut()
                    .poll(&mut std::task::Context::from_waker(waker))
                {
                    std::task::Poll::Ready(r) => Ok(r),
                    std::task::Poll::Pending => {
                        unreachable!("requests that never wait complete at once")
                    }
                }
            }
            request => Err(request),
        }
    }

    /// Carries out `request`: at once when it needs no waiting ([`serve_now`]), else by
    /// [`serve`].
    ///
    /// [`serve_now`]: Self::serve_now
    /// [`serve`]: Self::serve
    pub async fn call(&self, request: Request) -> Response {
        match self.serve_now(request) {
            Ok(response) => response,
            // Boxed: the waiting path is rare, and its future is large.
            Err(request) => Box::pin(self.serve(request)).await,
        }
    }

    /// Carries out one request of this table's process.
    pub async fn serve(&self, request: Request) -> Response {
        use Request as R;
        let reg = &self.registry;
        match request {
            R::QueueNew { maxsize } => {
                Response::from_result(reg.new_object(Kind::Queue(reg.channel(maxsize))), |o| {
                    Response::Handle(self.insert(o))
                })
            }
            R::QueuePut {
                h,
                item,
                block,
                timeout,
            } => {
                let r = match self.queue(h) {
                    Ok(q) => q.put(item, block, timeout).await,
                    Err(e) => Err(e),
                };
                Response::from_result(r, |()| Response::Unit)
            }
            R::QueueGet { h, block, timeout } => {
                let r = match self.queue(h) {
                    Ok(q) => q.get(block, timeout, false).await,
                    Err(e) => Err(e),
                };
                Response::from_result(r, Response::Bytes)
            }
            R::QueueGetMany {
                h,
                max,
                block,
                timeout,
            } => {
                let r = match self.queue(h) {
                    _ if max == 0 => Err(no_items()),
                    Ok(q) => match q.get(block, timeout, false).await {
                        Ok(first) => q.take_more(first, max),
                        Err(e) => Err(e),
                    },
                    Err(e) => Err(e),
                };
                Response::from_result(r, Response::Items)
            }
            R::QueuePutMany { h, items } => Response::from_result(
                self.queue(h).and_then(|q| q.try_put_many(items)),
                Response::Count,
            ),
            R::QueueSize { h } => Response::from_result(self.queue(h), |q| {
                Response::Count(u32::try_from(q.len()).unwrap_or(u32::MAX))
            }),
            R::PipeNew { duplex } => {
                Response::from_result(self.pipe(duplex), |(a, b)| Response::Pair(a, b))
            }
            R::ConnSend { h, message } => {
                let r = self
                    .with_conn(h, |c| c.send_channel().cloned())
                    .and_then(|c| {
                        c.check_size(message.len())?;
                        c.try_put(message).map(|_| ())
                    });
                Response::from_result(r, |()| Response::Unit)
            }
            R::ConnRecv { h } => {
                let r = match self.with_conn(h, |c| c.recv_channel().cloned()) {
                    Ok(c) => c.get(true, None, true).await,
                    Err(e) => Err(e),
                };
                Response::from_result(r, Response::Bytes)
            }
            R::ConnPoll { h, timeout } => {
                let r = match self.with_conn(h, |c| c.recv_channel().map(|_| ())) {
                    Ok(()) => self.ready(&[h], timeout).await.map(|r| !r.is_empty()),
                    Err(e) => Err(e),
                };
                Response::from_result(r, Response::Bool)
            }
            R::EventNew => Response::from_result(
                reg.new_object(Kind::Event(EventObj {
                    set: Mutex::new(false),
                    changed: Changed::default(),
                })),
                |o| Response::Handle(self.insert(o)),
            ),
            R::EventSet { h } => Response::from_result(
                self.with_event(h, |e| {
                    *lock(&e.set) = true;
                    e.changed.notify();
                }),
                |()| Response::Unit,
            ),
            R::EventClear { h } => {
                Response::from_result(self.with_event(h, |e| *lock(&e.set) = false), |()| {
                    Response::Unit
                })
            }
            R::EventIsSet { h } => {
                Response::from_result(self.with_event(h, |e| *lock(&e.set)), Response::Bool)
            }
            R::EventWait { h, timeout } => {
                let r = match self.object(h, "an event") {
                    Ok(o) => match &o.kind {
                        Kind::Event(e) => Ok(event_wait(e, timeout).await),
                        _ => Err(ProcessError::invalid_argument(format!(
                            "{h} is not an event of this process"
                        ))),
                    },
                    Err(e) => Err(e),
                };
                Response::from_result(r, Response::Bool)
            }
            R::LockNew { kind, value } => {
                Response::from_result(reg.new_object(Kind::Lock(LockObj::new(kind, value))), |o| {
                    Response::Handle(self.insert(o))
                })
            }
            R::LockAcquire { h, block, timeout } => {
                let r = match self.lock_obj(h) {
                    Ok(o) => match &o.kind {
                        Kind::Lock(l) => l.acquire(&self.owner, block, timeout).await,
                        _ => unreachable!("lock_obj returns locks"),
                    },
                    Err(e) => Err(e),
                };
                Response::from_result(r, Response::Bool)
            }
            R::LockRelease { h } => Response::from_result(
                self.lock_obj(h).and_then(|o| match &o.kind {
                    Kind::Lock(l) => l.release(&self.owner),
                    _ => unreachable!("lock_obj returns locks"),
                }),
                |()| Response::Unit,
            ),
            R::LockValue { h } => Response::from_result(
                self.lock_obj(h).map(|o| match &o.kind {
                    Kind::Lock(l) => l.value(),
                    _ => unreachable!("lock_obj returns locks"),
                }),
                Response::Count,
            ),
            R::Close { h } => {
                self.close(h);
                Response::Unit
            }
            R::Ready { handles, timeout } => {
                Response::from_result(self.ready(&handles, timeout).await, Response::Handles)
            }
            R::Share { handles } => Response::from_result(self.shares(&handles), |objects| {
                Response::Handle(reg.share(objects))
            }),
            R::Revoke { token } => {
                reg.claim(token);
                Response::Unit
            }
            R::Gone { pid } => {
                reg.gone(pid).await;
                Response::Unit
            }
        }
    }

    fn pipe(&self, duplex: bool) -> Result<(u64, u64)> {
        let reg = &self.registry;
        let (a, b) = if duplex {
            let ab = reg.channel(0);
            let ba = reg.channel(0);
            (
                ConnEnd {
                    recv: Some(ba.clone()),
                    send: Some(ab.clone()),
                },
                ConnEnd {
                    recv: Some(ab),
                    send: Some(ba),
                },
            )
        } else {
            let c = reg.channel(0);
            (
                ConnEnd {
                    recv: Some(c.clone()),
                    send: None,
                },
                ConnEnd {
                    recv: None,
                    send: Some(c),
                },
            )
        };
        let a = reg.new_object(Kind::Conn(a))?;
        let b = reg.new_object(Kind::Conn(b))?;
        Ok((self.insert(a), self.insert(b)))
    }

    /// The process stops holding `h`; a lock it owns is released as if it had died.
    pub fn close(&self, h: u64) {
        let object = lock(&self.objects).remove(&h);
        if let Some(object) = object
            && let Kind::Lock(l) = &object.kind
        {
            l.abandon(&self.owner);
        }
    }
}

/// A `queue-get-many` for no items.
fn no_items() -> ProcessError {
    ProcessError::invalid_argument("queue-get-many takes at least 1 item: max must not be 0")
}

async fn event_wait(e: &EventObj, timeout: Option<u64>) -> bool {
    let set = || lock(&e.set).then_some(());
    e.changed
        .wait_for(set, true, deadline(timeout))
        .await
        .is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> SyncTable {
        SyncTable::new(Registry::new(Limits::default()), "MainProcess", Vec::new())
    }

    fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn queue_is_fifo_and_bounded() {
        block_on(async {
            let t = table();
            let q = t
                .serve(Request::QueueNew { maxsize: 1 })
                .await
                .handle()
                .unwrap();
            let put = |item: u8| Request::QueuePut {
                h: q,
                item: vec![item],
                block: false,
                timeout: None,
            };
            t.serve(put(1)).await.unit().unwrap();
            let full = t.serve(put(2)).await.unit().unwrap_err();
            assert_eq!(
                (full.kind, full.message.as_str()),
                (ErrorKind::Full, "the queue is full")
            );
            let get = Request::QueueGet {
                h: q,
                block: false,
                timeout: None,
            };
            assert_eq!(t.serve(get).await.bytes().unwrap(), vec![1]);
        });
    }

    #[test]
    fn dropped_end_gives_eof_after_drain() {
        block_on(async {
            let a = table();
            let (x, y) = a
                .serve(Request::PipeNew { duplex: true })
                .await
                .pair()
                .unwrap();
            let shared = a.shares(&[y]).unwrap();
            a.close(y);
            let b = SyncTable::new(a.registry().clone(), "Process-1", shared);
            b.serve(Request::ConnSend {
                h: y,
                message: b"hi".to_vec(),
            })
            .await
            .unit()
            .unwrap();
            drop(b);
            assert_eq!(
                a.serve(Request::ConnRecv { h: x }).await.bytes().unwrap(),
                b"hi"
            );
            let eof = a
                .serve(Request::ConnRecv { h: x })
                .await
                .bytes()
                .unwrap_err();
            assert_eq!(eof.kind, ErrorKind::Eof);
            let broken = a
                .serve(Request::ConnSend {
                    h: x,
                    message: vec![],
                })
                .await
                .unit()
                .unwrap_err();
            assert_eq!(broken.kind, ErrorKind::BrokenPipe);
        });
    }

    #[test]
    fn dead_owner_releases_lock_and_is_reported_once() {
        block_on(async {
            let a = table();
            let l = a
                .serve(Request::LockNew {
                    kind: LockKind::Lock,
                    value: 0,
                })
                .await
                .handle()
                .unwrap();
            let shared = a.shares(&[l]).unwrap();
            let b = SyncTable::new(a.registry().clone(), "Process-1", shared);
            let acquire = || Request::LockAcquire {
                h: l,
                block: false,
                timeout: None,
            };
            assert!(b.serve(acquire()).await.bool().unwrap());
            assert!(!a.serve(acquire()).await.bool().unwrap());
            drop(b);
            let died = a.serve(acquire()).await.bool().unwrap_err();
            assert_eq!(died.kind, ErrorKind::OwnerDied);
            assert_eq!(
                died.message,
                "the lock was acquired, but its previous owner Process-1 ended while holding it"
            );
            a.serve(Request::LockRelease { h: l }).await.unit().unwrap();
            assert!(a.serve(acquire()).await.bool().unwrap());
        });
    }

    /// Any sequence of requests from several processes, with handles that exist, handles
    /// of other processes and made-up ones, never panics, never waits when asked not to,
    /// answers each request with its own kind of answer or an error, and leaves the run's
    /// accounts at zero once every process is gone.
    mod fuzz {
        use super::*;
        use proptest::prelude::*;

        #[derive(Debug, Clone)]
        enum Op {
            Request(usize, u8, usize, Vec<u8>, u32),
            Share(usize, usize, usize),
            End(usize),
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                6 => (0..3usize, 0..22u8, 0..8usize, proptest::collection::vec(any::<u8>(), 0..16), 0..4u32)
                    .prop_map(|(p, k, h, b, n)| Op::Request(p, k, h, b, n)),
                1 => (0..3usize, 0..3usize, 0..8usize).prop_map(|(a, b, h)| Op::Share(a, b, h)),
                1 => (0..3usize).prop_map(Op::End),
            ]
        }

        fn request(kind: u8, h: u64, bytes: Vec<u8>, n: u32) -> Request {
            let t = Some(0);
            match kind {
                0 => Request::QueueNew { maxsize: n },
                1 => Request::QueuePut {
                    h,
                    item: bytes,
                    block: n.is_multiple_of(2),
                    timeout: t,
                },
                2 => Request::QueueGet {
                    h,
                    block: n.is_multiple_of(2),
                    timeout: t,
                },
                3 => Request::QueueSize { h },
                4 => Request::PipeNew {
                    duplex: n.is_multiple_of(2),
                },
                5 => Request::ConnSend { h, message: bytes },
                6 => Request::ConnPoll { h, timeout: t },
                7 => Request::EventNew,
                8 => Request::EventSet { h },
                9 => Request::EventClear { h },
                10 => Request::EventIsSet { h },
                11 => Request::EventWait { h, timeout: t },
                12 => Request::LockNew {
                    kind: [
                        LockKind::Lock,
                        LockKind::RLock,
                        LockKind::Semaphore,
                        LockKind::BoundedSemaphore,
                    ][n as usize % 4],
                    value: n,
                },
                13 => Request::LockAcquire {
                    h,
                    block: n.is_multiple_of(2),
                    timeout: t,
                },
                14 => Request::LockRelease { h },
                15 => Request::LockValue { h },
                16 => Request::Close { h },
                17 => Request::Ready {
                    handles: vec![h, h ^ 1],
                    timeout: t,
                },
                18 => Request::Share { handles: vec![h] },
                19 => Request::Revoke {
                    token: u64::from(n),
                },
                20 => Request::ConnRecv { h },
                _ => Request::QueueGet {
                    h,
                    block: false,
                    timeout: None,
                },
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]
            #[test]
            fn requests_never_panic_or_hang(ops in proptest::collection::vec(op(), 1..60)) {
                let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
                let registry = Registry::new(Limits { queued: 64, objects: 12, message: 8, ..Limits::default() });
                let mut tables: Vec<Option<SyncTable>> = (0..3)
                    .map(|i| Some(SyncTable::new(registry.clone(), &format!("P{i}"), Vec::new())))
                    .collect();
                let mut handles: Vec<u64> = vec![HANDLE_BIT | 1, 42, HANDLE_BIT | 999];
                for op in ops {
                    match op {
                        Op::Request(p, kind, h, bytes, n) => {
                            let Some(table) = &tables[p] else { continue };
                            // ConnRecv blocks by design; only ask it of a handle with data.
                            let h = handles[h % handles.len()];
                            let req = request(kind, h, bytes, n);
                            let blocking_recv = matches!(req, Request::ConnRecv { .. });
                            let answer = rt.block_on(async {
                                tokio::time::timeout(Duration::from_secs(5), async {
                                    if blocking_recv {
                                        match table.serve_now(req) {
                                            Ok(r) => r,
                                            Err(_) => Response::Unit,
                                        }
                                    } else {
                                        table.serve(req).await
                                    }
                                }).await
                            });
                            let answer = answer.expect("a request with a zero timeout waited");
                            match answer {
                                Response::Handle(h) => handles.push(h),
                                Response::Pair(a, b) => handles.extend([a, b]),
                                _ => {}
                            }
                        }
                        Op::Share(from, to, h) => {
                            let h = handles[h % handles.len()];
                            if let (Some(a), Some(_)) = (&tables[from], &tables[to])
                                && let Ok(objects) = a.shares(&[h])
                            {
                                let token = registry.share(objects);
                                let name = format!("P{to}");
                                tables[to] = Some(SyncTable::new(registry.clone(), &name, registry.claim(token)));
                            }
                        }
                        Op::End(p) => {
                            tables[p] = None;
                            tables[p] = Some(SyncTable::new(registry.clone(), "again", Vec::new()));
                        }
                    }
                }
                // Shares never claimed live until the run ends (as a revoke would end them).
                let accounts = registry.accounts.clone();
                drop(tables);
                drop(registry);
                prop_assert_eq!(accounts.objects.load(Ordering::Relaxed), 0);
                prop_assert_eq!(accounts.queued.load(Ordering::Relaxed), 0);
            }
        }
    }
}
