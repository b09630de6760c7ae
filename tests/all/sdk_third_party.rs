//! A third party writes a connector with the SDK in its own crate, outside this repository,
//! builds it with plain `cargo build --target wasm32-wasip2 --release`, and the host loads and
//! runs it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use sluice_tests::connection::Connection;
use sluice_tests::mock::MockApi;
use sluice_tests::{GUESTS_TARGET_DIR, SDK_DIR, dataset, wait};

use crate::{Workspace, sluice};

/// Bound on the nested `cargo build` (a guard against a hang; dependencies are usually already
/// compiled in the guests' target directory).
const BUILD_TIMEOUT: Duration = Duration::from_secs(900);

const LIB_RS: &str = r#"//! Widgets: a connector written by a third party against the published SDK.

use sluice_sdk::prelude::*;

/// Reads `/offset/items` of an API with limit/offset pages.
pub struct Widgets;

/// The operator's config.
#[derive(Deserialize)]
#[serde(crate = "sluice_sdk::serde", deny_unknown_fields)]
pub struct Config {
    base_url: String,
    page_size: u64,
}

fn pages(config: &Config) -> paginate::Offset {
    paginate::Offset::new("limit", "offset", config.page_size)
}

impl Connector for Widgets {
    type Config = Config;
    type State = ();

    fn spec() -> Spec {
        Spec::new("third-party-widgets", "1.2.3", "Widgets, from a crate outside the Sluice repository")
            .with_config_schema(json!({
                "type": "object",
                "required": ["base_url", "page_size"],
                "additionalProperties": false,
                "properties": {
                    "base_url": {"type": "string"},
                    "page_size": {"type": "integer", "minimum": 1}
                }
            }))
    }

    fn discover(config: &Config) -> Result<Catalog> {
        Ok(Catalog::new()
            .with_allowed_host(sluice_sdk::url::allowed_host(&config.base_url)?)
            .with_stream(StreamInfo::new("widgets").with_primary_key("/id")))
    }

    fn begin(config: &Config, _: &str, _: (), _: &RunContext) -> Result<Next> {
        let url = sluice_sdk::url::join(&config.base_url, "/offset/items");
        Ok(Next::Fetch(pages(config).first(Request::get(url))))
    }

    fn next_page(
        config: &Config,
        _: &str,
        _: (),
        _: &RunContext,
        request: &Request,
        response: &Response,
    ) -> Result<Page<()>> {
        let body = response.ok()?.json_value()?;
        let records = json::records_at(&body, "/data")?;
        let next = pages(config).next(&PageInfo::new(request, response, records.len()))?;
        let mut page = Page::new();
        for record in records {
            // Proof that this code ran: every record is tagged.
            let mut record = record.clone();
            record["widget"] = json!(true);
            page.push_value(&record)?;
        }
        Ok(page.with_next(next))
    }
}

sluice_sdk::export_connector!(Widgets);
"#;

/// Writes the crate and returns its directory.
fn write_crate(root: &Path) -> PathBuf {
    let dir = root.join("widgets-connector");
    std::fs::create_dir_all(dir.join("src")).expect("create crate");
    let sdk = Path::new(SDK_DIR);
    assert!(
        sdk.join("Cargo.toml").is_file(),
        "SDK_DIR {SDK_DIR} has no Cargo.toml"
    );
    let manifest = format!(
        r#"[package]
name = "widgets-connector"
version = "0.1.0"
edition = "2024"
publish = false

[lib]
crate-type = ["cdylib"]

[dependencies]
sluice-sdk = {{ path = {sdk:?} }}

# Its own workspace: it is nobody's member.
[workspace]

{profile}"#,
        sdk = sdk.display().to_string(),
        profile = guests_release_profile(),
    );
    std::fs::write(dir.join("Cargo.toml"), manifest).expect("write Cargo.toml");
    std::fs::write(dir.join("src/lib.rs"), LIB_RS).expect("write lib.rs");
    // Same versions as the guests, so that their compiled dependencies are reused and nothing
    // needs to be resolved anew.
    if let Some(lock) = guests_lockfile() {
        std::fs::copy(&lock, dir.join("Cargo.lock")).expect("copy Cargo.lock");
    }
    dir
}

