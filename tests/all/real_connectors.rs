//! The bundled connectors for real APIs (`stripe`, `hackernews`, `next_header`, and the
//! `github` connector's `pulls` and `commits`) synced by the real `sluice` binary against
//! API-shaped mocks on 127.0.0.1 ([`sluice_tests::shapes::ShapesApi`]): the host applies the
//! bearer key, pages as the APIs do, and a second sync reads only what is new.

use std::collections::BTreeSet;

use serde_json::{Value, json};
use sluice_tests::cli::RunSummary;
use sluice_tests::connection::Connection;
use sluice_tests::shapes::ShapesApi;

use crate::{Workspace, sluice};

const TOKEN_VAR: &str = "SLUICE_TEST_SHAPES_TOKEN";

fn token() -> String {
    format!("sk_test_sluice{:x}Secret", std::process::id())
}

/// `sluice run --json` of `connector` with the token in the child's environment only.
fn run(ws: &Workspace, connector: &str, token: &str) -> RunSummary {
    let output = sluice()
        .cmd(ws.run_args(connector))
        .env(TOKEN_VAR, token)
        .output();
    output.assert_success();
    output.json()
}

fn strings<'a>(records: &'a [Value], field: &str) -> Vec<&'a str> {
    records
        .iter()
        .map(|r| r[field].as_str().expect("a string field"))
        .collect()
}

#[test]
fn stripe_lists_with_starting_after_and_created_gt() {
    let token = token();
    let api = ShapesApi::start(&token);
    let customers = api.stripe_create("customers", 25);
    api.stripe_create("charges", 7);
    api.stripe_create("invoices", 3);
    let ws = Workspace::new();
    ws.write(
        &Connection::new(json!({"base_url": api.base_url(), "page_size": 10}))
            .allow_private_networks()
            .bearer_from_env(TOKEN_VAR),
    );

    let first = run(&ws, "stripe", &token);
    for (stream, records, requests) in [("customers", 25, 3), ("charges", 7, 1), ("invoices", 3, 1)]
    {
        let summary = first.stream(stream);
        assert_eq!(
            (summary.records, summary.requests, summary.start.as_str()),
            (records, requests, "fresh"),
            "{stream}: {first:?}"
        );
    }
    let newest_first: Vec<Value> = customers.iter().rev().cloned().collect();
    assert_eq!(ws.records("customers"), newest_first);

    let log = api.requests();
    assert!(
        log.iter()
            .all(|r| r.header("authorization") == Some(format!("Bearer {token}").as_str())),
        "the host applies the secret key to every request"
    );
    let pages: Vec<(Option<&str>, Option<&str>)> = log
        .iter()
        .filter(|r| r.path == "/v1/customers")
        .map(|r| (r.query_param("limit"), r.query_param("starting_after")))
        .collect();
    let id = |n: usize| newest_first[n]["id"].as_str().expect("id");
    assert_eq!(
        pages,
        vec![
            (Some("10"), None),
            (Some("10"), Some(id(9))),
            (Some("10"), Some(id(19))),
        ]
    );

    // New customers only, filtered by the API on the saved `created`.
    let newest_created = newest_first[0]["created"].as_i64().expect("created");
    let added = api.stripe_create("customers", 4);
    api.clear_log();
    let second = run(&ws, "stripe", &token);
    let summary = second.stream("customers");
    assert_eq!(
        (summary.records, summary.start.as_str()),
        (4, "incremental"),
        "{second:?}"
    );
    assert_eq!(second.stream("charges").records, 0);
    let request = api
        .requests()
        .into_iter()
        .find(|r| r.path == "/v1/customers")
        .expect("a customers request");
    assert_eq!(
        request.query_param("created[gt]"),
        Some(newest_created.to_string().as_str())
    );
    let written = ws.records("customers");
    assert_eq!(written.len(), 29);
    let appended: Vec<Value> = added.into_iter().rev().collect();
    assert_eq!(written[25..], appended[..]);
}

