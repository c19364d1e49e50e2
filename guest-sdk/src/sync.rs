//! Queues, pipes, events, locks and semaphores shared between the processes of one run,
//! over the host's `sync` interface.
//!
//! Every object lives in the host; a value here is a cheap handle to it. Clones share one
//! object (an `Rc` inside); when the last value naming an object in this process is dropped
//! (or the object is closed), the SDK tells the host this process no longer holds it.
//!
//! Objects reach another process only when passed: in a child's start arguments
//! ([`Builder::args`](crate::Builder::args) / [`Process::new`](crate::Process::new), which
//! list them in the `shares` of the new process), or inside an item put on a queue or a
//! message sent through a pipe (the host gives them to whoever takes the item). Their
//! `Serialize` works only there. Serialising one anywhere else (into a managed dictionary,
//! a file) is an error, because the handle would mean nothing to a process that does not
//! hold the object.

use crate::__private::bindings::wasmproc::process::sync as host;
use crate::{Error, ErrorKind, Sentinel};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;
use std::rc::{Rc, Weak};
use std::time::Duration;

pub(crate) fn nanos(timeout: Option<Duration>) -> Option<u64> {
    timeout.map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

// ---------------------------------------------------------------------------------------
// The object core: one per (process, handle), shared by every clone and deserialised copy.
// ---------------------------------------------------------------------------------------

/// This process's hold on one host object. Dropping the last `Rc` closes it in the host.
#[derive(Debug)]
pub(crate) struct Inner {
    handle: u64,
    closed: Cell<bool>,
}

thread_local! {
    /// The objects of this process by handle, so that a handle deserialised twice (or
    /// given twice in one argument list) is one object with one `sync.close`.
    static REGISTRY: RefCell<HashMap<u64, Weak<Inner>>> = RefCell::new(HashMap::new());
    /// The objects serialised by the `Builder::args` call in progress (None: no call).
    static SHARES: RefCell<Option<Vec<Rc<Inner>>>> = const { RefCell::new(None) };
    /// The message of the last custom serialisation error (postcard drops those messages).
    static SER_ERROR: RefCell<Option<String>> = const { RefCell::new(None) };
    /// A reusable buffer for serialising items, so that a `put`/`send` allocates nothing.
    static SCRATCH: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

impl Inner {
    /// The object for `handle` in this process: the existing one, or a new one.
    pub(crate) fn get(handle: u64) -> Rc<Inner> {
        REGISTRY.with(|r| {
            let mut r = r.borrow_mut();
            if let Some(existing) = r.get(&handle).and_then(Weak::upgrade) {
                return existing;
            }
            let inner = Rc::new(Inner {
                handle,
                closed: Cell::new(false),
            });
            r.insert(handle, Rc::downgrade(&inner));
            inner
        })
    }

    pub(crate) fn handle(&self) -> u64 {
        self.handle
    }

    pub(crate) fn close(&self) {
        if !self.closed.replace(true) {
            host::close(self.handle);
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if !self.closed.get() {
            host::close(self.handle);
        }
        let _ = REGISTRY.try_with(|r| {
            let mut r = r.borrow_mut();
            if r.get(&self.handle).is_some_and(|w| w.strong_count() == 0) {
                r.remove(&self.handle);
            }
        });
    }
}

/// Serialises `value` as a child's start arguments: returns the bytes and the sync objects
/// serialised into them (each once), which become the child's `shares`.
pub(crate) fn serialize_args<A: Serialize + ?Sized>(
    value: &A,
) -> (Result<Vec<u8>, postcard::Error>, Vec<Rc<Inner>>) {
    let outer = SHARES.with(|s| s.replace(Some(Vec::new())));
    SER_ERROR.with(|e| e.borrow_mut().take());
    let bytes = postcard::to_allocvec(value);
    let shares = SHARES.with(|s| s.replace(outer)).unwrap_or_default();
    (bytes, shares)
}

/// The message of a failed serialisation: the sync objects' own message when one of them
/// refused, otherwise `what` and postcard's error.
pub(crate) fn serialize_error(e: postcard::Error, what: impl FnOnce() -> String) -> Error {
    match SER_ERROR.with(|m| m.borrow_mut().take()) {
        Some(message) => Error::invalid_argument(message),
        None => Error::invalid_argument(format!("cannot serialise {}: {e}", what())),
    }
}

/// `Serialize` of every sync object: the handle (and `extra`, what a copy in another
/// process needs to know), registered as a share of the `Builder::args` call in progress.
pub(crate) fn serialize_shared<S: Serializer>(
    inner: &Rc<Inner>,
    extra: Option<u32>,
    what: &str,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let message = if inner.closed.get() {
        Some(format!(
            "a closed {what} cannot be passed to a child process"
        ))
    } else {
        SHARES.with(|s| match s.borrow_mut().as_mut() {
            Some(shares) => {
                if !shares.iter().any(|o| o.handle == inner.handle) {
                    shares.push(inner.clone());
                }
                None
            }
            None => Some(format!(
                "{} {what} can only be passed to another process in a child's start \
                 arguments, a queue item or a pipe message",
                if what.starts_with('E') { "an" } else { "a" }
            )),
        })
    };
    if let Some(message) = message {
        SER_ERROR.with(|m| *m.borrow_mut() = Some(message.clone()));
        return Err(serde::ser::Error::custom(message));
    }
    match extra {
        Some(extra) => (inner.handle, extra).serialize(serializer),
        None => serializer.serialize_u64(inner.handle),
    }
}

/// One sync object as a part of another's serialised form: registered as a share of the
/// `Builder::args` call in progress, like the object itself.
pub(crate) struct Part<'a>(pub(crate) &'a Rc<Inner>, pub(crate) &'static str);

impl Serialize for Part<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serialize_shared(self.0, None, self.1, serializer)
    }
}

/// Serialises `item` and hands the bytes to `f`: small items into a buffer on the stack,
/// larger ones into a reusable buffer, so that a `put`/`send` allocates nothing.
#[inline]
fn with_serialized<T: Serialize + ?Sized, R>(
    item: &T,
    what: &'static str,
    f: impl FnOnce(&[u8]) -> Result<R, Error>,
) -> Result<R, Error> {
    let mut small = [0u8; 64];
    match postcard::to_slice(item, &mut small) {
        Ok(bytes) => f(bytes),
        Err(postcard::Error::SerializeBufferFull) => {
            let mut buf = SCRATCH.take();
            buf.clear();
            let buf = postcard::to_extend(item, buf).map_err(|e| serialize_failed::<T>(e, what))?;
            let result = f(&buf);
            SCRATCH.set(buf);
            result
        }
        Err(e) => Err(serialize_failed::<T>(e, what)),
    }
}

/// As [`with_serialized`], for an item that may carry sync objects (a queue item, a pipe
/// message): `f` also gets the handles of the objects serialised into it.
fn with_carried<T: Serialize + ?Sized, R>(
    item: &T,
    what: &'static str,
    f: impl FnOnce(&[u8], &[u64]) -> Result<R, Error>,
) -> Result<R, Error> {
    let outer = Cell::new(Some(SHARES.with(|s| s.replace(Some(Vec::new())))));
    // The objects serialised, with the collector of an enclosing call put back.
    let collected = || {
        SHARES
            .with(|s| s.replace(outer.take().unwrap_or(None)))
            .unwrap_or_default()
    };
    let result = with_serialized(item, what, |bytes| {
        let carried = collected();
        let handles: Vec<u64> = carried.iter().map(|o| o.handle).collect();
        f(bytes, &handles)
    });
    if let Some(outer) = outer.take() {
        SHARES.with(|s| s.replace(outer));
    }
    result
}

#[cold]
fn serialize_failed<T: ?Sized>(e: postcard::Error, what: &str) -> Error {
    serialize_error(e, || format!("{what} as {}", std::any::type_name::<T>()))
}

pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, Error> {
    postcard::from_bytes(bytes).map_err(|e| {
        Error::invalid_argument(format!(
            "cannot decode {what} as {}: {e}",
            std::any::type_name::<T>()
        ))
    })
}

// ---------------------------------------------------------------------------------------
// Queue
// ---------------------------------------------------------------------------------------

/// A FIFO queue of `T` shared between processes, as `multiprocessing.Queue`.
///
/// Items are serialised with `postcard` on `put` and deserialised on `get`; an item is in
/// the queue once `put` returns, whatever happens to the putting process next.
///
/// ```no_run
/// use wasmproc_guest::{Process, Queue, targets};
///
/// fn producer(q: Queue<u64>) {
///     for i in 0..3 {
///         q.put(&i).unwrap();
///     }
/// }
/// targets![producer];
///
/// fn main() -> Result<(), wasmproc_guest::Error> {
///     let q = Queue::<u64>::new()?;
///     let p = Process::new("producer", &q)?; // the child holds `q` from its start
///     p.start()?;
///     assert_eq!((q.get()?, q.get()?, q.get()?), (0, 1, 2));
///     p.join(None)?;
///     Ok(())
/// }
/// ```
///
/// # Caveats
/// - Cloning shares the queue; dropping the last clone in a process (or calling
///   [`close`](Self::close)) means this process no longer holds it. The queue itself lives
///   while any process holds it.
/// - The queue can be passed to another process in a child's start arguments, a queue item
///   or a pipe message (it is `Serialize` for those purposes only).
pub struct Queue<T> {
    inner: Rc<Inner>,
    maxsize: u32,
    _item: PhantomData<fn(T) -> T>,
}

impl<T> Clone for Queue<T> {
    fn clone(&self) -> Self {
        Queue {
            inner: self.inner.clone(),
            maxsize: self.maxsize,
            _item: PhantomData,
        }
    }
}

impl<T> fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queue")
            .field("handle", &self.inner.handle)
            .field("maxsize", &self.maxsize)
            .field("closed", &self.inner.closed.get())
            .finish()
    }
}

