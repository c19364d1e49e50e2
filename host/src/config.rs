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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
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

/// The exit code of a process that a limit ended (as `timeout(1)` reports a timeout); its
/// stderr gets one line naming the limit.
pub const LIMIT_EXIT_CODE: u8 = 124;

/// Limits on what processes may use, enforced by the host (never by the guest SDK).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Limits {
    /// Live child processes in one run, at any depth (`processes`). `start` beyond it fails.
    /// `None` (the default): the backend's default ([`Limits::processes_for`]).
    pub processes: Option<u64>,
    /// Live children of one process (`children`). `start` beyond it fails.
    pub children: u64,
    /// How deep processes may nest: a child of the main process is at depth 1 (`depth`).
    pub depth: u64,
    /// Bytes of linear memory per process (`memory`); growing beyond it ends the process.
    pub memory: u64,
    /// Milliseconds of CPU time per process (`cpu_ms`), measured at scheduler ticks;
    /// none: unlimited.
    pub cpu_ms: Option<u64>,
    /// Milliseconds of wall time per process (`wall_ms`); none: unlimited.
    pub wall_ms: Option<u64>,
    /// Milliseconds of wall time of a whole run, the main process included (`run_ms`);
    /// none: unlimited. When they have passed, the main process ends with
    /// [`LIMIT_EXIT_CODE`] and one line on its stderr, and every other process of the run
    /// is killed.
    pub run_ms: Option<u64>,
    /// Bytes of a child's start arguments (`args`); `create` beyond it fails. A target's
    /// result (its return value) is bounded by it too.
    pub args: u64,
    /// Bytes of captured output per stream of one process (`output`); writing beyond it
    /// ends the process.
    pub output: u64,
    /// Bytes of one item put on a queue or sent on a connection (`message`); a larger one
    /// is refused.
    pub message: u64,
    /// Bytes waiting in all queues and connections of one run together, with the bytes of
    /// its shared blocks (`Value`, `Array`) (`queued`); a put, send or block beyond it is
    /// refused.
    pub queued: u64,
    /// Sync objects (queues, connections, events, locks, conditions, barriers, shared
    /// blocks) alive in one run (`objects`); creating one beyond it is refused.
    pub objects: u64,
    /// Bytes the host holds for the processes of one run (`held`): each child's record
    /// (its start arguments, its name and a fixed part) from `create` until it is closed
    /// or forgotten, the arguments until its target has ended, and its result (its
    /// target's return value) while the record is kept. A `create`, a rename of a child, or
    /// a result beyond it is refused. Counted per host OS process (under `native`, each
    /// process counts the children it creates).
    pub held: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            processes: None,
            children: 4_096,
            depth: 32,
            memory: 1 << 30,
            cpu_ms: None,
            wall_ms: None,
            run_ms: None,
            args: 64 << 20,
            output: 16 << 20,
            message: 64 << 20,
            queued: 1 << 30,
            objects: 1_000_000,
            held: 1 << 30,
        }
    }
}

impl Limits {
    /// The names of the limits, as keys of the `[limits]` table.
    pub const KEYS: &[&str] = &[
        "processes",
        "children",
        "depth",
        "memory",
        "cpu_ms",
        "wall_ms",
        "run_ms",
        "args",
        "output",
        "message",
        "queued",
        "objects",
        "held",
    ];

    /// The limits a process may have of its own ([`Limits::tighten`]); the others bound a
    /// whole run.
    pub const PER_PROCESS: &[&str] = &[
        "children", "depth", "memory", "cpu_ms", "wall_ms", "args", "output",
    ];

