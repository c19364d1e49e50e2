//! The wasmtime engine both backends run guests on: its configuration, loading programs
//! ([`Engine::load`]), and running one process's guest code to its end ([`Runner`], in
//! `run.rs`). Each process has a `Store` of its own ([`ProcState`], `state.rs`); the host
//! calls its guest makes are in `host/`, one file per WIT interface. Fiber stacks and
//! linear memories of ended processes are kept for the next (`stacks.rs`, `memories.rs`)
//! unless the pooling allocator is configured.

mod bindings;
mod host;
mod kept;
pub(crate) mod maps;
mod memories;
mod run;
mod stacks;
mod state;

pub(crate) use self::memories::run_last_process_only;
pub use self::state::ProcState;

use crate::error::{Error, chain};
use crate::exit::ExitStatus;
use crate::model::{Entry, ProcessCtx, Runner};
use crate::program::{Program, ProgramInner};
use futures::future::BoxFuture;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Precompiled, Store};

/// What instantiates a program built with the guest SDK.
pub(crate) type GuestPre = bindings::ProgramPre<ProcState>;

/// What instantiates a plain WASI command.
pub(crate) type CommandPre = wasmtime_wasi::p2::bindings::CommandPre<ProcState>;

/// The engines, linkers and scheduler shared by all processes of a host.
pub(crate) struct Engine {
    /// The engine of programs with little initial data: it is copied into each new
    /// memory, which is a reservation kept for reuse (`memories.rs`).
    engine: wasmtime::Engine,
    linker: Linker<ProcState>,
    /// The engine of programs with much initial data ([`Engine::imaged`]), made when the
    /// first of them is loaded: a new memory maps the data copy-on-write from an image
    /// wasmtime makes once per program.
    imaged: Arc<OnceLock<Imaged>>,
    /// What [`Engine::imaged`] is made from.
    config: crate::Config,
    runtime: tokio::runtime::Handle,
    /// The embedder's store hook runs on the stores that list a program's targets too.
    hooks: crate::Hooks,
}

/// The engine and linker of programs whose memories begin as a copy-on-write image.
struct Imaged {
    engine: wasmtime::Engine,
    linker: Linker<ProcState>,
}

/// A program whose core modules' data sections hold at least this many bytes has its
/// memories mapped copy-on-write from an image ([`Engine::imaged`]): copying that much
/// into every new memory costs more than the mappings and the unmap do. Programs built
/// with the Rust guest SDK have a few KiB; a Python program has its interpreter's whole
/// pre-initialised heap.
const IMAGE_DATA_MIN: u64 = 1 << 20;

impl Engine {
    /// An engine whose guests yield to the scheduler every `epoch_tick_ms`, ticked by a
    /// thread of its own.
    pub fn new(config: &crate::Config, runtime: tokio::runtime::Handle) -> Result<Self, Error> {
        let engine = Self::without_ticker(config, runtime)?;
        engine.start_ticker(config.epoch_tick_ms)?;
        Ok(engine)
    }

    /// The engine without its epoch ticker thread, for a native child process (whose own
    /// timer ticks it) and for the native fork server (which must stay single-threaded to
    /// fork; each forked child takes the engine over with [`Engine::with_runtime`]).
    pub fn without_ticker(
        config: &crate::Config,
        runtime: tokio::runtime::Handle,
    ) -> Result<Self, Error> {
        let (engine, linker) = engine_and_linker(config, false)?;
        Ok(Engine {
            engine,
            linker,
            imaged: Arc::default(),
            config: config.clone(),
            runtime,
            hooks: config.hooks.clone(),
        })
    }

    /// The engine and linker of programs with much initial data, made on first use. Only
    /// the `wasm` backend has one: a native child closes the descriptors it inherits
    /// after its fork, and wasmtime maps an image from a descriptor it keeps open. The
    /// pooling allocator, and an embedder's configuration hook (which may have set up
    /// memories its own way), keep every program on the one engine too.
    fn imaged(&self) -> Result<Option<&Imaged>, Error> {
        if self.config.backend != crate::config::BackendKind::Wasm
            || self.config.pooling.is_some()
            || self.hooks.has_config()
        {
            return Ok(None);
        }
        if let Some(imaged) = self.imaged.get() {
            return Ok(Some(imaged));
        }
        let (engine, linker) = engine_and_linker(&self.config, true)?;
        // Two threads making it at once: one of the two is kept, both are alike.
        Ok(Some(self.imaged.get_or_init(|| Imaged { engine, linker })))
    }