impl<T> Queue<T> {
    /// A new unbounded queue. Python: `Queue()`.
    ///
    /// # Errors
    /// [`ErrorKind::LimitExceeded`] when the run's `objects` limit is reached.
    pub fn new() -> Result<Queue<T>, Error> {
        Self::with_maxsize(0)
    }

    /// A new queue holding at most `maxsize` items (0: unbounded). Python: `Queue(maxsize)`.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidArgument`] when `maxsize` does not fit in a `u32`; otherwise as
    /// [`new`](Self::new).
    pub fn bounded(maxsize: usize) -> Result<Queue<T>, Error> {
        let maxsize = u32::try_from(maxsize).map_err(|_| {
            Error::invalid_argument(format!("maxsize {maxsize} is larger than {}", u32::MAX))
        })?;
        Self::with_maxsize(maxsize)
    }

    fn with_maxsize(maxsize: u32) -> Result<Queue<T>, Error> {
        Ok(Self::from_handle(host::queue_new(maxsize)?, maxsize))
    }

    /// The queue `handle` names, which holds at most `maxsize` items.
    pub(crate) fn from_handle(handle: u64, maxsize: u32) -> Queue<T> {
        Queue {
            inner: Inner::get(handle),
            maxsize,
            _item: PhantomData,
        }
    }

