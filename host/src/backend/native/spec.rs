//! What a native child is told ([`ChildSpec`]), and how it travels: its length (4 bytes,
//! little-endian) and its postcard encoding.

use crate::config::{Grants, Limits, OutputMode};
use crate::error::ProcessError;
use serde::{Deserialize, Serialize};
use std::os::fd::RawFd;
use std::path::PathBuf;

/// What a native child is told on its stdin (or in its request to the fork server).
#[derive(Serialize, Deserialize)]
pub(super) struct ChildSpec {
    pub artifact: PathBuf,
    pub display_name: String,
    pub targets: Vec<String>,
    pub target: String,
    pub args: Vec<u8>,
    pub name: String,
    pub daemon: bool,
    pub identity: Vec<u32>,
    pub parent_name: String,
    pub parent_pid: u64,
    pub parent_daemon: bool,
    pub authkey: [u8; 32],
    pub output: OutputMode,
    /// The limits and grants the child runs under (its own, no more than its host's).
    pub limits: Limits,
    pub grants: Grants,
    /// The `memory` limit the host's engine was configured with (its memory reservation,
    /// which the compiled program the child maps was made for).
    pub engine_memory: u64,
    pub epoch_tick_ms: u64,
    pub run_dir: PathBuf,
    pub capture_dir: Option<PathBuf>,
    pub lifeline_fd: RawFd,
    pub parent_fd: RawFd,
    pub slot_fd: RawFd,
    pub exe: PathBuf,
    /// The token of the sync objects the parent shared (0: none).
    pub sync_token: u64,
    /// The other programs the host allows, compiled, for this process's own children.
    pub programs: Vec<AllowedProgram>,
}

/// An allowed program as a native child receives it: compiled, by artifact.
#[derive(Serialize, Deserialize)]
pub(super) struct AllowedProgram {
    pub name: String,
    pub artifact: PathBuf,
    pub display_name: String,
    pub targets: Vec<String>,
}

impl ChildSpec {
    /// The description as it travels.
    pub fn encode(&self) -> Result<Vec<u8>, ProcessError> {
        let failure = |what: &str, e: &dyn std::fmt::Display| {
            ProcessError::host_failure(format!("cannot start a native process: {what}: {e}"))
        };
        let encoded = postcard::to_allocvec(self).map_err(|e| failure("encoding", &e))?;
        let len = u32::try_from(encoded.len()).map_err(|e| failure("description size", &e))?;
        let mut bytes = len.to_le_bytes().to_vec();
        bytes.extend_from_slice(&encoded);
        Ok(bytes)
    }

    /// Decodes a child's description; `None` when it is cut short.
    pub fn decode(bytes: &[u8]) -> anyhow::Result<Option<ChildSpec>> {
        use anyhow::Context;
        let declared = bytes
            .get(..4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize);
        if declared.is_none_or(|n| bytes.len() < 4 + n) {
            return Ok(None);
        }
        let spec =
            postcard::from_bytes(&bytes[4..]).context("failed to decode the child description")?;
        Ok(Some(spec))
    }

    /// The configuration the child's host and engine run with (the child's own limits but
    /// for `memory`, which is the host engine's; the process's own are
    /// [`ChildSpec::limits`]).
    pub fn config(&self) -> crate::Config {
        crate::Config {
            backend: crate::BackendKind::Native,
            output: self.output,
            limits: Limits {
                memory: self.engine_memory,
                ..self.limits.clone()
            },
            grants: self.grants.clone(),
            epoch_tick_ms: self.epoch_tick_ms,
            native_exe: Some(self.exe.clone()),
            hooks: crate::hooks::child_hooks(),
            ..crate::Config::default()
        }
    }
}
