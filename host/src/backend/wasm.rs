//! The `wasm` backend: every process is a fresh instance of the program in its own
//! `Store`, run by the model as a task of this host process ([`Spawned::Here`]); pids are
//! virtual, unique per host. A start is refused before this OS process's kernel mappings
//! would run out ([`crate::engine::maps`]).

use super::{Backend, BackendRun, SpawnError, SpawnRequest, Spawned};
use crate::config::{BackendKind, Config};
use crate::engine::maps::{Budget, Charge};
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
            maps: Budget {
                max: config
                    .max_map_count
                    .unwrap_or_else(crate::engine::maps::kernel_max_map_count),
                per_start: per_start(config) + IMAGE_MAPS,
            },
        };
        let link = Link::Here(Registry::new(config.limits.clone()));
        Ok((Box::new(run), link))
    }

    fn main_pid(&self) -> u64 {
        self.next_pid.fetch_add(1, Ordering::Relaxed)
    }
}

/// The most kernel mappings one process of the `wasm` backend makes: its linear memory
/// (the accessible part and the rest of the reservation) and its fiber stack (the stack and
/// its guard page); on a thread of its own, also the thread's stack and guard and the
/// allocator's heap for the thread. A program whose memory begins as a copy-on-write
/// image makes [`IMAGE_MAPS`] more.
fn per_start(config: &Config) -> u64 {
    if config.thread_per_process { 8 } else { 4 }
}

/// The mappings a memory's copy-on-write image adds: the image's own, and the accessible
/// part of the memory after it, apart from the part before it.
const IMAGE_MAPS: u64 = 2;

/// A run of the `wasm` backend: it counts its live processes.
struct WasmRun {
    next_pid: Arc<AtomicU64>,
    live: Arc<AtomicU64>,
    maps: Budget,
}

/// One live process's place in its run's count, given back when it is dropped, and its
/// charge on the kernel's mappings.
struct Place {
    live: Arc<AtomicU64>,
    _maps: Option<Charge>,
}

impl Drop for Place {
    fn drop(&mut self) {
        self.live.fetch_sub(1, Ordering::Relaxed);
    }
}

impl BackendRun for WasmRun {
    fn spawn(&self, request: &SpawnRequest<'_>) -> Result<Spawned, SpawnError> {
        let limit = request.config.limits.processes_for(BackendKind::Wasm);
        let live = self.live.fetch_add(1, Ordering::Relaxed);
        let mut place = Place {
            live: self.live.clone(),
            _maps: None,
        };
        if live >= limit {
            return Err(SpawnError::Full { limit, live });
        }
        let maps = per_start(request.config)
            + if request.program.inner().imaged {
                IMAGE_MAPS
            } else {
                0
            };
        let charge = self.maps.charge(maps).map_err(|e| SpawnError::Maps {
            max: self.maps.max,
            live: e.live,
        })?;
        place._maps = Some(charge);
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
