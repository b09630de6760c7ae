//! `sluice new`: the generated connector crate, outside the repository, passes its own native
//! tests and builds to a component with the commands its README gives, and that component
//! syncs the mock API (fully, then incrementally), and the bundled demo API as the generated
//! `example.toml` says (`sluice demo --serve`). Bad names and existing directories are
//! refused without touching anything.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use sluice_tests::connection::Connection;
use sluice_tests::mock::MockApi;
use sluice_tests::{GUESTS_TARGET_DIR, SDK_DIR, dataset, wait};

use crate::{HANG_GUARD, Workspace, sluice};

/// Bound on each nested cargo command (a guard against a hang; the SDK's dependencies are
/// usually compiled already in the guests' target directory).
const CARGO_TIMEOUT: Duration = Duration::from_secs(900);

/// The generated crate's name; the component is `acme_widgets.wasm`.
const NAME: &str = "acme-widgets";

/// Bound on the whole life of the `sluice demo --serve` child (a guard against a hang: it
/// serves while the test checks and syncs twice, then is stopped with SIGTERM).
const DEMO_SERVE_GUARD: Duration = Duration::from_secs(600);

/// Runs `cargo ARGS` in `dir` with an environment cleaned of what `cargo test` set for this
/// process, in the guests' target directory (their compiled dependencies are reused). Returns
/// stdout and stderr, panicking with them on failure.
fn cargo(dir: &Path, args: &[&str]) -> (String, String) {
    let program = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(program);
    cmd.args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, _) in std::env::vars_os() {
        let Some(name) = name.to_str() else { continue };
        let inherited_build_setting = (name.starts_with("CARGO_") && name != "CARGO_HOME")
            || matches!(
                name,
                "CARGO"
                    | "RUSTFLAGS"
                    | "RUSTDOCFLAGS"
                    | "RUSTC"
                    | "RUSTC_WRAPPER"
                    | "RUSTC_WORKSPACE_WRAPPER"
            );
        if inherited_build_setting {
            cmd.env_remove(name);
        }
    }
    cmd.env("CARGO_TARGET_DIR", GUESTS_TARGET_DIR);
    // `tests/build.rs` builds the guests with `-D warnings` in CI: the generated crate must be
    // warning-free too, and the same flags keep the compiled dependencies reusable.
    let ci = std::env::var_os("CI")
        .is_some_and(|value| !matches!(value.to_str(), Some("" | "0" | "false")));
    if ci {
        cmd.env("RUSTFLAGS", "-D warnings");
    }

    let mut child = cmd.spawn().expect("start cargo");
    let stdout = child.stdout.take().expect("piped");
    let stderr = child.stderr.take().expect("piped");
    let stdout = std::thread::spawn(move || std::io::read_to_string(stdout).unwrap_or_default());
    let stderr = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());
    let finished = wait::until(CARGO_TIMEOUT, || !matches!(child.try_wait(), Ok(None)));
    if !finished {
        let _ = child.kill();
    }
    let status = child.wait().expect("wait for cargo");
    let (stdout, stderr) = (
        stdout.join().unwrap_or_default(),
        stderr.join().unwrap_or_default(),
    );
    let shown = format!("--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}");
    assert!(
        finished,
        "`cargo {}` did not finish in {CARGO_TIMEOUT:?}\n{shown}",
        args.join(" ")
    );
    assert!(
        status.success(),
        "`cargo {}` failed in the generated crate\n{shown}",
        args.join(" ")
    );
    (stdout, stderr)
}

/// `sluice new NAME --dir PARENT`, expected to succeed; returns the crate's directory.
fn scaffold(parent: &Path) -> PathBuf {
    let parent_arg = parent.display().to_string();
    let output = sluice().run(["new", NAME, "--dir", &parent_arg]);
    output.assert_success();
    let dir = parent.join(NAME);
    for step in [
        "cargo test --target host-tuple",
        "cargo build --release",
        "target/wasm32-wasip2/release/acme_widgets.wasm",
        "--config example.toml",
        "sluice demo --serve",
    ] {
        assert!(output.stdout.contains(step), "no `{step}` in\n{output}");
    }
    assert!(
        output.stdout.contains(&dir.display().to_string()),
        "{output}"
    );
    dir
}