    /// Lowers limit `key` to `value` (as [`Limits::set`] reads it) for one process and its
    /// descendants: the result is the lower of the two, so a process never gets more than
    /// these limits allow.
    ///
    /// # Errors
    /// As [`Limits::set`]; also when `key` bounds a whole run (`processes`, `run_ms`,
    /// `message`, `queued`, `objects`, `held`), which no process has of its own.
    pub fn tighten(&mut self, key: &str, value: &str) -> Result<(), String> {
        if Self::KEYS.contains(&key) && !Self::PER_PROCESS.contains(&key) {
            return Err(format!(
                "limit '{key}' bounds a whole run: a process cannot have its own (limits a \
                 process may have: {})",
                Self::PER_PROCESS.join(", ")
            ));
        }
        let mut wanted = self.clone();
        wanted.set(key, value)?;
        let lower = |a: Option<u64>, b: Option<u64>| match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, None) => a,
            (None, b) => b,
        };
        self.children = self.children.min(wanted.children);
        self.depth = self.depth.min(wanted.depth);
        self.memory = self.memory.min(wanted.memory);
        self.cpu_ms = lower(self.cpu_ms, wanted.cpu_ms);
        self.wall_ms = lower(self.wall_ms, wanted.wall_ms);
        self.args = self.args.min(wanted.args);
        self.output = self.output.min(wanted.output);
        Ok(())
    }

    /// The `processes` limit a run of `backend` goes by: the one set, or the backend's
    /// default, derived from the machine: for `wasm` what one OS process can hold as
    /// instances ([`wasm_processes`]), for `native` what the machine can hold as OS
    /// processes ([`native_processes`]).
    pub fn processes_for(&self, backend: BackendKind) -> u64 {
        self.processes.unwrap_or_else(|| match backend {
            BackendKind::Wasm => wasm_processes().limit,
            BackendKind::Native => native_processes().limit,
        })
    }

    /// The most linear memory a wasm32 process can address (`memory` may not exceed it).
    pub const MAX_MEMORY: u64 = 4 << 30;

    /// Sets limit `key` from `value` (a whole number; sizes may end in KiB, MiB or GiB,
    /// with no space; `cpu_ms`, `wall_ms` and `run_ms` may be `none`; `memory` is at most
    /// [`Limits::MAX_MEMORY`]).
    ///
    /// # Errors
    /// A message naming the key, the value and the valid values when `key` is no limit or
    /// `value` is not valid for it.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        let optional = matches!(key, "cpu_ms" | "wall_ms" | "run_ms");
        if value.contains(char::is_whitespace) {
            let packed: String = value.split_whitespace().collect();
            return Err(format!(
                "invalid value '{value}' for limit '{key}': a value has no spaces (for \
                 example '{packed}')"
            ));
        }
        let parsed = if optional && value == "none" {
            None
        } else {
            Some(parse_amount(value).ok_or_else(|| {
                format!(
                    "invalid value '{value}' for limit '{key}' (valid: a whole number{}{})",
                    if matches!(
                        key,
                        "memory" | "args" | "output" | "message" | "queued" | "held"
                    ) {
                        " of bytes, optionally ending in KiB, MiB or GiB"
                    } else {
                        ""
                    },
                    if optional { ", or none" } else { "" }
                )
            })?)
        };
        if key == "memory" && parsed.is_some_and(|m| m > Self::MAX_MEMORY) {
            return Err(format!(
                "invalid value '{value}' for limit 'memory': a wasm32 process addresses at \
                 most 4GiB ({} bytes)",
                Self::MAX_MEMORY
            ));
        }
        let required = || parsed.ok_or_else(|| format!("limit '{key}' cannot be none"));
        match key {
            "processes" => self.processes = Some(required()?),
            "children" => self.children = required()?,
            "depth" => self.depth = required()?,
            "memory" => self.memory = required()?,
            "cpu_ms" => self.cpu_ms = parsed,
            "wall_ms" => self.wall_ms = parsed,
            "run_ms" => self.run_ms = parsed,
            "args" => self.args = required()?,
            "output" => self.output = required()?,
            "message" => self.message = required()?,
            "queued" => self.queued = required()?,
            "objects" => self.objects = required()?,
            "held" => self.held = required()?,
            other => {
                return Err(format!(
                    "unknown limit '{other}' (valid: {})",
                    Limits::KEYS.join(", ")
                ));
            }
        }
        Ok(())
    }
}

/// The default `processes` of the `native` backend on this machine, and what it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NativeProcesses {
    /// The limit: the least of the three bounds below, and at least
    /// [`NativeProcesses::FLOOR`].
    pub limit: u64,
    /// [`NativeProcesses::PER_CORE`] processes per core the OS process may run on.
    pub cores: u64,
    /// One process per [`NativeProcesses::MEMORY_EACH`] bytes of the machine's memory.
    pub memory: u64,
    /// Half the soft `RLIMIT_NPROC` (processes of the user, counted by the kernel), if
    /// there is one: the other half is left for the user's other processes.
    pub nproc: Option<u64>,
}

impl NativeProcesses {
    /// Live processes per core.
    pub const PER_CORE: u64 = 256;
    /// Bytes of the machine's memory per live process.
    pub const MEMORY_EACH: u64 = 32 << 20;
    /// The least default, however small the machine.
    pub const FLOOR: u64 = 16;
}

/// The `native` backend's default `processes` on this machine (read once per OS process).
/// A native child is an OS process: a spawn bomb under a limit made for the `wasm`
/// backend would make tens of thousands of them.
pub fn native_processes() -> NativeProcesses {
    static ONCE: std::sync::OnceLock<NativeProcesses> = std::sync::OnceLock::new();
    *ONCE.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u64)
            * NativeProcesses::PER_CORE;
        let memory = rustix::system::sysinfo();
        let memory = (memory.totalram as u64).saturating_mul(u64::from(memory.mem_unit))
            / NativeProcesses::MEMORY_EACH;
        let nproc = rustix::process::getrlimit(rustix::process::Resource::Nproc)
            .current
            .map(|n| n / 2);
        let limit = [Some(cores), Some(memory), nproc]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(cores)
            .max(NativeProcesses::FLOOR);
        NativeProcesses {
            limit,
            cores,
            memory,
            nproc,
        }
    })
}

