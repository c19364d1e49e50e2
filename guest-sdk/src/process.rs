//! The Python-shaped process API over the generated bindings.

use crate::__private::bindings::wasmproc::process::process as host;
use crate::Error;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt;
use std::io::Write;
use std::rc::Rc;
use std::time::Duration;

fn nanos(timeout: Option<Duration>) -> Option<u64> {
    timeout.map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// A process object, as `multiprocessing.Process`: created unstarted, then started, joined,
/// terminated or killed, and closed.
///
/// Also what [`current_process`] and [`parent_process`] return; on those only the
/// read-only methods, `is_alive` and (for the parent) `join` make sense, as in Python.
pub struct Process {
    handle: u64,
}

impl Process {
    /// Creates an unstarted process that will run `target` with `args` (serialised here,
    /// deserialised by the target's parameter type in the child).
    ///
    /// Python: `Process(target=target, args=(args,))`.
    ///
    /// # Errors
    /// As [`Builder::args`] and [`Builder::build`].
    pub fn new<A: Serialize + ?Sized>(target: &str, args: &A) -> Result<Process, Error> {
        Builder::new(target).args(args)?.build()
    }

    /// A builder for a process with a name, a daemon flag or raw argument bytes.
    pub fn builder(target: &str) -> Builder {
        Builder::new(target)
    }

    /// A `Process` for a raw handle, as [`Process::handle`] returns. The host checks every
    /// use: a handle that is not the caller's gives an error, never an effect.
    pub fn from_handle(handle: u64) -> Process {
        Process { handle }
    }

    /// The raw handle the host gave this object.
    pub fn handle(&self) -> u64 {
        self.handle
    }

    /// Starts the child. Python: `start()`.
    ///
    /// # Errors
    /// `InvalidState` when the process was already started or the caller is daemonic;
    /// `LimitExceeded` when the run's `depth`, `children` or `processes` limit is reached;
    /// `HostFailure` when the backend cannot start it; `NotAChild` and `Closed` as
    /// [`set_daemon`](Self::set_daemon).
    pub fn start(&self) -> Result<(), Error> {
        Ok(host::start(self.handle)?)
    }

    /// Waits until the child ends, or until `timeout` passes (`None`: forever). After a
    /// timeout the child is still alive and [`exitcode`](Self::exitcode) is `None`.
    /// Python: `join(timeout=None)`.
    ///
    /// # Errors
    /// `InvalidState` when the process was not started; `NotAChild` for the current
    /// process; otherwise as [`is_alive`](Self::is_alive).
    pub fn join(&self, timeout: impl Into<Option<Duration>>) -> Result<(), Error> {
        Ok(host::join(self.handle, nanos(timeout.into()))?)
    }

    /// Whether the process is running. Python: `is_alive()`.
    ///
    /// # Errors
    /// `Closed` after [`close`](Self::close); `NotAChild` when the handle names neither a
    /// child of the caller, the caller itself nor its parent.
    pub fn is_alive(&self) -> Result<bool, Error> {
        Ok(host::is_alive(self.handle)?)
    }

    /// The exit code, `None` while running or before start. Python: `exitcode`.
    ///
    /// # Errors
    /// As [`is_alive`](Self::is_alive).
    pub fn exitcode(&self) -> Result<Option<i32>, Error> {
        Ok(host::exitcode(self.handle)?)
    }

    /// The value the child's target returned, decoded as `T` (the target's return type),
    /// once the child has ended with exit code 0; `None` while it runs and when it ended
    /// in any other way (`exit(n)`, a panic, a signal, a limit). Python's `Process` has
    /// no result: this is wasmproc's own.
    ///
    /// ```ignore
    /// fn square(x: u64) -> u64 { x * x }
    /// let p = Process::new("square", &7u64)?;
    /// p.start()?;
    /// p.join(None)?;
    /// assert_eq!(p.result::<u64>()?, Some(49));
    /// ```
    ///
    /// # Errors
    /// As [`is_alive`](Self::is_alive); [`ErrorKind::InvalidState`](crate::ErrorKind)
    /// "process not started" before start; `InvalidArgument` when the value does not
    /// decode as `T`; `LimitExceeded` when the host could not keep it (its `held` limit).
    pub fn result<T: DeserializeOwned>(&self) -> Result<Option<T>, Error> {
        let Some(bytes) = host::result(self.handle)? else {
            return Ok(None);
        };
        postcard::from_bytes(&bytes).map(Some).map_err(|e| {
            Error::invalid_argument(format!(
                "cannot decode the result of {} as {}: {e}",
                self.name().unwrap_or_default(),
                std::any::type_name::<T>()
            ))
        })
    }

    /// The process id, `None` before start. Python: `pid`.
    ///
    /// # Errors
    /// As [`is_alive`](Self::is_alive).
    pub fn pid(&self) -> Result<Option<u64>, Error> {
        Ok(host::pid(self.handle)?)
    }

    /// The name. Python: `name`.
    ///
    /// # Errors
    /// As [`is_alive`](Self::is_alive).
    pub fn name(&self) -> Result<String, Error> {
        Ok(host::name(self.handle)?)
    }

    /// Renames the object. Python: `name = ...`.
    ///
    /// # Errors
    /// `InvalidArgument` when `name` is too long or holds a control character;
    /// `LimitExceeded` when the new name would exceed the run's `held` limit; `NotAChild`
    /// for the parent process; otherwise as [`is_alive`](Self::is_alive).
    pub fn set_name(&self, name: &str) -> Result<(), Error> {
        Ok(host::set_name(self.handle, name)?)
    }

    /// The daemon flag. Python: `daemon`.
    ///
    /// # Errors
    /// As [`is_alive`](Self::is_alive).
    pub fn daemon(&self) -> Result<bool, Error> {
        Ok(host::daemon(self.handle)?)
    }

    /// Sets the daemon flag before start. Python: `daemon = ...`.
    ///
    /// # Errors
    /// `InvalidState` when the process has started; `NotAChild` when it is not a child of
    /// the caller; `Closed` after [`close`](Self::close).
    pub fn set_daemon(&self, daemon: bool) -> Result<(), Error> {
        Ok(host::set_daemon(self.handle, daemon)?)
    }

    /// Ends the child at once with exit code -15. Python: `terminate()`.
    ///
    /// # Errors
    /// As [`kill`](Self::kill).
    pub fn terminate(&self) -> Result<(), Error> {
        Ok(host::terminate(self.handle)?)
    }

    /// Ends the child at once with exit code -9. Python: `kill()`.
    ///
    /// # Errors
    /// `InvalidState` when the process was not started; `NotAChild` and `Closed` as
    /// [`set_daemon`](Self::set_daemon).
    pub fn kill(&self) -> Result<(), Error> {
        Ok(host::kill(self.handle)?)
    }

    /// Releases the object; later calls fail with "process object is closed".
    /// Python: `close()`.
    ///
    /// # Errors
    /// `InvalidState` while the child is still running (join or terminate it first);
    /// `NotAChild` when it is not a child of the caller.
    pub fn close(&self) -> Result<(), Error> {
        Ok(host::close(self.handle)?)
    }

    /// The sentinel, ready for [`wait`] once the process has ended. Python: `sentinel`.
    ///
    /// # Errors
    /// `InvalidState` when the process was not started, or is the current process;
    /// otherwise as [`is_alive`](Self::is_alive).
    pub fn sentinel(&self) -> Result<Sentinel, Error> {
        Ok(Sentinel(host::sentinel(self.handle)?))
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        host::release(self.handle);
    }
}

impl fmt::Debug for Process {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Process");
        d.field("handle", &self.handle);
        if let Ok(name) = self.name() {
            d.field("name", &name);
        }
        d.finish()
    }
}

