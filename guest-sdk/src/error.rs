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
    /// The process object has been closed.
    Closed,
    /// The program has no target of that name.
    UnknownTarget,
    /// An argument is malformed.
    InvalidArgument,
    /// A host limit would be exceeded.
    LimitExceeded,
    /// The host could not carry out the call.
    HostFailure,
}

/// An error returned by the host: a kind and the exact message.
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
        };
        Error {
            kind,
            message: e.message,
        }
    }
}

impl Error {
    pub(crate) fn invalid_argument(message: String) -> Self {
        Error {
            kind: ErrorKind::InvalidArgument,
            message,
        }
    }
}
