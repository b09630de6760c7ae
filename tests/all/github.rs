//! The bundled `github` connector against a GitHub-shaped mock: bearer token from the
//! environment applied by the host, `Link` pagination, incremental `since`, and the token never
//! written anywhere.

use serde_json::{Value, json};
use sluice_tests::connection::Connection;
use sluice_tests::files;
use sluice_tests::mock::{GithubRepo, MockApi};

use crate::{Workspace, sluice};

const TOKEN_VAR: &str = "SLUICE_TEST_GH_TOKEN";
/// More than two pages of GitHub's largest page size (100).
const ISSUES: u64 = 230;

fn token() -> String {
    // Distinctive, so a leak cannot be a coincidence.
    format!("ghp_sluiceTest{:x}Secret", std::process::id())
}

fn mock(token: &str) -> MockApi {
    MockApi::github(GithubRepo {
        owner: "octo".to_owned(),
        repo: "hello".to_owned(),
        issues: ISSUES,
        token: token.to_owned(),
    })
}

fn connection(mock: &MockApi) -> Connection {
    Connection::new(json!({ "repository": "octo/hello", "base_url": mock.base_url() }))
        .allow_private_networks()
        .bearer_from_env(TOKEN_VAR)
}

fn numbers(issues: &[Value]) -> Vec<u64> {
    issues
        .iter()
        .map(|i| i["number"].as_u64().expect("issue number"))
        .collect()
}

/// Runs `sluice run --json` with the token in the child's environment only.
fn run(ws: &Workspace, token: &str, extra: &[&str]) -> (sluice_tests::cli::RunSummary, String) {
    let output = sluice()
        .cmd(ws.run_args("github"))
        .args(extra)
        .env(TOKEN_VAR, token)
        .output();
    output.assert_success();
    let printed = format!("{}{}", output.stdout, output.stderr);
    (output.json(), printed)
}

#[test]
fn github_issues_incremental_with_bearer_token() {
    let token = token();
    let mock = mock(&token);
    let ws = Workspace::new();
    ws.write(&connection(&mock));

    let (first, printed_first) = run(&ws, &token, &[]);
    let stream = first.stream("issues");
    assert_eq!(stream.start, "fresh", "{first:?}");
    assert_eq!(stream.records, ISSUES, "{first:?}");
    assert_eq!(stream.requests, 3, "pages of 100, 100 and 30: {first:?}");

    // Every issue once, oldest update first, exactly as served.
    let written = ws.records("issues");
    assert_eq!(numbers(&written), (1..=ISSUES).collect::<Vec<_>>());
    assert_eq!(written, mock.issues());

    let log = mock.requests();
    assert_eq!(log.len(), 3);
    for request in &log {
        assert_eq!(request.path, "/repos/octo/hello/issues");
        assert_eq!(
            request.header("authorization"),
            Some(format!("Bearer {token}").as_str()),
            "the host applies the bearer token: {request:?}"
        );
        assert_eq!(request.query_param("state"), Some("all"));
        assert_eq!(request.query_param("sort"), Some("updated"));
        assert_eq!(request.query_param("direction"), Some("asc"));
        assert_eq!(
            request.query_param("since"),
            None,
            "a first sync reads everything"
        );
    }
    assert_eq!(log[0].query_param("page"), None);
    assert_eq!(
        log[1].query_param("page"),
        Some("2"),
        "follows Link rel=next"
    );
    assert_eq!(
        log[2].query_param("page"),
        Some("3"),
        "follows Link rel=next"
    );

    // Some issues change upstream; the next run asks only for what changed since the saved
    // cursor and appends exactly those. Run it with the most verbose logging, to catch leaks.
    let last_seen = written.last().expect("issues")["updated_at"]
        .as_str()
        .expect("updated_at")
        .to_owned();
    let touched = [17, 230, 4, 101];
    mock.touch_issues(&touched);
    mock.clear_log();
    let (second, printed_second) = run(&ws, &token, &["-vvv"]);
    let stream = second.stream("issues");
    assert_eq!(stream.start, "incremental", "{second:?}");
    assert_eq!(stream.records, touched.len() as u64, "{second:?}");
    let log = mock.requests();
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0].query_param("since"), Some(last_seen.as_str()));
    assert_eq!(
        log[0].header("authorization"),
        Some(format!("Bearer {token}").as_str())
    );

    let written = ws.records("issues");
    assert_eq!(written.len() as u64, ISSUES + touched.len() as u64);
    let appended = &written[ISSUES as usize..];
    assert_eq!(
        numbers(appended),
        touched,
        "the updated issues, in update order"
    );
    for issue in appended {
        let number = issue["number"].as_u64().expect("number");
        assert_eq!(issue["title"], format!("Issue {number} (edited)"));
    }

    // The token is nowhere: not printed, not in the output, not in the checkpoint store.
    for (what, text) in [
        ("first run", &printed_first),
        ("second run", &printed_second),
    ] {
        assert!(
            !text.contains(&token),
            "the token leaked into the {what}'s stdout/stderr"
        );
    }
    let leaks = files::files_containing(ws.path(), token.as_bytes());
    assert!(leaks.is_empty(), "the token was written to {leaks:?}");
}

/// Without the credential the API answers 401 and the run fails clearly, committing nothing.
#[test]
fn github_without_token_fails_with_401() {
    let token = token();
    let mock = mock(&token);
    let ws = Workspace::new();
    ws.write(
        &Connection::new(json!({ "repository": "octo/hello", "base_url": mock.base_url() }))
            .allow_private_networks(),
    );
    let output = ws.run_output("github");
    let error = output.assert_error();
    assert!(
        error.contains("401"),
        "the error names the status\n{output}"
    );
    assert!(mock.request_count() >= 1);
    assert!(
        mock.requests()
            .iter()
            .all(|r| r.header("authorization").is_none()),
        "no credential was configured"
    );

    // The token variable named but unset: a clear error before any request.
    let mock = self::mock(&token);
    let ws = Workspace::new();
    ws.write(&connection(&mock));
    let output = ws.run_output("github");
    let error = output.assert_error();
    assert!(
        error.contains(TOKEN_VAR),
        "the error names the missing variable\n{output}"
    );
    assert_eq!(mock.request_count(), 0);
}
