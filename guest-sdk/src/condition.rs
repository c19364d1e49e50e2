//! `Condition` and `Barrier`, as Python's `multiprocessing` has them.

use crate::__private::bindings::wasmproc::process::sync as host;
use crate::pool::{PoolFn, dispatch};
use crate::sync::{Inner, Part, nanos};
use crate::{Error, ErrorKind, Lock, LockGuard, RLock};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// The lock a [`Condition`] is over.
#[derive(Clone, Debug, Serialize, Deserialize)]
enum CondLock {
    Lock(Lock),
    RLock(RLock),
}

/// A condition variable shared between processes, as `multiprocessing.Condition`: over an
/// [`RLock`] by default, or over a [`Lock`] or `RLock` given.
///
/// The caller must hold the lock to [`wait`](Self::wait) or [`notify`](Self::notify)
/// ([`ErrorKind::InvalidState`] "cannot wait on un-acquired lock", "cannot notify on
/// un-acquired lock", as CPython's `RuntimeError`). A process that ends while holding the
/// lock leaves it as any lock's owner does: the next acquirer gets
/// [`ErrorKind::OwnerDied`]; one that ends while waiting leaves without taking a
/// notification.
///
/// # Caveats
/// Cloning shares the condition; it can be passed to another process in a child's start
/// arguments, a queue item or a pipe message (its lock travels with it).
#[derive(Clone)]
pub struct Condition {
    inner: Rc<Inner>,
    lock: CondLock,
}

impl fmt::Debug for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Condition")
            .field("handle", &self.inner.handle())
            .field("lock", &self.lock)
            .finish()
    }
}

impl Condition {
    /// A new condition over a new [`RLock`]. Python: `Condition()`.
    ///
    /// # Errors
    /// [`ErrorKind::LimitExceeded`] when the run's `objects` limit is reached.
    pub fn new() -> Result<Condition, Error> {
        Self::over(CondLock::RLock(RLock::new()?))
    }

    /// A new condition over `lock`. Python: `Condition(Lock())`.
    ///
    /// # Errors
    /// As [`new`](Self::new).
    pub fn with_lock(lock: Lock) -> Result<Condition, Error> {
        Self::over(CondLock::Lock(lock))
    }

    /// A new condition over `rlock`. Python: `Condition(RLock())`.
    ///
    /// # Errors
    /// As [`new`](Self::new).
    pub fn with_rlock(rlock: RLock) -> Result<Condition, Error> {
        Self::over(CondLock::RLock(rlock))
    }

    fn over(lock: CondLock) -> Result<Condition, Error> {
        let handle = host::condition_new(Self::lock_handle(&lock))?;
        Ok(Condition {
            inner: Inner::get(handle),
            lock,
        })
    }

    fn lock_handle(lock: &CondLock) -> u64 {
        match lock {
            CondLock::Lock(l) => l.handle(),
            CondLock::RLock(l) => l.handle(),
        }
    }

    /// Acquires the lock, waiting as long as it takes. Python: `acquire()`.
    ///
    /// # Errors
    /// As [`Lock::acquire`].
    pub fn acquire(&self) -> Result<bool, Error> {
        match &self.lock {
            CondLock::Lock(l) => l.acquire(),
            CondLock::RLock(l) => l.acquire(),
        }
    }

    /// Acquires the lock, waiting at most `timeout`; whether it was acquired.
    ///
    /// # Errors
    /// As [`Lock::acquire`].
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<bool, Error> {
        match &self.lock {
            CondLock::Lock(l) => l.acquire_timeout(timeout),
            CondLock::RLock(l) => l.acquire_timeout(timeout),
        }
    }

    /// Releases the lock. Python: `release()`.
    ///
    /// # Errors
    /// As [`Lock::release`].
    pub fn release(&self) -> Result<(), Error> {
        match &self.lock {
            CondLock::Lock(l) => l.release(),
            CondLock::RLock(l) => l.release(),
        }
    }

