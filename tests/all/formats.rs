//! `--format airbyte|singer`: every line Sluice prints validates against the protocol's
//! published models, the records are the source's, a STATE follows every committed page, and a
//! run killed mid-way and resumed emits each record once across the two runs.
//!
//! The schemas below are transcribed from the Airbyte protocol
//! (`airbyte-protocol/protocol-models/src/main/resources/airbyte_protocol/airbyte_protocol.yaml`:
//! `AirbyteMessage`, `AirbyteRecordMessage`, `AirbyteStateMessage` with `AirbyteStreamState`,
//! `AirbyteLogMessage`, `AirbyteTraceMessage` with `AirbyteErrorTraceMessage`,
//! `ConnectorSpecification`, `AirbyteConnectionStatus`, `AirbyteCatalog` with `AirbyteStream`)
//! and from the Singer specification (`SPEC.md`: SCHEMA, RECORD, STATE). Each adds one rule the
//! prose of the protocol states but its model does not: a message carries the field its `type`
//! names.

use std::time::Duration;

use serde_json::{Value, json};
use sluice_tests::connection::{Style, rest_connection, rest_stream};
use sluice_tests::dataset;
use sluice_tests::mock::MockApi;

use crate::{Workspace, sluice};

const PAGE_SIZE: u64 = 10;