    #[inline]
    fn live(&self) -> Result<u64, Error> {
        if self.inner.closed.get() {
            return Err(Error::new(ErrorKind::Closed, "Queue is closed"));
        }
        Ok(self.inner.handle)
    }

    /// Appends an item already serialised by the caller, waiting while a bounded queue is
    /// full. [`get_bytes`](Self::get_bytes) returns it unchanged.
    ///
    /// # Errors
    /// [`ErrorKind::Closed`] after [`close`](Self::close); [`ErrorKind::LimitExceeded`]
    /// when the item is larger than the run's `message` limit, or would take the bytes
    /// waiting in the run's queues and pipes past its `queued` limit.
    pub fn put_bytes(&self, item: &[u8]) -> Result<(), Error> {
        put_blocking(self.live()?, item, &[], None)
    }

    /// Removes and returns the oldest item as the bytes that were put, waiting for one.
    ///
    /// # Errors
    /// [`ErrorKind::Closed`] after [`close`](Self::close).
    pub fn get_bytes(&self) -> Result<Vec<u8>, Error> {
        get_blocking(self.live()?, None, |b| Ok(b.to_vec()))
    }

    /// As [`get_bytes`](Self::get_bytes), without waiting: [`ErrorKind::Empty`] when the
    /// queue is empty.
    ///
    /// # Errors
    /// [`ErrorKind::Empty`] when the queue is empty; [`ErrorKind::Closed`] after
    /// [`close`](Self::close).
    pub fn get_bytes_nowait(&self) -> Result<Vec<u8>, Error> {
        Ok(host::queue_get(self.live()?, false, None)?)
    }

    /// Removes and returns the oldest items as the bytes that were put: waits for the
    /// first (at most `timeout`, then [`ErrorKind::Empty`]), then takes those already
    /// waiting behind it, `max` in all. Under `native` that is one round trip to the run's
    /// root host for the lot. A `max` of 0 is [`ErrorKind::InvalidArgument`].
    ///
    /// # Errors
    /// [`ErrorKind::Empty`] when no item arrives within `timeout`;
    /// [`ErrorKind::InvalidArgument`] when `max` is 0; [`ErrorKind::Closed`] after
    /// [`close`](Self::close).
    pub fn get_many_bytes(
        &self,
        max: usize,
        timeout: impl Into<Option<Duration>>,
    ) -> Result<Vec<Vec<u8>>, Error> {
        let max = u32::try_from(max).unwrap_or(u32::MAX);
        Ok(host::queue_get_many(
            self.live()?,
            max,
            true,
            nanos(timeout.into()),
        )?)
    }

    /// Appends items already serialised by the caller, in order, while a bounded queue has
    /// room, without waiting; processes waiting on the queue are woken once, and see them
    /// all. How many were appended (all, on an unbounded queue): an item that cannot be
    /// appended ends the call, and is an error only when it is the first.
    ///
    /// # Errors
    /// As [`put_bytes`](Self::put_bytes), for the first item only; a full bounded queue is
    /// `Ok(0)`, not an error.
    pub fn put_many_bytes(&self, items: &[Vec<u8>]) -> Result<usize, Error> {
        Ok(host::queue_put_many(self.live()?, items)? as usize)
    }

    /// Appends an item already serialised by the caller as [`post`](Self::post) does.
    ///
    /// # Errors
    /// As [`post`](Self::post), without its serialisation.
    pub fn post_bytes(&self, item: &[u8]) -> Result<(), Error> {
        post_item(self.live()?, item)
    }

