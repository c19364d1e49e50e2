//! The error type of every call into the host.

use crate::__private::bindings::wasmproc::process::types as wit;
use std::fmt;

/// What kind of failure an [`Error`] is; mirrors the exception a Python user would see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The call does not fit the object's state (Python: `AssertionError`/`ValueError`).
    InvalidState,
    /// The handle is not a child of the calling process.
    NotAChild,
    /// The object has been closed: a process object after `close` ("process object is
    /// closed"), a [`Queue`](crate::Queue) after [`Queue::close`](crate::Queue::close)
    /// ("Queue is closed"), a [`Connection`](crate::Connection) after
    /// [`Connection::close`](crate::Connection::close) ("handle is closed").
    Closed,
    /// The program has no target of that name.
    UnknownTarget,
    /// An argument is malformed.
    InvalidArgument,
    /// A host limit would be exceeded.
    LimitExceeded,
    /// The host could not carry out the call.
    HostFailure,
    /// A non-blocking or timed `get` found the queue empty. (Python: `queue.Empty`.)
    Empty,
    /// A non-blocking or timed `put` found the bounded queue full. (Python: `queue.Full`.)
    Full,
    /// `recv` on a connection whose other end is closed and whose data is all read.
    /// (Python: `EOFError`.)
    Eof,
    /// `send` on a connection whose other end is closed. (Python: `BrokenPipeError`.)
    BrokenPipe,
    /// The lock *was acquired*, but its previous owner ended while holding it, so what it
    /// protects may be inconsistent. The caller holds the lock and must release it.
    OwnerDied,
    /// A [`Barrier`](crate::Barrier) is broken: it was aborted or reset, a party timed out
    /// or ended while waiting, or its action failed. (Python: `BrokenBarrierError`.)
    BrokenBarrier,
    /// Raised by the SDK, not the host: [`AsyncResult::get`](crate::AsyncResult::get) or
    /// [`AsyncResult::wait`](crate::AsyncResult::wait) ran out of time before the result
    /// was ready. (Python: `multiprocessing.TimeoutError`.)
    Timeout,
    /// Raised by the SDK, not the host: a [`Pool`](crate::Pool) task did not produce a
    /// result. The message says why: the task panicked ("task failed in worker
    /// Process-3: panicked at ..."), its worker ended while running it ("worker
    /// Process-2 ended with exitcode -9 while running the task"), the pool was terminated
    /// ("pool terminated"), or its arguments did not decode in the worker.
    TaskFailed,
}

/// An error returned by the host (or, for the SDK-only kinds, by the SDK): a kind and the
/// exact message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    message: String,
}

impl Error {
    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message, as the host wrote it (for Python-equivalent cases, CPython's text).
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl From<wit::Error> for Error {
    fn from(e: wit::Error) -> Self {
        let kind = match e.kind {
            wit::ErrorKind::InvalidState => ErrorKind::InvalidState,
            wit::ErrorKind::NotAChild => ErrorKind::NotAChild,
            wit::ErrorKind::Closed => ErrorKind::Closed,
            wit::ErrorKind::UnknownTarget => ErrorKind::UnknownTarget,
            wit::ErrorKind::InvalidArgument => ErrorKind::InvalidArgument,
            wit::ErrorKind::LimitExceeded => ErrorKind::LimitExceeded,
            wit::ErrorKind::HostFailure => ErrorKind::HostFailure,
            wit::ErrorKind::Empty => ErrorKind::Empty,
            wit::ErrorKind::Full => ErrorKind::Full,
            wit::ErrorKind::Eof => ErrorKind::Eof,
            wit::ErrorKind::BrokenPipe => ErrorKind::BrokenPipe,
            wit::ErrorKind::OwnerDied => ErrorKind::OwnerDied,
            wit::ErrorKind::BrokenBarrier => ErrorKind::BrokenBarrier,
        };
        Error {
            kind,
            message: e.message,
        }
    }
}

impl Error {
    /// An error of `kind` with `message`, for code that reports its own failures in the
    /// SDK's terms (the SDK uses it for [`ErrorKind::Timeout`] and
    /// [`ErrorKind::TaskFailed`]).
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
        }
    }

    pub(crate) fn invalid_argument(message: String) -> Self {
        Error::new(ErrorKind::InvalidArgument, message)
    }
}