    /// Acquires the lock and returns a guard that releases it on drop. Python: `with cond:`.
    ///
    /// # Errors
    /// As [`Lock::lock`].
    pub fn lock(&self) -> Result<LockGuard<'_>, Error> {
        match &self.lock {
            CondLock::Lock(l) => l.lock(),
            CondLock::RLock(l) => l.lock(),
        }
    }

    /// Releases the lock, waits until notified or until `timeout` passes (`None`: forever),
    /// and acquires the lock again as it was held; whether it was notified.
    /// Python: `wait(timeout)`.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidState`] "cannot wait on un-acquired lock" when this process does
    /// not hold the lock; [`ErrorKind::OwnerDied`] when the lock was taken back from an
    /// owner that ended while holding it (this process holds it again).
    pub fn wait(&self, timeout: impl Into<Option<Duration>>) -> Result<bool, Error> {
        Ok(host::condition_wait(
            self.inner.handle(),
            nanos(timeout.into()),
        )?)
    }

    /// Waits until `predicate` is true, for at most `timeout` in all (`None`: forever);
    /// the predicate's last value. Python: `wait_for(predicate, timeout)`.
    ///
    /// # Errors
    /// As [`wait`](Self::wait).
    pub fn wait_for(
        &self,
        mut predicate: impl FnMut() -> bool,
        timeout: impl Into<Option<Duration>>,
    ) -> Result<bool, Error> {
        let end = timeout.into().map(|t| Instant::now() + t);
        loop {
            if predicate() {
                return Ok(true);
            }
            let left = match end {
                None => None,
                Some(end) => match end.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => Some(left),
                    _ => return Ok(false),
                },
            };
            self.wait(left)?;
        }
    }

    /// Wakes at most `n` of the processes waiting, the longest waiting first.
    /// Python: `notify(n)`.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidState`] "cannot notify on un-acquired lock" when this process
    /// does not hold the lock.
    pub fn notify(&self, n: u32) -> Result<(), Error> {
        Ok(host::condition_notify(self.inner.handle(), Some(n))?)
    }

    /// Wakes every process waiting. Python: `notify_all()`.
    ///
    /// # Errors
    /// As [`notify`](Self::notify).
    pub fn notify_all(&self) -> Result<(), Error> {
        Ok(host::condition_notify(self.inner.handle(), None)?)
    }

    /// The raw handle of the condition.
    pub fn handle(&self) -> u64 {
        self.inner.handle()
    }
}

impl Serialize for Condition {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        (Part(&self.inner, "Condition"), &self.lock).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Condition {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let (handle, lock) = <(u64, CondLock)>::deserialize(deserializer)?;
        Ok(Condition {
            inner: Inner::get(handle),
            lock,
        })
    }
}

/// A barrier for a fixed number of processes, as `multiprocessing.Barrier`: each party's
/// [`wait`](Self::wait) returns once `parties` processes wait, with its arrival index.
///
/// With an action (a function registered after `pool:` in [`targets!`](crate::targets),
/// named with [`pool_fn!`](crate::pool_fn)), the party that arrives last runs it before any
/// party is released, as in CPython; if it fails (or its process ends first) the barrier
/// breaks. A party that times out breaks the barrier, as does one whose process ends
/// while it waits: the others get [`ErrorKind::BrokenBarrier`] (Python's
/// `BrokenBarrierError`).
///
/// ```no_run
/// use wasmproc_guest::{Barrier, Process, targets};
///
/// fn party(b: Barrier) {
///     b.wait(None).unwrap();
/// }
/// targets![party];
///
/// fn main() -> Result<(), wasmproc_guest::Error> {
///     let b = Barrier::new(2)?;
///     let p = Process::new("party", &b)?;
///     p.start()?;
///     b.wait(None)?; // both parties are here
///     p.join(None)?;
///     Ok(())
/// }
/// ```
#[derive(Clone)]
pub struct Barrier {
    inner: Rc<Inner>,
    parties: u32,
    action: Option<Rc<str>>,
}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Barrier")
            .field("handle", &self.inner.handle())
            .field("action", &self.action)
            .finish()
    }
}

/// The arguments of a new [`Barrier`]: `Barrier::builder(parties).action(..).timeout(..)`.
#[derive(Debug)]
pub struct BarrierBuilder {
    parties: usize,
    action: Option<&'static str>,
    timeout: Option<Duration>,
}

impl BarrierBuilder {
    /// Runs `action` (a pool function of no arguments) in the party that completes each
    /// round, before the round's parties are released. Python: `action=`.
    pub fn action<R>(mut self, action: PoolFn<(), R>) -> Self {
        self.action = Some(action.name());
        self
    }

