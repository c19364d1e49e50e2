//! Host-side bindings of `wit/process.wit`, the only host/guest ABI. Its `error-kind` and
//! `lock-kind` are translated to the host's own types in one place each (`host/mod.rs`,
//! `host/sync.rs`); the native backend's wire carries the host's types (serde).

wasmtime::component::bindgen!({
    path: "wit",
    world: "program",
    imports: {
        "wasmproc:process/process.create": async | trappable,
        "wasmproc:process/process.join": async | trappable,
        "wasmproc:process/sync.queue-try-put": trappable,
        "wasmproc:process/sync.queue-try-get": trappable,
        "wasmproc:process/sync.queue-try-put-small": trappable,
        "wasmproc:process/sync.queue-try-get-small": trappable,
        "wasmproc:process/sync": async | trappable,
        "wasmproc:process/process.wait": async | trappable,
        default: trappable,
    },
    exports: { default: async },
});