    /// The number of items in the queue now. Python: `qsize()`.
    ///
    /// # Errors
    /// [`ErrorKind::Closed`] after [`close`](Self::close).
    pub fn qsize(&self) -> Result<usize, Error> {
        Ok(host::queue_qsize(self.live()?)? as usize)
    }

    /// Whether the queue is empty now. Python: `empty()`.
    ///
    /// # Errors
    /// As [`qsize`](Self::qsize).
    pub fn empty(&self) -> Result<bool, Error> {
        Ok(self.qsize()? == 0)
    }

    /// Whether a bounded queue is full now; always false for an unbounded one.
    /// Python: `full()`.
    ///
    /// # Errors
    /// As [`qsize`](Self::qsize).
    pub fn full(&self) -> Result<bool, Error> {
        let n = self.qsize()?;
        Ok(self.maxsize != 0 && n >= self.maxsize as usize)
    }

    /// The most items the queue holds, 0 when unbounded.
    pub fn maxsize(&self) -> usize {
        self.maxsize as usize
    }

    /// This process stops using the queue: every later call on it (from any clone) fails
    /// with [`ErrorKind::Closed`] "Queue is closed". Other processes are unaffected.
    /// Closing twice is allowed. Python: `close()`.
    pub fn close(&self) {
        self.inner.close();
    }

    /// A sentinel that [`wait`](crate::wait) finds ready while the queue has an item.
    pub fn sentinel(&self) -> Sentinel {
        Sentinel::from_raw(self.inner.handle)
    }

    /// The raw handle of the queue (the same number in every process that holds it).
    pub fn handle(&self) -> u64 {
        self.inner.handle
    }
}

impl<T: Serialize + DeserializeOwned> Queue<T> {
    /// Appends `item`, waiting while a bounded queue is full. Python: `put(item)`.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidArgument`] when `item` cannot be serialised (a sync object,
    /// say); otherwise as [`put_bytes`](Self::put_bytes).
    pub fn put(&self, item: &T) -> Result<(), Error> {
        let h = self.live()?;
        with_carried(item, "a queue item", |b, objects| {
            put_blocking(h, b, objects, None)
        })
    }

    /// Appends `item`, waiting at most `timeout` for room in a bounded queue, then
    /// [`ErrorKind::Full`]. Python: `put(item, timeout=t)`.
    ///
    /// # Errors
    /// [`ErrorKind::Full`] when no room is made within `timeout`; otherwise as
    /// [`put`](Self::put).
    pub fn put_timeout(&self, item: &T, timeout: Duration) -> Result<(), Error> {
        let h = self.live()?;
        with_carried(item, "a queue item", |b, objects| {
            put_blocking(h, b, objects, nanos(Some(timeout)))
        })
    }

    /// Appends `item` without waiting: [`ErrorKind::Full`] on a full bounded queue.
    /// Python: `put_nowait(item)`.
    ///
    /// # Errors
    /// [`ErrorKind::Full`] when the bounded queue is full; otherwise as [`put`](Self::put).
    pub fn put_nowait(&self, item: &T) -> Result<(), Error> {
        let h = self.live()?;
        with_carried(item, "a queue item", |b, objects| {
            match objects {
                [] => host::queue_put(h, b, false, None)?,
                _ => host::queue_put_objects(h, b, objects, false, None)?,
            }
            Ok(())
        })
    }

    /// Appends `item` like [`put`](Self::put), except that a process of the `native`
    /// backend does not wait for the run's root host to answer: the put is sent with the
    /// process's next call on its objects, within about a millisecond (a guest that is
    /// computing: at its next scheduler tick), or when the process ends, whichever is
    /// first. Puts, posts and other calls take effect in the order they were made. The
    /// post's own failure (a limit, say) is then the error of the process's next call, with
    /// "an earlier queue-post failed: " before its message. A post not yet sent when the
    /// process is killed by a signal is lost. Under `wasm` it is [`put`](Self::put).
    ///
    /// # Errors
    /// As [`put`](Self::put); under `native` a failure of the deferred put is the error of
    /// the process's next call instead.
    pub fn post(&self, item: &T) -> Result<(), Error> {
        let h = self.live()?;
        with_carried(item, "a queue item", |b, objects| match objects {
            [] => post_item(h, b),
            // Objects go with a put: the host gives them to the item's taker.
            _ => put_blocking(h, b, objects, None),
        })
    }

    /// Removes and returns the oldest items, at most `max`: waits for the first (at most
    /// `timeout`, then [`ErrorKind::Empty`]), then takes those already waiting behind it.
    /// See [`get_many_bytes`](Self::get_many_bytes).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidArgument`] when an item does not decode as `T` (the items are
    /// taken all the same); otherwise as [`get_many_bytes`](Self::get_many_bytes).
    pub fn get_many(
        &self,
        max: usize,
        timeout: impl Into<Option<Duration>>,
    ) -> Result<Vec<T>, Error> {
        self.get_many_bytes(max, timeout)?
            .iter()
            .map(|b| decode(b, "a queue item"))
            .collect()
    }