/// The default `processes` of the `wasm` backend on this machine, and what it came from.
/// Every process of a `wasm` run is an instance inside the host's one OS process, so what
/// bounds them is that process's share of the kernel's memory mappings and the machine's
/// memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WasmProcesses {
    /// The limit: the lesser of the two bounds below, and at least
    /// [`WasmProcesses::FLOOR`].
    pub limit: u64,
    /// The kernel's `vm.max_map_count`, less the mappings kept for the host itself,
    /// divided by the [`WasmProcesses::MAPS_EACH`] mappings of a live process.
    pub maps: u64,
    /// One process per [`WasmProcesses::MEMORY_EACH`] bytes of the machine's memory.
    pub memory: u64,
}

impl WasmProcesses {
    /// The mappings a live process holds at least: its fiber stack and the stack's guard
    /// page (its linear memory merges with its neighbours').
    pub const MAPS_EACH: u64 = 2;
    /// Bytes of the machine's memory per live process: a few times what a process that
    /// sleeps holds (its stack, its instance and a page or two of linear memory).
    pub const MEMORY_EACH: u64 = 256 << 10;
    /// The least default, however small the machine.
    pub const FLOOR: u64 = 16;
}

/// The `wasm` backend's default `processes` on this machine (read once per OS process).
/// Whatever the limit, a start is also refused while only the host's reserve of the
/// mapping budget is left (`limit vm.max_map_count = N reached`).
pub fn wasm_processes() -> WasmProcesses {
    static ONCE: std::sync::OnceLock<WasmProcesses> = std::sync::OnceLock::new();
    *ONCE.get_or_init(|| {
        let max = crate::engine::maps::kernel_max_map_count();
        let maps = max.saturating_sub(crate::engine::maps::reserve(max)) / WasmProcesses::MAPS_EACH;
        let memory = rustix::system::sysinfo();
        let memory = (memory.totalram as u64).saturating_mul(u64::from(memory.mem_unit))
            / WasmProcesses::MEMORY_EACH;
        WasmProcesses {
            limit: maps.min(memory).max(WasmProcesses::FLOOR),
            maps,
            memory,
        }
    })
}

/// A program's name: letters, digits, `-`, `_` and `.`, as a guest names it.
fn check_program_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid program name '{name}' (valid: letters, digits, '-', '_' and '.')"
        ))
    }
}

/// `value` as a number of bytes (or of anything): digits (`_` may separate them), then
/// `KiB`, `MiB` or `GiB` or nothing.
fn parse_amount(value: &str) -> Option<u64> {
    let (digits, unit) = match value.find(|c: char| !c.is_ascii_digit() && c != '_') {
        Some(i) => value.split_at(i),
        None => (value, ""),
    };
    let n: u64 = digits.replace('_', "").parse().ok()?;
    let scale: u64 = match unit {
        "" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(scale)
}

/// What the sandbox lets processes reach. Nothing unless granted.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Grants {
    /// Host directories preopened in every process.
    pub dirs: Vec<DirGrant>,
    /// Environment variables every process sees, as `(name, value)`.
    pub env: Vec<(String, String)>,
    /// Whether processes may use TCP, UDP and name lookup (all addresses).
    pub network: bool,
}

impl Grants {
    /// Checks that these grants give nothing that `outer` does not: each directory is one
    /// of `outer`'s (the same host and guest paths, writable only if it is there), each
    /// variable one of `outer`'s with the same value, and the network only if `outer`
    /// grants it.
    ///
    /// # Errors
    /// A message naming the first grant `outer` does not give.
    pub fn within(&self, outer: &Grants) -> Result<(), String> {
        for dir in &self.dirs {
            let given = outer.dirs.iter().any(|o| {
                o.host == dir.host && o.guest == dir.guest && (o.writable || !dir.writable)
            });
            if !given {
                return Err(format!(
                    "directory {} (as {}{}) is not granted to the host's processes",
                    dir.host.display(),
                    dir.guest,
                    if dir.writable { ", writable" } else { "" }
                ));
            }
        }
        for (name, value) in &self.env {
            if !outer.env.iter().any(|(n, v)| n == name && v == value) {
                return Err(format!(
                    "environment variable {name} (with this value) is not granted to the \
                     host's processes"
                ));
            }
        }
        if self.network && !outer.network {
            return Err("the network is not granted to the host's processes".to_string());
        }
        Ok(())
    }
}

/// A host directory made visible to guests.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DirGrant {
    /// The directory on the host.
    pub host: std::path::PathBuf,
    /// Where guests see it.
    pub guest: String,
    /// Whether guests may change it (otherwise read-only).
    pub writable: bool,
}

impl DirGrant {
    /// Parses `HOST[::GUEST]` (the guest path defaults to the host path) and checks that
    /// the host directory exists.
    ///
    /// # Errors
    /// A message naming `spec` when a side is empty or `HOST` is not a directory.
    pub fn parse(spec: &str, writable: bool) -> Result<DirGrant, String> {
        let (host, guest) = match spec.split_once("::") {
            Some((h, g)) => (h, g),
            None => (spec, spec),
        };
        if host.is_empty() || guest.is_empty() {
            return Err(format!(
                "invalid directory grant '{spec}' (valid: HOST or HOST::GUEST)"
            ));
        }
        if !std::path::Path::new(host).is_dir() {
            return Err(format!(
                "directory grant '{spec}': {host} is not a directory"
            ));
        }
        Ok(DirGrant {
            host: host.into(),
            guest: guest.to_string(),
            writable,
        })
    }
}

