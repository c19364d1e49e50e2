//! Host-side bindings of `wit/process.wit`, the only host/guest ABI. Its `error-kind` is
//! the host's [`crate::ErrorKind`]: one encoding for the guest, the native backend's wire
//! (serde) and the library.

wasmtime::component::bindgen!({
    path: "../wit",
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
    additional_derives: [Hash, serde::Serialize, serde::Deserialize],
});
