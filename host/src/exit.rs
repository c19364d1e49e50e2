//! Exit statuses: the one place where exit-code rules live.

use std::fmt;

/// A signal that ended a process. Under the `wasm` backend these are emulated: the
/// process is stopped at once, also while blocked in a host call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Signal {
    /// `terminate()`: SIGTERM, exit code -15.
    Term,
    /// `kill()`: SIGKILL, exit code -9.
    Kill,
    /// Any other signal that ended a native process (for example SIGSEGV).
    Other(i32),
}

impl Signal {
    /// The POSIX signal number.
    pub fn number(self) -> i32 {
        match self {
            Signal::Term => 15,
            Signal::Kill => 9,
            Signal::Other(n) => n,
        }
    }

    /// The POSIX name, as CPython prints it.
    pub fn name(self) -> &'static str {
        match self {
            Signal::Term => "SIGTERM",
            Signal::Kill => "SIGKILL",
            Signal::Other(_) => "signal",
        }
    }
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum ExitStatus {
    /// It ended by itself with this code: 0 when its function returned, n for `exit(n)`
    /// (modulo 256), 1 for a panic or a trap.
    Code(u8),
    /// It was ended by a signal.
    Signaled(Signal),
}

impl ExitStatus {
    /// The status of a process whose function returned.
    pub const SUCCESS: ExitStatus = ExitStatus::Code(0);
    /// The status of a process that panicked or trapped.
    pub const FAILURE: ExitStatus = ExitStatus::Code(1);

    /// The status for a guest's `exit(code)`: the low eight bits, as a POSIX OS keeps them.
    pub fn from_exit_call(code: i32) -> ExitStatus {
        ExitStatus::Code((code & 0xff) as u8)
    }

    /// Python's `exitcode`: the code, or minus the signal number.
    pub fn exitcode(self) -> i32 {
        match self {
            ExitStatus::Code(c) => i32::from(c),
            ExitStatus::Signaled(s) => -s.number(),
        }
    }

    /// The status a shell reports: the code, or 128 plus the signal number.
    pub fn shell_code(self) -> i32 {
        match self {
            ExitStatus::Code(c) => i32::from(c),
            ExitStatus::Signaled(s) => 128 + s.number(),
        }
    }

    /// Whether the process ended with code 0.
    pub fn success(self) -> bool {
        self == ExitStatus::SUCCESS
    }
}

impl Signal {
    /// The signal with POSIX number `n`.
    pub fn from_number(n: i32) -> Signal {
        match n {
            15 => Signal::Term,
            9 => Signal::Kill,
            n => Signal::Other(n),
        }
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitStatus::Code(c) => write!(f, "exit code {c}"),
            ExitStatus::Signaled(s) => write!(f, "signal {} ({})", s.number(), s.name()),
        }
    }
}

/// The error a host call returns to end the calling guest with a given status (the
/// guest's `exit`), distinguished from a trap by downcasting.
#[derive(Debug, Clone, Copy)]
pub(crate) struct GuestExit(pub ExitStatus);

impl fmt::Display for GuestExit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "process exited with {}", self.0)
    }
}

impl std::error::Error for GuestExit {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_posix_and_python() {
        assert_eq!(ExitStatus::from_exit_call(3).exitcode(), 3);
        assert_eq!(ExitStatus::from_exit_call(300).exitcode(), 44);
        assert_eq!(ExitStatus::from_exit_call(-1).exitcode(), 255);
        assert_eq!(ExitStatus::Signaled(Signal::Term).exitcode(), -15);
        assert_eq!(ExitStatus::Signaled(Signal::Kill).exitcode(), -9);
        assert_eq!(ExitStatus::Signaled(Signal::Term).shell_code(), 143);
        assert_eq!(ExitStatus::Signaled(Signal::Kill).shell_code(), 137);
        assert_eq!(ExitStatus::Code(7).shell_code(), 7);
    }
}

/// A limit a process went beyond, which ended it with exit code [`crate::LIMIT_EXIT_CODE`]
/// and one line on its stderr (its `Display`); with the limit's value.
/// [`crate::Process::limit_hit`] tells it apart from a process that called `exit(124)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum LimitHit {
    /// Linear memory, in bytes.
    Memory(u64),
    /// CPU time, in milliseconds.
    Cpu(u64),
    /// Wall time, in milliseconds.
    Wall(u64),
    /// Wall time of the whole run, in milliseconds (the main process's limit).
    Run(u64),
    /// Captured output per stream, in bytes.
    Output(u64),
}

impl fmt::Display for LimitHit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LimitHit::Memory(n) => write!(f, "limit memory = {n} bytes exceeded"),
            LimitHit::Cpu(n) => write!(f, "limit cpu_ms = {n} exceeded"),
            LimitHit::Wall(n) => write!(f, "limit wall_ms = {n} exceeded"),
            LimitHit::Run(n) => write!(f, "limit run_ms = {n} exceeded"),
            LimitHit::Output(n) => write!(f, "limit output = {n} bytes exceeded"),
        }
    }
}

impl std::error::Error for LimitHit {}

impl LimitHit {
    /// The limit's key, as in `[limits]` (`memory`, `cpu_ms`, `wall_ms`, `run_ms`,
    /// `output`).
    pub fn key(self) -> &'static str {
        match self {
            LimitHit::Memory(_) => "memory",
            LimitHit::Cpu(_) => "cpu_ms",
            LimitHit::Wall(_) => "wall_ms",
            LimitHit::Run(_) => "run_ms",
            LimitHit::Output(_) => "output",
        }
    }

    /// The limit's value (bytes or milliseconds).
    pub fn value(self) -> u64 {
        match self {
            LimitHit::Memory(n)
            | LimitHit::Cpu(n)
            | LimitHit::Wall(n)
            | LimitHit::Run(n)
            | LimitHit::Output(n) => n,
        }
    }

    /// `key value`, as a native child reports it to its parent ([`LimitHit::parse`]).
    pub(crate) fn to_record(self) -> String {
        format!("{} {}", self.key(), self.value())
    }

    /// The limit of a [`LimitHit::to_record`] line; `None` for anything else.
    pub(crate) fn parse(record: &str) -> Option<LimitHit> {
        let (key, value) = record.trim().split_once(' ')?;
        let n = value.parse().ok()?;
        Some(match key {
            "memory" => LimitHit::Memory(n),
            "cpu_ms" => LimitHit::Cpu(n),
            "wall_ms" => LimitHit::Wall(n),
            "run_ms" => LimitHit::Run(n),
            "output" => LimitHit::Output(n),
            _ => return None,
        })
    }
}
