//! The integration tests: one binary, one shared host per backend, every guest program of
//! `tests/programs` run through it.

mod harness;
mod library;
mod process;
