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

pub(crate) mod client;
mod coord;
mod objects;
pub(crate) mod remote;
mod table;
pub(crate) mod word;

/// The file of a native run's directory that holds its locks' state ([`word::Arena`]).
pub(crate) const ARENA_FILE: &str = "locks";

pub(crate) use client::{Client, Link, Shares};
pub(crate) use objects::{Registry, SharedObjects, Taken};
pub(crate) use table::SyncTable;

use crate::error::ProcessError;
use serde::{Deserialize, Serialize};

type Result<T, E = ProcessError> = std::result::Result<T, E>;

/// Handles of sync objects have this bit set; process handles never do.
pub(crate) const HANDLE_BIT: u64 = 1 << 63;

/// Whether `h` names a sync object (rather than a process).
pub(crate) fn is_sync_handle(h: u64) -> bool {
    h & HANDLE_BIT != 0
}

/// What `lock-new` makes (the WIT `lock-kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum LockKind {
    Lock,
    RLock,
    Semaphore,
    BoundedSemaphore,
}

/// An object whose state is a [`word::Slot`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum SlotKind {
    /// A lock or semaphore of `kind`, made with `initial` units.
    Lock {
        kind: LockKind,
        initial: u32,
    },
    Event,
    /// A shared block of `len` bytes.
    Memory {
        len: u32,
    },
}

/// One operation of a process on its sync objects. Timeouts are in nanoseconds.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Request {
    QueueNew {
        maxsize: u32,
    },
    JoinableQueueNew {
        maxsize: u32,
    },
    QueueTaskDone {
        h: u64,
    },
    QueueJoin {
        h: u64,
        timeout: Option<u64>,
    },
    ConditionNew {
        lock: u64,
    },
    ConditionWait {
        h: u64,
        timeout: Option<u64>,
    },
    ConditionNotify {
        h: u64,
        n: Option<u32>,
    },
    BarrierNew {
        parties: u32,
        action: bool,
        timeout: Option<u64>,
    },
    BarrierWait {
        h: u64,
        timeout: Option<u64>,
    },
    BarrierActionDone {
        h: u64,
        ok: bool,
    },
    BarrierReset {
        h: u64,
    },
    BarrierAbort {
        h: u64,
    },
    /// Answers parties, parties waiting, and whether the barrier is broken.
    BarrierState {
        h: u64,
    },
    /// A put of an item that carries `objects` of the caller's, which its taker holds
    /// from then on.
    QueuePutObjects {
        h: u64,
        item: Vec<u8>,
        objects: Vec<u64>,
        block: bool,
        timeout: Option<u64>,
    },
    /// A send of a message that carries `objects`, as `QueuePutObjects`.
    ConnSendObjects {
        h: u64,
        message: Vec<u8>,
        objects: Vec<u64>,
    },
    MemoryNew {
        size: u32,
    },
    DictNew,
    DictGet {
        h: u64,
        key: Vec<u8>,
    },
    DictSet {
        h: u64,
        key: Vec<u8>,
        value: Vec<u8>,
    },
    DictRemove {
        h: u64,
        key: Vec<u8>,
    },
    DictLen {
        h: u64,
    },
    DictItems {
        h: u64,
    },
    DictClear {
        h: u64,
    },
    ListNew,
    ListLen {
        h: u64,
    },
    ListGet {
        h: u64,
        index: u32,
    },
    ListSet {
        h: u64,
        index: u32,
        item: Vec<u8>,
    },
    ListInsert {
        h: u64,
        index: u32,
        item: Vec<u8>,
    },
    ListPop {
        h: u64,
        index: Option<u32>,
    },
    ListItems {
        h: u64,
    },
    MemoryRead {
        h: u64,
        offset: u32,
        len: u32,
    },
    MemoryWrite {
        h: u64,
        offset: u32,
        bytes: Vec<u8>,
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
    /// Where the state of lock, event or shared block `h` is, for a native child to change
    /// it itself when nobody waits (no guest asks this).
    SlotInfo {
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
    /// Publishes a lifecycle event of a process of a native child's OS process in the
    /// run's root host.
    Lifecycle(crate::events::ProcessEvent),
}

/// The answer to a [`Request`]. Each request has one kind of answer (an [`Answer`]), or an
/// error.
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
    Barrier(u32, u32, bool),
    MaybeBytes(Option<Vec<u8>>),
    Pairs(Vec<(Vec<u8>, Vec<u8>)>),
    /// What object `h` of a `SlotInfo` is, its slot in the run's arena (none: it is not
    /// there) and the token of the asking process's table.
    Slot {
        object: SlotKind,
        index: Option<u32>,
        token: u64,
    },
    Error(ProcessError),
    /// `response`, of a call in which the process took items that gave it the queues
    /// `queues` (remote answers only: the client learns its new queues).
    Adopted {
        queues: Vec<u64>,
        response: Box<Response>,
    },
    /// The request was cancelled before it completed (remote waits only).
    Cancelled,
}

impl Response {
    /// The answer of the type its request has, or the error it carries.
    pub fn answer<T: Answer>(self) -> Result<T> {
        T::from_response(self)
    }

    fn unexpected(self) -> ProcessError {
        match self {
            Response::Error(e) => e,
            Response::Cancelled => ProcessError::host_failure("the call was cancelled"),
            other => ProcessError::host_failure(format!(
                "internal error: unexpected answer {other:?} from the run's object server"
            )),
        }
    }
}

impl<T: Answer> From<Result<T>> for Response {
    fn from(r: Result<T>) -> Response {
        match r {
            Ok(v) => v.into_response(),
            Err(e) => Response::Error(e),
        }
    }
}

/// A value one kind of [`Response`] carries.
pub(crate) trait Answer: Sized {
    /// The value `response` carries, or its error.
    fn from_response(response: Response) -> Result<Self>;
    /// The response that carries it.
    fn into_response(self) -> Response;
}

/// `Answer` for `$ty`, carried as `$variant`.
macro_rules! answer {
    ($ty:ty, $pat:pat => $value:expr, $v:ident => $response:expr) => {
        impl Answer for $ty {
            fn from_response(response: Response) -> Result<Self> {
                match response {
                    $pat => Ok($value),
                    other => Err(other.unexpected()),
                }
            }

            fn into_response(self) -> Response {
                let $v = self;
                $response
            }
        }
    };
}

answer!((), Response::Unit => (), _unit => Response::Unit);
answer!(u64, Response::Handle(h) => h, h => Response::Handle(h));
answer!((u64, u64), Response::Pair(a, b) => (a, b), p => Response::Pair(p.0, p.1));
answer!(Vec<u8>, Response::Bytes(b) => b, b => Response::Bytes(b));
answer!(bool, Response::Bool(b) => b, b => Response::Bool(b));
answer!(u32, Response::Count(n) => n, n => Response::Count(n));
answer!(Vec<u64>, Response::Handles(h) => h, h => Response::Handles(h));
answer!(Vec<Vec<u8>>, Response::Items(i) => i, i => Response::Items(i));
answer!(Option<Vec<u8>>, Response::MaybeBytes(b) => b, b => Response::MaybeBytes(b));
answer!(Vec<(Vec<u8>, Vec<u8>)>, Response::Pairs(p) => p, p => Response::Pairs(p));
answer!((u32, u32, bool), Response::Barrier(p, w, b) => (p, w, b), s => Response::Barrier(s.0, s.1, s.2));
