//! A loaded program: compiled once per host, instantiated once per process.

use crate::backend::wasm::ProcState;
use std::path::{Path, PathBuf};
use std::sync::Arc;

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
    /// Where the serialised component was written for native children, once it was.
    pub artifact: std::sync::OnceLock<PathBuf>,
    pub display_name: String,
    /// Runs the main process (`wasi:cli/run`), if the program has a main.
    pub command: Option<wasmtime_wasi::p2::bindings::CommandPre<ProcState>>,
    /// Runs targets in child processes, if the program was built with the guest SDK.
    pub guest: Option<crate::backend::wasm::GuestPre>,
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
