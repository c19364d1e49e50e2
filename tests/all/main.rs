//! The integration tests: one binary, one shared host per backend, every guest program of
//! `tests/programs` run through it. Declared in `host/Cargo.toml` (so that cargo builds the
//! `wasmproc` binary for it); the `wasmproc-tests` crate builds the guest programs.

mod build;
mod cli;
mod fuzz;
mod harness;
mod hostile;
mod library;
mod pool;
mod process;
mod programs;
mod python;
mod sync;
