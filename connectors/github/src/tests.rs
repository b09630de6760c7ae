//! Native tests against a fake GitHub that speaks the real API's shape.

use sluice_sdk::prelude::*;
use sluice_sdk::testing::{self, Harness};

use crate::GitHub;

fn issue(id: u64, updated_at: &str) -> Value {
    json!({"id": id, "number": id, "title": format!("issue {id}"), "state": "open", "updated_at": updated_at})
}

/// A fake `GET /repos/o/r/issues` over `all` (sorted by `updated_at`), honouring `since` and
/// answering two issues per page with GitHub-style `Link` headers.
fn github(all: &[Value], request: &Request) -> Response {
    let since = request.query_param("since").map(|s| s.into_owned());
    let matching: Vec<&Value> = all
        .iter()
        .filter(|issue| {
            since
                .as_deref()
                .is_none_or(|since| issue["updated_at"].as_str() >= Some(since))
        })
        .collect();
    let page: usize = request
        .query_param("page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(1);
    let per_page = 2;
    let slice: Vec<&Value> = matching
        .iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .copied()
        .collect();
    let pages = matching.len().div_ceil(per_page).max(1);
    let mut response = testing::json_response(json!(slice)).with_url(request.full_url());
    let link = |page: usize, rel: &str| {
        let since = since
            .as_deref()
            .map(|s| format!("&since={s}"))
            .unwrap_or_default();
        format!(
            "<https://api.github.com/repositories/42/issues?state=all&sort=updated&direction=asc&per_page=100{since}&page={page}>; rel=\"{rel}\""
        )
    };
    if page < pages {
        response = response.with_header(
            "link",
            format!("{}, {}", link(page + 1, "next"), link(pages, "last")),
        );
    }
    response
}

fn config() -> Value {
    json!({"repository": "octo/hello"})
}

#[test]
fn spec_advertises_bearer_and_the_rate_limit() {
    let spec = testing::spec::<GitHub>();
    assert_eq!(spec.name, "github");
    assert_eq!(spec.auth_schemes, vec![AuthScheme::Bearer]);
    assert_eq!(
        spec.rate_limit,
        Some(RateLimit::per_hour(5000).with_burst(100))
    );
    assert_eq!(spec.config_schema["required"], json!(["repository"]));
}

#[test]
fn discover_declares_the_api_host_and_the_streams() {
    let only_issues = testing::discover::<GitHub>(&config()).unwrap();
    let names: Vec<&str> = only_issues
        .streams
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(
        names,
        vec!["issues"],
        "issues only, unless `streams` says more"
    );
    let all = json!({"repository": "octo/hello", "streams": ["issues", "pulls", "commits"]});
    let catalog = testing::discover::<GitHub>(&all).unwrap();
    assert_eq!(catalog.allowed_hosts, vec!["api.github.com"]);
    let issues = &catalog.streams[0];
    assert_eq!(
        (issues.name.as_str(), issues.primary_key.as_slice()),
        ("issues", &["/id".to_owned()][..])
    );
    assert_eq!(issues.cursor_field.as_deref(), Some("/updated_at"));
    assert_eq!(
        issues.sync_modes,
        vec![SyncMode::FullRefresh, SyncMode::Incremental]
    );
    let others: Vec<(&str, &str, Option<&str>)> = catalog.streams[1..]
        .iter()
        .map(|s| {
            (
                s.name.as_str(),
                s.primary_key[0].as_str(),
                s.cursor_field.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        others,
        vec![
            ("pulls", "/id", Some("/updated_at")),
            ("commits", "/sha", Some("/commit/committer/date")),
        ]
    );

    let enterprise = json!({"repository": "o/r", "base_url": "http://127.0.0.1:8123/api/v3"});
    assert_eq!(
        testing::discover::<GitHub>(&enterprise)
            .unwrap()
            .allowed_hosts,
        vec!["127.0.0.1:8123"]
    );
}

#[test]
fn config_errors() {
    let message = |config: Value| match testing::check::<GitHub>(&config) {
        Err(Error::InvalidConfig(message)) => message,
        other => panic!("expected invalid-config, got {other:?}"),
    };
    for repository in ["octo", "octo/hello/x", "../etc", "octo/hello?x=1", "/hello"] {
        assert_eq!(
            message(json!({"repository": repository})),
            format!(
                "`repository` is `{repository}`; write it as `owner/name`, like `rust-lang/rust`"
            )
        );
    }
    assert_eq!(
        message(json!({"repository": "o/r", "start_date": "2024-01-31T00:00:00+01:00"})),
        "`start_date` is `2024-01-31T00:00:00+01:00`; use a UTC date like `2024-01-31` or a time like `2024-01-31T12:00:00Z`"
    );
    assert_eq!(
        message(json!({"repo": "o/r"})),
        "unknown field `repo`, expected one of `repository`, `base_url`, `start_date`, `streams`; see the connector's config schema"
    );
    assert_eq!(
        message(json!({"repository": "o/r", "streams": ["issues", "releases"]})),
        "`streams` has `releases`; the github connector has: issues, pulls, commits"
    );
    assert_eq!(
        message(json!({"repository": "o/r", "streams": ["pulls", "pulls"]})),
        "`streams` lists `pulls` twice; list each stream once"
    );
    assert_eq!(
        message(json!({"repository": "o/r", "streams": []})),
        "`streams` is empty; list at least one of: issues, pulls, commits"
    );
    assert!(
        testing::check::<GitHub>(
            &json!({"repository": "rust-lang/rust.vim", "start_date": "2024-01-31", "streams": ["commits"]})
        )
        .is_ok()
    );
}

#[test]
fn first_request_matches_the_api() {
    let run = Harness::<GitHub>::new(config(), "issues")
        .run(|request| github(&[], request))
        .unwrap();
    let request = &run.steps[0].request;
    assert_eq!(
        request.full_url(),
        "https://api.github.com/repos/octo/hello/issues?state=all&sort=updated&direction=asc&per_page=100"
    );
    assert_eq!(
        request.header_value("accept"),
        Some("application/vnd.github+json")
    );
    assert_eq!(
        request.header_value("x-github-api-version"),
        Some("2022-11-28")
    );
    assert_eq!(request.header_value("user-agent"), Some("sluice"));
    assert!(request.authenticate);
    assert_eq!(run.state, Some(json!({})), "no issue, no cursor");
}

#[test]
fn reads_every_page_and_resumes_from_updated_at() {
    let mut all = vec![
        issue(1, "2024-01-01T00:00:00Z"),
        issue(2, "2024-01-02T00:00:00Z"),
        issue(3, "2024-01-03T00:00:00Z"),
        issue(4, "2024-01-04T00:00:00Z"),
        issue(5, "2024-01-05T00:00:00Z"),
    ];
    let first = Harness::<GitHub>::new(config(), "issues")
        .run(|request| github(&all, request))
        .unwrap();
    assert_eq!(first.records.len(), 5);
    assert_eq!(first.steps.len(), 3);
    assert_eq!(
        first.steps[1].request.query_param("page").as_deref(),
        Some("2")
    );
    assert!(
        first.steps[1].request.authenticate,
        "Link pages keep the credential and headers"
    );
    assert_eq!(
        first.steps[1].request.header_value("user-agent"),
        Some("sluice")
    );
    assert_eq!(first.state, Some(json!({"cursor": "2024-01-05T00:00:00Z"})));

    all.push(issue(2, "2024-02-01T00:00:00Z"));
    let second = Harness::<GitHub>::new(config(), "issues")
        .with_state(first.state.unwrap())
        .run(|request| github(&all, request))
        .unwrap();
    assert_eq!(
        second.steps[0].request.query_param("since").as_deref(),
        Some("2024-01-05T00:00:00Z")
    );
    assert_eq!(
        second.records,
        vec![issue(2, "2024-02-01T00:00:00Z")],
        "issue 5 is the boundary and is not repeated"
    );
    assert_eq!(
        second.state,
        Some(json!({"cursor": "2024-02-01T00:00:00Z"}))
    );
}

#[test]
fn start_date_applies_only_without_a_saved_cursor() {
    let with_start = json!({"repository": "octo/hello", "start_date": "2024-01-03"});
    let run = Harness::<GitHub>::new(with_start.clone(), "issues")
        .run(|request| github(&[], request))
        .unwrap();
    assert_eq!(
        run.steps[0].request.query_param("since").as_deref(),
        Some("2024-01-03T00:00:00Z")
    );

    let run = Harness::<GitHub>::new(with_start, "issues")
        .with_state(json!({"cursor": "2024-03-01T00:00:00Z"}))
        .run(|request| github(&[], request))
        .unwrap();
    assert_eq!(
        run.steps[0].request.query_param("since").as_deref(),
        Some("2024-03-01T00:00:00Z")
    );
}

#[test]
fn api_errors_are_unexpected_responses() {
    let harness = Harness::<GitHub>::new(config(), "issues");
    let err = harness
        .run(|_| testing::json_response_with_status(404, json!({"message": "Not Found"})))
        .unwrap_err();
    assert_eq!(
        err,
        Error::UnexpectedResponse(r#"HTTP 404: {"message":"Not Found"}"#.into())
    );
    let err = harness
        .run(|_| testing::json_response(json!({"message": "Moved"})))
        .unwrap_err();
    assert!(
        matches!(err, Error::UnexpectedResponse(ref m) if m.contains("found an object")),
        "{err}"
    );
    let err = Harness::<GitHub>::new(config(), "releases")
        .run(|_| Response::new(200))
        .unwrap_err();
    assert_eq!(
        err,
        Error::InvalidConfig(
            "unknown stream `releases`; the github connector has: issues, pulls, commits".into()
        )
    );
}

/// Recorded-shape pages of `GET /repos/octo/hello/pulls?state=all&sort=updated&direction=desc`.
const PULLS_PAGE_1: &str = include_str!("../tests/fixtures/pulls_page1.json");
const PULLS_PAGE_2: &str = include_str!("../tests/fixtures/pulls_page2.json");
/// Recorded-shape pages of `GET /repos/octo/hello/commits`.
const COMMITS_PAGE_1: &str = include_str!("../tests/fixtures/commits_page1.json");
const COMMITS_PAGE_2: &str = include_str!("../tests/fixtures/commits_page2.json");

fn fixture(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

/// Serves two recorded pages, the first with GitHub's `Link` header to the second (GitHub
/// links to `/repositories/{id}/…` with the whole query).
fn two_pages(request: &Request, path: &str, first: &str, second: &str) -> Response {
    match request.query_param("page").as_deref() {
        None => testing::json_response(fixture(first))
            .with_url(request.full_url())
            .with_header(
                "link",
                format!(
                    "<https://api.github.com/repositories/42/{path}&page=2>; rel=\"next\", \
                     <https://api.github.com/repositories/42/{path}&page=2>; rel=\"last\""
                ),
            ),
        Some("2") => testing::json_response(fixture(second))
            .with_url(request.full_url())
            .with_header(
                "link",
                format!(
                    "<https://api.github.com/repositories/42/{path}&page=1>; rel=\"prev\", \
                     <https://api.github.com/repositories/42/{path}&page=1>; rel=\"first\""
                ),
            ),
        Some(other) => panic!("unexpected page {other}"),
    }
}

const PULLS_QUERY: &str = "pulls?state=all&sort=updated&direction=desc&per_page=100";

fn numbers_of(records: &[Value]) -> Vec<u64> {
    records
        .iter()
        .map(|r| r["number"].as_u64().unwrap())
        .collect()
}

#[test]
fn pulls_read_newest_update_first_across_link_pages() {
    let run = Harness::<GitHub>::new(config(), "pulls")
        .run(|request| two_pages(request, PULLS_QUERY, PULLS_PAGE_1, PULLS_PAGE_2))
        .unwrap();
    let first = &run.steps[0].request;
    assert_eq!(
        first.full_url(),
        "https://api.github.com/repos/octo/hello/pulls?state=all&sort=updated&direction=desc&per_page=100"
    );
    assert!(first.authenticate);
    assert_eq!(
        first.header_value("x-github-api-version"),
        Some("2022-11-28")
    );
    assert_eq!(
        run.steps[1].request.url,
        "https://api.github.com/repositories/42/pulls?state=all&sort=updated&direction=desc&per_page=100&page=2"
    );
    assert!(run.steps[1].request.authenticate);
    assert_eq!(numbers_of(&run.records), vec![12, 9, 11, 10, 8]);
    assert_eq!(run.records[1]["merged_at"], "2024-03-08T10:00:00Z");
    assert_eq!(run.records[0]["head"]["ref"], "feature");
    // Mid-run the mark has not moved; the running maximum is the newest update.
    assert_eq!(
        run.steps[0].state,
        Some(json!({"max": "2024-03-09T10:00:00Z"}))
    );
    assert!(run.steps[1].next.is_done());
    assert_eq!(run.state, Some(json!({"cursor": "2024-03-09T10:00:00Z"})));
}

#[test]
fn pulls_stop_at_the_saved_cursor_without_reading_further_pages() {
    let run = Harness::<GitHub>::new(config(), "pulls")
        .with_state(json!({"cursor": "2024-03-08T10:00:00Z"}))
        .run(|request| two_pages(request, PULLS_QUERY, PULLS_PAGE_1, PULLS_PAGE_2))
        .unwrap();
    assert_eq!(
        run.steps.len(),
        1,
        "pull 9 is at the cursor: the rest is older"
    );
    assert_eq!(numbers_of(&run.records), vec![12]);
    assert_eq!(run.state, Some(json!({"cursor": "2024-03-09T10:00:00Z"})));

    // Nothing new: the first pull request is the one at the cursor.
    let run = Harness::<GitHub>::new(config(), "pulls")
        .with_state(json!({"cursor": "2024-03-09T10:00:00Z"}))
        .run(|request| two_pages(request, PULLS_QUERY, PULLS_PAGE_1, PULLS_PAGE_2))
        .unwrap();
    assert!(run.records.is_empty());
    assert_eq!(run.state, Some(json!({"cursor": "2024-03-09T10:00:00Z"})));
}

#[test]
fn pulls_honour_start_date_on_a_first_run_only() {
    let with_start = json!({"repository": "octo/hello", "start_date": "2024-03-06T10:00:00Z"});
    let run = Harness::<GitHub>::new(with_start.clone(), "pulls")
        .run(|request| two_pages(request, PULLS_QUERY, PULLS_PAGE_1, PULLS_PAGE_2))
        .unwrap();
    assert_eq!(
        numbers_of(&run.records),
        vec![12, 9, 11, 10],
        "updated at the start date is included, before it is not"
    );
    assert_eq!(run.steps.len(), 2);

    let resumed = Harness::<GitHub>::new(with_start, "pulls")
        .with_state(json!({"cursor": "2024-03-01T00:00:00Z"}))
        .run(|request| two_pages(request, PULLS_QUERY, PULLS_PAGE_1, PULLS_PAGE_2))
        .unwrap();
    assert_eq!(
        numbers_of(&resumed.records),
        vec![12, 9, 11, 10, 8],
        "a saved cursor replaces the start date"
    );
}

#[test]
fn pulls_resume_after_a_crash_keeps_the_original_filter() {
    // The host committed page 1 with `{"cursor": old, "max": newest}` and crashed before
    // page 2 was read: it re-sends the pending request with that state.
    let pending = Request::get(
        "https://api.github.com/repositories/42/pulls?state=all&sort=updated&direction=desc&per_page=100&page=2",
    )
    .authenticated();
    let run = Harness::<GitHub>::new(config(), "pulls")
        .with_state(json!({"cursor": "2024-03-05T10:00:00Z", "max": "2024-03-09T10:00:00Z"}))
        .resume(pending, |request| {
            two_pages(request, PULLS_QUERY, PULLS_PAGE_1, PULLS_PAGE_2)
        })
        .unwrap();
    assert_eq!(
        numbers_of(&run.records),
        vec![10],
        "pull 8 is at the old cursor"
    );
    assert_eq!(run.state, Some(json!({"cursor": "2024-03-09T10:00:00Z"})));
}

const COMMITS_QUERY: &str = "commits?per_page=100";

#[test]
fn commits_follow_link_pages_and_save_the_newest_committer_date() {
    let run = Harness::<GitHub>::new(config(), "commits")
        .run(|request| two_pages(request, COMMITS_QUERY, COMMITS_PAGE_1, COMMITS_PAGE_2))
        .unwrap();
    assert_eq!(
        run.steps[0].request.full_url(),
        "https://api.github.com/repos/octo/hello/commits?per_page=100"
    );
    assert_eq!(
        run.steps[1].request.full_url(),
        "https://api.github.com/repositories/42/commits?per_page=100&page=2"
    );
    let shas: Vec<&str> = run
        .records
        .iter()
        .map(|c| c["sha"].as_str().unwrap())
        .collect();
    assert_eq!(
        shas,
        vec![
            "7638417db6d59f3c431d3e1f261cc637155684cd",
            "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1",
            "b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2",
        ]
    );
    assert_eq!(run.records[1]["commit"]["message"], "Add retries");
    assert_eq!(run.state, Some(json!({"cursor": "2024-03-09T12:00:00Z"})));
}

#[test]
fn commits_send_since_and_drop_the_boundary_commit() {
    let run = Harness::<GitHub>::new(config(), "commits")
        .with_state(json!({"cursor": "2024-03-08T12:00:00Z"}))
        .run(|request| {
            assert_eq!(
                request.query_param("since").as_deref(),
                Some("2024-03-08T12:00:00Z")
            );
            // GitHub's `since` is inclusive: the commit at the cursor comes back.
            testing::json_response(json!(fixture(COMMITS_PAGE_1)))
        })
        .unwrap();
    assert_eq!(run.records.len(), 1);
    assert_eq!(
        run.records[0]["sha"],
        "7638417db6d59f3c431d3e1f261cc637155684cd"
    );
    assert_eq!(run.state, Some(json!({"cursor": "2024-03-09T12:00:00Z"})));

    let with_start = json!({"repository": "octo/hello", "start_date": "2024-03-01"});
    let run = Harness::<GitHub>::new(with_start, "commits")
        .run(|_| testing::json_response(json!([])))
        .unwrap();
    assert_eq!(
        run.steps[0].request.query_param("since").as_deref(),
        Some("2024-03-01T00:00:00Z")
    );
    assert_eq!(run.state, Some(json!({})));
}