    /// The engine and linker a component in the binary format `bytes` is compiled for.
    fn flavour_for(&self, bytes: &[u8]) -> Result<(&wasmtime::Engine, &Linker<ProcState>), Error> {
        if data_section_bytes(bytes) >= IMAGE_DATA_MIN
            && let Some(imaged) = self.imaged()?
        {
            return Ok((&imaged.engine, &imaged.linker));
        }
        Ok((&self.engine, &self.linker))
    }

    /// The linker of `component`'s engine.
    fn linker_of(&self, component: &Component) -> &Linker<ProcState> {
        match self.imaged.get() {
            Some(imaged) if wasmtime::Engine::same(component.engine(), &imaged.engine) => {
                &imaged.linker
            }
            _ => &self.linker,
        }
    }

    /// A precompiled component, deserialised with `load`: by the engine whose
    /// configuration made it (wasmtime refuses it under the other one).
    fn deserialize_with(
        &self,
        load: impl Fn(&wasmtime::Engine) -> wasmtime::Result<Component>,
    ) -> wasmtime::Result<Component> {
        match load(&self.engine) {
            Ok(component) => Ok(component),
            Err(first) => match self.imaged() {
                Ok(Some(imaged)) => load(&imaged.engine).map_err(|_| first),
                _ => Err(first),
            },
        }
    }

