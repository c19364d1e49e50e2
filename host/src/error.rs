//! Error types: what the library returns, and what a guest sees.

use std::path::PathBuf;

/// The kind of a [`ProcessError`]; the WIT `error-kind` of the same name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum ErrorKind {
    /// The call does not fit the object's state.
    InvalidState,
    /// The handle does not name a child of the caller.
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
    /// A queue was empty (Python: `queue.Empty`).
    Empty,
    /// A bounded queue was full (Python: `queue.Full`).
    Full,
    /// The other end of a connection is closed and every message was received.
    Eof,
    /// The other end of a connection is closed.
    BrokenPipe,
    /// A lock was acquired from an owner that ended while holding it.
    OwnerDied,
    /// A barrier is broken (Python: `threading.BrokenBarrierError`).
    BrokenBarrier,
}

impl ErrorKind {
    /// The kind's WIT name (`invalid-state`, `limit-exceeded`, ...).
    pub fn wit_name(self) -> &'static str {
        match self {
            ErrorKind::InvalidState => "invalid-state",
            ErrorKind::NotAChild => "not-a-child",
            ErrorKind::Closed => "closed",
            ErrorKind::UnknownTarget => "unknown-target",
            ErrorKind::InvalidArgument => "invalid-argument",
            ErrorKind::LimitExceeded => "limit-exceeded",
            ErrorKind::HostFailure => "host-failure",
            ErrorKind::Empty => "empty",
            ErrorKind::Full => "full",
            ErrorKind::Eof => "eof",
            ErrorKind::BrokenPipe => "broken-pipe",
            ErrorKind::OwnerDied => "owner-died",
            ErrorKind::BrokenBarrier => "broken-barrier",
        }
    }
}

/// An error of the process model, the same whether the caller is a guest or a Rust program
/// using this library: a kind and the exact message (CPython's, where Python has one).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[error("{message}")]
pub struct ProcessError {
    /// What kind of failure this is.
    pub kind: ErrorKind,
    /// The message.
    pub message: String,
}

impl ProcessError {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ProcessError {
            kind,
            message: message.into(),
        }
    }

    pub(crate) fn invalid_state(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidState, message)
    }

    pub(crate) fn not_a_child(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotAChild, message)
    }

    pub(crate) fn closed() -> Self {
        Self::new(ErrorKind::Closed, "process object is closed")
    }

    pub(crate) fn invalid_argument(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidArgument, message)
    }

    pub(crate) fn host_failure(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::HostFailure, message)
    }
}

/// An error of the host library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A program file could not be read.
    #[error("cannot read program {path}: {io}")]
    ReadProgram {
        /// The file.
        path: PathBuf,
        /// Why (part of the message, so not also a `source`).
        io: std::io::Error,
    },
    /// A program of [`crate::Config::programs`] cannot be read or is not a program, found
    /// when the host is made rather than when a process first starts one.
    #[error("program {name}: {why}")]
    Program {
        /// The name processes start it by.
        name: String,
        /// What is wrong with it, naming the file.
        why: String,
    },
    /// A file could not be written.
    #[error("cannot write {path}: {io}")]
    WriteFile {
        /// The file.
        path: PathBuf,
        /// Why.
        io: std::io::Error,
    },
    /// A program could not be compiled or loaded.
    #[error("cannot load program {path}: {message}")]
    LoadProgram {
        /// The file.
        path: PathBuf,
        /// Why, with wasmtime's explanation.
        message: String,
    },
    /// The wasmtime engine could not be set up.
    #[error("cannot set up the WebAssembly engine: {0}")]
    Engine(String),
    /// The native backend's child executable is missing or is not this wasmproc.
    #[error("the native backend cannot use {exe} as its child executable: {why}")]
    NativeExe {
        /// The executable.
        exe: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// The native backend could not make its work directory.
    #[error("cannot make the native backend's work directory in {root}: {why}")]
    WorkDir {
        /// The directory it is made in.
        root: PathBuf,
        /// Why not.
        why: String,
    },
    /// The [`crate::Config`] given to [`crate::Host::new`] is not one a host can run.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The async runtime could not be started.
    #[error("cannot start the host runtime: {0}")]
    Runtime(std::io::Error),
    /// The process model refused a call.
    #[error(transparent)]
    Process(#[from] ProcessError),
}

/// Turns a wasmtime error into its full message chain.
pub(crate) fn chain(e: &wasmtime::Error) -> String {
    format!("{e:#}")
}