#[test]
fn scaffolded_connector_tests_builds_and_syncs() {
    let ws = Workspace::new();
    let dir = scaffold(&ws.path().join("projects"));
    for file in [
        "Cargo.toml",
        "src/lib.rs",
        "src/tests.rs",
        "README.md",
        "example.toml",
        ".cargo/config.toml",
        "rust-toolchain.toml",
        ".gitignore",
    ] {
        assert!(dir.join(file).is_file(), "{file} was not generated");
    }
    // It depends on the SDK of this checkout, by absolute path.
    let manifest: toml::Table =
        toml::from_str(&std::fs::read_to_string(dir.join("Cargo.toml")).expect("Cargo.toml"))
            .expect("the generated Cargo.toml parses");
    let sdk = Path::new(SDK_DIR).canonicalize().expect("SDK_DIR exists");
    assert_eq!(
        manifest["dependencies"]["sluice-sdk"]["path"].as_str(),
        Some(sdk.to_str().expect("UTF-8 path")),
        "{manifest:#?}"
    );

    // The guests' lockfile pins the same versions, so nothing is resolved (or downloaded) anew
    // and their compiled dependencies are reused. A user's first build resolves its own.
    let lock = Path::new(SDK_DIR).join("../tests/guests/Cargo.lock");
    if lock.is_file() {
        std::fs::copy(&lock, dir.join("Cargo.lock")).expect("copy Cargo.lock");
    }

    // The README's two commands, exactly: native tests with the SDK's harness, then the
    // component (`.cargo/config.toml` selects wasm32-wasip2).
    let (tests, _) = cargo(&dir, &["test", "--target", "host-tuple"]);
    assert!(
        tests.contains("test result: ok. 4 passed; 0 failed"),
        "the generated tests did not all run and pass:\n{tests}"
    );
    cargo(&dir, &["build", "--release"]);
    let built = Path::new(GUESTS_TARGET_DIR).join("wasm32-wasip2/release/acme_widgets.wasm");
    assert!(built.is_file(), "{} was not built", built.display());
    // A private copy: another test may rebuild the shared target directory.
    let wasm = ws.path().join("acme_widgets.wasm");
    std::fs::copy(&built, &wasm).expect("copy the component");
    let wasm = wasm.display().to_string();

    let output = sluice().run(["spec", "--connector", &wasm]);
    output.assert_success();
    let spec: Value = output.json();
    assert_eq!(spec["name"], NAME, "{spec:#}");

    // The example connection file is valid as generated.
    let example = dir.join("example.toml").display().to_string();
    let output = sluice().run(["check", "--connector", &wasm, "--config", &example]);
    output.assert_success();
    assert!(output.stdout.contains("1 stream: items"), "{output}");

    // Against the mock's cursor-paginated endpoint (`/cursor/items`, `{"data", "next"}`).
    let mock = MockApi::start(40);
    let connection = Connection::new(json!({
        "base_url": mock.url("/cursor"),
        "page_size": 7,
    }))
    .allow_private_networks();
    let path = ws.write(&connection).display().to_string();
    sluice()
        .run(["check", "--connector", &wasm, "--config", &path])
        .assert_success();

    let first = ws.run(&wasm);
    let stream = first.stream("items");
    assert_eq!(stream.start, "fresh", "{first:?}");
    assert_eq!(stream.records, 40, "{first:?}");
    assert_eq!(stream.requests, 6, "5 full pages of 7, then 5: {first:?}");
    assert_eq!(ws.records("items"), dataset::records(40));
    let log = mock.requests();
    assert!(
        log.iter().all(|request| request.path == "/cursor/items"
            && request.query_param("limit") == Some("7")
            && request.query_param("since_id").is_none()),
        "{log:#?}"
    );

    // The next sync asks only for what is newer than the last record it wrote.
    mock.clear_log();
    let appended = mock.append(5);
    let second = ws.run(&wasm);
    let stream = second.stream("items");
    assert_eq!(stream.start, "incremental", "{second:?}");
    assert_eq!(stream.records, 5, "{second:?}");
    let log = mock.requests();
    assert_eq!(log.len(), 1, "{log:#?}");
    assert_eq!(log[0].query_param("since_id"), Some("40"), "{log:#?}");
    let written = ws.records("items");
    assert_eq!(
        dataset::ids(&written),
        (1..=40).chain(appended).collect::<Vec<_>>()
    );
    assert_eq!(written, dataset::records(45));

    syncs_the_demo_api(&wasm, &dir.join("example.toml"));
}

