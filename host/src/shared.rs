//! Queues, pipes, events, locks and semaphores a Rust program shares with the processes it
//! starts ([`Host::queue`](crate::Host::queue), [`Host::pipe`](crate::Host::pipe),
//! [`Host::event`](crate::Host::event), [`Host::lock`](crate::Host::lock) and its
//! siblings): the same objects as a guest's, held by the host's own root, and passed to a
//! process in its start arguments ([`ProcessBuilder::arg`](crate::ProcessBuilder::arg)),
//! where the guest SDK's type of the same name in the target's parameter takes them.

use crate::error::ProcessError;
use crate::model::ProcessCtx;
use crate::sync::Request;
use serde::de::DeserializeOwned;
use serde::{Serialize, Serializer};
use std::cell::RefCell;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

thread_local! {
    /// The objects serialised by the `ProcessBuilder::arg` call in progress on this
    /// thread, and the host (its root) they must belong to.
    static SHARES: RefCell<Option<(usize, Vec<u64>)>> = const { RefCell::new(None) };
    /// Why serialising a shared object failed (postcard keeps no message of its own).
    static REFUSED: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Serialises `value` as start arguments for a process of `root`: its bytes, and the
/// handles of the objects it names (which must be `root`'s).
pub(crate) fn serialize_args<T: Serialize + ?Sized>(
    root: &Arc<ProcessCtx>,
    value: &T,
) -> Result<(Vec<u8>, Vec<u64>), String> {
    let outer = SHARES.with(|s| s.replace(Some((Arc::as_ptr(root) as usize, Vec::new()))));
    let bytes = postcard::to_allocvec(value);
    let shares = SHARES
        .with(|s| s.replace(outer))
        .map(|(_, h)| h)
        .unwrap_or_default();
    let refused = REFUSED.with(|r| r.borrow_mut().take());
    match (bytes, refused) {
        (Ok(bytes), _) => Ok((bytes, shares)),
        (Err(_), Some(why)) => Err(why),
        (Err(e), None) => Err(format!("cannot serialise the target's argument: {e}")),
    }
}

/// `Serialize` of a shared object: `(handle, extra)`, or the handle alone without `extra`,
/// as the guest SDK reads it, registered with the `ProcessBuilder::arg` call in progress.
fn serialize_shared<S: Serializer>(
    object: &Shared,
    extra: Option<u32>,
    what: &str,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let registered = SHARES.with(|s| match s.borrow_mut().as_mut() {
        Some((root, handles)) if *root == Arc::as_ptr(&object.root) as usize => {
            if !handles.contains(&object.handle) {
                handles.push(object.handle);
            }
            Ok(())
        }
        Some(_) => Err(format!(
            "a {what} of another host cannot be passed to this one's processes"
        )),
        None => Err(format!(
            "a {what} can only be passed to a process in its start arguments (ProcessBuilder::arg)"
        )),
    });
    if let Err(why) = registered {
        REFUSED.with(|r| *r.borrow_mut() = Some(why.clone()));
        return Err(serde::ser::Error::custom(why));
    }
    match extra {
        Some(extra) => (object.handle, extra).serialize(serializer),
        None => serializer.serialize_u64(object.handle),
    }
}

/// What a shared object of the host's root is: its handle in the root's table.
struct Shared {
    root: Arc<ProcessCtx>,
    runtime: tokio::runtime::Handle,
    handle: u64,
}

impl Shared {
    fn new(root: &Arc<ProcessCtx>, runtime: &tokio::runtime::Handle, handle: u64) -> Self {
        Shared {
            root: root.clone(),
            runtime: runtime.clone(),
            handle,
        }
    }

    /// Carries out `request` on the root's objects, blocking (also in async code).
    fn call<T: crate::sync::Answer + Send>(&self, request: Request) -> Result<T, ProcessError> {
        call(&self.root, &self.runtime, request)
    }

    /// [`Shared::call`] for async code.
    async fn call_async<T: crate::sync::Answer + Send + 'static>(
        &self,
        request: Request,
    ) -> Result<T, ProcessError> {
        let root = self.root.clone();
        self.runtime
            .spawn(async move { root.client().call(request).await })
            .await
            .map_err(|e| ProcessError::host_failure(format!("the call was lost: {e}")))?
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // The host's root stops holding it; processes that hold it go on using it.
        let _ = self.call::<()>(Request::Close { h: self.handle });
    }
}

