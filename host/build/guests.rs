// Building guest workspaces (cargo workspaces of connectors compiled to wasm32-wasip2
// components) from a build script. `include!`d by `host/build.rs` (the bundled connectors) and
// `tests/build.rs` (the hostile guests), following wasmtime's
// `crates/test-programs/artifacts/build.rs`:
//
// - the nested cargo gets its own target directory under `OUT_DIR`: sharing the outer one
//   deadlocks on the build-directory lock;
// - flags, wrappers and target settings meant for the outer build are removed from its
//   environment, and `--target` is passed explicitly (cargo reads `.cargo/config.toml` from the
//   working directory, not from `--manifest-path`);
// - `-D warnings` is passed on when `CI` is set, as the outer CI build denies warnings too;
// - `rerun-if-changed` covers the guest sources and manifests, the SDK and the WIT contract, so a
//   no-op rebuild does not even start the nested cargo.
//
// It is a plain file of items rather than a crate so that neither build script needs
// build-dependencies.

/// The Rust target guests are built for.
const GUEST_TARGET: &str = "wasm32-wasip2";

/// Environment variables of the outer build that must not reach the nested one.
const OUTER_BUILD_ENV: &[&str] = &[
    "CARGO_ENCODED_RUSTFLAGS",
    "RUSTFLAGS",
    "CARGO_BUILD_RUSTFLAGS",
    "RUSTC_WRAPPER",
    "RUSTC_WORKSPACE_WRAPPER",
    "CARGO_BUILD_RUSTC_WRAPPER",
    "CARGO_BUILD_RUSTC_WORKSPACE_WRAPPER",
    "CLIPPY_ARGS",
    "CLIPPY_CONF_DIR",
    "CARGO_BUILD_TARGET",
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET_DIR",
    "CARGO_BUILD_BUILD_DIR",
];

/// The components of one guest workspace, built.
struct GuestBuild {
    /// The nested `CARGO_TARGET_DIR` (reusable for building more guests with the same deps).
    target_dir: std::path::PathBuf,
    /// `(name, absolute path)` of each component, sorted by name; the name is the file stem,
    /// i.e. the crate's `[lib] name`.
    components: Vec<(String, std::path::PathBuf)>,
}

/// Build the guest workspace at `workspace` (release, `wasm32-wasip2`) into
/// `$OUT_DIR/<target_subdir>`, and tell cargo when to do it again. `repo` is the repository root
/// (it holds `guest-sdk/` and `wit/`).
fn build_guest_workspace(
    repo: &std::path::Path,
    workspace: &std::path::Path,
    target_subdir: &str,
) -> GuestBuild {
    use std::process::Command;

    watch_guest_inputs(repo, workspace);
    ensure_guest_target_installed();

    let out_dir = std::path::PathBuf::from(
        std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR for build scripts"),
    );
    let target_dir = out_dir.join(target_subdir);
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(workspace)
        .args([
            "build",
            "--release",
            "--locked",
            "--message-format=json-render-diagnostics",
        ])
        .args(["--target", GUEST_TARGET])
        .arg("--manifest-path")
        .arg(workspace.join("Cargo.toml"));
    for name in OUTER_BUILD_ENV {
        command.env_remove(name);
    }
    command.env("CARGO_TARGET_DIR", &target_dir);
    if ci() {
        command.env("RUSTFLAGS", "-D warnings");
    }
    eprintln!("running: {command:?}");
    let output = command.output().unwrap_or_else(|error| {
        panic!(
            "cannot run cargo to build the guests in {}: {error}",
            workspace.display()
        )
    });
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!("{stderr}");
    if !output.status.success() {
        panic!(
            "building the guests in {} failed ({}); cargo said:\n{stderr}",
            workspace.display(),
            output.status
        );
    }

    let mut components: Vec<(String, std::path::PathBuf)> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|line| line.contains("\"reason\":\"compiler-artifact\""))
        .flat_map(artifact_filenames)
        .filter(|path| path.extension().is_some_and(|ext| ext == "wasm"))
        .filter_map(|path| {
            let name = path.file_stem()?.to_str()?.to_owned();
            Some((name, path))
        })
        .collect();
    components.sort();
    components.dedup();
    assert!(
        !components.is_empty(),
        "building {} produced no .wasm component; are its members `crate-type = [\"cdylib\"]`?",
        workspace.display()
    );
    for (_, path) in &components {
        assert!(
            path.is_file(),
            "cargo reported {} but it does not exist",
            path.display()
        );
    }
    GuestBuild {
        target_dir,
        components,
    }
}

