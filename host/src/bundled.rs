//! Connectors compiled from `connectors/` by the build script and embedded in the binary, so
//! `--connector rest` works without a `.wasm` file on disk.

include!(concat!(env!("OUT_DIR"), "/bundled_connectors.rs"));

/// The component bytes of the bundled connector called `name`, if there is one.
pub fn get(name: &str) -> Option<&'static [u8]> {
    BUNDLED
        .iter()
        .find(|(bundled, _)| *bundled == name)
        .map(|(_, bytes)| *bytes)
}

/// Names of all bundled connectors, sorted.
pub fn names() -> impl Iterator<Item = &'static str> {
    BUNDLED.iter().map(|(name, _)| *name)
}