    /// Removes and returns the oldest item, waiting for one. Python: `get()`.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidArgument`] when the item does not decode as `T` (it is taken all
    /// the same); [`ErrorKind::Closed`] after [`close`](Self::close).
    pub fn get(&self) -> Result<T, Error> {
        get_blocking(self.live()?, None, |b| decode(b, "a queue item"))
    }

    /// Removes and returns the oldest item, waiting at most `timeout`, then
    /// [`ErrorKind::Empty`]. Python: `get(timeout=t)`.
    ///
    /// # Errors
    /// [`ErrorKind::Empty`] when no item arrives within `timeout`; otherwise as
    /// [`get`](Self::get).
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, Error> {
        get_blocking(self.live()?, nanos(Some(timeout)), |b| {
            decode(b, "a queue item")
        })
    }

    /// Removes and returns the oldest item without waiting: [`ErrorKind::Empty`] when there
    /// is none. Python: `get_nowait()`.
    ///
    /// # Errors
    /// [`ErrorKind::Empty`] when the queue is empty; otherwise as [`get`](Self::get).
    pub fn get_nowait(&self) -> Result<T, Error> {
        let bytes = host::queue_get(self.live()?, false, None)?;
        decode(&bytes, "a queue item")
    }
}

/// A blocking put: the host's non-blocking fast path first (a cheaper call; for an item of
/// at most 16 bytes, one that copies no list), the blocking call only when that cannot
/// complete it.
#[inline]
fn put_blocking(h: u64, item: &[u8], objects: &[u64], timeout: Option<u64>) -> Result<(), Error> {
    if !objects.is_empty() {
        return Ok(host::queue_put_objects(h, item, objects, true, timeout)?);
    }
    if try_put_fast(h, item)? {
        return Ok(());
    }
    Ok(host::queue_put(h, item, true, timeout)?)
}

/// The host's non-blocking put: true when `item` went in.
#[inline]
fn try_put_fast(h: u64, item: &[u8]) -> Result<bool, Error> {
    Ok(match small_item(item) {
        Some(small) => host::queue_try_put_small(h, small)?,
        None => host::queue_try_put(h, item)?,
    })
}

/// A post: the fast path of [`put_blocking`] first (it completes a post wherever the
/// objects are in this host process), `queue-post` only when that cannot.
#[inline]
fn post_item(h: u64, item: &[u8]) -> Result<(), Error> {
    if try_put_fast(h, item)? {
        return Ok(());
    }
    Ok(host::queue_post(h, item)?)
}

/// `item` in two words, when it has at most 16 bytes.
#[inline]
fn small_item(item: &[u8]) -> Option<host::SmallItem> {
    let len = u8::try_from(item.len()).ok().filter(|l| *l <= 16)?;
    let mut bytes = [0u8; 16];
    bytes[..item.len()].copy_from_slice(item);
    let (lo, hi) = bytes.split_at(8);
    Some(host::SmallItem {
        len,
        lo: u64::from_le_bytes(lo.try_into().ok()?),
        hi: u64::from_le_bytes(hi.try_into().ok()?),
    })
}

/// A blocking get, with the same fast path as [`put_blocking`]: `f` sees the item's bytes
/// (a small item's on the stack, allocated nowhere).
#[inline]
fn get_blocking<R>(
    h: u64,
    timeout: Option<u64>,
    f: impl FnOnce(&[u8]) -> Result<R, Error>,
) -> Result<R, Error> {
    match host::queue_try_get_small(h)? {
        host::TakenItem::Small(small) => {
            let mut bytes = [0u8; 16];
            bytes[..8].copy_from_slice(&small.lo.to_le_bytes());
            bytes[8..].copy_from_slice(&small.hi.to_le_bytes());
            let len = usize::from(small.len).min(16);
            f(&bytes[..len])
        }
        host::TakenItem::Large(item) => f(&item),
        host::TakenItem::None => f(&host::queue_get(h, true, timeout)?),
    }
}

impl<T> Serialize for Queue<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serialize_shared(&self.inner, Some(self.maxsize), "Queue", serializer)
    }
}

impl<'de, T> Deserialize<'de> for Queue<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let (handle, maxsize) = <(u64, u32)>::deserialize(deserializer)?;
        Ok(Queue {
            inner: Inner::get(handle),
            maxsize,
            _item: PhantomData,
        })
    }
}

// ---------------------------------------------------------------------------------------
// Pipe / Connection
// ---------------------------------------------------------------------------------------

/// A new pipe: two connected [`Connection`]s. Duplex: each end sends to the other.
/// One-way (`duplex == false`): the first end can only receive and the second only send.
/// Python: `multiprocessing.Pipe(duplex)`.
///
/// # Errors
/// [`ErrorKind::LimitExceeded`] when the run's `objects` limit is reached.
pub fn pipe(duplex: bool) -> Result<(Connection, Connection), Error> {
    let (a, b) = host::pipe_new(duplex)?;
    Ok((
        Connection::new(Inner::get(a), true, duplex),
        Connection::new(Inner::get(b), duplex, true),
    ))
}