/// Builds a [`Process`] with the options of Python's `Process(...)` constructor.
#[derive(Debug, Clone)]
pub struct Builder {
    target: String,
    args: Vec<u8>,
    /// The sync objects serialised into `args`, kept alive until the process is created.
    shares: Vec<Rc<crate::sync::Inner>>,
    name: Option<String>,
    daemon: Option<bool>,
    program: Option<String>,
}

impl Builder {
    /// A builder for a process running `target` with no arguments.
    pub fn new(target: &str) -> Builder {
        Builder {
            target: target.to_string(),
            args: Vec::new(),
            shares: Vec::new(),
            name: None,
            daemon: None,
            program: None,
        }
    }

    /// Serialises `args` as the target's argument.
    ///
    /// Sync objects ([`Queue`](crate::Queue), [`Connection`](crate::Connection),
    /// [`Event`](crate::Event), the locks and semaphores) anywhere inside `args` are passed
    /// to the child: it holds each of them, under the same handle, from its start.
    ///
    /// # Errors
    /// `InvalidArgument` when `args` cannot be serialised, or holds a closed sync object.
    pub fn args<A: Serialize + ?Sized>(mut self, args: &A) -> Result<Builder, Error> {
        let (bytes, shares) = crate::sync::serialize_args(args);
        self.args = bytes.map_err(|e| {
            crate::sync::serialize_error(e, || format!("the arguments of target '{}'", self.target))
        })?;
        self.shares = shares;
        Ok(self)
    }