/// The Airbyte message models Sluice emits, as one JSON Schema (draft-07, like the original).
fn airbyte_schema() -> Value {
    json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "$ref": "#/definitions/AirbyteMessage",
        "definitions": {
            "AirbyteMessage": {
                "type": "object",
                "required": ["type"],
                "properties": {
                    "type": {"type": "string", "enum": ["RECORD", "STATE", "LOG", "SPEC", "CONNECTION_STATUS", "CATALOG", "TRACE", "CONTROL"]},
                    "log": {"$ref": "#/definitions/AirbyteLogMessage"},
                    "spec": {"$ref": "#/definitions/ConnectorSpecification"},
                    "connectionStatus": {"$ref": "#/definitions/AirbyteConnectionStatus"},
                    "catalog": {"$ref": "#/definitions/AirbyteCatalog"},
                    "record": {"$ref": "#/definitions/AirbyteRecordMessage"},
                    "state": {"$ref": "#/definitions/AirbyteStateMessage"},
                    "trace": {"$ref": "#/definitions/AirbyteTraceMessage"}
                },
                "allOf": [
                    {"if": {"properties": {"type": {"const": "RECORD"}}}, "then": {"required": ["record"]}},
                    {"if": {"properties": {"type": {"const": "STATE"}}}, "then": {"required": ["state"]}},
                    {"if": {"properties": {"type": {"const": "LOG"}}}, "then": {"required": ["log"]}},
                    {"if": {"properties": {"type": {"const": "SPEC"}}}, "then": {"required": ["spec"]}},
                    {"if": {"properties": {"type": {"const": "CONNECTION_STATUS"}}}, "then": {"required": ["connectionStatus"]}},
                    {"if": {"properties": {"type": {"const": "CATALOG"}}}, "then": {"required": ["catalog"]}},
                    {"if": {"properties": {"type": {"const": "TRACE"}}}, "then": {"required": ["trace"]}}
                ]
            },
            "AirbyteRecordMessage": {
                "type": "object",
                "required": ["stream", "data", "emitted_at"],
                "properties": {
                    "namespace": {"type": "string"},
                    "stream": {"type": "string"},
                    "data": {"type": "object"},
                    "emitted_at": {"type": "integer"}
                }
            },
            "AirbyteStateMessage": {
                "type": "object",
                "properties": {
                    "type": {"type": "string", "enum": ["GLOBAL", "STREAM", "LEGACY"]},
                    "stream": {"$ref": "#/definitions/AirbyteStreamState"},
                    "data": {"type": "object"}
                },
                "if": {"properties": {"type": {"const": "STREAM"}}},
                "then": {"required": ["stream"]}
            },
            "AirbyteStreamState": {
                "type": "object",
                "required": ["stream_descriptor"],
                "properties": {
                    "stream_descriptor": {"$ref": "#/definitions/StreamDescriptor"},
                    "stream_state": {"$ref": "#/definitions/AirbyteStateBlob"}
                }
            },
            "StreamDescriptor": {
                "type": "object",
                "required": ["name"],
                "properties": {"name": {"type": "string"}, "namespace": {"type": "string"}}
            },
            "AirbyteStateBlob": {"type": "object"},
            "AirbyteLogMessage": {
                "type": "object",
                "required": ["level", "message"],
                "properties": {
                    "level": {"type": "string", "enum": ["FATAL", "ERROR", "WARN", "INFO", "DEBUG", "TRACE"]},
                    "message": {"type": "string"},
                    "stack_trace": {"type": "string"}
                }
            },
            "AirbyteTraceMessage": {
                "type": "object",
                "required": ["type", "emitted_at"],
                "properties": {
                    "type": {"type": "string", "enum": ["ERROR", "ESTIMATE", "STREAM_STATUS", "ANALYTICS"]},
                    "emitted_at": {"type": "number"},
                    "error": {"$ref": "#/definitions/AirbyteErrorTraceMessage"}
                },
                "if": {"properties": {"type": {"const": "ERROR"}}},
                "then": {"required": ["error"]}
            },
            "AirbyteErrorTraceMessage": {
                "type": "object",
                "required": ["message"],
                "properties": {
                    "message": {"type": "string"},
                    "internal_message": {"type": "string"},
                    "stack_trace": {"type": "string"},
                    "failure_type": {"type": "string", "enum": ["system_error", "config_error", "transient_error"]},
                    "stream_descriptor": {"$ref": "#/definitions/StreamDescriptor"}
                }
            },
            "ConnectorSpecification": {
                "type": "object",
                "required": ["connectionSpecification"],
                "properties": {
                    "documentationUrl": {"type": "string"},
                    "changelogUrl": {"type": "string"},
                    "connectionSpecification": {"type": "object"},
                    "supportsIncremental": {"type": "boolean"},
                    "supportsNormalization": {"type": "boolean"},
                    "supportsDBT": {"type": "boolean"},
                    "protocol_version": {"type": "string"}
                }
            },
            "AirbyteConnectionStatus": {
                "type": "object",
                "required": ["status"],
                "properties": {
                    "status": {"type": "string", "enum": ["SUCCEEDED", "FAILED"]},
                    "message": {"type": "string"}
                }
            },
            "AirbyteCatalog": {
                "type": "object",
                "required": ["streams"],
                "properties": {"streams": {"type": "array", "items": {"$ref": "#/definitions/AirbyteStream"}}}
            },
            "AirbyteStream": {
                "type": "object",
                "required": ["name", "json_schema", "supported_sync_modes"],
                "properties": {
                    "name": {"type": "string"},
                    "json_schema": {"type": "object"},
                    "supported_sync_modes": {"type": "array", "minItems": 1, "items": {"$ref": "#/definitions/SyncMode"}},
                    "source_defined_cursor": {"type": "boolean"},
                    "default_cursor_field": {"type": "array", "items": {"type": "string"}},
                    "source_defined_primary_key": {"type": "array", "items": {"type": "array", "items": {"type": "string"}}},
                    "namespace": {"type": "string"},
                    "is_resumable": {"type": "boolean"}
                }
            },
            "SyncMode": {"type": "string", "enum": ["full_refresh", "incremental"]}
        }
    })
}