const READABLE: u32 = 1;
const WRITABLE: u32 = 2;

/// One end of a [`pipe`], as `multiprocessing.connection.Connection`.
///
/// Messages are whole: one `send` is one `recv`. Once no process holds the other end, a
/// `recv` returns the messages still waiting and then [`ErrorKind::Eof`], and a `send`
/// fails with [`ErrorKind::BrokenPipe`].
///
/// # Caveats
/// - Cloning shares the end; the end is closed in this process when the last clone is
///   dropped or [`close`](Self::close) is called. A parent that passed an end to a child
///   should drop or close its own copy so that the peer can see end-of-file.
/// - It can be passed to another process in a child's start arguments, a queue item or a
///   pipe message.
#[derive(Clone)]
pub struct Connection {
    inner: Rc<Inner>,
    flags: u32,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("handle", &self.inner.handle)
            .field("readable", &self.readable())
            .field("writable", &self.writable())
            .field("closed", &self.closed())
            .finish()
    }
}

impl Connection {
    fn new(inner: Rc<Inner>, readable: bool, writable: bool) -> Connection {
        let flags = if readable { READABLE } else { 0 } | if writable { WRITABLE } else { 0 };
        Connection { inner, flags }
    }

    #[inline]
    fn live(&self) -> Result<u64, Error> {
        if self.inner.closed.get() {
            return Err(Error::new(ErrorKind::Closed, "handle is closed"));
        }
        Ok(self.inner.handle)
    }

    /// Sends `value`, serialised with `postcard`. Python: `send(obj)`.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidArgument`] when `value` cannot be serialised (a sync object,
    /// say); otherwise as [`send_bytes`](Self::send_bytes).
    pub fn send<T: Serialize + ?Sized>(&self, value: &T) -> Result<(), Error> {
        let h = self.live()?;
        with_carried(value, "a message", |b, objects| {
            match objects {
                [] => host::conn_send(h, b)?,
                _ => host::conn_send_objects(h, b, objects)?,
            }
            Ok(())
        })
    }

    /// Receives the next message, waiting for one; [`ErrorKind::Eof`] once the other end is
    /// gone and every message has been received. Python: `recv()`.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidArgument`] when the message does not decode as `T` (it is
    /// received all the same); otherwise as [`recv_bytes`](Self::recv_bytes).
    pub fn recv<T: DeserializeOwned>(&self) -> Result<T, Error> {
        let bytes = host::conn_recv(self.live()?)?;
        decode(&bytes, "a message")
    }

    /// Sends `bytes` as one message. Python: `send_bytes(buf)`.
    ///
    /// # Errors
    /// [`ErrorKind::BrokenPipe`] once no process holds the other end;
    /// [`ErrorKind::InvalidState`] on the receiving end of a one-way pipe;
    /// [`ErrorKind::Closed`] after [`close`](Self::close); [`ErrorKind::LimitExceeded`] as
    /// [`Queue::put_bytes`].
    pub fn send_bytes(&self, bytes: &[u8]) -> Result<(), Error> {
        Ok(host::conn_send(self.live()?, bytes)?)
    }

    /// Receives the next message as bytes. Python: `recv_bytes()`.
    ///
    /// # Errors
    /// [`ErrorKind::Eof`] once no process holds the other end and every message was
    /// received; [`ErrorKind::InvalidState`] on the sending end of a one-way pipe;
    /// [`ErrorKind::Closed`] after [`close`](Self::close).
    pub fn recv_bytes(&self) -> Result<Vec<u8>, Error> {
        Ok(host::conn_recv(self.live()?)?)
    }

    /// Whether [`recv`](Self::recv) would return at once (a message is waiting, or
    /// end-of-file), waiting up to `timeout` for that (`None`: forever).
    /// Python: `poll(timeout)` (where `None` also means forever).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidState`] on the sending end of a one-way pipe;
    /// [`ErrorKind::Closed`] after [`close`](Self::close).
    pub fn poll(&self, timeout: impl Into<Option<Duration>>) -> Result<bool, Error> {
        Ok(host::conn_poll(self.live()?, nanos(timeout.into()))?)
    }

    /// Closes this end in this process: every later call on it (from any clone) fails with
    /// [`ErrorKind::Closed`] "handle is closed". Once no process holds it, the other end
    /// sees end-of-file. Closing twice is allowed. Python: `close()`.
    pub fn close(&self) {
        self.inner.close();
    }

    /// Whether [`close`](Self::close) was called. Python: `closed`.
    pub fn closed(&self) -> bool {
        self.inner.closed.get()
    }

    /// Whether this end can receive (false for the sending end of a one-way pipe).
    /// Python: `readable`.
    pub fn readable(&self) -> bool {
        self.flags & READABLE != 0
    }

    /// Whether this end can send (false for the receiving end of a one-way pipe).
    /// Python: `writable`.
    pub fn writable(&self) -> bool {
        self.flags & WRITABLE != 0
    }