/// Carries out `request` on `root`'s objects, blocking (also in async code).
pub(crate) fn call<T: crate::sync::Answer + Send>(
    root: &Arc<ProcessCtx>,
    runtime: &tokio::runtime::Handle,
    request: Request,
) -> Result<T, ProcessError> {
    let call = root.client().call(request);
    if root.host().host_gone() {
        return futures::executor::block_on(call);
    }
    crate::blocking(|| runtime.block_on(call))
}

fn nanos(t: Duration) -> u64 {
    u64::try_from(t.as_nanos()).unwrap_or(u64::MAX)
}

fn decode<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, ProcessError> {
    postcard::from_bytes(bytes).map_err(|e| {
        ProcessError::invalid_argument(format!(
            "cannot decode {what} as {}: {e}",
            std::any::type_name::<T>()
        ))
    })
}

fn encode<T: Serialize + ?Sized>(item: &T, what: &str) -> Result<Vec<u8>, ProcessError> {
    postcard::to_allocvec(item)
        .map_err(|e| ProcessError::invalid_argument(format!("cannot serialise {what}: {e}")))
}

/// A queue of `T`s shared by the Rust program and the processes it passes it to, as
/// `multiprocessing.Queue`: the guest SDK's `Queue<T>` of the same `T` in a target's
/// parameter takes it. Dropping it ends the Rust side's hold; processes that hold the
/// queue go on using it.
pub struct Queue<T> {
    shared: Shared,
    maxsize: u32,
    _item: PhantomData<fn(T) -> T>,
}

impl<T: Serialize + DeserializeOwned> Queue<T> {
    pub(crate) fn new(
        root: &Arc<ProcessCtx>,
        runtime: &tokio::runtime::Handle,
        maxsize: u32,
    ) -> Result<Self, ProcessError> {
        let handle = call::<u64>(root, runtime, Request::QueueNew { maxsize })?;
        Ok(Queue {
            shared: Shared::new(root, runtime, handle),
            maxsize,
            _item: PhantomData,
        })
    }

    fn put_request(
        &self,
        item: &T,
        block: bool,
        timeout: Option<Duration>,
    ) -> Result<Request, ProcessError> {
        Ok(Request::QueuePut {
            h: self.shared.handle,
            item: encode(item, "a queue item")?,
            block,
            timeout: timeout.map(nanos),
        })
    }

    fn get_request(&self, block: bool, timeout: Option<Duration>) -> Request {
        Request::QueueGet {
            h: self.shared.handle,
            block,
            timeout: timeout.map(nanos),
        }
    }

    /// Puts `item`, waiting while a bounded queue is full. Python: `put(item)`.
    ///
    /// # Errors
    /// `limit-exceeded` past the `message` or `queued` limit; `invalid-argument` when
    /// `item` does not serialise.
    pub fn put(&self, item: &T) -> Result<(), ProcessError> {
        self.shared.call(self.put_request(item, true, None)?)
    }

    /// Puts `item`, waiting at most `timeout` for room. Python: `put(item, timeout=t)`.
    ///
    /// # Errors
    /// As [`Queue::put`]; `full` when there was no room in time.
    pub fn put_timeout(&self, item: &T, timeout: Duration) -> Result<(), ProcessError> {
        self.shared
            .call(self.put_request(item, true, Some(timeout))?)
    }

    /// Takes the oldest item, waiting for one. Python: `get()`.
    ///
    /// # Errors
    /// `invalid-argument` when the item does not decode as `T`.
    pub fn get(&self) -> Result<T, ProcessError> {
        let bytes: Vec<u8> = self.shared.call(self.get_request(true, None))?;
        decode(&bytes, "a queue item")
    }