/// Parses an environment grant: `NAME=VALUE`, or `NAME` for the host's own value.
///
/// # Errors
/// A message naming `spec` when the name is empty, or when the host has no variable `NAME`.
pub fn parse_env_grant(spec: &str) -> Result<(String, String), String> {
    match spec.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        Some(_) => Err(format!(
            "invalid environment grant '{spec}' (valid: NAME=VALUE or NAME)"
        )),
        None => std::env::var(spec)
            .map(|v| (spec.to_string(), v))
            .map_err(|_| format!("environment grant '{spec}': the host has no variable {spec}")),
    }
}

/// Settings of one host run.
#[derive(Debug, Clone)]
pub struct Config {
    /// The backend that runs processes.
    pub backend: BackendKind,
    /// Where processes' output goes.
    pub output: OutputMode,
    /// What each process may use; exceeding a limit is an error to the caller or ends the
    /// offending process with [`LIMIT_EXIT_CODE`].
    pub limits: Limits,
    /// How often a running guest yields to the scheduler (and so how soon `terminate`
    /// stops a busy guest), in milliseconds.
    pub epoch_tick_ms: u64,
    /// Run each process of the `wasm` backend on an OS thread of its own instead of as a
    /// task on the shared scheduler. The default (false) was chosen by measurement (see
    /// BENCHMARKS.md); this switch exists to repeat that measurement.
    pub thread_per_process: bool,
    /// Give the main process the host's stdin (as a shell gives a program its terminal).
    /// Child processes always get an empty stdin, as with CPython's /dev/null.
    pub main_stdin: bool,
    /// The executable a native child runs (`<exe> __child`): by default this process's own
    /// executable, which must then be the `wasmproc` binary. A Rust program embedding the
    /// library names the `wasmproc` binary here.
    pub native_exe: Option<std::path::PathBuf>,
    /// Files, environment and network granted to processes (none by default).
    pub grants: Grants,
    /// Use wasmtime's pooling allocator with this many process slots (memories, instances
    /// and fiber stacks reserved up front) instead of allocating per process. Faster starts
    /// (see the benchmark), but the slots are a hard cap per host, and each slot's stack
    /// guard takes kernel mappings up front (about 2 per slot, of the 65530 a process may
    /// have by default), so size it for one host per OS process.
    pub pooling: Option<u32>,
    /// The kernel's `vm.max_map_count` as the `wasm` backend goes by it: its starts are
    /// refused with `limit-exceeded` before this OS process's memory mappings would run out
    /// (see `engine/maps.rs`). `None` (the default) reads `/proc/sys/vm/max_map_count`. The CLI
    /// takes it from `WASMPROC_MAX_MAP_COUNT`; a lower value than the kernel's shows the
    /// refusal without starting tens of thousands of processes.
    pub max_map_count: Option<u64>,
    /// Other programs a process may start children of, by name (`Builder::program` in the
    /// guest SDK): each is loaded (compiled once per host) when first used.
    pub programs: Vec<(String, std::path::PathBuf)>,
    /// Keep compiled programs in wasmtime's compilation cache, as `wasmtime run` does: a
    /// program compiled before with the same settings by the same build is loaded from
    /// there instead of compiled again. Its directory and settings are wasmtime's (its
    /// configuration file, `$HOME/.config/wasmtime/config.toml`; the directory by default
    /// `$XDG_CACHE_HOME/wasmtime`, or `$HOME/.cache/wasmtime`). The cache holds native code
    /// that is run as it is: only its owner must be able to write it. Off by default in the
    /// library (as in `wasmtime::Config`); `wasmproc run` turns it on unless `--no-cache`.
    pub compilation_cache: bool,
    /// The embedder's code on wasmtime's configuration, linker and stores (none by
    /// default); see [`Hooks`](crate::Hooks).
    pub hooks: crate::Hooks,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            backend: BackendKind::Wasm,
            output: OutputMode::Inherit,
            limits: Limits::default(),
            epoch_tick_ms: 5,
            thread_per_process: false,
            main_stdin: false,
            native_exe: None,
            grants: Grants::default(),
            pooling: None,
            max_map_count: None,
            programs: Vec::new(),
            compilation_cache: false,
            hooks: crate::Hooks::default(),
        }
    }
}

/// An error in a configuration source: it names the source (file and line, or environment
/// variable), the key, the bad value and the valid values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// Settings from one source: a flag, the environment or a `wasmproc.toml` file. Unset
/// settings are `None`; [`Settings::or`] layers sources, [`Settings::apply`] fills a
/// [`Config`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    /// `backend`: `wasm` or `native`.
    pub backend: Option<BackendKind>,
    /// `output`: `inherit`, `prefix` or `capture`.
    pub output: Option<OutputMode>,
    /// Limits set by this source (`[limits]` keys, validated), by name.
    pub limits: std::collections::BTreeMap<String, String>,
    /// Directories granted by this source (added to those of other sources).
    pub dirs: Vec<DirGrant>,
    /// Environment variables granted by this source (added to those of other sources).
    pub env: Vec<(String, String)>,
    /// Whether this source grants the network.
    pub network: Option<bool>,
    /// Programs this source allows, by name (a name set by a higher source wins).
    pub programs: Vec<(String, std::path::PathBuf)>,
    /// What this source had that is no setting and was ignored, one line each (a misspelt
    /// `WASMPROC_` variable): the CLI prints them as warnings.
    pub ignored: Vec<String>,
}

