//! The data of one process's `Store`.

use crate::exit::LimitHit;
use crate::model::ProcessCtx;
use std::sync::Arc;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

/// Enforces the memory limit of one process (wasmtime's `ResourceLimiter`).
pub(crate) struct MemoryLimiter {
    pub limit: u64,
    pub hit: Option<LimitHit>,
}

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired as u64 > self.limit {
            let hit = LimitHit::Memory(self.limit);
            self.hit = Some(hit);
            return Err(wasmtime::Error::new(hit));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Tables hold function references; a million is far beyond any real program.
        Ok(desired <= 1 << 20)
    }
}

/// The data of one process's `Store`.
pub(crate) struct ProcState {
    pub wasi: WasiCtx,
    pub table: ResourceTable,
    pub limiter: MemoryLimiter,
    /// Scheduler ticks this process has run for (its CPU time, in ticks).
    pub ticks: u64,
    /// The process's model context; none only while a program is inspected at load time.
    pub ctx: Option<Arc<ProcessCtx>>,
}

impl ProcState {
    /// The state of a store that runs no process: one that lists a program's targets, or
    /// instantiates it ahead of time.
    pub fn scratch() -> ProcState {
        ProcState {
            wasi: WasiCtxBuilder::new().build(),
            table: ResourceTable::new(),
            limiter: MemoryLimiter {
                limit: u64::MAX,
                hit: None,
            },
            ticks: 0,
            ctx: None,
        }
    }
}

impl WasiView for ProcState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}
