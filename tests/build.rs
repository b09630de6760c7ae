//! Builds the hostile guests (`tests/guests/`, a separate cargo workspace) as wasm32-wasip2
//! components and writes `$OUT_DIR/guests.rs`, which `src/lib.rs` includes:
//!
//! - `pub const <NAME>_COMPONENT: &str`: the absolute path of each component (e.g.
//!   `HOSTILE_ILOOP_COMPONENT` for `hostile_iloop.wasm`);
//! - `GUESTS_TARGET_DIR`: the nested target directory, so a test that builds another guest can
//!   reuse its compiled dependencies;
//! - `SDK_DIR`: the absolute path of `guest-sdk/`;
//! - `foreach_hostile!`: calls a macro once per guest name.

use std::fmt::Write as _;
use std::path::PathBuf;

include!("../host/build/guests.rs");

fn main() {
    let manifest_dir = PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    );
    let repo = manifest_dir
        .parent()
        .expect("tests/ lives inside the repository")
        .to_path_buf();
    let guests = build_guest_workspace(&repo, &manifest_dir.join("guests"), "guests");

    let mut code = String::new();
    for (name, path) in &guests.components {
        writeln!(
            code,
            "/// Absolute path of the `{name}` component (`tests/guests/{name}`).\n\
             pub const {}_COMPONENT: &str = {:?};",
            name.to_uppercase(),
            path.display().to_string(),
        )
        .expect("writing to a String");
    }
    writeln!(
        code,
        "/// The target directory the guests were built in; reuse it to build more guests fast.\n\
         pub const GUESTS_TARGET_DIR: &str = {:?};\n\
         /// Absolute path of the guest SDK crate (`guest-sdk/`).\n\
         pub const SDK_DIR: &str = {:?};",
        guests.target_dir.display().to_string(),
        repo.join("guest-sdk").display().to_string(),
    )
    .expect("writing to a String");
    code.push_str(
        "/// Calls `$mac!(name)` once per hostile guest, e.g. to check each has a test.\n\
         #[macro_export]\n\
         macro_rules! foreach_hostile {\n    ($mac:ident) => {\n",
    );
    for (name, _) in &guests.components {
        writeln!(code, "        $mac!({name});").expect("writing to a String");
    }
    code.push_str("    };\n}\n");

    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::write(out_dir.join("guests.rs"), code).expect("cannot write guests.rs");
}