/// Singer's SCHEMA, RECORD and STATE messages (Singer `SPEC.md`).
fn singer_schema() -> Value {
    json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "required": ["type"],
        "properties": {"type": {"enum": ["SCHEMA", "RECORD", "STATE"]}},
        "allOf": [
            {
                "if": {"properties": {"type": {"const": "SCHEMA"}}},
                "then": {
                    "required": ["stream", "schema", "key_properties"],
                    "properties": {
                        "stream": {"type": "string"},
                        "schema": {"type": "object"},
                        "key_properties": {"type": "array", "items": {"type": "string"}},
                        "bookmark_properties": {"type": "array", "items": {"type": "string"}}
                    }
                }
            },
            {
                "if": {"properties": {"type": {"const": "RECORD"}}},
                "then": {
                    "required": ["stream", "record"],
                    "properties": {
                        "stream": {"type": "string"},
                        "record": {"type": "object"},
                        "time_extracted": {"type": "string"},
                        "version": {"type": "integer"}
                    }
                }
            },
            {
                "if": {"properties": {"type": {"const": "STATE"}}},
                "then": {"required": ["value"]}
            }
        ]
    })
}

/// Parses every line of `stdout` and validates it against `schema`, panicking with the line and
/// the violations otherwise.
fn validated(stdout: &str, schema: &Value) -> Vec<Value> {
    let validator = jsonschema::validator_for(schema).expect("the protocol schema compiles");
    stdout
        .lines()
        .map(|line| {
            let message: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line}"));
            let errors: Vec<String> = validator
                .iter_errors(&message)
                .map(|error| format!("{error} at {}", error.instance_path))
                .collect();
            assert!(
                errors.is_empty(),
                "{line}\nviolates the protocol: {errors:#?}"
            );
            message
        })
        .collect()
}

/// The validator rejects what the protocol forbids (so passing means something).
#[test]
fn protocol_schemas_reject_malformed_messages() {
    let airbyte = jsonschema::validator_for(&airbyte_schema()).unwrap();
    for bad in [
        json!({"type": "RECORD"}),
        json!({"type": "RECORD", "record": {"stream": "s", "data": {}, "emitted_at": 1.5}}),
        json!({"type": "STATE", "state": {"type": "STREAM", "stream": {"stream_state": {}}}}),
        json!({"type": "LOG", "log": {"level": "NOTICE", "message": "m"}}),
        json!({"type": "TRACE", "trace": {"type": "ERROR", "emitted_at": 1, "error": {"message": "m", "failure_type": "oops"}}}),
        json!({"type": "CONNECTION_STATUS", "connectionStatus": {"status": "OK"}}),
        json!({"type": "CATALOG", "catalog": {"streams": [{"name": "s", "json_schema": {}, "supported_sync_modes": []}]}}),
    ] {
        assert!(!airbyte.is_valid(&bad), "accepted {bad}");
    }
    let singer = jsonschema::validator_for(&singer_schema()).unwrap();
    for bad in [
        json!({"type": "SCHEMA", "stream": "s", "schema": {}}),
        json!({"type": "RECORD", "stream": "s", "record": [1]}),
        json!({"type": "STATE"}),
    ] {
        assert!(!singer.is_valid(&bad), "accepted {bad}");
    }
}

fn run_args(ws: &Workspace, format: &str) -> Vec<String> {
    let mut args = ws.run_args("rest");
    args.extend(["--format".to_owned(), format.to_owned()]);
    args
}

/// The pages of a sync of `records` records in pages of [`PAGE_SIZE`]: a last empty page when
/// the count is a multiple of the page size is the connector's business, so accept either.
fn assert_state_after_each_page(kinds: &[&str], records: u64) {
    // Every run of RECORDs ends with a STATE.
    for (i, kind) in kinds.iter().enumerate() {
        if *kind == "RECORD" {
            assert!(
                kinds[i + 1..]
                    .iter()
                    .find(|k| **k != "RECORD")
                    .is_some_and(|k| *k == "STATE"),
                "records at {i} are not followed by a STATE: {kinds:?}"
            );
        }
    }
    let states = kinds.iter().filter(|k| **k == "STATE").count() as u64;
    let full_pages = records.div_ceil(PAGE_SIZE);
    assert!(
        (full_pages..=full_pages + 1).contains(&states),
        "{states} STATE messages for {full_pages} pages: {kinds:?}"
    );
}

