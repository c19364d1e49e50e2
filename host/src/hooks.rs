//! An embedder's hooks into the wasmtime configuration, the linker and each process's
//! store ([`Hooks`]), as wasmtime-based runtimes offer them.

use crate::engine::ProcState;
use std::sync::{Arc, OnceLock};

type ConfigHook = dyn Fn(&mut wasmtime::Config) + Send + Sync;
type LinkerHook =
    dyn Fn(&mut wasmtime::component::Linker<ProcState>) -> wasmtime::Result<()> + Send + Sync;
type StoreHook = dyn Fn(&mut wasmtime::Store<ProcState>) -> wasmtime::Result<()> + Send + Sync;

/// Code of the embedder that runs where wasmproc sets up wasmtime: on the engine's
/// configuration (to turn on fuel, say), on the linker every program is instantiated with
/// (to add host functions a program imports), and on each process's store before its
/// program is instantiated (to give it fuel, or data of the embedder's,
/// [`StoreData::set_extension`](crate::StoreData::set_extension)).
///
/// Each hook runs after wasmproc's own setup, so it may change what wasmproc chose, and
/// it is trusted as the host's own code: an import it adds is reachable by every guest. A
/// hook that breaks what wasmproc relies on (epoch interruption, async support, the
/// memory reservation) makes processes fail.
///
/// Under the `native` backend every child OS process builds its own engine, linker and
/// stores, so the hooks must run there too: name an executable of your own as
/// [`Config::native_exe`](crate::Config::native_exe) whose `main` calls
/// [`native_child_main_with`](crate::native_child_main_with) with the same hooks when its
/// first argument is [`CHILD_SUBCOMMAND`](crate::CHILD_SUBCOMMAND). [`Host::new`]
/// refuses a native host with hooks whose executable does not.
///
/// [`Host::new`]: crate::Host::new
#[derive(Clone, Default)]
pub struct Hooks {
    config: Option<Arc<ConfigHook>>,
    linker: Option<Arc<LinkerHook>>,
    store: Option<Arc<StoreHook>>,
}

impl Hooks {
    /// Runs `f` on the engine's configuration.
    pub fn config(mut self, f: impl Fn(&mut wasmtime::Config) + Send + Sync + 'static) -> Self {
        self.config = Some(Arc::new(f));
        self
    }

    /// Runs `f` on the linker, after WASI and wasmproc's own interfaces were added. Host
    /// functions must be async-compatible (`func_wrap`, `func_wrap_async`): the engine
    /// runs guests asynchronously.
    pub fn linker(
        mut self,
        f: impl Fn(&mut wasmtime::component::Linker<ProcState>) -> wasmtime::Result<()>
        + Send
        + Sync
        + 'static,
    ) -> Self {
        self.linker = Some(Arc::new(f));
        self
    }

    /// Runs `f` on each process's store before its program is instantiated. An error ends
    /// the process with exit code 1 and the error on its stderr.
    pub fn store(
        mut self,
        f: impl Fn(&mut wasmtime::Store<ProcState>) -> wasmtime::Result<()> + Send + Sync + 'static,
    ) -> Self {
        self.store = Some(Arc::new(f));
        self
    }

    /// Whether a configuration hook is set.
    pub(crate) fn has_config(&self) -> bool {
        self.config.is_some()
    }

    /// Whether no hook is set.
    pub fn is_empty(&self) -> bool {
        self.config.is_none() && self.linker.is_none() && self.store.is_none()
    }

    pub(crate) fn on_config(&self, config: &mut wasmtime::Config) {
        if let Some(f) = &self.config {
            f(config);
        }
    }

    pub(crate) fn on_linker(
        &self,
        linker: &mut wasmtime::component::Linker<ProcState>,
    ) -> wasmtime::Result<()> {
        match &self.linker {
            Some(f) => f(linker),
            None => Ok(()),
        }
    }

    pub(crate) fn on_store(&self, store: &mut wasmtime::Store<ProcState>) -> wasmtime::Result<()> {
        match &self.store {
            Some(f) => f(store),
            None => Ok(()),
        }
    }
}

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooks")
            .field("config", &self.config.is_some())
            .field("linker", &self.linker.is_some())
            .field("store", &self.store.is_some())
            .finish()
    }
}

/// The hooks of this OS process when it is a native child ([`crate::native_child_main_with`]).
static CHILD_HOOKS: OnceLock<Hooks> = OnceLock::new();

/// Sets the hooks a native child of this executable runs with.
pub(crate) fn set_child_hooks(hooks: Hooks) {
    let _ = CHILD_HOOKS.set(hooks);
}

/// The hooks a native child of this executable runs with (none unless set).
pub(crate) fn child_hooks() -> Hooks {
    CHILD_HOOKS.get().cloned().unwrap_or_default()
}
