//! The `wasm` backend: every process is a fresh instance of the program in its own
//! `Store`, run by the model as a task of this host process ([`Spawned::Here`]); pids are
//! virtual, unique per host.

use super::{Backend, BackendRun, SpawnError, SpawnRequest, Spawned};
use crate::config::Config;
use crate::error::Error;
use crate::sync::{Link, Registry};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The backend object.
pub(crate) struct WasmBackend {
    /// The next virtual pid, shared by every run of the host.
    next_pid: Arc<AtomicU64>,
}

impl WasmBackend {
    pub fn new() -> Self {
        WasmBackend {
            next_pid: Arc::new(AtomicU64::new(1)),
        }
    }
}

impl Backend for WasmBackend {
    fn new_run(&self, config: &Config) -> Result<(Box<dyn BackendRun>, Link), Error> {
        let run = WasmRun {
            next_pid: self.next_pid.clone(),
            live: Arc::new(AtomicU64::new(0)),
        };
        let link = Link::Here(Registry::new(config.limits.clone()));
        Ok((Box::new(run), link))
    }

    fn main_pid(&self) -> u64 {
        self.next_pid.fetch_add(1, Ordering::Relaxed)
    }
}

/// A run of the `wasm` backend: it counts its live processes.
struct WasmRun {
    next_pid: Arc<AtomicU64>,
    live: Arc<AtomicU64>,
}

/// One live process's place in its run's count, given back when it is dropped.
struct Place(Arc<AtomicU64>);

impl Drop for Place {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl BackendRun for WasmRun {
    fn spawn(&self, request: &SpawnRequest<'_>) -> Result<Spawned, SpawnError> {
        let limit = request.config.limits.processes;
        let live = self.live.fetch_add(1, Ordering::Relaxed);
        let place = Place(self.live.clone());
        if live >= limit {
            return Err(SpawnError::Full { live });
        }
        Ok(Spawned::Here {
            pid: self.next_pid.fetch_add(1, Ordering::Relaxed),
            place: Some(Box::new(place)),
        })
    }

    fn capture_dir(&self) -> Option<&Path> {
        None
    }

    fn end(&self) {}
}