    /// Starts the epoch ticker: every tick, running guests yield to the scheduler.
    fn start_ticker(&self, tick_ms: u64) -> Result<(), Error> {
        let weak = self.engine.weak();
        let imaged = Arc::downgrade(&self.imaged);
        let tick = Duration::from_millis(tick_ms.max(1));
        std::thread::Builder::new()
            .name("wasmproc-epoch".into())
            .spawn(move || {
                while let Some(engine) = weak.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    if let Some(imaged) = imaged.upgrade()
                        && let Some(imaged) = imaged.get()
                    {
                        imaged.engine.increment_epoch();
                    }
                    std::thread::sleep(tick);
                }
            })
            .map_err(Error::Runtime)?;
        Ok(())
    }

    /// This engine (its compiled programs stay valid), driven by `runtime` from now on: a
    /// child forked from the native fork server takes over the server's engine this way.
    pub fn with_runtime(self, runtime: tokio::runtime::Handle) -> Self {
        Engine { runtime, ..self }
    }

    /// The wasmtime engine a component in the binary format `bytes` is compiled with.
    pub fn wasmtime_for(&self, bytes: &[u8]) -> Result<&wasmtime::Engine, Error> {
        Ok(self.flavour_for(bytes)?.0)
    }

    /// Loads a program: a WebAssembly component. A precompiled file is refused, with an
    /// error saying how to opt in to loading one ([`Engine::load_precompiled`]).
    pub fn load(&self, path: &Path) -> Result<Program, Error> {
        self.load_from(path, false)
    }

    /// Loads a program: a component, or one precompiled by `wasmproc compile`.
    ///
    /// # Safety
    /// A precompiled file is native code that is run as it is: wasmtime checks only its
    /// header (that this wasmtime version, with a compatible configuration, made it). The
    /// caller must make sure that the file was made by `wasmproc compile` (or
    /// [`crate::Host::precompile`]) of this build and has not been changed since.
    pub unsafe fn load_precompiled(&self, path: &Path) -> Result<Program, Error> {
        self.load_from(path, true)
    }

    /// [`Engine::load`], or with `precompiled` [`Engine::load_precompiled`], whose caller
    /// took on its safety contract.
    fn load_from(&self, path: &Path, precompiled: bool) -> Result<Program, Error> {
        let bytes = std::fs::read(path).map_err(|io| Error::ReadProgram {
            path: path.to_path_buf(),
            io,
        })?;
        let fail = |message: String| Error::LoadProgram {
            path: path.to_path_buf(),
            message,
        };
        let component = match classify(&bytes) {
            Input::Precompiled if precompiled => {
                // SAFETY: the caller of `load_precompiled` vouches for the file (its
                // contract); wasmtime checks that this wasmtime version with a compatible
                // configuration made it, and rejects it otherwise.
                self.deserialize_with(|engine| unsafe { Component::deserialize(engine, &bytes) })
                    .map_err(|e| {
                        fail(format!(
                            "not a usable precompiled program: {}",
                            one_line(&chain(&e))
                        ))
                    })?
            }
            Input::Component => {
                Component::new(self.flavour_for(&bytes)?.0, &bytes).map_err(|e| {
                    fail(format!(
                        "not a WebAssembly component: {}",
                        one_line(&chain(&e))
                    ))
                })?
            }
            other => return Err(fail(other.refusal().to_string())),
        };
        self.prepare(path, component, None)
    }

    /// Loads a program a native parent serialised to `artifact`, trusting its target list.
    pub fn load_artifact(
        &self,
        artifact: &Path,
        display_name: String,
        targets: Vec<String>,
    ) -> Result<Program, Error> {
        // SAFETY: the artifact was written by this same executable (the parent host
        // serialised its compiled component) into a directory it created; wasmtime checks
        // version and configuration compatibility as well. The file is mapped, not read.
        let component = self
            .deserialize_with(|engine| unsafe { Component::deserialize_file(engine, artifact) })
            .map_err(|e| Error::LoadProgram {
                path: artifact.to_path_buf(),
                message: format!("cannot map the parent's compiled program: {e:#}"),
            })?;
        let program = self.prepare(artifact, component, Some((display_name, targets)))?;
        let _ = program.inner().artifact.set(artifact.to_path_buf());
        Ok(program)
    }

    fn prepare(
        &self,
        path: &Path,
        component: Component,
        known: Option<(String, Vec<String>)>,
    ) -> Result<Program, Error> {
        let fail = |message: String| Error::LoadProgram {
            path: path.to_path_buf(),
            message,
        };
        let pre = self
            .linker_of(&component)
            .instantiate_pre(&component)
            .map_err(|e| fail(format!("its imports cannot be satisfied: {e:#}")))?;
        let command = CommandPre::new(pre.clone()).ok();
        let guest = GuestPre::new(pre).ok();
        if command.is_none() && guest.is_none() {
            return Err(fail(
                "it exports neither wasi:cli/run nor wasmproc:process/guest".to_string(),
            ));
        }
        let (display_name, targets) = match known {
            Some(known) => known,
            None => (
                display_name_of(path),
                self.list_targets(guest.as_ref())
                    .map_err(|e| fail(format!("listing its targets failed: {e:#}")))?,
            ),
        };
        let imaged = !wasmtime::Engine::same(component.engine(), &self.engine);
        Ok(Program::new(ProgramInner {
            path: path.to_path_buf(),
            imaged,
            component,
            artifact: std::sync::OnceLock::new(),
            display_name,
            command,
            guest,
            targets,
        }))
    }

    /// The targets a program of the guest SDK registers (none for a plain command).
    fn list_targets(&self, guest: Option<&GuestPre>) -> wasmtime::Result<Vec<String>> {
        let Some(guest) = guest.cloned() else {
            return Ok(Vec::new());
        };
        let engine = guest.engine().clone();
        let hooks = self.hooks.clone();
        let list = async move {
            let mut store = Store::new(&engine, ProcState::scratch());
            store.set_epoch_deadline(u64::MAX / 2);
            hooks.on_store(&mut store)?;
            let instance = guest.instantiate_async(&mut store).await?;
            instance
                .wasmproc_process_guest()
                .call_targets(&mut store)
                .await
        };
        // Inside a scheduler (the host's, when a guest's create loads a program; or an
        // embedder's async code), blocking on this one must happen on a thread of its own.
        if tokio::runtime::Handle::try_current().is_err() {
            return self.runtime.block_on(list);
        }
        std::thread::scope(
            |scope| match scope.spawn(|| self.runtime.block_on(list)).join() {
                Ok(result) => result,
                Err(panic) => std::panic::resume_unwind(panic),
            },
        )
    }

    /// Instantiates `program` once and drops the instance, running none of its code: the
    /// epoch deadline is already reached, so a start function traps at its entry. A spare
    /// of the native fork server does this before its request comes, so that the pages an
    /// instantiation touches are mapped by then, and the linear memory and fiber stack it
    /// took are kept for the process to come.
    pub async fn rehearse(&self, program: &Program) {
        let Some(pre) = program.inner().guest.as_ref() else {
            return;
        };
        let mut store = Store::new(program.wasmtime(), ProcState::scratch());
        store.set_epoch_deadline(0);
        store.epoch_deadline_trap();
        let _ = pre.instantiate_async(&mut store).await;
    }
}

