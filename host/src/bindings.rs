//! The generated wasmtime bindings for the `sluice:connector` world. No logic lives here.

wasmtime::component::bindgen!({
    world: "connector",
    path: "../wit",
    imports: { default: async | trappable },
    exports: { default: async },
});

pub use sluice::connector::{log, types};
