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
