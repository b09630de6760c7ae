//! Bad inputs give one clear `error:` line and a non-zero exit, never a panic: components that
//! are truncated, garbage or core modules; a missing connection file; a config that fails the
//! connector's schema.

use std::path::Path;

use serde_json::json;
use sluice_tests::connection::{Connection, Style, rest_connection, rest_stream};
use sluice_tests::mock::MockApi;

use crate::{Workspace, sluice};

/// `spec`, `check` and `run` all refuse a bad component with its path and the word `component`.
fn assert_bad_component(ws: &Workspace, file: &Path) {
    let path = file.display().to_string();
    let mock = MockApi::start(5);
    let connection = ws.write(&rest_connection(
        &mock,
        vec![rest_stream("items", Style::None, 10)],
    ));
    let connection = connection.display().to_string();
    let commands: [Vec<&str>; 3] = [
        vec!["spec", "--connector", &path],
        vec!["check", "--connector", &path, "--config", &connection],
        vec!["discover", "--connector", &path, "--config", &connection],
    ];
    for args in commands {
        let output = sluice().run(&args);
        let error = output.assert_error();
        assert!(
            error.contains(&path) && error.contains("component"),
            "{args:?}: the error must name the file and say it is not a component\n{output}"
        );
    }
    let output = sluice().cmd(ws.run_args(&path)).output();
    let error = output.assert_error();
    assert!(
        error.contains(&path) && error.contains("component"),
        "{output}"
    );
    assert_eq!(mock.request_count(), 0);
}

fn write(ws: &Workspace, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let file = ws.path().join(name);
    std::fs::write(&file, bytes).expect("write component file");
    file
}

#[test]
fn truncated_component() {
    let rest = sluice_host::bundled::get("rest").expect("`rest` is bundled");
    // The untruncated copy loads, so what fails below is the truncation.
    let ws = Workspace::new();
    let whole = write(&ws, "rest-whole.wasm", rest);
    let output = sluice().run(["spec", "--connector", &whole.display().to_string()]);
    output.assert_success();
    assert_eq!(output.json::<serde_json::Value>()["name"], "rest");

    for cut in [rest.len() / 2, rest.len() - 1, 9] {
        let file = write(&ws, &format!("rest-truncated-{cut}.wasm"), &rest[..cut]);
        assert_bad_component(&ws, &file);
    }
}

#[test]
fn garbage_component() {
    let ws = Workspace::new();
    let file = write(
        &ws,
        "garbage.wasm",
        b"this is not WebAssembly at all\n\x00\xff\xfe",
    );
    assert_bad_component(&ws, &file);
    let empty = write(&ws, "empty.wasm", b"");
    assert_bad_component(&ws, &empty);
}

#[test]
fn core_module_is_not_a_component() {
    let ws = Workspace::new();
    let file = write(&ws, "core.wasm", b"\0asm\x01\0\0\0");
    assert_bad_component(&ws, &file);
}

#[test]
fn missing_component_file() {
    let ws = Workspace::new();
    let path = ws.path().join("no-such-connector.wasm");
    let output = sluice().run(["spec", "--connector", &path.display().to_string()]);
    let error = output.assert_error();
    assert!(error.contains(&path.display().to_string()), "{output}");
}

#[test]
fn missing_connection_file() {
    let ws = Workspace::new();
    let missing = ws.path().join("nope").join("connection.toml");
    let missing_str = missing.display().to_string();
    for command in ["check", "discover"] {
        let output = sluice().run([command, "--connector", "rest", "--config", &missing_str]);
        let error = output.assert_error();
        assert!(
            error.contains(&missing_str) && error.contains("cannot read"),
            "{command}\n{output}"
        );
    }
    let output = sluice().cmd(ws.run_args("rest")).output();
    let error = output.assert_error();
    assert!(
        error.contains("cannot read") && error.contains("connection.toml"),
        "{output}"
    );
}

#[test]
fn connection_file_that_is_not_toml() {
    let ws = Workspace::new();
    let file = ws.path().join("connection.toml");
    std::fs::write(&file, "[config\nbase_url = ").expect("write");
    let output = sluice().run([
        "check",
        "--connector",
        "rest",
        "--config",
        &file.display().to_string(),
    ]);
    let error = output.assert_error();
    assert!(error.contains(&file.display().to_string()), "{output}");
}

/// A config that fails the connector's JSON schema: `check` and `run` say `invalid` and name the
/// JSON path of the bad field, and nothing is sent.
#[test]
fn config_failing_the_schema() {
    let mock = MockApi::start(5);
    let mut bogus_pagination = rest_stream("items", Style::Offset, 10);
    bogus_pagination["pagination"]["type"] = json!("bogus");
    let cases = [
        (
            "bogus pagination type",
            json!({ "base_url": mock.base_url(), "streams": [bogus_pagination] }),
            // The pagination styles are a `oneOf`: the path names the table whose `type` is bad.
            "/streams/0/pagination",
        ),
        (
            "missing base_url",
            json!({ "streams": [rest_stream("items", Style::Offset, 10)] }),
            "base_url",
        ),
        (
            "a query parameter that is an object",
            json!({
                "base_url": mock.base_url(),
                "streams": [{
                    "name": "items", "path": "/offset/items", "records": "/data",
                    "params": { "limit": { "nested": 1 } },
                }],
            }),
            "/streams/0/params/limit",
        ),
    ];
    for (what, config, field) in cases {
        let ws = Workspace::new();
        let file = ws.write(&Connection::new(config).allow_private_networks());
        let file = file.display().to_string();
        let check = sluice().run(["check", "--connector", "rest", "--config", &file]);
        let run = ws.run_output("rest");
        for output in [check, run] {
            let error = output.assert_error();
            assert!(
                error.contains("invalid") && error.contains(field),
                "{what}: the error must say `invalid` and name `{field}`\n{output}"
            );
        }
    }
    assert_eq!(mock.request_count(), 0);
}

#[test]
fn unknown_bundled_connector_name() {
    let output = sluice().run(["spec", "--connector", "no-such-connector"]);
    let error = output.assert_error();
    assert!(error.contains("no-such-connector"), "{output}");
    assert!(
        error.contains("rest"),
        "the error lists the bundled connectors\n{output}"
    );
}