#[test]
fn airbyte_run_messages() {
    let mock = MockApi::start(45);
    let ws = Workspace::new();
    ws.write(&rest_connection(
        &mock,
        vec![rest_stream("items", Style::Offset, PAGE_SIZE)],
    ));
    let output = sluice().cmd(run_args(&ws, "airbyte")).output();
    output.assert_success();
    let messages = validated(&output.stdout, &airbyte_schema());
    let kinds: Vec<&str> = messages
        .iter()
        .map(|m| m["type"].as_str().unwrap())
        .collect();
    let data: Vec<Value> = messages
        .iter()
        .filter(|m| m["type"] == "RECORD")
        .map(|m| {
            assert_eq!(m["record"]["stream"], "items");
            m["record"]["data"].clone()
        })
        .collect();
    assert_eq!(data, dataset::records(45));
    assert_state_after_each_page(&kinds, 45);
    for state in messages.iter().filter(|m| m["type"] == "STATE") {
        assert_eq!(state["state"]["type"], "STREAM");
        assert_eq!(
            state["state"]["stream"]["stream_descriptor"]["name"],
            "items"
        );
    }
    // The summary (JSON, as `--json` was given) is the last message, a LOG.
    let last = messages.last().unwrap();
    assert_eq!(last["type"], "LOG", "{output}");
    let summary: Value = serde_json::from_str(last["log"]["message"].as_str().unwrap()).unwrap();
    assert_eq!(summary["streams"][0]["records"], 45);
    assert!(
        !ws.output_file("items").exists(),
        "no JSONL file in airbyte format"
    );

    // A second (full refresh) run reads everything again and counts from zero.
    let again = sluice().cmd(run_args(&ws, "airbyte")).output();
    again.assert_success();
    let messages = validated(&again.stdout, &airbyte_schema());
    let records = messages.iter().filter(|m| m["type"] == "RECORD").count();
    assert_eq!(records, 45, "{again}");
    let summary: Value =
        serde_json::from_str(messages.last().unwrap()["log"]["message"].as_str().unwrap()).unwrap();
    assert_eq!(summary["streams"][0]["records_total"], 45, "{again}");
}

#[test]
fn airbyte_failure_is_a_trace() {
    let mock = MockApi::start(5);
    let ws = Workspace::new();
    ws.write(&rest_connection(
        &mock,
        vec![rest_stream("items", Style::Offset, PAGE_SIZE)],
    ));
    let mut args = run_args(&ws, "airbyte");
    args.extend(["--stream".to_owned(), "nope".to_owned()]);
    let output = sluice().cmd(args).output();
    assert!(!output.status.success(), "{output}");
    let messages = validated(&output.stdout, &airbyte_schema());
    let trace = messages
        .iter()
        .find(|m| m["type"] == "TRACE")
        .unwrap_or_else(|| panic!("no TRACE\n{output}"));
    assert_eq!(trace["trace"]["error"]["failure_type"], "config_error");
    assert!(
        trace["trace"]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("nope")
    );
}