/// The keys of a configuration file, as `(key, environment variable)`.
const KEYS: &[(&str, &str)] = &[
    ("backend", "WASMPROC_BACKEND"),
    ("output", "WASMPROC_OUTPUT"),
];

/// Environment variables of ours that are not settings.
const OTHER_ENV: &[&str] = &[
    "WASMPROC_BACKTRACE",
    "WASMPROC_GUEST_TARGET_DIR",
    "WASMPROC_MAX_MAP_COUNT",
];

impl Settings {
    /// `self`, with what it leaves unset taken from `lower` (a flag beats the environment,
    /// which beats the file).
    pub fn or(self, lower: Settings) -> Settings {
        let mut limits = lower.limits;
        limits.extend(self.limits);
        let mut dirs = lower.dirs;
        dirs.extend(self.dirs);
        let mut env = lower.env;
        env.extend(self.env);
        let mut programs = lower.programs;
        programs.retain(|(n, _)| !self.programs.iter().any(|(m, _)| m == n));
        programs.extend(self.programs);
        Settings {
            backend: self.backend.or(lower.backend),
            output: self.output.or(lower.output),
            limits,
            dirs,
            env,
            network: self.network.or(lower.network),
            programs,
            ignored: [lower.ignored, self.ignored].concat(),
        }
    }

    /// Allows program `path` under `name` (as `--program NAME=PATH` does), checking the name.
    ///
    /// # Errors
    /// When `name` has characters other than letters, digits, `-`, `_` and `.`.
    pub fn program(&mut self, name: &str, path: &std::path::Path) -> Result<(), ConfigError> {
        check_program_name(name).map_err(ConfigError)?;
        self.programs.retain(|(n, _)| n != name);
        self.programs.push((name.to_string(), path.to_path_buf()));
        Ok(())
    }

    /// Sets limit `key` to `value` (as `--limit KEY=VALUE` does), checking it.
    ///
    /// # Errors
    /// As [`Limits::set`].
    pub fn limit(&mut self, key: &str, value: &str) -> Result<(), ConfigError> {
        Limits::default().set(key, value).map_err(ConfigError)?;
        self.limits.insert(key.to_string(), value.to_string());
        Ok(())
    }

    /// `config` with these settings applied.
    pub fn apply(self, mut config: Config) -> Config {
        if let Some(b) = self.backend {
            config.backend = b;
        }
        if let Some(o) = self.output {
            config.output = o;
        }
        for (key, value) in &self.limits {
            // Checked when the setting was read.
            let _ = config.limits.set(key, value);
        }
        config.grants.dirs.extend(self.dirs);
        config.grants.env.extend(self.env);
        if let Some(network) = self.network {
            config.grants.network = network;
        }
        for (name, path) in self.programs {
            config.programs.retain(|(n, _)| *n != name);
            config.programs.push((name, path));
        }
        config
    }

    fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        match key {
            "backend" => self.backend = Some(value.parse()?),
            "output" => self.output = Some(value.parse()?),
            _ => unreachable!("only known keys are set"),
        }
        Ok(())
    }

    /// Reads the `WASMPROC_*` variables of `vars` (every variable: a misspelt `WASMPROC_`
    /// variable is not silently dropped but listed in [`Settings::ignored`]); a bad value of
    /// a setting is an error.
    ///
    /// # Errors
    /// A message naming the variable and the valid values when a setting's value is bad.
    pub fn from_env(
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Settings, ConfigError> {
        let mut settings = Settings::default();
        for (name, value) in vars {
            if !name.starts_with("WASMPROC_") || OTHER_ENV.contains(&name.as_str()) {
                continue;
            }
            if let Some(limit) = name.strip_prefix("WASMPROC_LIMIT_") {
                let key = limit.to_ascii_lowercase();
                settings
                    .limit(&key, &value)
                    .map_err(|e| ConfigError(format!("environment variable {name}: {e}")))?;
                continue;
            }
            let Some((key, _)) = KEYS.iter().find(|(_, var)| *var == name) else {
                let valid: Vec<&str> = KEYS.iter().map(|(_, v)| *v).collect();
                settings.ignored.push(format!(
                    "environment variable {name} is no setting of wasmproc, ignored (settings: \
                     {}, WASMPROC_LIMIT_<LIMIT>)",
                    valid.join(", ")
                ));
                continue;
            };
            settings
                .set(key, &value)
                .map_err(|e| ConfigError(format!("environment variable {name}: {e}")))?;
        }
        Ok(settings)
    }

    /// Reads a `wasmproc.toml` file.
    ///
    /// # Errors
    /// When the file cannot be read, and as [`Settings::from_toml`] (naming the file).
    pub fn from_file(path: &std::path::Path) -> Result<Settings, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError(format!(
                "cannot read configuration file {}: {e}",
                path.display()
            ))
        })?;
        let mut settings = Settings::from_toml(&text, &path.display().to_string())?;
        // A program's path is relative to the file that names it.
        let base = path.parent().unwrap_or(std::path::Path::new("."));
        for (_, program) in &mut settings.programs {
            if program.is_relative() {
                *program = base.join(&*program);
            }
        }
        Ok(settings)
    }

    /// Parses the text of a configuration file; `origin` names it in errors.
    ///
    /// # Errors
    /// A message naming `origin`, the line, the key and the valid values for bad TOML, an
    /// unknown key or table, or a bad value.
    pub fn from_toml(text: &str, origin: &str) -> Result<Settings, ConfigError> {
        let file = TomlFile { text, origin };
        let table = toml::de::DeTable::parse(text).map_err(|e| {
            let line = e.span().map(|s| file.line_of(s.start)).unwrap_or(1);
            file.error(line, e.message())
        })?;
        let mut settings = Settings::default();
        for (key, value) in table.get_ref() {
            let line = file.line_of(key.span().start);
            let name = key.get_ref().as_ref();
            match (name, value.get_ref()) {
                ("programs", toml::de::DeValue::Table(t)) => file.programs(&mut settings, t)?,
                ("grants", toml::de::DeValue::Table(t)) => file.grants(&mut settings, t)?,
                ("limits", toml::de::DeValue::Table(t)) => file.limits(&mut settings, t)?,
                ("grants" | "limits" | "programs", _) => {
                    return Err(file.error(line, format!("'{name}' must be a table ([{name}])")));
                }
                (_, value) => file.top_key(&mut settings, line, name, value)?,
            }
        }
        Ok(settings)
    }
}

/// A configuration file being parsed: its text, and what names it in errors.
struct TomlFile<'a> {
    text: &'a str,
    origin: &'a str,
}