impl Runner for Engine {
    fn run(self: Arc<Self>, ctx: Arc<ProcessCtx>, entry: Entry) -> BoxFuture<'static, ExitStatus> {
        Box::pin(run::run_guest(self, ctx, entry))
    }
}

/// A host's engine (`imaged`: the one of programs with much initial data) and its linker.
fn engine_and_linker(
    config: &crate::Config,
    imaged: bool,
) -> Result<(wasmtime::Engine, Linker<ProcState>), Error> {
    let mut cfg = wasmtime_config(config, imaged);
    config.hooks.on_config(&mut cfg);
    if config.compilation_cache {
        let cache = wasmtime::Cache::from_file(None).map_err(|e| {
            Error::Config(format!(
                "cannot use wasmtime's compilation cache: {} (without it: `wasmproc run \
                 --no-cache`, or `Config::compilation_cache` false)",
                chain(&e)
            ))
        })?;
        cfg.cache(Some(cache));
    }
    let engine = wasmtime::Engine::new(&cfg).map_err(|e| Error::Engine(chain(&e)))?;
    let mut linker = Linker::new(&engine);
    // WASI 0.2.12's `exit-with-code` is linked too: `std::process::exit(n)` keeps `n`.
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(|e| Error::Engine(chain(&e)))?;
    bindings::Program::add_to_linker::<ProcState, HasSelf<ProcState>>(&mut linker, |s| s)
        .map_err(|e| Error::Engine(chain(&e)))?;
    config
        .hooks
        .on_linker(&mut linker)
        .map_err(|e| Error::Engine(format!("the linker hook failed: {}", chain(&e))))?;
    Ok((engine, linker))
}

/// The wasmtime configuration of a host's engine; `imaged`: of the engine of programs
/// with much initial data (never with the pooling allocator).
fn wasmtime_config(config: &crate::Config, imaged: bool) -> wasmtime::Config {
    let mut cfg = wasmtime::Config::new();
    cfg.epoch_interruption(true);
    // Copy a program's initial data into each new memory instead of mapping it
    // copy-on-write: the data of most guests is a few KiB, so the copy costs no more than
    // the mapping, and every process needs two kernel mappings fewer (the kernel allows
    // 65,530 per OS process, which bounds how many processes can sleep at once). Programs
    // with much data map it from an image instead: wasmtime's own memories, which are
    // unmapped when their process ends.
    cfg.memory_init_cow(imaged);
    match config.pooling {
        None => {
            // Fiber stacks of ended processes are reused rather than unmapped (an unmap
            // interrupts every other core of the host).
            cfg.with_host_stack(Arc::new(stacks::PooledStacks(Arc::default())));
            // Linear memories likewise: an ended process's reservation goes to the next.
            // (wasmtime maps images only into memories of its own.)
            if !imaged {
                cfg.with_host_memory(Arc::new(memories::PooledMemories(Arc::default())));
            }
            // Reserve no more address space per memory than the memory limit allows (the
            // default 4 GiB each would let at most about 31,000 memories fit in the 128 TiB
            // a process addresses), and never move a memory: growth within the reservation
            // needs no new mapping, and the compiled code checks an access against the
            // fixed reservation, with the inaccessible rest of it trapping beyond the
            // memory's size.
            cfg.memory_reservation(config.limits.memory);
            cfg.memory_may_move(false);
        }
        Some(slots) => {
            // The pooling allocator: every process's memory, tables, instance and fiber
            // stack come from slots reserved once, so starting a process maps nothing new.
            // Its cost: each slot's stack guard is a mapping of its own from the start.
            let memory = usize::try_from(config.limits.memory).unwrap_or(usize::MAX);
            let mut pool = wasmtime::PoolingAllocationConfig::default();
            pool.total_component_instances(slots)
                .total_core_instances(slots.saturating_mul(4))
                .total_memories(slots)
                .total_tables(slots.saturating_mul(2))
                .total_stacks(slots)
                .max_core_instances_per_component(16)
                .max_memories_per_component(2)
                .max_tables_per_component(4)
                .max_memory_size(memory);
            cfg.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
            // Reserve no more address space per memory than the memory limit allows.
            cfg.memory_reservation(config.limits.memory);
        }
    }
    cfg
}

