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
fn discover_declares_the_api_host_and_the_issues_stream() {
    let catalog = testing::discover::<GitHub>(&config()).unwrap();
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
        "unknown field `repo`, expected one of `repository`, `base_url`, `start_date`; see the connector's config schema"
    );
    assert!(
        testing::check::<GitHub>(
            &json!({"repository": "rust-lang/rust.vim", "start_date": "2024-01-31"})
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
    let err = Harness::<GitHub>::new(config(), "pulls")
        .run(|_| Response::new(200))
        .unwrap_err();
    assert_eq!(
        err,
        Error::InvalidConfig("unknown stream `pulls`; the github connector has: issues".into())
    );
}
