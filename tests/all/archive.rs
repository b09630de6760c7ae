//! The raw archive and replay: `sluice run --archive` keeps every response with its request,
//! never the credential; `sluice replay` re-parses it with the mock API gone and writes the
//! same bytes; a connector that asks for other requests fails naming both.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use sluice_tests::connection::{Style, rest_connection, rest_stream};
use sluice_tests::mock::MockApi;

use crate::{Workspace, sluice};

const TOKEN_VAR: &str = "SLUICE_TEST_ARCHIVE_TOKEN";
const TOKEN: &str = "archive-s3cret-0123456789";

/// The `sluice replay` arguments for `ws`, writing to `<root>/replay`.
fn replay_args(ws: &Workspace, archive: &Path, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "replay",
        "--connector",
        "rest",
        "--archive",
        &archive.display().to_string(),
        "--output",
        &ws.path().join("replay").display().to_string(),
        "--json",
    ]
    .iter()
    .map(|arg| (*arg).to_owned())
    .collect();
    args.extend(extra.iter().map(|arg| (*arg).to_owned()));
    args
}

/// Every archive file under `dir`, decompressed.
fn archive_texts(dir: &Path) -> Vec<(PathBuf, String)> {
    sluice_tests::files::walk(dir)
        .into_iter()
        .map(|path| {
            let bytes = std::fs::read(&path).expect("read archive file");
            let text = if path.extension().is_some_and(|ext| ext == "gz") {
                let mut text = String::new();
                flate2::read::MultiGzDecoder::new(bytes.as_slice())
                    .read_to_string(&mut text)
                    .expect("a gzip archive");
                text
            } else {
                String::from_utf8(bytes).expect("a UTF-8 archive")
            };
            (path, text)
        })
        .collect()
}

#[test]
fn replay_of_an_archive_writes_the_same_bytes_without_the_network() {
    let mock = MockApi::start(57);
    let ws = Workspace::new();
    let streams = vec![
        rest_stream("offset_items", Style::Offset, 10),
        rest_stream("cursor_items", Style::Cursor, 25),
        rest_stream("link_items", Style::Link, 20),
    ];
    ws.write(&rest_connection(&mock, streams).bearer_from_env(TOKEN_VAR));
    let archive = ws.path().join("archive");

    let mut args = ws.run_args("rest");
    args.extend(["--archive".to_owned(), archive.display().to_string()]);
    let live = sluice().cmd(args).env(TOKEN_VAR, TOKEN).output();
    live.assert_success();
    let live: sluice_tests::cli::RunSummary = live.json();
    assert_eq!(live.stream("offset_items").records, 57, "{live:?}");
    // The credential was applied on the wire ...
    assert!(
        mock.requests()
            .iter()
            .all(|request| request.header("authorization") == Some(&*format!("Bearer {TOKEN}"))),
        "{:?}",
        mock.requests()
    );
    let requests = mock.request_count();
    drop(mock);

    // ... but is nowhere in the archive, which holds one file per stream with every exchange.
    let files = archive_texts(&archive);
    assert_eq!(files.len(), 3, "{files:?}");
    let mut exchanges = 0;
    for (path, text) in &files {
        assert!(path.to_string_lossy().ends_with(".jsonl.gz"), "{path:?}");
        assert!(!text.contains(TOKEN), "{path:?} holds the token");
        let mut lines = text.lines();
        let header: serde_json::Value =
            serde_json::from_str(lines.next().expect("header")).expect("header is JSON");
        assert_eq!(header["format"], "sluice-archive", "{header}");
        assert_eq!(header["version"], 1, "{header}");
        for line in lines {
            let exchange: serde_json::Value = serde_json::from_str(line).expect("JSON line");
            assert_eq!(exchange["response"]["status"], 200, "{exchange}");
            assert!(exchange["response"]["body"].is_string(), "{exchange}");
            assert_eq!(exchange["request"]["method"], "GET", "{exchange}");
            exchanges += 1;
        }
    }
    assert_eq!(exchanges, requests);

    // Replay with the mock gone and without the token: same bytes, separate output.
    let replay = sluice().cmd(replay_args(&ws, &archive, &[])).output();
    replay.assert_success();
    let summary: sluice_tests::cli::RunSummary = replay.json();
    assert_eq!(summary.streams.len(), 3, "{summary:?}");
    assert_eq!(summary.requests as usize, requests, "{summary:?}");
    for stream in ["offset_items", "cursor_items", "link_items"] {
        let live = std::fs::read(ws.output_file(stream)).expect("live output");
        let replayed = std::fs::read(ws.path().join("replay").join(format!("{stream}.jsonl")))
            .expect("replay");
        assert!(!live.is_empty());
        assert!(
            live == replayed,
            "stream {stream}: replay differs from the live run"
        );
    }
    // Live checkpoints are untouched by a replay: the next live state is the run's own.
    let state = sluice()
        .run([
            "state",
            "list",
            "--state",
            &ws.state().display().to_string(),
        ])
        .assert_success()
        .stdout
        .clone();
    assert!(!state.contains("replay"), "{state}");
}