    /// The timeout of a [`Barrier::wait`] given none. Python: `timeout=`.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The barrier.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidArgument`] "parties must be >= 1" for 0 parties (or a number
    /// beyond `u32`); [`ErrorKind::LimitExceeded`] when the run's `objects` limit is
    /// reached.
    pub fn build(self) -> Result<Barrier, Error> {
        let parties = u32::try_from(self.parties).map_err(|_| {
            Error::invalid_argument(format!(
                "parties {} is larger than {}",
                self.parties,
                u32::MAX
            ))
        })?;
        let handle = host::barrier_new(parties, self.action.is_some(), nanos(self.timeout))?;
        Ok(Barrier {
            inner: Inner::get(handle),
            parties,
            action: self.action.map(Rc::from),
        })
    }
}

impl Barrier {
    /// A new barrier for `parties` processes, without action or default timeout.
    /// Python: `Barrier(parties)`.
    ///
    /// # Errors
    /// As [`BarrierBuilder::build`].
    pub fn new(parties: usize) -> Result<Barrier, Error> {
        Self::builder(parties).build()
    }

    /// A builder of a barrier with an action or a default timeout.
    pub fn builder(parties: usize) -> BarrierBuilder {
        BarrierBuilder {
            parties,
            action: None,
            timeout: None,
        }
    }

    /// Waits until every party waits, or `timeout` passes (`None`: the barrier's default
    /// timeout, if any); this party's arrival index, from 0 to `parties - 1` (the last to
    /// arrive, which ran the action). Python: `wait(timeout)`.
    ///
    /// # Errors
    /// [`ErrorKind::BrokenBarrier`] "the barrier is broken" when the barrier is broken or
    /// breaks while this party waits (this party's timeout breaks it); for the party that
    /// ran the action, the action's failure.
    pub fn wait(&self, timeout: impl Into<Option<Duration>>) -> Result<usize, Error> {
        let h = self.inner.handle();
        let index = host::barrier_wait(h, nanos(timeout.into()))?;
        if let Some(action) = &self.action
            && index + 1 == self.parties
        {
            let mut out = Vec::new();
            let outcome = match dispatch() {
                Some(dispatch) => dispatch(action, &mut &[][..], &mut out),
                None => None,
            };
            let failure = match outcome {
                Some(Ok(())) => None,
                Some(Err(e)) => Some(Error::new(
                    ErrorKind::InvalidArgument,
                    format!("the barrier action {action} failed: {e}"),
                )),
                None => Some(Error::invalid_argument(format!(
                    "the program has no pool function named '{action}' (register the \
                     barrier action with targets![...; pool: {action}])"
                ))),
            };
            host::barrier_action_done(h, failure.is_none())?;
            if let Some(e) = failure {
                return Err(e);
            }
        }
        Ok(index as usize)
    }

    /// Returns the barrier to its initial state; parties waiting get
    /// [`ErrorKind::BrokenBarrier`]. Python: `reset()`.
    ///
    /// # Errors
    /// As [`Event::set`](crate::Event::set).
    pub fn reset(&self) -> Result<(), Error> {
        Ok(host::barrier_reset(self.inner.handle())?)
    }

    /// Breaks the barrier: waiting and later parties get [`ErrorKind::BrokenBarrier`] until
    /// a [`reset`](Self::reset). Python: `abort()`.
    ///
    /// # Errors
    /// As [`Event::set`](crate::Event::set).
    pub fn abort(&self) -> Result<(), Error> {
        Ok(host::barrier_abort(self.inner.handle())?)
    }

    /// The number of parties. Python: `parties`.
    pub fn parties(&self) -> usize {
        self.parties as usize
    }

    /// The number of parties waiting now. Python: `n_waiting`.
    ///
    /// # Errors
    /// As [`Event::set`](crate::Event::set).
    pub fn n_waiting(&self) -> Result<usize, Error> {
        Ok(host::barrier_state(self.inner.handle())?.n_waiting as usize)
    }

    /// Whether the barrier is broken. Python: `broken`.
    ///
    /// # Errors
    /// As [`Event::set`](crate::Event::set).
    pub fn broken(&self) -> Result<bool, Error> {
        Ok(host::barrier_state(self.inner.handle())?.broken)
    }

    /// The raw handle of the barrier.
    pub fn handle(&self) -> u64 {
        self.inner.handle()
    }
}

impl Serialize for Barrier {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        (
            Part(&self.inner, "Barrier"),
            self.parties,
            self.action.as_deref(),
        )
            .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Barrier {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let (handle, parties, action) = <(u64, u32, Option<String>)>::deserialize(deserializer)?;
        Ok(Barrier {
            inner: Inner::get(handle),
            parties,
            action: action.map(Rc::from),
        })
    }
}