#[test]
fn stripe_without_the_key_fails_with_stripes_message() {
    let api = ShapesApi::start(&token());
    api.stripe_create("customers", 1);
    let ws = Workspace::new();
    ws.write(&Connection::new(json!({"base_url": api.base_url()})).allow_private_networks());
    let output = ws.run_output("stripe");
    let error = output.assert_error();
    assert!(
        error.contains("You did not provide an API key."),
        "Stripe's error message is shown\n{output}"
    );
}

#[test]
fn hackernews_pages_windows_and_numeric_filters() {
    let api = ShapesApi::start("unused");
    let stories = api.hn_post("story", 45);
    api.hn_post("comment", 5);
    api.set_hn_cap(20);
    let ws = Workspace::new();
    ws.write(
        &Connection::new(json!({"base_url": api.base_url(), "hits_per_page": 10}))
            .allow_private_networks(),
    );

    let first = ws.run("hackernews");
    let summary = first.stream("stories");
    assert_eq!(summary.start, "fresh");
    // 45 stories through searches capped at 20 hits: windows of 20, 20 and 7, each starting at
    // the oldest second of the last. The two stories read again at the window boundaries are
    // dropped by the host's seen index: every story is written once.
    assert_eq!((summary.records, summary.requests), (45, 5), "{first:?}");
    let written = ws.records("stories");
    assert_eq!(written.len(), 45, "no story written twice");
    let unique: BTreeSet<&str> = strings(&written, "objectID").into_iter().collect();
    let expected: BTreeSet<&str> = strings(&stories, "objectID").into_iter().collect();
    assert_eq!(unique, expected, "every story, none missed");
    assert!(written.iter().all(|r| r.get("_highlightResult").is_none()));
    assert_eq!(first.stream("comments").records, 5);
    assert_eq!(first.stream("jobs").records, 0);

    let log = api.requests();
    assert!(log.iter().all(|r| r.header("authorization").is_none()));
    let story_pages: Vec<(Option<&str>, Option<&str>)> = log
        .iter()
        .filter(|r| r.query_param("tags") == Some("story"))
        .map(|r| (r.query_param("numericFilters"), r.query_param("page")))
        .collect();
    let at = |n: usize| stories[n]["created_at_i"].as_i64().expect("created_at_i");
    let window_2 = format!("created_at_i<={}", at(25));
    let window_3 = format!("created_at_i<={}", at(6));
    assert_eq!(
        story_pages,
        vec![
            (None, Some("0")),
            (None, Some("1")),
            (Some(window_2.as_str()), Some("0")),
            (Some(window_2.as_str()), Some("1")),
            (Some(window_3.as_str()), Some("0")),
        ]
    );

    let newest = at(44);
    let new_stories = api.hn_post("story", 3);
    api.clear_log();
    let second = ws.run("hackernews");
    let summary = second.stream("stories");
    assert_eq!(
        (summary.records, summary.start.as_str()),
        (3, "incremental"),
        "{second:?}"
    );
    let request = api
        .requests()
        .into_iter()
        .find(|r| r.query_param("tags") == Some("story"))
        .expect("a stories request");
    assert_eq!(
        request.query_param("numericFilters"),
        Some(format!("created_at_i>{newest}").as_str())
    );
    let written = ws.records("stories");
    let appended: Vec<&str> = strings(&written[45..], "objectID");
    let mut expected: Vec<&str> = strings(&new_stories, "objectID");
    expected.reverse();
    assert_eq!(appended, expected, "newest first");
}