    /// Passes `bytes` to the target unchanged (a target taking `Vec<u8>` does not see
    /// these; they are the serialised form). No sync object is passed.
    pub fn raw_args(mut self, bytes: Vec<u8>) -> Builder {
        self.args = bytes;
        self.shares.clear();
        self
    }

    /// Names the process instead of `Process-N`.
    pub fn name(mut self, name: &str) -> Builder {
        self.name = Some(name.to_string());
        self
    }

    /// Sets the daemon flag (default: the current process's own).
    pub fn daemon(mut self, daemon: bool) -> Builder {
        self.daemon = Some(daemon);
        self
    }

    /// Runs `target` of another program the host allows, by the name the host's
    /// configuration gives it (`[programs]` in `wasmproc.toml`, `--program NAME=PATH`),
    /// instead of a target of this program. Python has no equivalent (a `spawn` child
    /// always runs the parent's program).
    pub fn program(mut self, name: &str) -> Builder {
        self.program = Some(name.to_string());
        self
    }

    /// Creates the unstarted process object.
    ///
    /// # Errors
    /// `UnknownTarget` when the program has no target `target`, or the host allows no
    /// [`program`](Self::program) of that name; `InvalidArgument` for a bad
    /// [`name`](Self::name); `LimitExceeded` beyond the run's `args` or `held` limit.
    pub fn build(self) -> Result<Process, Error> {
        let shares: Vec<u64> = self.shares.iter().map(|s| s.handle()).collect();
        let handle = host::create(
            &self.target,
            &self.args,
            &shares,
            self.name.as_deref(),
            self.daemon,
            self.program.as_deref(),
        )?;
        Ok(Process { handle })
    }
}

/// Something [`wait`] can wait on: a process's sentinel, or a [`Queue`](crate::Queue)'s or
/// [`Connection`](crate::Connection)'s (ready when `get`/`recv` would not block).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sentinel(u64);

impl Sentinel {
    /// The raw value the host gave.
    pub fn raw(self) -> u64 {
        self.0
    }

    /// A sentinel for a raw value; the host rejects values the caller does not hold.
    pub fn from_raw(raw: u64) -> Sentinel {
        Sentinel(raw)
    }
}

/// Waits until one of `sentinels` is ready or `timeout` passes; returns the ready ones in
/// the order given (empty after a timeout). Python: `multiprocessing.connection.wait`.
///
/// # Errors
/// `InvalidArgument` for a sentinel that is not a started, unclosed process, queue or
/// connection of the caller; `InvalidState` for the sending end of a one-way pipe.
pub fn wait(
    sentinels: &[Sentinel],
    timeout: impl Into<Option<Duration>>,
) -> Result<Vec<Sentinel>, Error> {
    let raw: Vec<u64> = sentinels.iter().map(|s| s.0).collect();
    let ready = host::wait(&raw, nanos(timeout.into()))?;
    Ok(ready.into_iter().map(Sentinel).collect())
}

/// The calling process. Python: `current_process()`.
pub fn current_process() -> Process {
    Process {
        handle: host::current_process(),
    }
}

/// The parent of the calling process, `None` in the main process.
/// Python: `parent_process()`.
pub fn parent_process() -> Option<Process> {
    host::parent_process().map(|handle| Process { handle })
}

/// The started children that are still running, in start order.
/// Python: `active_children()`.
pub fn active_children() -> Vec<Process> {
    host::active_children()
        .into_iter()
        .map(|handle| Process { handle })
        .collect()
}

