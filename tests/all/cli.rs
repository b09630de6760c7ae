//! The shape of `sluice spec`, `check`, `discover` and `--help` output.

use serde_json::Value;
use sluice_tests::connection::{Style, incremental, rest_connection, rest_stream};
use sluice_tests::mock::MockApi;

use crate::{Workspace, sluice};

#[test]
fn help_lists_the_commands() {
    let output = sluice().run(["--help"]);
    output.assert_success();
    for command in [
        "spec",
        "check",
        "discover",
        "run",
        "state",
        "serve",
        "completions",
    ] {
        assert!(
            output.stdout.contains(command),
            "--help lists `{command}`\n{output}"
        );
    }
    let output = sluice().run(["run", "--help"]);
    output.assert_success();
    for flag in [
        "--connector",
        "--config",
        "--state",
        "--output",
        "--stream",
        "--full-refresh",
        "--json",
    ] {
        assert!(
            output.stdout.contains(flag),
            "run --help lists `{flag}`\n{output}"
        );
    }
}

/// Completion scripts name every subcommand, for each shell.
#[test]
fn completions_for_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let output = sluice().run(["completions", shell]);
        output.assert_success();
        for command in ["serve", "inspect", "completions"] {
            assert!(
                output.stdout.contains(command),
                "{shell} completions name `{command}`\n{output}"
            );
        }
    }
    let output = sluice().run(["completions", "nosh"]);
    assert!(output.stderr.contains("possible values"), "{output}");
}

/// `serve --check` validates a deployment and its connections' configs, naming the place.
#[test]
fn serve_check_names_the_tenant_and_connection() {
    let ws = Workspace::new();
    let path = ws.path().join("deployment.toml");
    let head = "[control]\ntoken = \"t\"\n";
    std::fs::write(
        &path,
        format!("{head}[tenants.acme.connections.gh]\nconnector = \"github\"\nconfig = {{ owner = \"a\" }}\n"),
    )
    .expect("write");
    let error = sluice()
        .run(["serve", "--deployment", &path.to_string_lossy(), "--check"])
        .assert_error();
    assert!(
        error.contains("tenant `acme` connection `gh`") && error.contains("repository"),
        "{error}"
    );
    std::fs::write(
        &path,
        format!("{head}[tenants.acme.connections.gh]\nconnector = \"github\"\nconfig = {{ repository = \"a/b\" }}\n"),
    )
    .expect("write");
    let output = sluice().run(["serve", "--deployment", &path.to_string_lossy(), "--check"]);
    output.assert_success();
    assert!(output.stdout.contains("1 tenant, 1 connection"), "{output}");
}

#[test]
fn no_command_is_a_usage_error() {
    let output = sluice().run::<[&str; 0], &str>([]);
    assert!(!output.status.success(), "{output}");
    assert!(!output.stderr.contains("panicked"), "{output}");
}

/// `spec` prints the connector's static description as JSON.
#[test]
fn spec_of_bundled_connectors() {
    for name in ["rest", "github"] {
        let output = sluice().run(["spec", "--connector", name]);
        output.assert_success();
        let spec: Value = output.json();
        assert_eq!(spec["name"], name, "{spec:#}");
        let version = spec["version"].as_str().expect("version is a string");
        assert_eq!(version.split('.').count(), 3, "semver version: {version}");
        assert!(
            spec["description"].as_str().is_some_and(|d| !d.is_empty()),
            "{spec:#}"
        );
        let schema = &spec["config_schema"];
        assert!(
            schema.is_object(),
            "config_schema is a JSON schema object: {spec:#}"
        );
        assert!(
            spec["rate_limit"].is_null() || spec["rate_limit"]["requests"].is_u64(),
            "{spec:#}"
        );
        assert!(spec["auth_schemes"].is_array(), "{spec:#}");
    }
    let rest: Value = sluice().run(["spec", "--connector", "rest"]).json();
    let required = rest["config_schema"]["required"]
        .as_array()
        .expect("rest requires fields");
    assert!(required.contains(&Value::from("base_url")), "{rest:#}");
    let github: Value = sluice().run(["spec", "--connector", "github"]).json();
    assert!(
        github["auth_schemes"]
            .as_array()
            .expect("array")
            .contains(&Value::from("bearer")),
        "{github:#}"
    );
}

