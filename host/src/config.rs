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
}

/// The keys of a configuration file, as `(key, environment variable)`.
const KEYS: &[(&str, &str)] = &[
    ("backend", "WASMPROC_BACKEND"),
    ("output", "WASMPROC_OUTPUT"),
];

/// Environment variables of ours that are not settings.
const OTHER_ENV: &[&str] = &["WASMPROC_BACKTRACE", "WASMPROC_GUEST_TARGET_DIR"];

impl Settings {
    /// `self`, with what it leaves unset taken from `lower` (a flag beats the environment,
    /// which beats the file).
    pub fn or(self, lower: Settings) -> Settings {
        Settings {
            backend: self.backend.or(lower.backend),
            output: self.output.or(lower.output),
        }
    }

    /// `config` with these settings applied.
    pub fn apply(self, mut config: Config) -> Config {
        if let Some(b) = self.backend {
            config.backend = b;
        }
        if let Some(o) = self.output {
            config.output = o;
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

    /// Reads the `WASMPROC_*` variables through `get` (`vars` lists every variable name,
    /// so that a misspelt `WASMPROC_` variable is an error rather than ignored).
    pub fn from_env(
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Settings, ConfigError> {
        let mut settings = Settings::default();
        for (name, value) in vars {
            if !name.starts_with("WASMPROC_") || OTHER_ENV.contains(&name.as_str()) {
                continue;
            }
            let Some((key, _)) = KEYS.iter().find(|(_, var)| *var == name) else {
                let valid: Vec<&str> = KEYS.iter().map(|(_, v)| *v).collect();
                return Err(ConfigError(format!(
                    "environment variable {name}: unknown setting (valid: {})",
                    valid.join(", ")
                )));
            };
            settings
                .set(key, &value)
                .map_err(|e| ConfigError(format!("environment variable {name}: {e}")))?;
        }
        Ok(settings)
    }

    /// Reads a `wasmproc.toml` file.
    pub fn from_file(path: &std::path::Path) -> Result<Settings, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError(format!(
                "cannot read configuration file {}: {e}",
                path.display()
            ))
        })?;
        Settings::from_toml(&text, &path.display().to_string())
    }

    /// Parses the text of a configuration file; `origin` names it in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Settings, ConfigError> {
        let line_of = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
        let table = toml::de::DeTable::parse(text).map_err(|e| {
            let line = e.span().map(|s| line_of(s.start)).unwrap_or(1);
            ConfigError(format!("{origin}:{line}: {}", e.message()))
        })?;
        let mut settings = Settings::default();
        for (key, value) in table.get_ref() {
            let line = line_of(key.span().start);
            let name = key.get_ref().as_ref();
            if !KEYS.iter().any(|(k, _)| *k == name) {
                let valid: Vec<&str> = KEYS.iter().map(|(k, _)| *k).collect();
                return Err(ConfigError(format!(
                    "{origin}:{line}: unknown key '{name}' (valid keys: {})",
                    valid.join(", ")
                )));
            }
            let toml::de::DeValue::String(s) = value.get_ref() else {
                return Err(ConfigError(format!(
                    "{origin}:{line}: key '{name}' must be a string"
                )));
            };
            settings
                .set(name, s)
                .map_err(|e| ConfigError(format!("{origin}:{line}: key '{name}': {e}")))?;
        }
        Ok(settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            "w.toml:3: unknown key 'bakend' (valid keys: backend, output)"
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
        assert_eq!(
            env(&[("WASMPROC_BAKEND", "wasm")]).unwrap_err().0,
            "environment variable WASMPROC_BAKEND: unknown setting \
             (valid: WASMPROC_BACKEND, WASMPROC_OUTPUT)"
        );
        let flag = Settings {
            backend: Some(BackendKind::Wasm),
            output: None,
        };
        let from_env = Settings {
            backend: Some(BackendKind::Native),
            output: Some(OutputMode::Prefix),
        };
        let file = Settings {
            backend: Some(BackendKind::Native),
            output: Some(OutputMode::Inherit),
        };
        let c = flag.or(from_env).or(file).apply(Config::default());
        assert_eq!(c.backend, BackendKind::Wasm);
        assert_eq!(c.output, OutputMode::Prefix);
        assert_eq!(
            Settings::default().apply(Config::default()).backend,
            BackendKind::Wasm
        );
    }
}