#[test]
fn singer_run_messages() {
    let mock = MockApi::start(45);
    let ws = Workspace::new();
    ws.write(&rest_connection(
        &mock,
        vec![rest_stream("items", Style::Cursor, PAGE_SIZE)],
    ));
    let output = sluice().cmd(run_args(&ws, "singer")).output();
    output.assert_success();
    let messages = validated(&output.stdout, &singer_schema());
    assert_eq!(messages[0]["type"], "SCHEMA", "{output}");
    assert_eq!(messages[0]["stream"], "items");
    assert_eq!(messages[0]["key_properties"], json!(["id"]));
    let kinds: Vec<&str> = messages
        .iter()
        .map(|m| m["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.iter().filter(|k| **k == "SCHEMA").count(), 1);
    let records: Vec<Value> = messages
        .iter()
        .filter(|m| m["type"] == "RECORD")
        .map(|m| {
            assert_eq!(m["stream"], "items");
            m["record"].clone()
        })
        .collect();
    assert_eq!(records, dataset::records(45));
    assert_state_after_each_page(&kinds, 45);
    for state in messages.iter().filter(|m| m["type"] == "STATE") {
        assert!(
            state["value"]["bookmarks"].get("items").is_some(),
            "{state}"
        );
    }
    // The summary went to stderr, not into the message stream.
    assert!(output.stderr.contains("\"records\":45"), "{output}");
    assert!(!ws.output_file("items").exists());
}

/// Killed after 3 committed pages and run again, the two runs' outputs hold every record once.
#[test]
fn airbyte_resume_after_kill_emits_each_record_once() {
    const RECORDS: u64 = 67;
    let mock = MockApi::start(RECORDS);
    let ws = Workspace::new();
    ws.write(&rest_connection(
        &mock,
        vec![rest_stream("items", Style::Offset, PAGE_SIZE)],
    ));
    // Request 4 is held: pages 1..=3 were answered, written and committed.
    mock.hold_from(4);
    let child = sluice().cmd(run_args(&ws, "airbyte")).spawn();
    assert!(
        mock.wait_for_requests(4, Duration::from_secs(60)),
        "the sync never sent request 4"
    );
    let killed = child.kill().expect("still running when killed");
    mock.release();
    let resumed = sluice().cmd(run_args(&ws, "airbyte")).output();
    resumed.assert_success();
    let mut data = Vec::new();
    for stdout in [&killed.stdout, &resumed.stdout] {
        for message in validated(stdout, &airbyte_schema()) {
            if message["type"] == "RECORD" {
                data.push(message["record"]["data"].clone());
            }
        }
    }
    assert_eq!(data.len(), 67);
    assert_eq!(
        data,
        dataset::records(RECORDS),
        "every record once, in order"
    );
}

#[test]
fn airbyte_spec_check_discover() {
    let mock = MockApi::start(5);
    let ws = Workspace::new();
    let config = ws.write(&rest_connection(
        &mock,
        vec![rest_stream("items", Style::Offset, PAGE_SIZE)],
    ));
    let config = config.to_string_lossy().into_owned();
    let schema = airbyte_schema();

    let output = sluice().run(["spec", "--connector", "rest", "--format", "airbyte"]);
    output.assert_success();
    let spec = validated(&output.stdout, &schema);
    assert_eq!(spec.len(), 1);
    assert_eq!(spec[0]["type"], "SPEC");
    assert!(spec[0]["spec"]["connectionSpecification"]["properties"].is_object());

    let output = sluice().run([
        "check",
        "--connector",
        "rest",
        "--config",
        &config,
        "--format",
        "airbyte",
    ]);
    output.assert_success();
    let status = validated(&output.stdout, &schema);
    assert_eq!(status[0]["connectionStatus"]["status"], "SUCCEEDED");

    // An invalid connection: FAILED with the reason, and exit status 0 (as Airbyte expects).
    let bad = ws.path().join("bad.toml");
    std::fs::write(&bad, "[config]\nbase_url = 3\n").unwrap();
    let output = sluice().run([
        "check",
        "--connector",
        "rest",
        "--config",
        &bad.to_string_lossy(),
        "--format",
        "airbyte",
    ]);
    output.assert_success();
    let status = validated(&output.stdout, &schema);
    assert_eq!(status[0]["connectionStatus"]["status"], "FAILED");
    assert!(
        !status[0]["connectionStatus"]["message"]
            .as_str()
            .unwrap()
            .is_empty()
    );

    let output = sluice().run([
        "discover",
        "--connector",
        "rest",
        "--config",
        &config,
        "--format",
        "airbyte",
    ]);
    output.assert_success();
    let catalog = validated(&output.stdout, &schema);
    let stream = &catalog[0]["catalog"]["streams"][0];
    assert_eq!(stream["name"], "items");
    assert_eq!(stream["source_defined_primary_key"], json!([["id"]]));
}

/// The Singer target the pipe test uses, pinned: `target-jsonl` from PyPI.
const TARGET_JSONL: &str = "target-jsonl==0.1.4";

/// Installs [`TARGET_JSONL`] once per target directory (pip into a private directory, kept
/// between test runs) and returns that directory, for `PYTHONPATH`. `None` when the machine has no
/// `python3` at all; a failing pip is a test failure.
fn target_jsonl_site() -> Option<std::path::PathBuf> {
    let python = std::process::Command::new("python3")
        .arg("--version")
        .output();
    if python.is_err() {
        eprintln!("SKIPPED singer_into_target_jsonl: no python3 on PATH");
        return None;
    }
    let site = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("target-jsonl-0.1.4");
    let installed = site.join(".installed");
    if !installed.is_file() {
        let _ = std::fs::remove_dir_all(&site);
        let pip = std::process::Command::new("python3")
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .args([
                "--no-input",
                "--retries",
                "3",
                "--timeout",
                "60",
                "--target",
            ])
            .arg(&site)
            .arg(TARGET_JSONL)
            .output()
            .expect("python3 runs");
        assert!(
            pip.status.success(),
            "pip install {TARGET_JSONL} failed: {}",
            String::from_utf8_lossy(&pip.stderr)
        );
        std::fs::write(&installed, TARGET_JSONL).expect("marking the install done");
    }
    Some(site)
}

/// Pipes `sluice run --format singer` straight into target-jsonl (from PyPI, through an OS pipe,
/// both processes running at once) and checks the rows it wrote and the state it echoed.
#[test]
fn singer_into_target_jsonl() {
    use std::process::{Command, Stdio};

    let Some(site) = target_jsonl_site() else {
        return;
    };
    let mock = MockApi::start(45);
    let ws = Workspace::new();
    ws.write(&rest_connection(
        &mock,
        vec![rest_stream("items", Style::Offset, PAGE_SIZE)],
    ));
    let dest = ws.path().join("target");
    std::fs::create_dir_all(&dest).unwrap();
    let config = ws.path().join("target.json");
    std::fs::write(
        &config,
        json!({"destination_path": dest, "do_timestamp_file": false}).to_string(),
    )
    .unwrap();

    let mut source = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(run_args(&ws, "singer"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sluice starts");
    let pipe = source.stdout.take().expect("piped stdout");
    let target = Command::new("python3")
        .args(["-c", "import target_jsonl; target_jsonl.main()", "--config"])
        .arg(&config)
        .env("PYTHONPATH", &site)
        .stdin(Stdio::from(pipe))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("target-jsonl starts");
    let source = source.wait_with_output().expect("sluice runs");
    assert!(
        source.status.success(),
        "sluice failed: {}",
        String::from_utf8_lossy(&source.stderr)
    );
    let done = target.wait_with_output().expect("target-jsonl runs");
    assert!(
        done.status.success(),
        "target-jsonl failed: {}",
        String::from_utf8_lossy(&done.stderr)
    );
    // target-jsonl echoes the last STATE value on its stdout: the connector's final checkpoint.
    let last_state: Value = serde_json::from_str(
        String::from_utf8_lossy(&done.stdout)
            .lines()
            .last()
            .expect("target-jsonl printed the last state"),
    )
    .expect("the echoed state is JSON");
    assert!(last_state["bookmarks"]["items"].is_object(), "{last_state}");
    let rows = sluice_tests::files::read_jsonl(&dest.join("items.jsonl"));
    assert_eq!(rows, dataset::records(45));
}