/// The generated component against `sluice demo --serve`, set up exactly as the generated
/// `example.toml` says: its `base_url` set to the printed URL and its `[network]` table
/// uncommented. The first sync reads every item, in pages; the second is incremental and
/// fetches nothing new. SIGTERM stops the demo API with exit status 0.
fn syncs_the_demo_api(wasm: &str, example: &Path) {
    let mut serve = sluice()
        .cmd(["demo", "--serve", "--port", "0"])
        .timeout(DEMO_SERVE_GUARD)
        .spawn();
    let first_line = serve.first_stdout_line(HANG_GUARD).unwrap_or_else(|| {
        panic!(
            "`sluice demo --serve` printed no line\n--- stdout ---\n{}\n--- stderr ---\n{}",
            serve.stdout_so_far(),
            serve.stderr_so_far()
        )
    });
    let base_url = first_line
        .strip_prefix("Demo API listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {first_line:?}"));
    assert!(
        base_url.starts_with("http://127.0.0.1:") && base_url.ends_with("/v1"),
        "{first_line:?}"
    );

    // The edits example.toml's comments describe, and nothing else.
    let generated = std::fs::read_to_string(example).expect("read example.toml");
    assert!(generated.contains("sluice demo --serve"), "{generated}");
    let default_url = r#"base_url = "https://api.example.com/v1""#;
    let network = "# [network]\n# allow_private_networks = true\n";
    for part in [default_url, network] {
        assert_eq!(
            generated.matches(part).count(),
            1,
            "example.toml no longer has {part:?} once:\n{generated}"
        );
    }
    let edited = generated
        .replace(default_url, &format!("base_url = {base_url:?}"))
        .replace(network, "[network]\nallow_private_networks = true\n");

    let ws = Workspace::new();
    let connection = ws.path().join("connection.toml");
    std::fs::write(&connection, &edited).expect("write the connection file");
    let connection = connection.display().to_string();
    let output = sluice().run(["check", "--connector", wasm, "--config", &connection]);
    output.assert_success();
    assert!(output.stdout.contains("1 stream: items"), "{output}");

    let output = ws.run_output(wasm);
    output.assert_success();
    // The demo's items have exactly the fields the generated record schema lists.
    let summary: Value = output.json();
    assert_eq!(
        summary["streams"][0]["schema_drift"],
        json!([]),
        "{summary:#}"
    );
    let first: sluice_tests::cli::RunSummary = output.json();
    let stream = first.stream("items");
    assert_eq!(stream.start, "fresh", "{first:?}");
    assert_eq!(stream.records, sluice_host::demo::ITEMS, "{first:?}");
    assert_eq!(stream.requests, 3, "pages of 100, 100 and 50: {first:?}");
    assert_eq!(stream.pages, 3, "{first:?}");
    let written = ws.records("items");
    assert_eq!(
        dataset::ids(&written),
        (1..=sluice_host::demo::ITEMS).collect::<Vec<_>>()
    );
    let expected: Vec<Value> = (1..=sluice_host::demo::ITEMS)
        .map(sluice_host::demo::item)
        .collect();
    assert_eq!(written, expected);

    // Nothing is new: one request after the saved cursor, no record, the output unchanged.
    let second = ws.run(wasm);
    let stream = second.stream("items");
    assert_eq!(stream.start, "incremental", "{second:?}");
    assert_eq!(stream.records, 0, "{second:?}");
    assert_eq!(stream.requests, 1, "{second:?}");
    assert_eq!(ws.records("items"), expected);

    assert!(serve.is_running(), "the demo API stopped by itself");
    serve.signal("TERM");
    let stopped = serve.wait();
    stopped.assert_success();
    assert!(stopped.stdout.starts_with(&first_line), "{stopped}");
    assert!(stopped.stdout.contains("Demo API stopped."), "{stopped}");
}

#[test]
fn scaffold_refuses_bad_names_existing_directories_and_wrong_sdks() {
    let ws = Workspace::new();
    let parent = ws.path().display().to_string();

    let taken = ws.path().join("taken");
    std::fs::create_dir(&taken).expect("create dir");
    std::fs::write(taken.join("notes.txt"), "mine").expect("write");
    let error = sluice()
        .run(["new", "taken", "--dir", &parent])
        .assert_error();
    assert!(
        error.contains("already exists") && error.contains("taken"),
        "{error}"
    );
    let left: Vec<_> = std::fs::read_dir(&taken)
        .expect("read dir")
        .map(|entry| entry.expect("entry").file_name())
        .collect();
    assert_eq!(left, ["notes.txt"], "the directory was touched");
    assert_eq!(
        std::fs::read_to_string(taken.join("notes.txt")).expect("read"),
        "mine"
    );

    for bad in ["Widgets", "my widgets", "9lives", "fn"] {
        let error = sluice().run(["new", bad, "--dir", &parent]).assert_error();
        assert!(
            error.contains("not a valid connector name"),
            "{bad:?}: {error}"
        );
        assert!(!ws.path().join(bad).exists(), "{bad:?} was created");
    }

    let not_sdk = ws.path().display().to_string();
    let error = sluice()
        .run(["new", "widgets", "--dir", &parent, "--sdk", &not_sdk])
        .assert_error();
    assert!(
        error.contains("is not the SDK") && error.contains("--sdk"),
        "{error}"
    );
    assert!(!ws.path().join("widgets").exists());

    // With --sdk-git the dependency is the repository (nothing is fetched by `sluice new`).
    sluice()
        .run([
            "new",
            "widgets",
            "--dir",
            &parent,
            "--sdk-git",
            "https://git.example.com/sluice.git",
        ])
        .assert_success();
    let manifest = std::fs::read_to_string(ws.path().join("widgets/Cargo.toml")).expect("read");
    assert!(
        manifest.contains(
            r#"sluice-sdk = { git = "https://git.example.com/sluice.git", package = "sluice-sdk" }"#
        ),
        "{manifest}"
    );
}
