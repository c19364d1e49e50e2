//! A loaded program ([`Program`]: compiled once per host, instantiated once per process),
//! and the other programs a host allows processes to start children of ([`Programs`]).

use crate::engine::{CommandPre, Engine, GuestPre};
use crate::error::{ErrorKind, ProcessError};
use crate::lock;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// A program loaded by a [`crate::Host`]: a WASI component, compiled once and ready to be
/// instantiated for each process (wasmtime's `InstancePre`). Cheap to clone.
#[derive(Clone)]
pub struct Program {
    inner: Arc<ProgramInner>,
}

pub(crate) struct ProgramInner {
    pub path: PathBuf,
    /// The compiled component (for serialising it for native children).
    pub component: wasmtime::component::Component,
    /// Whether its memories begin as a copy-on-write image of its initial data (it has
    /// much of it), rather than a copy.
    pub imaged: bool,
    /// Where the serialised component was written for native children, once it was.
    pub artifact: std::sync::OnceLock<PathBuf>,
    pub display_name: String,
    /// Runs the main process (`wasi:cli/run`), if the program has a main.
    pub command: Option<CommandPre>,
    /// Runs targets in child processes, if the program was built with the guest SDK.
    pub guest: Option<GuestPre>,
    pub targets: Vec<String>,
}

impl Program {
    pub(crate) fn new(inner: ProgramInner) -> Self {
        Program {
            inner: Arc::new(inner),
        }
    }

    pub(crate) fn inner(&self) -> &ProgramInner {
        &self.inner
    }

    /// The wasmtime engine its component was compiled for (its stores are of it).
    pub(crate) fn wasmtime(&self) -> &wasmtime::Engine {
        self.inner.component.engine()
    }

    /// The file it was loaded from.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The file name, as used in messages and as `argv[0]`.
    pub fn display_name(&self) -> &str {
        &self.inner.display_name
    }

    /// The names of the targets a child process can run, in registration order.
    pub fn targets(&self) -> &[String] {
        &self.inner.targets
    }

    /// Whether the program has a target of this name.
    pub fn has_target(&self, name: &str) -> bool {
        self.inner.targets.iter().any(|t| t == name)
    }
}

impl std::fmt::Debug for Program {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Program")
            .field("path", &self.inner.path)
            .field("targets", &self.inner.targets)
            .finish()
    }
}

/// Where an allowed program comes from.
pub(crate) enum ProgramSource {
    /// A file, compiled when first used (in the run's root host).
    File(PathBuf),
    /// A compiled program's artifact, mapped when first used (in a native child).
    Artifact {
        path: PathBuf,
        display_name: String,
        targets: Vec<String>,
    },
    /// A loaded program.
    Loaded(Program),
}

/// The programs a host allows processes to start children of, loaded once each.
pub(crate) struct Programs {
    engine: Arc<Engine>,
    allowed: Vec<(String, Mutex<ProgramSource>)>,
    /// Whether a file may be precompiled ([`Programs::allow_precompiled`]).
    precompiled: AtomicBool,
}

impl Programs {
    pub fn new(engine: Arc<Engine>, allowed: Vec<(String, ProgramSource)>) -> Self {
        Programs {
            engine,
            allowed: allowed
                .into_iter()
                .map(|(n, s)| (n, Mutex::new(s)))
                .collect(),
            precompiled: AtomicBool::new(false),
        }
    }

    /// Lets the files be precompiled programs too, loaded as
    /// [`Engine::load_precompiled`] loads them.
    ///
    /// # Safety
    /// The contract of [`Engine::load_precompiled`], for every file allowed.
    pub unsafe fn allow_precompiled(&self) {
        self.precompiled.store(true, Ordering::Relaxed);
    }

    /// The names allowed, in configuration order.
    pub fn names(&self) -> Vec<String> {
        self.allowed.iter().map(|(n, _)| n.clone()).collect()
    }

    /// Program `name`, loading it on first use.
    pub fn get(&self, name: &str) -> Result<Program, ProcessError> {
        let Some((_, source)) = self.allowed.iter().find(|(n, _)| n == name) else {
            let names = self.names();
            return Err(ProcessError::new(
                ErrorKind::UnknownTarget,
                if names.is_empty() {
                    format!("the host allows no other program (asked for '{name}')")
                } else {
                    format!(
                        "the host allows no program named '{name}' (allowed: {})",
                        names.join(", ")
                    )
                },
            ));
        };
        let mut source = lock(source);
        let program = match &*source {
            ProgramSource::Loaded(p) => return Ok(p.clone()),
            ProgramSource::File(path) if self.precompiled.load(Ordering::Relaxed) => {
                // SAFETY: whoever allowed precompiled files took on the contract
                // (`allow_precompiled`).
                unsafe { self.engine.load_precompiled(path) }
            }
            ProgramSource::File(path) => self.engine.load(path),
            ProgramSource::Artifact {
                path,
                display_name,
                targets,
            } => self
                .engine
                .load_artifact(path, display_name.clone(), targets.clone()),
        }
        .map_err(|e| ProcessError::host_failure(format!("cannot load program '{name}': {e}")))?;
        *source = ProgramSource::Loaded(program.clone());
        Ok(program)
    }
}