impl TomlFile<'_> {
    /// The line of byte `offset`.
    fn line_of(&self, offset: usize) -> usize {
        self.text[..offset.min(self.text.len())]
            .matches('\n')
            .count()
            + 1
    }

    fn error(&self, line: usize, message: impl std::fmt::Display) -> ConfigError {
        ConfigError(format!("{}:{line}: {message}", self.origin))
    }

    /// A key outside the tables: one of [`KEYS`], a string.
    fn top_key(
        &self,
        settings: &mut Settings,
        line: usize,
        name: &str,
        value: &toml::de::DeValue<'_>,
    ) -> Result<(), ConfigError> {
        if !KEYS.iter().any(|(k, _)| *k == name) {
            let valid: Vec<&str> = KEYS.iter().map(|(k, _)| *k).collect();
            return Err(self.error(
                line,
                format!(
                    "unknown key '{name}' (valid keys: {}, [limits], [grants], [programs])",
                    valid.join(", ")
                ),
            ));
        }
        let toml::de::DeValue::String(s) = value else {
            return Err(self.error(line, format!("key '{name}' must be a string")));
        };
        settings
            .set(name, s)
            .map_err(|e| self.error(line, format!("key '{name}': {e}")))
    }

    /// `f` on each entry of `table`: its line, key and value.
    fn each(
        &self,
        table: &toml::de::DeTable<'_>,
        mut f: impl FnMut(usize, &str, &toml::de::DeValue<'_>) -> Result<(), ConfigError>,
    ) -> Result<(), ConfigError> {
        for (key, value) in table {
            f(
                self.line_of(key.span().start),
                key.get_ref().as_ref(),
                value.get_ref(),
            )?;
        }
        Ok(())
    }

    /// `[programs]`: a name and a path each.
    fn programs(
        &self,
        settings: &mut Settings,
        table: &toml::de::DeTable<'_>,
    ) -> Result<(), ConfigError> {
        self.each(table, |line, name, value| {
            let toml::de::DeValue::String(path) = value else {
                return Err(self.error(line, format!("program '{name}' must be a path (a string)")));
            };
            settings
                .program(name, std::path::Path::new(path.as_ref()))
                .map_err(|e| self.error(line, e))
        })
    }

    /// `[limits]`: a number or a string each.
    fn limits(
        &self,
        settings: &mut Settings,
        table: &toml::de::DeTable<'_>,
    ) -> Result<(), ConfigError> {
        self.each(table, |line, name, value| {
            let text = match value {
                toml::de::DeValue::String(s) => s.to_string(),
                toml::de::DeValue::Integer(i) => i.to_string(),
                _ => {
                    return Err(
                        self.error(line, format!("limit '{name}' must be a number or a string"))
                    );
                }
            };
            settings.limit(name, &text).map_err(|e| self.error(line, e))
        })
    }

    /// `[grants]`.
    fn grants(
        &self,
        settings: &mut Settings,
        table: &toml::de::DeTable<'_>,
    ) -> Result<(), ConfigError> {
        self.each(table, |line, name, value| {
            self.grant(settings, line, name, value)
        })
    }

    /// One grant: `dirs`, `dirs_rw` and `env` are lists of strings, `network` a boolean.
    fn grant(
        &self,
        settings: &mut Settings,
        line: usize,
        name: &str,
        value: &toml::de::DeValue<'_>,
    ) -> Result<(), ConfigError> {
        let located = |e: String| self.error(line, e);
        let not_strings = || self.error(line, format!("grant '{name}' must be a list of strings"));
        let strings = || -> Result<Vec<String>, ConfigError> {
            let toml::de::DeValue::Array(items) = value else {
                return Err(not_strings());
            };
            items
                .iter()
                .map(|i| match i.get_ref() {
                    toml::de::DeValue::String(s) => Ok(s.to_string()),
                    _ => Err(not_strings()),
                })
                .collect()
        };
        match name {
            "dirs" | "dirs_rw" => {
                for d in strings()? {
                    settings
                        .dirs
                        .push(DirGrant::parse(&d, name == "dirs_rw").map_err(located)?);
                }
            }
            "env" => {
                for e in strings()? {
                    settings.env.push(parse_env_grant(&e).map_err(located)?);
                }
            }
            "network" => match value {
                toml::de::DeValue::Boolean(b) => settings.network = Some(*b),
                _ => return Err(located("grant 'network' must be true or false".to_string())),
            },
            other => {
                return Err(located(format!(
                    "unknown grant '{other}' (valid: dirs, dirs_rw, env, network)"
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn file_settings_parse_and_errors_name_key_value_and_line() {
        let s =
            Settings::from_toml("backend = \"native\"\noutput = \"prefix\"\n", "w.toml").unwrap();
        assert_eq!(s.backend, Some(BackendKind::Native));
        assert_eq!(s.output, Some(OutputMode::Prefix));
        assert_eq!(
            Settings::from_toml("output = \"inherit\"\nbackend = \"jvm\"\n", "w.toml")
                .unwrap_err()
                .0,
            "w.toml:2: key 'backend': unknown backend 'jvm' (valid: wasm, native)"
        );
        assert_eq!(
            Settings::from_toml("\n\nbakend = \"wasm\"\n", "w.toml")
                .unwrap_err()
                .0,
            "w.toml:3: unknown key 'bakend' (valid keys: backend, output, [limits], [grants], \
             [programs])"
        );
        assert_eq!(
            Settings::from_toml("backend = 3\n", "w.toml")
                .unwrap_err()
                .0,
            "w.toml:1: key 'backend' must be a string"
        );
        assert!(
            Settings::from_toml("backend = \n", "w.toml")
                .unwrap_err()
                .0
                .starts_with("w.toml:1: ")
        );
    }

    #[test]
    fn grants_from_file() {
        let s = Settings::from_toml(
            "[grants]\ndirs = [\"/tmp::/data\"]\ndirs_rw = [\"/tmp\"]\nenv = [\"A=1\"]\nnetwork = true\n",
            "w.toml",
        )
        .unwrap();
        let c = s.apply(Config::default());
        assert_eq!(
            c.grants.dirs,
            [
                DirGrant {
                    host: "/tmp".into(),
                    guest: "/data".into(),
                    writable: false
                },
                DirGrant {
                    host: "/tmp".into(),
                    guest: "/tmp".into(),
                    writable: true
                },
            ]
        );
        assert_eq!(c.grants.env, [("A".to_string(), "1".to_string())]);
        assert!(c.grants.network);
        assert_eq!(
            Settings::from_toml("[grants]\ndirs = [\"/no/such/dir\"]\n", "w.toml")
                .unwrap_err()
                .0,
            "w.toml:2: directory grant '/no/such/dir': /no/such/dir is not a directory"
        );
        assert_eq!(
            Settings::from_toml("[grants]\nfiles = []\n", "w.toml")
                .unwrap_err()
                .0,
            "w.toml:2: unknown grant 'files' (valid: dirs, dirs_rw, env, network)"
        );
        assert!(!Config::default().grants.network);
        assert!(Config::default().grants.dirs.is_empty());
    }

    #[test]
    fn limits_from_file_env_and_flags() {
        let s = Settings::from_toml(
            "[limits]\nmemory = \"64MiB\"\ndepth = 3\ncpu_ms = \"none\"\n",
            "w.toml",
        )
        .unwrap();
        let c = s.apply(Config::default());
        assert_eq!(c.limits.memory, 64 << 20);
        assert_eq!(c.limits.depth, 3);
        assert_eq!(c.limits.cpu_ms, None);
        assert_eq!(
            Settings::from_toml("[limits]\nmemroy = 1\n", "w.toml")
                .unwrap_err()
                .0,
            "w.toml:2: unknown limit 'memroy' (valid: processes, children, depth, memory, \
             cpu_ms, wall_ms, run_ms, args, output, message, queued, objects, held)"
        );
        assert_eq!(
            Settings::from_toml("[limits]\nmemory = \"lots\"\n", "w.toml")
                .unwrap_err()
                .0,
            "w.toml:2: invalid value 'lots' for limit 'memory' (valid: a whole number of \
             bytes, optionally ending in KiB, MiB or GiB)"
        );
        let env = Settings::from_env([("WASMPROC_LIMIT_WALL_MS".to_string(), "500".to_string())])
            .unwrap();
        let mut flag = Settings::default();
        flag.limit("wall_ms", "100").unwrap();
        let c = flag.clone().or(env.clone()).apply(Config::default());
        assert_eq!(c.limits.wall_ms, Some(100));
        let c = Settings::default().or(env).apply(Config::default());
        assert_eq!(c.limits.wall_ms, Some(500));
        assert_eq!(
            flag.limit("processes", "none").unwrap_err().0,
            "invalid value 'none' for limit 'processes' (valid: a whole number)"
        );
    }

    #[test]
    fn limits_refuse_spaces_and_memory_past_wasm32() {
        let mut flag = Settings::default();
        assert_eq!(
            flag.limit("memory", "64 MiB").unwrap_err().0,
            "invalid value '64 MiB' for limit 'memory': a value has no spaces (for example \
             '64MiB')"
        );
        assert_eq!(
            flag.limit("children", " 5").unwrap_err().0,
            "invalid value ' 5' for limit 'children': a value has no spaces (for example '5')"
        );
        assert_eq!(
            flag.limit("memory", "5GiB").unwrap_err().0,
            "invalid value '5GiB' for limit 'memory': a wasm32 process addresses at most \
             4GiB (4294967296 bytes)"
        );
        assert_eq!(
            flag.limit("memory", "4294967297").unwrap_err().0,
            "invalid value '4294967297' for limit 'memory': a wasm32 process addresses at \
             most 4GiB (4294967296 bytes)"
        );
        flag.limit("memory", "4GiB").unwrap();
        assert_eq!(flag.apply(Config::default()).limits.memory, 4 << 30);
        // Other sizes are not bounded by what a process addresses.
        Settings::default().limit("queued", "8GiB").unwrap();
        assert_eq!(
            Settings::from_toml("[limits]\nmemory = \"8GiB\"\n", "w.toml")
                .unwrap_err()
                .0,
            "w.toml:2: invalid value '8GiB' for limit 'memory': a wasm32 process addresses \
             at most 4GiB (4294967296 bytes)"
        );
    }

    #[test]
    fn env_settings_and_precedence() {
        let env = |pairs: &[(&str, &str)]| {
            Settings::from_env(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
        };
        assert_eq!(
            env(&[("WASMPROC_BACKEND", "native"), ("HOME", "/root")])
                .unwrap()
                .backend,
            Some(BackendKind::Native)
        );
        assert_eq!(
            env(&[("WASMPROC_OUTPUT", "loud")]).unwrap_err().0,
            "environment variable WASMPROC_OUTPUT: unknown output mode 'loud' \
             (valid: inherit, prefix, capture)"
        );
        let misspelt = env(&[("WASMPROC_BAKEND", "wasm")]).unwrap();
        assert_eq!(misspelt.backend, None);
        assert_eq!(
            misspelt.ignored,
            [
                "environment variable WASMPROC_BAKEND is no setting of wasmproc, ignored \
              (settings: WASMPROC_BACKEND, WASMPROC_OUTPUT, WASMPROC_LIMIT_<LIMIT>)"
            ]
        );
        let flag = Settings {
            backend: Some(BackendKind::Wasm),
            ..Settings::default()
        };
        let from_env = Settings {
            backend: Some(BackendKind::Native),
            output: Some(OutputMode::Prefix),
            ..Settings::default()
        };
        let file = Settings {
            backend: Some(BackendKind::Native),
            output: Some(OutputMode::Inherit),
            ..Settings::default()
        };
        let c = flag.or(from_env).or(file).apply(Config::default());
        assert_eq!(c.backend, BackendKind::Wasm);
        assert_eq!(c.output, OutputMode::Prefix);
        assert_eq!(
            Settings::default().apply(Config::default()).backend,
            BackendKind::Wasm
        );
    }

    #[test]
    fn programs_from_file_and_flags() {
        let file = Settings::from_toml(
            "[programs]\nworker = \"w.wasm\"\nother = \"/abs/o.wasm\"\n",
            "w.toml",
        )
        .unwrap();
        let mut flags = Settings::default();
        flags.program("worker", Path::new("flag.wasm")).unwrap();
        let c = flags.or(file).apply(Config::default());
        assert_eq!(
            c.programs,
            vec![
                ("other".to_string(), "/abs/o.wasm".into()),
                ("worker".to_string(), "flag.wasm".into()),
            ]
        );
        assert_eq!(
            Settings::from_toml("[programs]\nw = 3\n", "w.toml")
                .unwrap_err()
                .0,
            "w.toml:2: program 'w' must be a path (a string)"
        );
        assert_eq!(
            Settings::from_toml("programs = 1\n", "w.toml")
                .unwrap_err()
                .0,
            "w.toml:1: 'programs' must be a table ([programs])"
        );
    }
}
