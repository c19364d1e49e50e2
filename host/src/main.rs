//! The `wasmproc` command: runs a program's main process, precompiles a program, or builds
//! a guest crate into programs.

mod build;

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use wasmproc::{
    BackendKind, Config, DirGrant, Events, EventsError, Host, OutputMode, ProcessEvent, Settings,
    parse_env_grant,
};

/// Run WebAssembly programs as processes, the way Python's multiprocessing runs them.
///
/// A program is a WASI component built with the wasmproc-guest SDK. Its main function runs
/// as the main process; from there guest code starts, joins, terminates and kills child
/// processes, each a fresh sandboxed instance of the program.
#[derive(Parser)]
#[command(name = "wasmproc", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run PROGRAM's main process and exit with its exit code (128+N when ended by signal N).
    ///
    /// PROGRAM is a component (.wasm); the output of `wasmproc compile` (native code) only
    /// with --allow-precompiled. The arguments after PROGRAM (or after `--`) are passed to
    /// the program (argv[0] is the program's file name); its stdin is wasmproc's. Children get no arguments, an empty stdin, no files, environment or
    /// network.
    Run {
        /// The program: a WebAssembly component (a precompiled file with
        /// --allow-precompiled).
        program: PathBuf,
        /// Allow PROGRAM and the --program files to be precompiled by `wasmproc compile`
        /// (found by content, whatever the name). Such a file is native code that is run as
        /// it is: pass this only for files you compiled yourself with this build of
        /// wasmproc, which nobody else can have changed.
        #[arg(long)]
        allow_precompiled: bool,
        /// Compile PROGRAM and the --program files without wasmtime's compilation cache
        /// (by default a program compiled before by this build with the same settings is
        /// taken from the cache; its directory is wasmtime's, `~/.cache/wasmtime` unless
        /// wasmtime's configuration file says otherwise).
        #[arg(long)]
        no_cache: bool,
        /// Which backend runs child processes: `wasm` (instances inside this process, the
        /// default) or `native` (OS processes). Beats WASMPROC_BACKEND and the file.
        #[arg(long, value_parser = parse_backend)]
        backend: Option<BackendKind>,
        /// Where processes' output goes: `inherit` (the host's stdout/stderr, the default)
        /// or `prefix` (the same, each line prefixed with `[<process name>] `). Beats
        /// WASMPROC_OUTPUT and the file.
        #[arg(long, value_parser = parse_output)]
        output: Option<OutputMode>,
        /// A limit, as KEY=VALUE (repeatable): processes, children, depth, memory, cpu_ms,
        /// wall_ms, run_ms, args, output, message, queued, objects, held. Sizes may end in
        /// KiB, MiB or GiB. Beats WASMPROC_LIMIT_<KEY> and the file's [limits] table.
        #[arg(long = "limit", value_name = "KEY=VALUE")]
        limits: Vec<String>,
        /// Grant every process read-only access to host directory HOST, seen as GUEST
        /// (default: the same path). Repeatable; added to the file's grants.
        #[arg(long = "dir", value_name = "HOST[::GUEST]")]
        dirs: Vec<String>,
        /// As --dir, writable.
        #[arg(long = "dir-rw", value_name = "HOST[::GUEST]")]
        dirs_rw: Vec<String>,
        /// Grant every process environment variable NAME (=VALUE, or the host's value).
        #[arg(long = "env", value_name = "NAME[=VALUE]")]
        env: Vec<String>,
        /// Grant every process the network (TCP, UDP, name lookup).
        #[arg(long)]
        network: bool,
        /// Allow processes to start children running program PATH, which a guest names
        /// NAME (the SDK's `Builder::program`). Repeatable; beats the file's [programs].
        #[arg(long = "program", value_name = "NAME=PATH")]
        programs: Vec<String>,
        /// A configuration file (TOML; keys `backend`, `output`, and tables `[limits]`,
        /// `[grants]` and `[programs]`).
        /// Without it, ./wasmproc.toml is read when present.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Write each process's lifecycle events as JSON lines: to stderr, or with
        /// --trace=FILE to FILE. One object per line, with `event` (`started`,
        /// `start-failed`, `signalled`, `ended`, or `missed` when events were dropped because
        /// the writer fell behind), `name`, `pid`, `parent`, `exitcode`, `limit`, `signal`,
        /// `kind` and `error` as they apply, and `ms`: milliseconds since the host started
        /// when the line was written.
        #[arg(long, value_name = "FILE", num_args = 0..=1, require_equals = true, default_missing_value = "-")]
        trace: Option<PathBuf>,
        /// Arguments for the program's main: everything after PROGRAM (as with `wasmtime
        /// run`, options of wasmproc come before it); a first `--` is dropped.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Compile PROGRAM ahead of time so that `run` loads it without compiling.
    ///
    /// The output works only with this build of wasmproc, and `run` loads it only with
    /// --allow-precompiled; it refuses anything else.
    Compile {
        /// The component to compile.
        program: PathBuf,
        /// Where to write the artifact (default: PROGRAM with the extension .cwasm); never
        /// PROGRAM itself.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Build a guest crate for wasm32-wasip2 and print the path of each program (.wasm) it
    /// produced, one per line.
    ///
    /// Runs `cargo build --release --target wasm32-wasip2` on the crate cargo finds from the
    /// current directory (or --manifest-path), with rustup's wasm32-wasip2 target when it is
    /// installed, otherwise with Debian's rustc-web and -Zbuild-std. When neither is
    /// installed it first installs the Debian toolchain (the project's
    /// scripts/setup-guest-toolchain.sh, carried by this binary; it uses apt-get, through
    /// sudo when not root). Cargo's messages go to stderr; CARGO_TARGET_DIR is honoured.
    ///
    /// With a Python script (`wasmproc build app.py [-o app.wasm]`), builds the Python
    /// program whose main script it is into a component with componentize-py (installed
    /// first into a private virtual environment when missing: scripts/setup-python-guest.sh,
    /// carried by this binary), with the wasmproc Python package, which `import
    /// multiprocessing` gives inside the program. Prints the component's path.
    Build {
        /// A Python program's main script (`.py`) to build instead of a crate.
        #[arg(value_name = "SCRIPT.py")]
        script: Option<PathBuf>,
        /// Where to write a Python program's component (default: SCRIPT with the extension
        /// .wasm).
        #[arg(short, long, value_name = "FILE", requires = "script")]
        output: Option<PathBuf>,
        /// The guest crate's Cargo.toml (or its directory).
        #[arg(long, value_name = "PATH")]
        manifest_path: Option<PathBuf>,
        /// Build cargo's dev profile instead of release.
        #[arg(long)]
        debug: bool,
        /// More arguments for `cargo build`, after `--` (for example `-- --bin NAME`).
        #[arg(last = true, value_name = "CARGO_ARGS")]
        cargo_args: Vec<String>,
    },
}

fn parse_backend(s: &str) -> Result<BackendKind, String> {
    s.parse()
}

fn parse_output(s: &str) -> Result<OutputMode, String> {
    match s.parse()? {
        OutputMode::Capture => Err("`capture` is for the library; use inherit or prefix".into()),
        mode => Ok(mode),
    }
}

fn main() -> ExitCode {
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == wasmproc::CHILD_SUBCOMMAND)
    {
        return ExitCode::from(wasmproc::native_child_main());
    }
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("wasmproc: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run {
            program,
            allow_precompiled,
            no_cache,
            backend,
            output,
            config,
            limits,
            dirs,
            dirs_rw,
            env,
            network,
            programs,
            trace,
            args,
        } => {
            let mut flags = Settings {
                backend,
                output,
                ..Settings::default()
            };
            for (list, writable) in [(&dirs, false), (&dirs_rw, true)] {
                for d in list {
                    flags
                        .dirs
                        .push(DirGrant::parse(d, writable).map_err(anyhow::Error::msg)?);
                }
            }
            for e in &env {
                flags
                    .env
                    .push(parse_env_grant(e).map_err(anyhow::Error::msg)?);
            }
            if network {
                flags.network = Some(true);
            }
            for p in &programs {
                let (name, path) = p.split_once('=').ok_or_else(|| {
                    anyhow::anyhow!("--program {p}: expected NAME=PATH, for example worker=w.wasm")
                })?;
                flags
                    .program(name, Path::new(path))
                    .map_err(|e| anyhow::anyhow!("--program {p}: {e}"))?;
            }
            for limit in &limits {
                let (key, value) = limit.split_once('=').ok_or_else(|| {
                    anyhow::anyhow!(
                        "--limit {limit}: expected KEY=VALUE, for example memory=256MiB"
                    )
                })?;
                flags
                    .limit(key, value)
                    .map_err(|e| anyhow::anyhow!("--limit {limit}: {e}"))?;
            }
            let file = settings_file(config)?;
            let settings = flags.or(Settings::from_env(std::env::vars())?).or(file);
            for line in &settings.ignored {
                eprintln!("wasmproc: warning: {line}");
            }
            let run = RunOptions {
                allow_precompiled,
                compilation_cache: !no_cache,
                trace,
            };
            run_program(settings, &program, &run, &args)
        }
        Command::Compile { program, output } => {
            let output = output.unwrap_or_else(|| program.with_extension("cwasm"));
            let host = Host::new(Config::default()).context("failed to start the host")?;
            host.precompile(&program, &output)?;
            eprintln!("wasmproc: wrote {}", output.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Build {
            script: Some(script),
            output,
            manifest_path,
            debug,
            cargo_args,
        } => {
            if script.extension().is_none_or(|e| e != "py") {
                anyhow::bail!(
                    "{}: not a Python script (.py); build a crate with --manifest-path",
                    script.display()
                );
            }
            if manifest_path.is_some() || debug || !cargo_args.is_empty() {
                anyhow::bail!(
                    "--manifest-path, --debug and cargo arguments are for crates, not for a \
                     Python script"
                );
            }
            let program = build::build_python(&script, output.as_deref())?;
            println!("{}", program.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Build {
            script: None,
            output: _,
            manifest_path,
            debug,
            cargo_args,
        } => {
            let programs = build::build(&build::Request {
                manifest_path,
                debug,
                cargo_args,
            })?;
            for program in programs {
                println!("{}", program.display());
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The settings of the configuration file: `config` if given, else `./wasmproc.toml` if
/// there is one.
fn settings_file(config: Option<PathBuf>) -> anyhow::Result<Settings> {
    Ok(match config {
        Some(path) => Settings::from_file(&path)?,
        None if Path::new("wasmproc.toml").exists() => {
            Settings::from_file(Path::new("wasmproc.toml"))?
        }
        None => Settings::default(),
    })
}

/// `wasmproc run`: the main process of `program` with `args`, under `settings` (the
/// programs may be precompiled with `allow_precompiled`); its exit code is the shell's.
/// How `wasmproc run` runs its program.
struct RunOptions {
    /// Programs may be precompiled.
    allow_precompiled: bool,
    compilation_cache: bool,
    /// Where lifecycle events go as JSON lines (`-`: stderr).
    trace: Option<PathBuf>,
}

/// The events a `--trace` writer keeps when it falls behind.
const TRACE_CAPACITY: usize = 1 << 16;

fn run_program(
    settings: Settings,
    program: &Path,
    options: &RunOptions,
    args: &[String],
) -> anyhow::Result<ExitCode> {
    let RunOptions {
        allow_precompiled,
        compilation_cache,
        ref trace,
    } = *options;
    if settings.output == Some(OutputMode::Capture) {
        anyhow::bail!("output 'capture' is for the library; use inherit or prefix");
    }
    if let Some(value) = settings.limits.get("output") {
        anyhow::bail!(
            "limit output = {value}: the output limit bounds captured output (the library's \
             capture mode); wasmproc run writes output through and does not capture it"
        );
    }
    let max_map_count = match std::env::var("WASMPROC_MAX_MAP_COUNT") {
        Ok(v) => Some(v.parse::<u64>().map_err(|_| {
            anyhow::anyhow!(
                "environment variable WASMPROC_MAX_MAP_COUNT: invalid value '{v}' (valid: a \
                 whole number)"
            )
        })?),
        Err(_) => None,
    };
    let host = Host::new(settings.apply(Config {
        main_stdin: true,
        max_map_count,
        compilation_cache,
        ..Config::default()
    }))
    .map_err(|e| match e {
        // A program of the configuration that is missing or not one names itself.
        wasmproc::Error::Program { .. } => anyhow::Error::new(e),
        other => anyhow::Error::new(other).context("failed to start the host"),
    })?;
    let program = if allow_precompiled {
        // SAFETY: the user passed --allow-precompiled, whose help states the contract of
        // `load_precompiled` and `allow_precompiled_programs`: files they compiled
        // themselves with this build.
        unsafe {
            host.allow_precompiled_programs();
            host.load_precompiled(program)?
        }
    } else {
        host.load(program)?
    };
    let writer = match trace {
        Some(path) => Some(trace_writer(path, host.events(TRACE_CAPACITY))?),
        None => None,
    };
    let status = host.run_main(&program, args)?.status;
    // Dropping the host ends the event stream: the writer writes what is left and stops.
    drop(host);
    if let Some(writer) = writer {
        writer
            .join()
            .map_err(|_| anyhow::anyhow!("the --trace writer panicked"))??;
    }
    let code = u8::try_from(status.shell_code()).unwrap_or(u8::MAX);
    Ok(ExitCode::from(code))
}

/// A thread that writes `events` as JSON lines to `path` (`-`: stderr) until the host is
/// gone.
fn trace_writer(
    path: &Path,
    mut events: Events,
) -> anyhow::Result<std::thread::JoinHandle<anyhow::Result<()>>> {
    let mut out: Box<dyn Write + Send> = if path == Path::new("-") {
        Box::new(std::io::stderr())
    } else {
        let file = std::fs::File::create(path)
            .with_context(|| format!("--trace: cannot create {}", path.display()))?;
        Box::new(std::io::BufWriter::new(file))
    };
    let start = std::time::Instant::now();
    let shown = path.display().to_string();
    Ok(std::thread::spawn(move || {
        loop {
            let mut line = match events.recv(None) {
                Ok(event) => trace_line(&event),
                Err(EventsError::Missed(count)) => {
                    serde_json::json!({ "event": "missed", "count": count })
                }
                Err(EventsError::Closed) => break,
                Err(EventsError::Timeout) => continue,
            };
            line["ms"] = serde_json::json!(start.elapsed().as_secs_f64() * 1e3);
            // One write per line, so that lines on a shared stderr stay whole.
            let line = format!("{line}\n");
            out.write_all(line.as_bytes())
                .with_context(|| format!("--trace: cannot write {shown}"))?;
        }
        out.flush()
            .with_context(|| format!("--trace: cannot write {shown}"))
    }))
}

/// One `--trace` line's object.
fn trace_line(event: &ProcessEvent) -> serde_json::Value {
    use serde_json::json;
    match event {
        ProcessEvent::Started { name, pid, parent } => {
            json!({ "event": "started", "name": name, "pid": pid, "parent": parent })
        }
        ProcessEvent::StartFailed {
            name,
            parent,
            error,
        } => json!({
            "event": "start-failed",
            "name": name,
            "parent": parent,
            "kind": error.kind.wit_name(),
            "error": error.message,
        }),
        ProcessEvent::Signalled { name, pid, signal } => json!({
            "event": "signalled", "name": name, "pid": pid, "signal": signal.name()
        }),
        ProcessEvent::Ended {
            name,
            pid,
            status,
            limit,
        } => json!({
            "event": "ended",
            "name": name,
            "pid": pid,
            "exitcode": status.exitcode(),
            "limit": limit.map(|l| format!("{}={}", l.key(), l.value())),
        }),
    }
}
