//! The `wit-bindgen` output for `wit/connector.wit`. Generated code only: the adapter
//! (`src/adapter.rs`) is the one place that uses it.
//!
//! It is public (and hidden) only because [`crate::export_connector!`] expands, in the
//! connector's crate, to the export macro generated here.

wit_bindgen::generate!({
    path: "../wit",
    world: "connector",
    pub_export_macro: true,
    export_macro_name: "__export_connector_world",
    default_bindings_module: "sluice_sdk::bindings",
});
