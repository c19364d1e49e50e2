//! Configuration of a host run.

/// Which backend runs child processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BackendKind {
    /// Each process is a fresh wasmtime instance inside the host process.
    #[default]
    Wasm,
    /// Each child process is a real OS process: the `wasmproc` binary re-executed, loading
    /// the same (precompiled) program and running the target.
    Native,
}

impl BackendKind {
    /// The name used in flags and configuration files.
    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::Wasm => "wasm",
            BackendKind::Native => "native",
        }
    }
}

impl std::str::FromStr for BackendKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "wasm" => Ok(BackendKind::Wasm),
            "native" => Ok(BackendKind::Native),
            other => Err(format!("unknown backend '{other}' (valid: wasm, native)")),
        }
    }
}

/// Where a process's stdout and stderr go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputMode {
    /// Straight to the host's stdout and stderr.
    #[default]
    Inherit,
    /// To the host's stdout and stderr, each line prefixed with `[<process name>] `.
    Prefix,
    /// Into per-process buffers, read from [`crate::MainRun`] or
    /// [`crate::Process::stdout`].
    Capture,
}

impl std::str::FromStr for OutputMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "inherit" => Ok(OutputMode::Inherit),
            "prefix" => Ok(OutputMode::Prefix),
            "capture" => Ok(OutputMode::Capture),
            other => Err(format!(
                "unknown output mode '{other}' (valid: inherit, prefix, capture)"
            )),
        }
    }
}

/// Settings of one host run.
#[derive(Debug, Clone)]
pub struct Config {
    /// The backend that runs processes.
    pub backend: BackendKind,
    /// Where processes' output goes.
    pub output: OutputMode,
    /// The most bytes kept per captured stream; writes beyond it fail in the guest.
    pub capture_limit: usize,
    /// How often a running guest yields to the scheduler (and so how soon `terminate`
    /// stops a busy guest), in milliseconds.
    pub epoch_tick_ms: u64,
    /// Run each process of the `wasm` backend on an OS thread of its own instead of as a
    /// task on the shared scheduler. The default (false) was chosen by measurement (see
    /// the README's benchmark section); this switch exists to repeat that measurement.
    pub thread_per_process: bool,
    /// Give the main process the host's stdin (as a shell gives a program its terminal).
    /// Child processes always get an empty stdin, as with CPython's /dev/null.
    pub main_stdin: bool,
    /// The executable a native child runs (`<exe> __child`): by default this process's own
    /// executable, which must then be the `wasmproc` binary. A Rust program embedding the
    /// library names the `wasmproc` binary here.
    pub native_exe: Option<std::path::PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            backend: BackendKind::Wasm,
            output: OutputMode::Inherit,
            capture_limit: 16 << 20,
            epoch_tick_ms: 5,
            thread_per_process: false,
            main_stdin: false,
            native_exe: None,
        }
    }
}