    /// Takes the oldest item, waiting at most `timeout`. Python: `get(timeout=t)`.
    ///
    /// # Errors
    /// As [`Queue::get`]; `empty` when none came in time.
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, ProcessError> {
        let bytes: Vec<u8> = self.shared.call(self.get_request(true, Some(timeout)))?;
        decode(&bytes, "a queue item")
    }

    /// Takes the oldest item if there is one. Python: `get_nowait()`.
    ///
    /// # Errors
    /// As [`Queue::get`]; `empty` when the queue is empty.
    pub fn try_get(&self) -> Result<T, ProcessError> {
        let bytes: Vec<u8> = self.shared.call(self.get_request(false, None))?;
        decode(&bytes, "a queue item")
    }

    /// How many items are waiting. Python: `qsize()`.
    ///
    /// # Errors
    /// `host-failure` when the host is gone.
    pub fn qsize(&self) -> Result<u32, ProcessError> {
        self.shared.call(Request::QueueSize {
            h: self.shared.handle,
        })
    }

    /// [`Queue::put`] for async code.
    ///
    /// # Errors
    /// As [`Queue::put`].
    pub async fn put_async(&self, item: &T) -> Result<(), ProcessError> {
        let request = self.put_request(item, true, None)?;
        self.shared.call_async(request).await
    }

    /// [`Queue::get`] for async code.
    ///
    /// # Errors
    /// As [`Queue::get`].
    pub async fn get_async(&self) -> Result<T, ProcessError> {
        let bytes: Vec<u8> = self.shared.call_async(self.get_request(true, None)).await?;
        decode(&bytes, "a queue item")
    }
}

impl<T> Serialize for Queue<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serialize_shared(&self.shared, Some(self.maxsize), "Queue", serializer)
    }
}

impl<T> std::fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field("handle", &self.shared.handle)
            .field("maxsize", &self.maxsize)
            .finish()
    }
}

const READABLE: u32 = 1;
const WRITABLE: u32 = 2;

/// One end of a pipe shared by the Rust program and the processes it passes it to, as
/// `multiprocessing.connection.Connection`: the guest SDK's `Connection` in a target's
/// parameter takes it. Messages are whole and serialised (a `send::<T>` is a guest's
/// `recv::<T>`). Dropping it closes the Rust side's hold on the end.
pub struct Connection {
    shared: Shared,
    flags: u32,
}

impl Connection {
    pub(crate) fn pair(
        root: &Arc<ProcessCtx>,
        runtime: &tokio::runtime::Handle,
        duplex: bool,
    ) -> Result<(Connection, Connection), ProcessError> {
        let (a, b) = call::<(u64, u64)>(root, runtime, Request::PipeNew { duplex })?;
        let end = |h, flags| Connection {
            shared: Shared::new(root, runtime, h),
            flags,
        };
        let (a_flags, b_flags) = if duplex {
            (READABLE | WRITABLE, READABLE | WRITABLE)
        } else {
            (READABLE, WRITABLE)
        };
        Ok((end(a, a_flags), end(b, b_flags)))
    }

    /// Sends `message`. Python: `send(obj)`.
    ///
    /// # Errors
    /// `broken-pipe` when no process holds the other end; `invalid-argument` for the
    /// receiving end of a one-way pipe, or a message that does not serialise;
    /// `limit-exceeded` past the `message` or `queued` limit.
    pub fn send<T: Serialize + ?Sized>(&self, message: &T) -> Result<(), ProcessError> {
        self.shared.call(Request::ConnSend {
            h: self.shared.handle,
            message: encode(message, "a message")?,
        })
    }