/// Ends the calling process with `code` (modulo 256) after flushing stdout and stderr.
/// Daemonic children are terminated and the others joined first. Python: `sys.exit(code)`.
pub fn exit(code: i32) -> ! {
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    host::exit(code);
    // The host never returns from `exit`.
    std::process::abort()
}

/// The number of CPUs the host makes available. Python: `os.cpu_count()`.
pub fn cpu_count() -> usize {
    host::cpu_count() as usize
}

/// The run's authentication key. It cannot be serialised or printed by accident: it has no
/// `Serialize` implementation and its `Debug` output hides the bytes.
/// Python: `current_process().authkey`.
pub fn authkey() -> AuthKey {
    AuthKey(host::authkey())
}

/// The run's authentication key (see [`authkey`]).
#[derive(Clone, PartialEq, Eq)]
pub struct AuthKey(Vec<u8>);

impl AuthKey {
    /// The key's bytes, for computing a MAC over one's own channel.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for AuthKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AuthKey(<{} bytes hidden>)", self.0.len())
    }
}

/// A function a child process can run: no parameter, or one deserialisable parameter.
#[doc(hidden)]
pub trait Target<Marker> {
    /// Decodes `args` and runs the function.
    fn call(self, name: &str, args: &[u8]) -> Result<(), String>;
}

impl<R: Serialize, F: FnOnce() -> R> Target<((), R)> for F {
    fn call(self, name: &str, _args: &[u8]) -> Result<(), String> {
        set_result(name, &self())
    }
}

impl<A: DeserializeOwned, R: Serialize, F: FnOnce(A) -> R> Target<((A,), R)> for F {
    fn call(self, name: &str, args: &[u8]) -> Result<(), String> {
        let value: A = postcard::from_bytes(args).map_err(|e| {
            format!(
                "cannot decode the arguments of target '{name}' as {}: {e}",
                std::any::type_name::<A>()
            )
        })?;
        set_result(name, &self(value))
    }
}

/// Hands the value target `name` returned to the host, as the process's result.
fn set_result<R: Serialize>(name: &str, value: &R) -> Result<(), String> {
    let bytes = postcard::to_allocvec(value).map_err(|e| {
        format!(
            "cannot serialise the result of target '{name}' ({}): {e}",
            std::any::type_name::<R>()
        )
    })?;
    host::set_result(&bytes)
        .map_err(|e| format!("the result of target '{name}' was not kept: {}", e.message))
}

/// The name a target is registered under: the last segment of its path.
#[doc(hidden)]
pub fn target_name(path: &str) -> &str {
    path.rsplit("::").next().unwrap_or(path).trim()
}

/// What a program's `main` may return: `()` or `Result<(), E>`; an error is reported as
/// Rust's own runtime reports it (`Error: <debug>`) and ends the process with exit code 1.
#[doc(hidden)]
pub trait MainResult {
    /// The outcome, as `run-main` returns it.
    fn report(self) -> Result<(), String>;
}

impl MainResult for () {
    fn report(self) -> Result<(), String> {
        Ok(())
    }
}

impl<E: fmt::Debug> MainResult for Result<(), E> {
    fn report(self) -> Result<(), String> {
        self.map_err(|e| format!("Error: {e:?}"))
    }
}

/// Prepares the main process's instance: a panic prints the panic message on stderr and
/// ends the process with exit code 1.
#[doc(hidden)]
pub fn enter_main() {
    std::panic::set_hook(Box::new(|info| {
        let _ = writeln!(std::io::stderr().lock(), "{info}");
        exit(1);
    }));
}

/// Prepares a child instance: a panic prints `Process <name>:` and the panic message on
/// stderr and ends the process with exit code 1, as an uncaught exception does in Python.
#[doc(hidden)]
pub fn enter_child() {
    std::panic::set_hook(Box::new(|info| child_panic(info)));
}

/// What a child does on a panic: prints `Process <name>:` and the panic message on stderr
/// and ends the process with exit code 1.
pub(crate) fn child_panic(info: &std::panic::PanicHookInfo<'_>) -> ! {
    let name = host::name(host::current_process()).unwrap_or_default();
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "Process {name}:");
    let _ = writeln!(err, "{info}");
    drop(err);
    exit(1);
}