/// What a program file holds, by its content (whatever its name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Input {
    /// WebAssembly in the binary format with the component layer (or one whose parse will
    /// tell what is wrong with it).
    Component,
    /// A core WebAssembly module, not a component.
    CoreModule,
    /// A component precompiled by wasmtime (`wasmproc compile`).
    Precompiled,
    /// A core module precompiled by wasmtime.
    PrecompiledModule,
    /// Native code that wasmtime does not take as precompiled: damaged, or made by
    /// anything else.
    OtherElf,
    /// Not WebAssembly at all (text, say).
    NotWasm,
}

impl Input {
    /// Why a file holding this is not loaded as a program (nothing for a component).
    pub fn refusal(self) -> &'static str {
        match self {
            Input::Component => "",
            Input::CoreModule => {
                "not a WebAssembly component: it is a core WebAssembly module (build the \
                 program for wasm32-wasip2 to get a component)"
            }
            Input::Precompiled => {
                "it is a precompiled program (native code, made by `wasmproc compile`): \
                 pass --allow-precompiled to run it (in the library: Host::load_precompiled)"
            }
            Input::PrecompiledModule => "this is a precompiled core module, not a component",
            Input::OtherElf => {
                "not a WebAssembly component: it is native code (ELF) that is not a usable \
                 precompiled program (damaged, or not made by `wasmproc compile`)"
            }
            Input::NotWasm => {
                "not a WebAssembly component: the file does not begin with WebAssembly's \
                 magic number (\\0asm)"
            }
        }
    }
}

/// Whether the file at `path` can be read and begins as a program does (a component, or
/// native code that may be a precompiled one); why not, naming the file. Only the first bytes
/// are read: the program is compiled when a process first starts it.
pub(crate) fn check_program_file(path: &Path) -> Result<(), String> {
    use std::io::Read;
    let mut head = Vec::with_capacity(8);
    std::fs::File::open(path)
        .and_then(|f| f.take(8).read_to_end(&mut head))
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    match classify(&head) {
        input @ (Input::CoreModule | Input::NotWasm) => {
            Err(format!("{}: {}", path.display(), input.refusal()))
        }
        _ => Ok(()),
    }
}

/// What `bytes` are, by their content.
pub(crate) fn classify(bytes: &[u8]) -> Input {
    match wasmtime::Engine::detect_precompiled(bytes) {
        Some(Precompiled::Component) => return Input::Precompiled,
        Some(Precompiled::Module) => return Input::PrecompiledModule,
        None => {}
    }
    // The magic number, then a version and a layer: 1, 0 for a core module; components
    // have another version and layer 1.
    match bytes {
        [0, b'a', b's', b'm', 1, 0, 0, 0, ..] => Input::CoreModule,
        [0, b'a', b's', b'm', ..] => Input::Component,
        [0x7f, b'E', b'L', b'F', ..] => Input::OtherElf,
        _ => Input::NotWasm,
    }
}