    /// Receives the next message, waiting for one. Python: `recv()`.
    ///
    /// # Errors
    /// `eof` once no process holds the other end and every message was received;
    /// `invalid-argument` when the message does not decode as `T`, or for the sending end
    /// of a one-way pipe.
    pub fn recv<T: DeserializeOwned>(&self) -> Result<T, ProcessError> {
        let bytes: Vec<u8> = self.shared.call(Request::ConnRecv {
            h: self.shared.handle,
        })?;
        decode(&bytes, "a message")
    }

    /// Whether a message (or end-of-file) is waiting, waiting at most `timeout`.
    /// Python: `poll(timeout)`.
    ///
    /// # Errors
    /// `invalid-argument` for the sending end of a one-way pipe.
    pub fn poll(&self, timeout: Duration) -> Result<bool, ProcessError> {
        self.shared.call(Request::ConnPoll {
            h: self.shared.handle,
            timeout: Some(nanos(timeout)),
        })
    }

    /// [`Connection::recv`] for async code.
    ///
    /// # Errors
    /// As [`Connection::recv`].
    pub async fn recv_async<T: DeserializeOwned>(&self) -> Result<T, ProcessError> {
        let request = Request::ConnRecv {
            h: self.shared.handle,
        };
        let bytes: Vec<u8> = self.shared.call_async(request).await?;
        decode(&bytes, "a message")
    }
}

impl Serialize for Connection {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serialize_shared(&self.shared, Some(self.flags), "Connection", serializer)
    }
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("handle", &self.shared.handle)
            .field("readable", &(self.flags & READABLE != 0))
            .field("writable", &(self.flags & WRITABLE != 0))
            .finish()
    }
}

/// An event shared by the Rust program and the processes it passes it to, as
/// `multiprocessing.Event`: the guest SDK's `Event` in a target's parameter takes it.
/// Dropping it ends the Rust side's hold; processes that hold the event go on using it.
pub struct Event {
    shared: Shared,
}

impl Event {
    pub(crate) fn new(
        root: &Arc<ProcessCtx>,
        runtime: &tokio::runtime::Handle,
    ) -> Result<Event, ProcessError> {
        let h = call::<u64>(root, runtime, Request::EventNew)?;
        Ok(Event {
            shared: Shared::new(root, runtime, h),
        })
    }

    /// Sets the flag, waking every waiter. Python: `set()`.
    ///
    /// # Errors
    /// None in practice (the errors of a call on the host's objects).
    pub fn set(&self) -> Result<(), ProcessError> {
        self.shared.call(Request::EventSet {
            h: self.shared.handle,
        })
    }

    /// Clears the flag. Python: `clear()`.
    ///
    /// # Errors
    /// As [`Event::set`].
    pub fn clear(&self) -> Result<(), ProcessError> {
        self.shared.call(Request::EventClear {
            h: self.shared.handle,
        })
    }

    /// Whether the flag is set. Python: `is_set()`.
    ///
    /// # Errors
    /// As [`Event::set`].
    pub fn is_set(&self) -> Result<bool, ProcessError> {
        self.shared.call(Request::EventIsSet {
            h: self.shared.handle,
        })
    }

    /// Waits until the flag is set or `timeout` passes (`None`: as long as it takes);
    /// whether it is set. Python: `wait(timeout)`.
    ///
    /// # Errors
    /// As [`Event::set`].
    pub fn wait(&self, timeout: Option<Duration>) -> Result<bool, ProcessError> {
        self.shared.call(Request::EventWait {
            h: self.shared.handle,
            timeout: timeout.map(nanos),
        })
    }

    /// [`Event::wait`] for async code.
    ///
    /// # Errors
    /// As [`Event::set`].
    pub async fn wait_async(&self, timeout: Option<Duration>) -> Result<bool, ProcessError> {
        let request = Request::EventWait {
            h: self.shared.handle,
            timeout: timeout.map(nanos),
        };
        self.shared.call_async(request).await
    }
}

impl Serialize for Event {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serialize_shared(&self.shared, None, "Event", serializer)
    }
}

impl std::fmt::Debug for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Event")
            .field("handle", &self.shared.handle)
            .finish()
    }
}