    /// A sentinel that [`wait`](crate::wait) finds ready when `recv` would not block.
    pub fn sentinel(&self) -> Sentinel {
        Sentinel::from_raw(self.inner.handle)
    }

    /// The raw handle of this end (the same number in every process that holds it).
    pub fn handle(&self) -> u64 {
        self.inner.handle
    }
}

impl Serialize for Connection {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serialize_shared(&self.inner, Some(self.flags), "Connection", serializer)
    }
}

impl<'de> Deserialize<'de> for Connection {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let (handle, flags) = <(u64, u32)>::deserialize(deserializer)?;
        Ok(Connection {
            inner: Inner::get(handle),
            flags: flags & (READABLE | WRITABLE),
        })
    }
}

// ---------------------------------------------------------------------------------------
// Event
// ---------------------------------------------------------------------------------------

/// A flag processes can set, clear and wait for, as `multiprocessing.Event`.
///
/// # Caveats
/// Cloning shares the event; dropping the last clone in a process releases this process's
/// hold on it. It can be passed to another process in a child's start arguments, a queue
/// item or a pipe message.
#[derive(Clone)]
pub struct Event {
    inner: Rc<Inner>,
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("handle", &self.inner.handle)
            .finish()
    }
}

impl Event {
    /// A new event, initially clear. Python: `Event()`.
    ///
    /// # Errors
    /// [`ErrorKind::LimitExceeded`] when the run's `objects` limit is reached.
    pub fn new() -> Result<Event, Error> {
        Ok(Event {
            inner: Inner::get(host::event_new()?),
        })
    }

    /// Sets the event, waking every process waiting for it. Python: `set()`.
    ///
    /// # Errors
    /// [`ErrorKind::HostFailure`] when the host cannot carry out the call; under `native`,
    /// the failure of an earlier [`Queue::post`].
    pub fn set(&self) -> Result<(), Error> {
        Ok(host::event_set(self.inner.handle)?)
    }

    /// Clears the event. Python: `clear()`.
    ///
    /// # Errors
    /// As [`set`](Self::set).
    pub fn clear(&self) -> Result<(), Error> {
        Ok(host::event_clear(self.inner.handle)?)
    }

    /// Whether the event is set. Python: `is_set()`.
    ///
    /// # Errors
    /// As [`set`](Self::set).
    pub fn is_set(&self) -> Result<bool, Error> {
        Ok(host::event_is_set(self.inner.handle)?)
    }

    /// Waits until the event is set or `timeout` passes (`None`: forever); returns whether
    /// it is set. Python: `wait(timeout)`.
    ///
    /// # Errors
    /// As [`set`](Self::set).
    pub fn wait(&self, timeout: impl Into<Option<Duration>>) -> Result<bool, Error> {
        Ok(host::event_wait(self.inner.handle, nanos(timeout.into()))?)
    }

    /// The raw handle of the event (the same number in every process that holds it).
    pub fn handle(&self) -> u64 {
        self.inner.handle
    }
}

impl Serialize for Event {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serialize_shared(&self.inner, None, "Event", serializer)
    }
}

impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Event {
            inner: Inner::get(u64::deserialize(deserializer)?),
        })
    }
}

// ---------------------------------------------------------------------------------------
// Locks and semaphores
// ---------------------------------------------------------------------------------------

/// Holds a lock or one unit of a semaphore; releases it when dropped (errors on that
/// release are ignored; call `release` on the lock yourself to see them).
/// Returned by `lock()` of [`Lock`], [`RLock`], [`Semaphore`] and [`BoundedSemaphore`].
#[must_use = "the lock is released as soon as the guard is dropped"]
#[derive(Debug)]
pub struct LockGuard<'a> {
    handle: u64,
    _lock: PhantomData<&'a ()>,
}

impl Drop for LockGuard<'_> {
    fn drop(&mut self) {
        let _ = host::lock_release(self.handle);
    }
}

