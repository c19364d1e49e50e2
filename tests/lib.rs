//! The guest programs of the integration tests, built by `build.rs`: one `&str` constant
//! with the path of each program's `.wasm`, and a `foreach_<suite>!` macro per suite.

include!(concat!(env!("OUT_DIR"), "/programs.rs"));