#[test]
fn next_header_follows_the_next_url_header() {
    let token = token();
    let api = ShapesApi::start(&token);
    let events = api.events_append(60);
    let ws = Workspace::new();
    ws.write(
        &Connection::new(json!({
            "stream": "events",
            "url": format!("{}/v2/events", api.base_url()),
            "next_header": "X-Next-Page-Url",
            "records": "/events",
            "primary_key": "/id",
            "params": {"limit": 25}
        }))
        .allow_private_networks()
        .bearer_from_env(TOKEN_VAR),
    );
    let summary = run(&ws, "next_header", &token);
    let stream = summary.stream("events");
    assert_eq!((stream.records, stream.requests), (60, 3), "{summary:?}");
    assert_eq!(ws.records("events"), events);
    let log = api.requests();
    let afters: Vec<Option<&str>> = log.iter().map(|r| r.query_param("after")).collect();
    assert_eq!(afters, vec![None, Some("evt_000025"), Some("evt_000050")]);
    assert!(log.iter().all(|r| r.query_param("limit") == Some("25")));
    assert!(
        log.iter()
            .all(|r| r.header("authorization") == Some(format!("Bearer {token}").as_str()))
    );
}

#[test]
fn github_pulls_and_commits_incremental() {
    let token = token();
    let api = ShapesApi::start(&token);
    let pulls = api.github_open_pulls(130);
    let commits = api.github_commit(120);
    let ws = Workspace::new();
    ws.write(
        &Connection::new(json!({
            "repository": "octo/hello",
            "base_url": api.base_url(),
            "streams": ["pulls", "commits"]
        }))
        .allow_private_networks()
        .bearer_from_env(TOKEN_VAR),
    );

    let first = run(&ws, "github", &token);
    assert_eq!(first.streams.len(), 2, "{first:?}");
    for stream in ["pulls", "commits"] {
        let summary = first.stream(stream);
        assert_eq!(summary.requests, 2, "two Link pages of 100: {first:?}");
    }
    let newest_first: Vec<Value> = pulls.iter().rev().cloned().collect();
    assert_eq!(ws.records("pulls"), newest_first);
    let commits_newest_first: Vec<Value> = commits.iter().rev().cloned().collect();
    assert_eq!(ws.records("commits"), commits_newest_first);
    let log = api.requests();
    let pull_requests: Vec<_> = log
        .iter()
        .filter(|r| r.path == "/repos/octo/hello/pulls")
        .collect();
    assert_eq!(pull_requests[0].query_param("direction"), Some("desc"));
    assert_eq!(pull_requests[0].query_param("sort"), Some("updated"));
    assert_eq!(pull_requests[1].query_param("page"), Some("2"));

    // Two pulls are updated and three commits made: the next sync reads exactly those,
    // stopping the pulls walk at the saved cursor (one page).
    let last_commit_date = commits[119]["commit"]["committer"]["date"]
        .as_str()
        .expect("date")
        .to_owned();
    api.github_touch_pulls(&[5, 77]);
    let added = api.github_commit(3);
    api.clear_log();
    let second = run(&ws, "github", &token);
    let pulls_summary = second.stream("pulls");
    assert_eq!(
        (
            pulls_summary.records,
            pulls_summary.requests,
            pulls_summary.start.as_str()
        ),
        (2, 1, "incremental"),
        "{second:?}"
    );
    let written = ws.records("pulls");
    let numbers: Vec<u64> = written[130..]
        .iter()
        .map(|p| p["number"].as_u64().expect("number"))
        .collect();
    assert_eq!(numbers, vec![77, 5], "newest update first");
    assert_eq!(written[130]["title"], "Pull 77 (edited)");

    assert_eq!(second.stream("commits").records, 3);
    let log = api.requests();
    let commit_requests: Vec<Option<&str>> = log
        .iter()
        .filter(|r| r.path == "/repos/octo/hello/commits")
        .map(|r| r.query_param("since"))
        .collect();
    assert_eq!(commit_requests, vec![Some(last_commit_date.as_str())]);
    let appended: Vec<Value> = added.into_iter().rev().collect();
    assert_eq!(ws.records("commits")[120..], appended[..]);
}
