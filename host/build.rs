//! Builds the bundled connectors (`connectors/`, a separate cargo workspace) as wasm32-wasip2
//! components and embeds them: `$OUT_DIR/bundled_connectors.rs` defines
//! `pub const BUNDLED: &[(&str, &[u8])]`, included by `src/bundled.rs`. Also sets
//! `SLUICE_CONNECTORS_DIR` to the directory holding the `.wasm` files.

use std::fmt::Write as _;
use std::path::PathBuf;

include!("build/guests.rs");

fn main() {
    let manifest_dir = PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    );
    let repo = manifest_dir
        .parent()
        .expect("host/ lives inside the repository")
        .to_path_buf();
    let connectors = build_guest_workspace(&repo, &repo.join("connectors"), "connectors");

    let mut code = String::from(
        "/// The connectors compiled from `connectors/`: `(name, component bytes)`, sorted by name.\n\
         pub const BUNDLED: &[(&str, &[u8])] = &[\n",
    );
    for (name, path) in &connectors.components {
        writeln!(code, "    ({name:?}, include_bytes!({path:?})),").expect("writing to a String");
    }
    code.push_str("];\n");
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::write(out_dir.join("bundled_connectors.rs"), code)
        .expect("cannot write bundled_connectors.rs");
    println!(
        "cargo:rustc-env=SLUICE_CONNECTORS_DIR={}",
        connectors
            .target_dir
            .join(GUEST_TARGET)
            .join("release")
            .display()
    );
}