/// Whether the build runs in CI (`CI` set to anything but empty, `0` or `false`).
fn ci() -> bool {
    std::env::var_os("CI").is_some_and(|value| !matches!(value.to_str(), Some("" | "0" | "false")))
}

/// `rerun-if-changed` for everything a guest build reads from this repository.
fn watch_guest_inputs(repo: &std::path::Path, workspace: &std::path::Path) {
    println!("cargo:rerun-if-env-changed=CI");
    let mut watched = vec![
        repo.join("Cargo.toml"),
        repo.join("wit"),
        repo.join("guest-sdk").join("Cargo.toml"),
        repo.join("guest-sdk").join("src"),
        workspace.join("Cargo.toml"),
        workspace.join("Cargo.lock"),
        workspace.join(".cargo").join("config.toml"),
    ];
    let members = std::fs::read_dir(workspace)
        .unwrap_or_else(|error| panic!("cannot list {}: {error}", workspace.display()));
    for member in members.flatten() {
        let dir = member.path();
        if dir.join("Cargo.toml").is_file() {
            watched.push(dir.join("Cargo.toml"));
            watched.push(dir.join("src"));
            watched.push(dir.join("build.rs"));
        }
    }
    // Cargo scans a directory recursively. A path that does not exist would count as changed on
    // every build, so only existing ones are watched; a new member changes the workspace's
    // `Cargo.toml` anyway.
    for path in watched.iter().filter(|path| path.exists()) {
        println!("cargo:rerun-if-changed={}", path.display());
    }
}

/// Make sure the standard library for `wasm32-wasip2` is installed for the active toolchain.
fn ensure_guest_target_installed() {
    use std::process::Command;

    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let sysroot = Command::new(&rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned());
    if let Some(sysroot) = &sysroot {
        let target_lib = std::path::Path::new(sysroot)
            .join("lib")
            .join("rustlib")
            .join(GUEST_TARGET)
            .join("lib");
        if target_lib.is_dir() {
            return;
        }
    }

    let toolchain = std::env::var_os("RUSTUP_TOOLCHAIN");
    let rustup = |args: &[&str]| {
        let mut command = Command::new("rustup");
        command.args(args);
        if let Some(toolchain) = &toolchain {
            command.arg("--toolchain").arg(toolchain);
        }
        command.output()
    };
    let fail = |why: String| -> ! {
        panic!(
            "the {GUEST_TARGET} target is not installed for this toolchain ({why}); \
             run `rustup target add {GUEST_TARGET}` and build again"
        )
    };
    let installed = match rustup(&["target", "list", "--installed"]) {
        Ok(output) if output.status.success() => String::from_utf8_lossy(&output.stdout)
            .lines()
            .any(|line| line.trim() == GUEST_TARGET),
        Ok(output) => fail(format!(
            "`rustup target list --installed` failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )),
        Err(error) => fail(format!("cannot run rustup: {error}")),
    };
    if installed {
        return;
    }
    println!("cargo:warning=installing the {GUEST_TARGET} target with rustup");
    match rustup(&["target", "add", GUEST_TARGET]) {
        Ok(output) if output.status.success() => {}
        Ok(output) => fail(format!(
            "`rustup target add {GUEST_TARGET}` failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )),
        Err(error) => fail(format!("cannot run rustup: {error}")),
    }
}

/// The `filenames` of one `compiler-artifact` message of `cargo --message-format=json`.
///
/// A minimal reader for that one array of strings, so the build scripts need no JSON crate.
fn artifact_filenames(line: &str) -> Vec<std::path::PathBuf> {
    let Some(start) = line.find("\"filenames\":[") else {
        return Vec::new();
    };
    let mut rest = &line[start + "\"filenames\":[".len()..];
    let mut paths = Vec::new();
    while let Some(after_quote) = rest.strip_prefix('"') {
        let mut path = String::new();
        let mut chars = after_quote.char_indices();
        let mut end = after_quote.len();
        while let Some((at, c)) = chars.next() {
            match c {
                '"' => {
                    end = at + 1;
                    break;
                }
                '\\' => match chars.next() {
                    Some((_, 'n')) => path.push('\n'),
                    Some((_, 't')) => path.push('\t'),
                    Some((_, escaped)) => path.push(escaped),
                    None => {}
                },
                other => path.push(other),
            }
        }
        paths.push(std::path::PathBuf::from(path));
        rest = after_quote[end..].trim_start_matches(',');
    }
    paths
}