macro_rules! lock_type {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        ///
        /// If the previous owner of a lock ended while holding it, the next `acquire*` (or
        /// `lock`) returns `Err` with [`ErrorKind::OwnerDied`]: the caller *holds* the lock
        /// and must release it with [`release`](Self::release) (no guard is returned then).
        ///
        /// # Caveats
        /// Cloning shares the object; dropping the last clone in a process releases this
        /// process's hold on it (and, like a process ending, a lock it holds). It can be
        /// passed to another process in a child's start arguments, a queue item or a pipe
        /// message.
        #[derive(Clone)]
        pub struct $name {
            inner: Rc<Inner>,
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("handle", &self.inner.handle)
                    .finish()
            }
        }

        impl $name {
            fn create(kind: host::LockKind, value: u32) -> Result<$name, Error> {
                Ok($name {
                    inner: Inner::get(host::lock_new(kind, value)?),
                })
            }

            /// Acquires, waiting as long as it takes; returns `Ok(true)`.
            /// Python: `acquire()`.
            ///
            /// # Errors
            /// [`ErrorKind::OwnerDied`] when the previous owner ended while holding the
            /// lock: the caller then holds it. Otherwise, as [`Event::set`].
            pub fn acquire(&self) -> Result<bool, Error> {
                Ok(host::lock_acquire(self.inner.handle, true, None)?)
            }

            /// Acquires, waiting at most `timeout`; returns whether it was acquired.
            /// Python: `acquire(timeout=t)`.
            ///
            /// # Errors
            /// As [`acquire`](Self::acquire).
            pub fn acquire_timeout(&self, timeout: Duration) -> Result<bool, Error> {
                Ok(host::lock_acquire(self.inner.handle, true, nanos(Some(timeout)))?)
            }

            /// Acquires only if that is possible at once; returns whether it was acquired.
            /// Python: `acquire(block=False)`.
            ///
            /// # Errors
            /// As [`acquire`](Self::acquire).
            pub fn try_acquire(&self) -> Result<bool, Error> {
                Ok(host::lock_acquire(self.inner.handle, false, None)?)
            }

            /// Releases. Python: `release()`.
            ///
            /// # Errors
            /// [`ErrorKind::InvalidState`] when the lock is not held, an [`RLock`] is not
            /// the caller's, or a semaphore would go past its bound. Otherwise, as
            /// [`Event::set`].
            pub fn release(&self) -> Result<(), Error> {
                Ok(host::lock_release(self.inner.handle)?)
            }

            /// Acquires (waiting as long as it takes) and returns a guard that releases on
            /// drop. Python: `with lock:`.
            ///
            /// # Errors
            /// As [`acquire`](Self::acquire); on [`ErrorKind::OwnerDied`] no guard is
            /// returned.
            pub fn lock(&self) -> Result<LockGuard<'_>, Error> {
                host::lock_acquire(self.inner.handle, true, None)?;
                Ok(LockGuard {
                    handle: self.inner.handle,
                    _lock: PhantomData,
                })
            }

            /// The raw handle (the same number in every process that holds it).
            pub fn handle(&self) -> u64 {
                self.inner.handle
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serialize_shared(&self.inner, None, $what, serializer)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                Ok($name {
                    inner: Inner::get(u64::deserialize(deserializer)?),
                })
            }
        }
    };
}

lock_type!(
    /// A non-recursive lock shared between processes, as `multiprocessing.Lock`: any
    /// process holding the handle may release it; releasing an unheld lock fails with
    /// [`ErrorKind::InvalidState`] "semaphore or lock released too many times".
    Lock,
    "Lock"
);
lock_type!(
    /// A recursive lock, as `multiprocessing.RLock`: its owner may acquire it again (and
    /// must release it as often); only the owner may release it ("cannot release
    /// un-acquired lock").
    RLock,
    "RLock"
);
lock_type!(
    /// A counting semaphore, as `multiprocessing.Semaphore`.
    Semaphore,
    "Semaphore"
);
lock_type!(
    /// A semaphore that may not be released above its initial value, as
    /// `multiprocessing.BoundedSemaphore` ("semaphore or lock released too many times").
    BoundedSemaphore,
    "BoundedSemaphore"
);

impl Lock {
    /// A new, free lock. Python: `Lock()`.
    ///
    /// # Errors
    /// [`ErrorKind::LimitExceeded`] when the run's `objects` limit is reached.
    pub fn new() -> Result<Lock, Error> {
        Self::create(host::LockKind::Lock, 1)
    }
}

impl RLock {
    /// A new, free recursive lock. Python: `RLock()`.
    ///
    /// # Errors
    /// [`ErrorKind::LimitExceeded`] when the run's `objects` limit is reached.
    pub fn new() -> Result<RLock, Error> {
        Self::create(host::LockKind::Rlock, 1)
    }
}

impl Semaphore {
    /// A new semaphore with count `value`. Python: `Semaphore(value)`.
    ///
    /// # Errors
    /// [`ErrorKind::LimitExceeded`] when the run's `objects` limit is reached.
    pub fn new(value: u32) -> Result<Semaphore, Error> {
        Self::create(host::LockKind::Semaphore, value)
    }

    /// The current count. Python: `get_value()`.
    ///
    /// # Errors
    /// As [`Event::set`].
    pub fn get_value(&self) -> Result<u32, Error> {
        Ok(host::lock_value(self.inner.handle)?)
    }
}

impl BoundedSemaphore {
    /// A new bounded semaphore with count (and maximum) `value`.
    /// Python: `BoundedSemaphore(value)`.
    ///
    /// # Errors
    /// [`ErrorKind::LimitExceeded`] when the run's `objects` limit is reached.
    pub fn new(value: u32) -> Result<BoundedSemaphore, Error> {
        Self::create(host::LockKind::BoundedSemaphore, value)
    }

    /// The current count. Python: `get_value()`.
    ///
    /// # Errors
    /// As [`Event::set`].
    pub fn get_value(&self) -> Result<u32, Error> {
        Ok(host::lock_value(self.inner.handle)?)
    }
}