/// `check` accepts a good connection offline; `discover` lists the hosts and streams.
#[test]
fn check_and_discover_rest() {
    let mock = MockApi::start(10);
    let ws = Workspace::new();
    let file = ws.write(&rest_connection(
        &mock,
        vec![
            rest_stream("plain", Style::Page, 5),
            incremental(rest_stream("incr", Style::Offset, 5), "/id", "since_id"),
        ],
    ));
    let file = file.display().to_string();

    sluice()
        .run(["check", "--connector", "rest", "--config", &file])
        .assert_success();

    let output = sluice().run(["discover", "--connector", "rest", "--config", &file]);
    output.assert_success();
    let catalog: Value = output.json();
    assert_eq!(
        catalog["allowed_hosts"],
        serde_json::json!([mock.host_port()]),
        "{catalog:#}"
    );
    let streams = catalog["streams"].as_array().expect("streams");
    let names: Vec<&str> = streams.iter().filter_map(|s| s["name"].as_str()).collect();
    assert_eq!(names, ["plain", "incr"]);
    for stream in streams {
        assert!(stream["json_schema"].is_object(), "{stream:#}");
        assert_eq!(
            stream["primary_key"],
            serde_json::json!(["/id"]),
            "{stream:#}"
        );
    }
    assert_eq!(streams[1]["cursor_field"], "/id", "{catalog:#}");
    assert!(streams[0]["cursor_field"].is_null(), "{catalog:#}");
    let modes = |i: usize| {
        streams[i]["sync_modes"]
            .as_array()
            .expect("sync_modes")
            .clone()
    };
    assert!(
        modes(1).contains(&Value::from("incremental")),
        "{catalog:#}"
    );
    assert!(
        !modes(0).contains(&Value::from("incremental")),
        "{catalog:#}"
    );
    assert!(
        modes(0).contains(&Value::from("full_refresh")),
        "{catalog:#}"
    );

    // Neither command sends anything.
    assert_eq!(mock.request_count(), 0);
}

/// `sluice state ...` with this workspace's `--state` (and the given arguments).
/// With stderr not a terminal (a pipe here), `sluice run` reports progress as plain log lines,
/// at least one per stream when it ends, naming it and its record count; `--quiet` has none.
#[test]
fn run_logs_plain_progress_lines_when_stderr_is_no_terminal() {
    let mock = MockApi::start(60);
    let ws = Workspace::new();
    ws.write(&rest_connection(
        &mock,
        vec![rest_stream("items", Style::Offset, 25)],
    ));
    let output = ws.run_output("rest");
    output.assert_success();
    assert!(
        output
            .stderr
            .lines()
            .any(|line| line.contains("stream `items`: done")
                && line.contains("60 records")
                && line.contains("3 pages")),
        "{output}"
    );

    let quiet = sluice().cmd(ws.run_args("rest")).args(["--quiet"]).output();
    quiet.assert_success();
    assert!(!quiet.stderr.contains("stream `items`"), "{quiet}");
}

fn state_cmd(ws: &Workspace, action: &str, args: &[&str]) -> sluice_tests::cli::CmdOutput {
    let state = ws.state().display().to_string();
    let mut all = vec!["state", action, "--state", state.as_str()];
    all.extend_from_slice(args);
    sluice().run(all)
}

