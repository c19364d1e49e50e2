//! The seam between the process model and the ways of running a process: the traits only.
//!
//! The model ([`crate::model`]) decides everything a user can observe. A [`Backend`] makes
//! the backend's part of each run ([`BackendRun`]); the run's part starts each child the
//! model asks for ([`BackendRun::spawn`]) and says where it runs:
//! - [`Spawned::Here`]: in this OS process; the model runs it as a task (the `wasm`
//!   backend, [`wasm`]);
//! - [`Spawned::Elsewhere`]: in another OS process, which a [`Control`] signals and whose
//!   end a future reports (the `native` backend, [`native`]).
//!
//! Either way the model ends the process through its one end path. Nothing here knows
//! the model's types: a backend sees a [`SpawnRequest`] of plain data.

pub(crate) mod native;
pub(crate) mod wasm;

use crate::config::Config;
use crate::error::{Error, ProcessError};
use crate::exit::{ExitStatus, Signal};
use crate::output::ProcessOutput;
use crate::program::{Program, Programs};
use crate::sync::{Link, Shares};
use futures::future::BoxFuture;
use std::path::Path;

/// A way of running processes.
pub(crate) trait Backend: Send + Sync {
    /// The backend's part of a new run (a main process and its descendants), and where
    /// the run's sync objects live.
    fn new_run(&self, config: &Config) -> Result<(Box<dyn BackendRun>, Link), Error>;

    /// The pid of a main process run in this host process.
    fn main_pid(&self) -> u64;
}

/// The backend's part of one run.
pub(crate) trait BackendRun: Send + Sync {
    /// Starts the child `request` describes, if the run has room for one more live
    /// process (the `processes` limit, which the backend counts: under `native` the run
    /// spans OS processes).
    fn spawn(&self, request: &SpawnRequest<'_>) -> Result<Spawned, SpawnError>;

    /// Where processes in other OS processes write captured output, if they do.
    fn capture_dir(&self) -> Option<&Path>;

    /// Ends the run's processes in other OS processes; returns once they are gone.
    fn end(&self);
}

/// Everything a backend needs to start one child process.
pub(crate) struct SpawnRequest<'a> {
    pub name: &'a str,
    pub daemon: bool,
    pub target: &'a str,
    pub args: &'a [u8],
    /// The child's identity (`Process-1:2` is `[1, 2]`).
    pub identity: &'a [u32],
    pub parent: ParentInfo<'a>,
    pub program: &'a Program,
    pub output: &'a ProcessOutput,
    /// The sync objects the parent shares with the child.
    pub shares: &'a Shares,
    /// Where the run's sync objects live.
    pub link: &'a Link,
    pub config: &'a Config,
    /// The limits and grants the child runs under (no more than `config`'s).
    pub limits: &'a crate::config::Limits,
    pub grants: &'a crate::config::Grants,
    pub authkey: &'a [u8; 32],
    /// The other programs the child may start children of.
    pub programs: &'a Programs,
}

/// The parent of a process being started, as its backend sees it.
pub(crate) struct ParentInfo<'a> {
    pub name: &'a str,
    pub pid: u64,
    pub daemon: bool,
}

/// Where a started process runs.
pub(crate) enum Spawned {
    /// In this OS process: the model runs it. `place` holds its place in the run's
    /// `processes` count until it ends.
    Here {
        pid: u64,
        place: Option<Box<dyn Send>>,
    },
    /// In another OS process.
    Elsewhere(Elsewhere),
}

/// A process running in another OS process.
pub(crate) struct Elsewhere {
    /// Its OS pid.
    pub pid: u32,
    pub control: Box<dyn Control>,
    /// Completes with how it ended, once its OS process has exited.
    pub ended: BoxFuture<'static, Ended>,
    /// The token of the objects its parent shared with it (0: none), dropped when it
    /// ends if it never claimed them.
    pub token: u64,
}

/// How a process in another OS process ended.
pub(crate) struct Ended {
    pub status: ExitStatus,
    /// The limit that ended it, if one did.
    pub limit: Option<crate::exit::LimitHit>,
    /// The value its target returned, if it ended with exit code 0 and set one.
    pub result: Option<Vec<u8>>,
}

/// Why a start failed.
pub(crate) enum SpawnError {
    /// The run has `live` live processes, at its `processes` limit `limit`.
    Full {
        limit: u64,
        live: u64,
    },
    /// This OS process's kernel mappings would run out: `vm.max_map_count` is `max`, and
    /// `live` processes of the `wasm` backend are live in it.
    Maps {
        max: u64,
        live: u64,
    },
    Failed(ProcessError),
}

impl From<ProcessError> for SpawnError {
    fn from(e: ProcessError) -> Self {
        SpawnError::Failed(e)
    }
}

/// Delivers signals to one running process.
pub(crate) trait Control: Send + Sync {
    /// Ends the process as `sig` would. Only the first signal counts.
    fn signal(&self, sig: Signal);
}