/// The guests' workspace directory (`tests/guests`), next to the SDK.
fn guests_workspace() -> PathBuf {
    Path::new(SDK_DIR).join("../tests/guests")
}

fn guests_lockfile() -> Option<PathBuf> {
    let lock = guests_workspace().join("Cargo.lock");
    lock.is_file().then_some(lock)
}

/// The guests' `[profile.release]` section (same profile = reusable compiled dependencies).
fn guests_release_profile() -> String {
    let manifest =
        std::fs::read_to_string(guests_workspace().join("Cargo.toml")).unwrap_or_default();
    let mut section = String::new();
    let mut inside = false;
    for line in manifest.lines() {
        if line.trim_start().starts_with('[') {
            inside = line.trim() == "[profile.release]";
        }
        if inside {
            section.push_str(line);
            section.push('\n');
        }
    }
    section
}

/// `cargo build --target wasm32-wasip2 --release` of the crate in `dir`, with an environment
/// cleaned of what `cargo test` set for this process.
fn build(dir: &Path) -> PathBuf {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--release", "--target", "wasm32-wasip2", "--quiet"])
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
    // `tests/build.rs` builds the guests with `-D warnings` in CI; the same flags keep their
    // compiled dependencies reusable (a change of RUSTFLAGS rebuilds everything).
    let ci = std::env::var_os("CI")
        .is_some_and(|value| !matches!(value.to_str(), Some("" | "0" | "false")));
    if ci {
        cmd.env("RUSTFLAGS", "-D warnings");
    }

    let mut child = cmd.spawn().expect("start cargo");
    let stderr = child.stderr.take().expect("piped");
    let stderr = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());
    let finished = wait::until(BUILD_TIMEOUT, || !matches!(child.try_wait(), Ok(None)));
    if !finished {
        let _ = child.kill();
    }
    let status = child.wait().expect("wait for cargo");
    let stderr = stderr.join().unwrap_or_default();
    assert!(
        finished,
        "cargo build did not finish in {BUILD_TIMEOUT:?}\n{stderr}"
    );
    assert!(
        status.success(),
        "cargo build of the third-party connector failed\n{stderr}"
    );
    let wasm = Path::new(GUESTS_TARGET_DIR).join("wasm32-wasip2/release/widgets_connector.wasm");
    assert!(wasm.is_file(), "{} was not built", wasm.display());
    wasm
}

#[test]
fn sdk_third_party_connector() {
    let ws = Workspace::new();
    let dir = write_crate(ws.path());
    let built = build(&dir);
    // Keep a private copy: the shared target directory may be rebuilt by another run.
    let wasm = ws.path().join("widgets.wasm");
    std::fs::copy(&built, &wasm).expect("copy the component");
    let wasm = wasm.display().to_string();

    let output = sluice().run(["spec", "--connector", &wasm]);
    output.assert_success();
    let spec: Value = output.json();
    assert_eq!(spec["name"], "third-party-widgets", "{spec:#}");
    assert_eq!(spec["version"], "1.2.3", "{spec:#}");

    let mock = MockApi::start(40);
    let connection = Connection::new(json!({ "base_url": mock.base_url(), "page_size": 7 }))
        .allow_private_networks();
    ws.write(&connection);
    let summary = ws.run(&wasm);
    let stream = summary.stream("widgets");
    assert_eq!(stream.records, 40, "{summary:?}");
    assert_eq!(
        stream.requests, 6,
        "5 full pages of 7 and a short one: {summary:?}"
    );
    let written = ws.records("widgets");
    assert_eq!(dataset::ids(&written), (1..=40).collect::<Vec<_>>());
    for (record, id) in written.iter().zip(1..) {
        let mut expected = dataset::record(id);
        expected["widget"] = json!(true);
        assert_eq!(record, &expected);
    }

    // The host validates its config against the schema the third party declared.
    let bad = Connection::new(json!({ "base_url": mock.base_url(), "page_size": 0 }))
        .allow_private_networks();
    ws.write(&bad);
    let output = ws.run_output(&wasm);
    let error = output.assert_error();
    assert!(
        error.contains("invalid") && error.contains("/page_size"),
        "{output}"
    );
}