/// `state show` prints the versioned stored form per stream; `state set` of an edited cursor
/// is what the next incremental run sends; `state reset` without `--stream` resets them all.
#[test]
fn state_show_set_and_reset_every_stream() {
    let mock = MockApi::start(60);
    let ws = Workspace::new();
    ws.write(&rest_connection(
        &mock,
        vec![
            incremental(rest_stream("items", Style::Offset, 25), "/id", "since_id"),
            rest_stream("plain", Style::Page, 25),
        ],
    ));
    ws.run("rest");

    let output = state_cmd(&ws, "show", &["--connection", "connection"]);
    output.assert_success();
    let shown: Value = output.json();
    let streams: Vec<&String> = shown.as_object().expect("object").keys().collect();
    assert_eq!(streams, ["items", "plain"], "{shown:#}");
    let items = &shown["items"];
    assert_eq!(items["version"], "1", "{shown:#}");
    assert_eq!(items["mode"], "incremental", "{shown:#}");
    for field in ["pending", "context", "output", "committed_at_ms"] {
        assert!(items.get(field).is_some(), "`{field}` shown: {shown:#}");
    }
    let size = std::fs::metadata(ws.output_file("items"))
        .expect("output")
        .len();
    assert_eq!(items["output"]["offset_bytes"], size, "{shown:#}");
    let state: Value =
        serde_json::from_str(items["state"].as_str().expect("state is JSON text")).expect("JSON");
    assert_eq!(state["cursor"], 60, "{shown:#}");
    // `state list` still lists every key.
    let listed: Value = state_cmd(&ws, "list", &[]).json();
    assert!(listed.get("connection/items").is_some(), "{listed:#}");

    // One stream only; the same form.
    let one: Value = state_cmd(
        &ws,
        "show",
        &["--connection", "connection", "--stream", "items"],
    )
    .json();
    assert_eq!(one, serde_json::json!({ "items": items }));

    // Move the cursor back and set it from a file: the next run asks from there.
    let mut edited = items.clone();
    edited["state"] = Value::from(r#"{"cursor":50}"#);
    let file = ws.path().join("items.json");
    std::fs::write(&file, edited.to_string()).expect("write");
    let output = ws.output().display().to_string();
    let file_arg = file.display().to_string();
    let set = state_cmd(
        &ws,
        "set",
        &[
            "--output",
            &output,
            "--connection",
            "connection",
            "--stream",
            "items",
            "--file",
            &file_arg,
        ],
    );
    set.assert_success();
    let after: Value = state_cmd(
        &ws,
        "show",
        &["--connection", "connection", "--stream", "items"],
    )
    .json();
    assert_eq!(after["items"], edited);
    mock.clear_log();
    let summary = ws.run("rest");
    assert_eq!(summary.stream("items").start, "incremental", "{summary:?}");
    let items_requests: Vec<_> = mock
        .requests()
        .into_iter()
        .filter(|r| r.query_param("since_id").is_some())
        .collect();
    assert!(!items_requests.is_empty(), "{:?}", mock.requests());
    for request in &items_requests {
        assert_eq!(request.query_param("since_id"), Some("50"), "{request:?}");
    }
    assert_eq!(
        sluice_tests::dataset::ids(&ws.records("items")),
        (1..=60).collect::<Vec<_>>(),
        "the re-read records are not written twice"
    );

    // Reset without --stream: every stream of the connection, by name.
    let reset = state_cmd(&ws, "reset", &["--connection", "connection"]);
    reset.assert_success();
    assert!(
        reset.stdout.contains("connection/items") && reset.stdout.contains("connection/plain"),
        "{reset}"
    );
    let listed: Value = state_cmd(&ws, "list", &[]).json();
    assert_eq!(listed, serde_json::json!({}));
    let error = state_cmd(&ws, "reset", &["--connection", "connection"]).assert_error();
    assert!(
        error.contains("no checkpoint of connection `connection`"),
        "{error}"
    );
    let summary = ws.run("rest");
    assert_eq!(summary.stream("items").start, "fresh", "{summary:?}");
}

/// `state set` refuses invalid checkpoints, naming the field and the fix, and changes nothing.
#[test]
fn state_set_refuses_invalid_checkpoints() {
    let mock = MockApi::start(30);
    let ws = Workspace::new();
    ws.write(&rest_connection(
        &mock,
        vec![incremental(
            rest_stream("items", Style::Offset, 25),
            "/id",
            "since_id",
        )],
    ));
    ws.run("rest");
    let shown: Value = state_cmd(
        &ws,
        "show",
        &["--connection", "connection", "--stream", "items"],
    )
    .json();
    let items = shown["items"].clone();
    let output = ws.output().display().to_string();
    let set = |json: &str, force: bool| {
        let mut args = vec![
            "--output",
            output.as_str(),
            "--connection",
            "connection",
            "--stream",
            "items",
            "--json",
            json,
        ];
        if force {
            args.push("--force");
        }
        state_cmd(&ws, "set", &args)
    };
    let edited = |edit: &dyn Fn(&mut Value)| {
        let mut value = items.clone();
        edit(&mut value);
        value.to_string()
    };

    let error = set("{\"version\": \"1\",", false).assert_error();
    assert!(error.contains("--json is not JSON"), "{error}");
    let error = set(&edited(&|v| v["version"] = Value::from("9")), false).assert_error();
    assert!(
        error.contains("unknown `version` \"9\"") && error.contains("reads version \"1\""),
        "{error}"
    );
    let error = set(&edited(&|v| v["state"] = Value::from("cursor=5")), false).assert_error();
    assert!(
        error.contains("field `state`") && error.contains("not JSON"),
        "{error}"
    );
    let error = set(&edited(&|v| v["extra"] = Value::from(1)), false).assert_error();
    assert!(error.contains("unknown field `extra`"), "{error}");
    let error = set(
        &edited(&|v| {
            v.as_object_mut().expect("object").remove("output");
        }),
        false,
    )
    .assert_error();
    assert!(error.contains("missing field `output`"), "{error}");

    let size = std::fs::metadata(ws.output_file("items"))
        .expect("output")
        .len();
    let beyond = edited(&|v| v["output"]["offset_bytes"] = Value::from(size + 100));
    let error = set(&beyond, false).assert_error();
    assert!(
        error.contains(&format!(
            "has {size} bytes; a checkpoint covering {} bytes",
            size + 100
        )) && error.contains("--force"),
        "{error}"
    );
    // Nothing changed.
    let after: Value = state_cmd(
        &ws,
        "show",
        &["--connection", "connection", "--stream", "items"],
    )
    .json();
    assert_eq!(after["items"], items);
    // --force takes it.
    set(&beyond, true).assert_success();
    let after: Value = state_cmd(
        &ws,
        "show",
        &["--connection", "connection", "--stream", "items"],
    )
    .json();
    assert_eq!(after["items"]["output"]["offset_bytes"], size + 100);
}