/// The bytes of the data sections of the core modules in the component (or module) in the
/// binary format `bytes`, nested components' included: about as many as its memories
/// begin with. A malformed binary counts as far as it can be read (its compilation tells
/// what is wrong with it).
pub(crate) fn data_section_bytes(bytes: &[u8]) -> u64 {
    /// Nested components deeper than this are not looked into.
    const MAX_DEPTH: u32 = 8;
    /// The section of a component that holds a core module, and one that holds a nested
    /// component; the data section of a core module.
    const CORE_MODULE: u8 = 1;
    const COMPONENT: u8 = 4;
    const DATA: u8 = 11;
    fn leb_u32(bytes: &[u8], at: &mut usize) -> Option<usize> {
        let mut value: u64 = 0;
        for shift in (0..35).step_by(7) {
            let byte = *bytes.get(*at)?;
            *at += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return usize::try_from(value).ok();
            }
        }
        None
    }
    fn walk(bytes: &[u8], depth: u32) -> u64 {
        let is_component = match bytes.get(..8) {
            Some([0, b'a', b's', b'm', _, _, 1, 0]) => true,
            Some([0, b'a', b's', b'm', _, _, 0, 0]) => false,
            _ => return 0,
        };
        let mut total = 0u64;
        let mut at = 8;
        while let Some(&id) = bytes.get(at) {
            at += 1;
            let Some(size) = leb_u32(bytes, &mut at) else {
                break;
            };
            let Some(body) = at.checked_add(size).and_then(|end| bytes.get(at..end)) else {
                break;
            };
            at += size;
            total = total.saturating_add(match (is_component, id) {
                (true, CORE_MODULE | COMPONENT) if depth < MAX_DEPTH => walk(body, depth + 1),
                (false, DATA) => body.len() as u64,
                _ => 0,
            });
        }
        total
    }
    walk(bytes, 0)
}

/// `message` on one line: wasmtime's parser writes byte arrays over several lines.
pub(crate) fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn display_name_of(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::data_section_bytes;

    /// A section: its id, its size (one LEB128 byte) and its body.
    fn section(id: u8, body: &[u8]) -> Vec<u8> {
        assert!(body.len() < 128);
        let mut s = vec![id, body.len() as u8];
        s.extend_from_slice(body);
        s
    }

    /// A core module with a data section of `data` bytes (its content does not matter).
    fn module(data: usize) -> Vec<u8> {
        let mut m = b"\0asm\x01\0\0\0".to_vec();
        m.extend(section(0, b"\x01x"));
        m.extend(section(11, &vec![0; data]));
        m
    }

    fn component(parts: &[(u8, Vec<u8>)]) -> Vec<u8> {
        let mut c = b"\0asm\x0d\0\x01\0".to_vec();
        for (id, body) in parts {
            c.extend(section(*id, body));
        }
        c
    }

    #[test]
    fn data_sections_of_modules_and_nested_components_are_counted() {
        assert_eq!(data_section_bytes(&module(5)), 5);
        let inner = component(&[(1, module(7))]);
        let outer = component(&[(1, module(3)), (4, inner), (1, module(2))]);
        assert_eq!(data_section_bytes(&outer), 12);
        // A data section of a component itself (no such section id there) is not counted.
        assert_eq!(data_section_bytes(&component(&[(11, vec![0; 9])])), 0);
    }

    #[test]
    fn malformed_binaries_count_what_can_be_read() {
        let whole = component(&[(1, module(3)), (1, module(4))]);
        for cut in 0..whole.len() {
            assert!(data_section_bytes(&whole[..cut]) <= 7);
        }
        assert_eq!(data_section_bytes(b"not wasm"), 0);
        // A size that runs past the end, and one that never ends.
        assert_eq!(data_section_bytes(b"\0asm\x01\0\0\0\x0b\x7f\0"), 0);
        assert_eq!(
            data_section_bytes(b"\0asm\x01\0\0\0\x0b\xff\xff\xff\xff\xff\xff"),
            0
        );
    }
}