macro_rules! lock_type {
    ($(#[$doc:meta])* $name:ident, $what:literal, $kind:ident) => {
        $(#[$doc])*
        ///
        /// The Rust side holds it as the host's root process does: a lock it holds when it
        /// is dropped is released, and the next acquirer learns that its owner ended
        /// (`owner-died`). Dropping it ends the Rust side's hold; processes that hold it go
        /// on using it.
        pub struct $name {
            shared: Shared,
        }

        impl $name {
            /// A new one with `value` units (a lock's is 1), for the Rust side.
            pub(crate) fn new(
                root: &Arc<ProcessCtx>,
                runtime: &tokio::runtime::Handle,
                value: u32,
            ) -> Result<Self, ProcessError> {
                let kind = crate::sync::LockKind::$kind;
                let h = call::<u64>(root, runtime, Request::LockNew { kind, value })?;
                Ok($name {
                    shared: Shared::new(root, runtime, h),
                })
            }

            /// Acquires it, waiting at most `timeout` (`None`: as long as it takes);
            /// whether it was acquired. Python: `acquire(timeout=...)`.
            ///
            /// # Errors
            /// `owner-died` (acquired all the same) when its previous owner ended while
            /// holding it.
            pub fn acquire(&self, timeout: Option<Duration>) -> Result<bool, ProcessError> {
                self.shared.call(Request::LockAcquire {
                    h: self.shared.handle,
                    block: true,
                    timeout: timeout.map(nanos),
                })
            }

            /// Acquires it only if that is possible at once. Python: `acquire(False)`.
            ///
            /// # Errors
            /// As [`acquire`](Self::acquire).
            pub fn try_acquire(&self) -> Result<bool, ProcessError> {
                self.shared.call(Request::LockAcquire {
                    h: self.shared.handle,
                    block: false,
                    timeout: None,
                })
            }

            /// [`acquire`](Self::acquire) for async code.
            ///
            /// # Errors
            /// As [`acquire`](Self::acquire).
            pub async fn acquire_async(
                &self,
                timeout: Option<Duration>,
            ) -> Result<bool, ProcessError> {
                let request = Request::LockAcquire {
                    h: self.shared.handle,
                    block: true,
                    timeout: timeout.map(nanos),
                };
                self.shared.call_async(request).await
            }

            /// Releases it. Python: `release()`.
            ///
            /// # Errors
            /// `invalid-state` as in CPython: a release too many, or of an rlock this side
            /// does not hold.
            pub fn release(&self) -> Result<(), ProcessError> {
                self.shared.call(Request::LockRelease {
                    h: self.shared.handle,
                })
            }

            /// Units it would give now: 1 or 0 for a lock, a semaphore's value. Python:
            /// `get_value()` (of a semaphore).
            ///
            /// # Errors
            /// As [`acquire`](Self::acquire).
            pub fn value(&self) -> Result<u32, ProcessError> {
                self.shared.call(Request::LockValue {
                    h: self.shared.handle,
                })
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serialize_shared(&self.shared, None, $what, serializer)
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct($what)
                    .field("handle", &self.shared.handle)
                    .finish()
            }
        }
    };
}

lock_type!(
    /// A lock shared by the Rust program and the processes it passes it to, as
    /// `multiprocessing.Lock`: the guest SDK's `Lock` in a target's parameter takes it.
    Lock,
    "Lock",
    Lock
);
lock_type!(
    /// A recursive lock, as `multiprocessing.RLock`: the guest SDK's `RLock` takes it.
    RLock,
    "RLock",
    RLock
);
lock_type!(
    /// A semaphore, as `multiprocessing.Semaphore`: the guest SDK's `Semaphore` takes it.
    Semaphore,
    "Semaphore",
    Semaphore
);
lock_type!(
    /// A bounded semaphore, as `multiprocessing.BoundedSemaphore`: the guest SDK's
    /// `BoundedSemaphore` takes it.
    BoundedSemaphore,
    "BoundedSemaphore",
    BoundedSemaphore
);
