//! What the processes of one native run share across OS processes ([`RunDir`]: its
//! directory, process slots and lifeline), and the backend's part of a run
//! ([`NativeRun`]).

use super::NativeHost;
use crate::backend::{BackendRun, SpawnError, SpawnRequest, Spawned};
use crate::lock;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// A run's directory: `slots/` (one lock file per live process, for the run-wide
/// `processes` limit), `sync.sock` (the run's object server) and, when output is captured,
/// `capture/`; and the run's lifeline.
pub(super) struct RunDir {
    pub path: PathBuf,
    pub capture_dir: Option<PathBuf>,
    pub lifeline_read: OwnedFd,
    lifeline_write: Mutex<Option<OwnedFd>>,
    /// Slots of this host's children that have ended (see `take_slot`).
    free_slots: Mutex<Vec<u64>>,
    /// Whether this OS process made the run (and so removes its directory).
    owner: bool,
}

impl RunDir {
    /// A new run's directory, made by its root host.
    pub fn create(path: PathBuf, capture: bool) -> std::io::Result<Self> {
        let (read, write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
        std::fs::create_dir_all(path.join("slots"))?;
        let capture_dir = capture.then(|| path.join("capture"));
        if let Some(dir) = &capture_dir {
            std::fs::create_dir_all(dir)?;
        }
        Ok(RunDir {
            path,
            capture_dir,
            lifeline_read: read,
            lifeline_write: Mutex::new(Some(write)),
            free_slots: Mutex::default(),
            owner: true,
        })
    }

    /// The run's directory as a native child process inherits it, with the read end of
    /// the lifeline.
    pub fn inherited(path: PathBuf, capture_dir: Option<PathBuf>, lifeline: OwnedFd) -> Self {
        RunDir {
            path,
            capture_dir,
            lifeline_read: lifeline,
            lifeline_write: Mutex::new(None),
            free_slots: Mutex::default(),
            owner: false,
        }
    }

    /// Where the run's object server listens.
    pub fn sync_socket(&self) -> PathBuf {
        self.path.join("sync.sock")
    }

    /// Takes a free process slot of the run: a lock file under `slots/`, locked through
    /// the returned descriptor, which the child inherits; the kernel releases the lock when
    /// the last holder exits, however it exits.
    ///
    /// The slots of this host's children that have ended are tried first: their files
    /// exist, and creating a file costs more than the rest of the start.
    pub fn take_slot(&self, limit: u64) -> Result<(OwnedFd, u64), SpawnError> {
        use rustix::fs::{FlockOperation, Mode, OFlags};
        let try_slot = |slot: u64| -> Result<Option<OwnedFd>, SpawnError> {
            let path = self.path.join("slots").join(slot.to_string());
            let fd = rustix::fs::open(
                &path,
                OFlags::CREATE | OFlags::RDWR | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            )
            .map_err(|e| super::spawn::os_failure("slot", e))?;
            Ok(
                rustix::fs::flock(&fd, FlockOperation::NonBlockingLockExclusive)
                    .is_ok()
                    .then_some(fd),
            )
        };
        loop {
            let Some(slot) = lock(&self.free_slots).pop() else {
                break;
            };
            if slot < limit
                && let Some(fd) = try_slot(slot)?
            {
                return Ok((fd, slot));
            }
        }
        let start = rand::random::<u64>() % limit.max(1);
        for i in 0..limit {
            let slot = (start + i) % limit;
            if let Some(fd) = try_slot(slot)? {
                return Ok((fd, slot));
            }
        }
        Err(SpawnError::Full { limit, live: limit })
    }

    /// The child that held `slot` has ended: the next start tries it first.
    pub fn slot_freed(&self, slot: u64) {
        lock(&self.free_slots).push(slot);
    }

    /// Ends the run: every process of it in another OS process kills itself; returns once
    /// they all have (each held a slot lock until it died).
    pub fn end(&self) {
        lock(&self.lifeline_write).take();
        let Ok(slots) = std::fs::read_dir(self.path.join("slots")) else {
            return;
        };
        for slot in slots.flatten() {
            if let Ok(file) = std::fs::File::open(slot.path()) {
                // Blocks until the process holding this slot (if any) has exited.
                let _ = rustix::fs::flock(&file, rustix::fs::FlockOperation::LockShared);
            }
        }
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        if self.owner {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// The native backend's part of one run.
pub(crate) struct NativeRun {
    host: Arc<NativeHost>,
    dir: Arc<RunDir>,
    /// The run's object server (in the run's root host only).
    server: Option<tokio::task::AbortHandle>,
}

impl NativeRun {
    pub(super) fn new(
        host: Arc<NativeHost>,
        dir: RunDir,
        server: Option<tokio::task::AbortHandle>,
    ) -> Self {
        NativeRun {
            host,
            dir: Arc::new(dir),
            server,
        }
    }
}

impl BackendRun for NativeRun {
    fn spawn(&self, request: &SpawnRequest<'_>) -> Result<Spawned, SpawnError> {
        super::spawn::spawn(&self.host, &self.dir, request)
    }

    fn capture_dir(&self) -> Option<&Path> {
        self.dir.capture_dir.as_deref()
    }

    fn end(&self) {
        self.dir.end();
    }
}

impl Drop for NativeRun {
    fn drop(&mut self) {
        if let Some(server) = &self.server {
            server.abort();
        }
    }
}
