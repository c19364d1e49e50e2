//! `SimpleQueue` and `JoinableQueue`: the other two queues of Python's `multiprocessing`.

use crate::__private::bindings::wasmproc::process::sync as host;
use crate::sync::nanos;
use crate::{Error, Queue};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::ops::Deref;
use std::time::Duration;

/// An unbounded FIFO queue with only `put`, `get`, `empty` and `close`, as
/// `multiprocessing.SimpleQueue`.
///
/// It is a [`Queue`] underneath: what holds for a queue (sharing, closing, passing to a
/// child in its start arguments) holds for it.
pub struct SimpleQueue<T>(Queue<T>);

impl<T> Clone for SimpleQueue<T> {
    fn clone(&self) -> Self {
        SimpleQueue(self.0.clone())
    }
}

impl<T> fmt::Debug for SimpleQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SimpleQueue").field(&self.0).finish()
    }
}

impl<T: Serialize + DeserializeOwned> SimpleQueue<T> {
    /// A new, empty queue. Python: `SimpleQueue()`.
    ///
    /// # Errors
    /// As [`Queue::new`].
    pub fn new() -> Result<SimpleQueue<T>, Error> {
        Ok(SimpleQueue(Queue::new()?))
    }

    /// Appends `item`. Python: `put(item)`.
    ///
    /// # Errors
    /// As [`Queue::put`].
    pub fn put(&self, item: &T) -> Result<(), Error> {
        self.0.put(item)
    }

    /// Removes and returns the oldest item, waiting for one. Python: `get()`.
    ///
    /// # Errors
    /// As [`Queue::get`].
    pub fn get(&self) -> Result<T, Error> {
        self.0.get()
    }

    /// Whether the queue is empty now. Python: `empty()`.
    ///
    /// # Errors
    /// As [`Queue::empty`].
    pub fn empty(&self) -> Result<bool, Error> {
        self.0.empty()
    }

    /// This process stops holding the queue. Python: `close()`.
    pub fn close(&self) {
        self.0.close();
    }

    /// The raw handle of the queue.
    pub fn handle(&self) -> u64 {
        self.0.handle()
    }
}

impl<T> Serialize for SimpleQueue<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de, T> Deserialize<'de> for SimpleQueue<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Queue::deserialize(deserializer).map(SimpleQueue)
    }
}

/// A [`Queue`] that counts its unfinished tasks, as `multiprocessing.JoinableQueue`: each
/// item put adds one, each [`task_done`](Self::task_done) of a consumer takes one away, and
/// [`join`](Self::join) waits until none is left.
///
/// Every method of [`Queue`] works on it (it dereferences to one). The count lives in the
/// host, so a consumer that ends without calling `task_done` leaves its task unfinished,
/// as in CPython.
///
/// ```no_run
/// use wasmproc_guest::{JoinableQueue, Process, targets};
///
/// fn consumer(q: JoinableQueue<u32>) {
///     loop {
///         let n = q.get().unwrap();
///         println!("got {n}");
///         q.task_done().unwrap();
///     }
/// }
/// targets![consumer];
///
/// fn main() -> Result<(), wasmproc_guest::Error> {
///     let q = JoinableQueue::new()?;
///     let mut c = Process::new("consumer", &q)?;
///     c.set_daemon(true)?;
///     c.start()?;
///     for n in 0..3 {
///         q.put(&n)?;
///     }
///     q.join()?; // every item was taken and marked done
///     Ok(())
/// }
/// ```
pub struct JoinableQueue<T>(Queue<T>);

impl<T> Clone for JoinableQueue<T> {
    fn clone(&self) -> Self {
        JoinableQueue(self.0.clone())
    }
}

impl<T> fmt::Debug for JoinableQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("JoinableQueue").field(&self.0).finish()
    }
}

impl<T> Deref for JoinableQueue<T> {
    type Target = Queue<T>;

    fn deref(&self) -> &Queue<T> {
        &self.0
    }
}

impl<T> JoinableQueue<T> {
    /// A new unbounded joinable queue. Python: `JoinableQueue()`.
    ///
    /// # Errors
    /// As [`Queue::new`].
    pub fn new() -> Result<JoinableQueue<T>, Error> {
        Self::bounded(0)
    }

    /// A new joinable queue holding at most `maxsize` items (0: unbounded).
    /// Python: `JoinableQueue(maxsize)`.
    ///
    /// # Errors
    /// As [`Queue::bounded`].
    pub fn bounded(maxsize: usize) -> Result<JoinableQueue<T>, Error> {
        let maxsize = u32::try_from(maxsize).map_err(|_| {
            Error::invalid_argument(format!("maxsize {maxsize} is larger than {}", u32::MAX))
        })?;
        let handle = host::joinable_queue_new(maxsize)?;
        Ok(JoinableQueue(Queue::from_handle(handle, maxsize)))
    }

    /// Says that one item taken from the queue has been processed. Python: `task_done()`.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidState`](crate::ErrorKind::InvalidState) "task_done() called too
    /// many times" when no task is unfinished (Python's `ValueError`); otherwise as
    /// [`Event::set`](crate::Event::set).
    pub fn task_done(&self) -> Result<(), Error> {
        Ok(host::queue_task_done(self.0.handle())?)
    }

    /// Waits until every item put in the queue has been processed. Python: `join()`.
    ///
    /// # Errors
    /// As [`Event::set`](crate::Event::set).
    pub fn join(&self) -> Result<(), Error> {
        host::queue_join(self.0.handle(), None)?;
        Ok(())
    }

    /// [`join`](Self::join) for at most `timeout`: whether every item was processed (an
    /// addition to Python's API).
    ///
    /// # Errors
    /// As [`join`](Self::join).
    pub fn join_timeout(&self, timeout: Duration) -> Result<bool, Error> {
        Ok(host::queue_join(self.0.handle(), nanos(Some(timeout)))?)
    }
}

impl<T> Serialize for JoinableQueue<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de, T> Deserialize<'de> for JoinableQueue<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Queue::deserialize(deserializer).map(JoinableQueue)
    }
}