#[test]
fn a_replay_that_asks_for_other_requests_fails_naming_both() {
    let mock = MockApi::start(35);
    let ws = Workspace::new();
    let connection = rest_connection(&mock, vec![rest_stream("items", Style::Offset, 10)]);
    ws.write(&connection);
    let archive = ws.path().join("archive");
    let mut args = ws.run_args("rest");
    args.extend([
        "--archive".to_owned(),
        archive.display().to_string(),
        "--archive-format".to_owned(),
        "jsonl".to_owned(),
    ]);
    sluice().cmd(args).output().assert_success();
    drop(mock);
    let files = sluice_tests::files::walk(&archive);
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(
        files[0].to_string_lossy().ends_with("items.jsonl"),
        "{files:?}"
    );

    // The same archive, replayed through a config with another offset parameter: the
    // connector asks for other pages than the archive holds.
    let other = ws.path().join("other.toml");
    let mut changed = connection.clone();
    changed.config_mut()["streams"][0]["pagination"]["offset_param"] = "skip".into();
    changed.write_as(&other);
    let output = sluice()
        .cmd(replay_args(
            &ws,
            &archive,
            &["--config", &other.display().to_string()],
        ))
        .output();
    let error = output.assert_error();
    assert!(
        error.contains("replay of stream `items` diverges at request 2"),
        "{error}"
    );
    assert!(error.contains("the archive has `GET "), "{error}");
    assert!(error.contains("offset=10`"), "{error}");
    assert!(
        error.contains("but the connector asked for `GET "),
        "{error}"
    );
    assert!(error.contains("offset=0&skip=10`"), "{error}");
    assert!(
        error.contains("a newer connector may legitimately ask differently"),
        "{error}"
    );

    // A connector that stops before the archive does cannot have written the same records.
    let mut changed = connection.clone();
    changed.config_mut()["streams"][0] = rest_stream("items", Style::Offset, 20);
    changed.write_as(&other);
    let error = sluice()
        .cmd(replay_args(
            &ws,
            &archive,
            &["--config", &other.display().to_string()],
        ))
        .output()
        .assert_error();
    assert!(
        error.contains("replay of stream `items` finished after 1 of the 4 archived requests"),
        "{error}"
    );

    // The unchanged config replays cleanly from the plain archive, named by its run directory.
    let run_dir = files[0].parent().expect("run directory");
    let output = sluice().cmd(replay_args(&ws, run_dir, &[])).output();
    output.assert_success();
    assert_eq!(
        std::fs::read(ws.output_file("items")).expect("live"),
        std::fs::read(ws.path().join("replay/items.jsonl")).expect("replay")
    );
}
