//! Native tests against Algolia-shaped responses: recorded pages (`tests/fixtures/`) and a
//! fake `search_by_date` that filters and caps pagination as Algolia does.

use sluice_sdk::prelude::*;
use sluice_sdk::testing::{self, Harness};

use crate::HackerNews;

const STORIES_PAGE_0: &str = include_str!("../tests/fixtures/stories_page0.json");
const STORIES_PAGE_1: &str = include_str!("../tests/fixtures/stories_page1.json");

fn fixture(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

fn recorded(request: &Request) -> Response {
    match request.query_param("page").as_deref() {
        Some("0") => testing::json_response(fixture(STORIES_PAGE_0)),
        Some("1") => testing::json_response(fixture(STORIES_PAGE_1)),
        other => panic!("unexpected page {other:?}"),
    }
}

fn object_ids(records: &[Value]) -> Vec<&str> {
    records
        .iter()
        .map(|r| r["objectID"].as_str().unwrap())
        .collect()
}

#[test]
fn spec_and_discover() {
    let spec = testing::spec::<HackerNews>();
    assert_eq!(spec.name, "hackernews");
    assert!(spec.auth_schemes.is_empty(), "the API is public");
    assert_eq!(
        spec.rate_limit,
        Some(RateLimit::per_hour(10_000).with_burst(10))
    );
    let catalog = testing::discover::<HackerNews>(&json!({})).unwrap();
    assert_eq!(catalog.allowed_hosts, vec!["hn.algolia.com"]);
    let names: Vec<&str> = catalog.streams.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        vec!["stories", "comments", "ask_hn", "show_hn", "jobs"]
    );
    assert!(catalog.streams.iter().all(|s| {
        s.primary_key == ["/objectID"] && s.cursor_field.as_deref() == Some("/created_at_i")
    }));
    assert_eq!(
        testing::discover::<HackerNews>(&json!({"base_url": "http://127.0.0.1:7700"}))
            .unwrap()
            .allowed_hosts,
        vec!["127.0.0.1:7700"]
    );
}

#[test]
fn config_errors() {
    let message = |config: Value| match testing::check::<HackerNews>(&config) {
        Err(Error::InvalidConfig(message)) => message,
        other => panic!("expected invalid-config, got {other:?}"),
    };
    assert_eq!(
        message(json!({"hits_per_page": 1001})),
        "`hits_per_page` is 1001; Algolia returns 1 to 1000 hits per request"
    );
    assert_eq!(
        message(json!({"start_date": "last week"})),
        "`start_date` is `last week`; use a UTC date like `2024-01-31` or a time like `2024-01-31T12:00:00Z`"
    );
    assert!(message(json!({"tags": "story"})).contains("unknown field `tags`"));
    let err = Harness::<HackerNews>::new(json!({}), "polls")
        .run(|_| Response::new(200))
        .unwrap_err();
    assert_eq!(
        err,
        Error::InvalidConfig(
            "unknown stream `polls`; the hackernews connector has: stories, comments, ask_hn, show_hn, jobs"
                .into()
        )
    );
}

#[test]
fn recorded_pages_are_read_by_page_number_until_nb_pages() {
    let run = Harness::<HackerNews>::new(json!({"hits_per_page": 3}), "stories")
        .run(recorded)
        .unwrap();
    let urls: Vec<String> = run.requests().map(Request::full_url).collect();
    assert_eq!(
        urls,
        vec![
            "https://hn.algolia.com/api/v1/search_by_date?tags=story&hitsPerPage=3&page=0",
            "https://hn.algolia.com/api/v1/search_by_date?tags=story&hitsPerPage=3&page=1",
        ]
    );
    assert!(run.requests().all(|r| !r.authenticate), "no credential");
    assert_eq!(
        object_ids(&run.records),
        vec!["39655010", "39655002", "39654990", "39654977", "39654960"]
    );
    let first = &run.records[0];
    assert_eq!(first["title"], "Show HN: A tiny sandbox for API connectors");
    assert_eq!(first["points"], 142);
    assert!(
        first.get("_highlightResult").is_none(),
        "search decoration is dropped"
    );
    assert_eq!(
        run.records[4]["story_text"],
        "We are evaluating Airbyte and Singer; what else is out there?"
    );
    assert_eq!(run.steps[0].state, Some(json!({"max": 1_709_978_400})));
    assert_eq!(run.state, Some(json!({"cursor": 1_709_978_400})));
}

#[test]
fn incremental_and_start_date_filters() {
    let config = json!({"start_date": "2024-03-09", "query": "rust", "hits_per_page": 3});
    let run = Harness::<HackerNews>::new(config.clone(), "stories")
        .run(recorded)
        .unwrap();
    assert_eq!(
        run.steps[0].request.full_url(),
        "https://hn.algolia.com/api/v1/search_by_date?tags=story&query=rust&hitsPerPage=3&page=0&numericFilters=created_at_i%3E%3D1709942400"
    );
    assert_eq!(
        run.steps[1]
            .request
            .query_param("numericFilters")
            .as_deref(),
        Some("created_at_i>=1709942400"),
        "the filter stays on every page"
    );

    // A saved cursor replaces the start date; a hit at the cursor (Algolia's filter would not
    // return it, a recorded page does) is dropped.
    let run = Harness::<HackerNews>::new(config, "stories")
        .with_state(json!({"cursor": 1_709_977_800}))
        .run(recorded)
        .unwrap();
    assert_eq!(
        run.steps[0]
            .request
            .query_param("numericFilters")
            .as_deref(),
        Some("created_at_i>1709977800")
    );
    assert_eq!(object_ids(&run.records), vec!["39655010", "39655002"]);
    assert_eq!(run.state, Some(json!({"cursor": 1_709_978_400})));
}

/// A fake `search_by_date` over `items` (any order): applies the `created_at_i` filters,
/// sorts newest first, and pages like Algolia, serving at most `cap` hits of a search.
fn algolia(items: &[Value], cap: u64, request: &Request) -> Response {
    let filters = request
        .query_param("numericFilters")
        .map(|f| f.into_owned())
        .unwrap_or_default();
    let keep = |created: i64| {
        filters.split(',').filter(|f| !f.is_empty()).all(|f| {
            let f = f.strip_prefix("created_at_i").unwrap();
            let (op, n) = f.split_at(f.find(|c: char| c.is_ascii_digit()).unwrap());
            let n: i64 = n.parse().unwrap();
            match op {
                ">" => created > n,
                ">=" => created >= n,
                "<" => created < n,
                "<=" => created <= n,
                other => panic!("operator {other}"),
            }
        })
    };
    let mut matching: Vec<&Value> = items
        .iter()
        .filter(|i| keep(i["created_at_i"].as_i64().unwrap()))
        .collect();
    matching.sort_by_key(|i| std::cmp::Reverse(i["created_at_i"].as_i64().unwrap()));
    let per_page: u64 = request.query_param("hitsPerPage").unwrap().parse().unwrap();
    let page: u64 = request.query_param("page").unwrap().parse().unwrap();
    let readable = (matching.len() as u64).min(cap);
    let hits: Vec<&Value> = matching
        .iter()
        .take(readable as usize)
        .skip((page * per_page) as usize)
        .take(per_page as usize)
        .copied()
        .collect();
    testing::json_response(json!({
        "hits": hits,
        "nbHits": matching.len(),
        "page": page,
        "nbPages": readable.div_ceil(per_page),
        "hitsPerPage": per_page,
        "exhaustiveNbHits": true,
        "query": "",
        "params": ""
    }))
}

fn item(id: u64, created: i64) -> Value {
    json!({"objectID": id.to_string(), "created_at_i": created, "author": "pg", "_tags": ["comment"]})
}

#[test]
fn beyond_the_pagination_cap_the_next_window_ends_at_the_oldest_second_read() {
    // 10 comments; two share second 1006, right at the edge of the first window.
    let created = [1010, 1009, 1008, 1007, 1006, 1006, 1005, 1004, 1003, 1002];
    let items: Vec<Value> = created
        .iter()
        .zip(1..)
        .map(|(&c, id)| item(id, c))
        .collect();
    let run = Harness::<HackerNews>::new(json!({"hits_per_page": 2}), "comments")
        .run(|request| algolia(&items, 5, request))
        .unwrap();
    let positions: Vec<(Option<String>, String)> = run
        .requests()
        .map(|r| {
            (
                r.query_param("numericFilters").map(|f| f.into_owned()),
                r.query_param("page").unwrap().into_owned(),
            )
        })
        .collect();
    let window = |f: &str| Some(f.to_owned());
    assert_eq!(
        positions,
        vec![
            (None, "0".to_owned()),
            (None, "1".to_owned()),
            (None, "2".to_owned()),
            (window("created_at_i<=1006"), "0".to_owned()),
            (window("created_at_i<=1006"), "1".to_owned()),
            (window("created_at_i<=1006"), "2".to_owned()),
            (window("created_at_i<=1003"), "0".to_owned()),
        ]
    );
    let mut ids: Vec<u64> = object_ids(&run.records)
        .iter()
        .map(|id| id.parse().unwrap())
        .collect();
    assert_eq!(
        ids.len(),
        12,
        "the first item of each boundary second is read twice"
    );
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids, (1..=10).collect::<Vec<_>>(), "no item is missed");
    assert_eq!(run.state, Some(json!({"cursor": 1010})));

    // The next sync reads only what is newer, with the cursor as lower bound of every window.
    let mut more = items.clone();
    more.extend((11..=17).map(|id| item(id, 1000 + id as i64 * 2)));
    let second = Harness::<HackerNews>::new(json!({"hits_per_page": 2}), "comments")
        .with_state(run.state.unwrap())
        .run(|request| algolia(&more, 4, request))
        .unwrap();
    let mut ids: Vec<&str> = object_ids(&second.records);
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids, vec!["11", "12", "13", "14", "15", "16", "17"]);
    let last = second.requests().last().unwrap();
    assert_eq!(
        last.query_param("numericFilters").as_deref(),
        Some("created_at_i>1010,created_at_i<=1028")
    );
    assert_eq!(second.state, Some(json!({"cursor": 1034})));
}

#[test]
fn a_capped_window_of_one_second_moves_on_instead_of_looping() {
    // Six items in the same second and a cap of two: the window cannot shrink by time.
    let mut items: Vec<Value> = (1..=6).map(|id| item(id, 500)).collect();
    items.push(item(7, 499));
    let run = Harness::<HackerNews>::new(json!({"hits_per_page": 2}), "comments")
        .with_max_pages(10)
        .run(|request| algolia(&items, 2, request))
        .unwrap();
    let filters: Vec<Option<String>> = run
        .requests()
        .map(|r| r.query_param("numericFilters").map(|f| f.into_owned()))
        .collect();
    assert_eq!(
        filters,
        vec![
            None,
            Some("created_at_i<=500".to_owned()),
            Some("created_at_i<500".to_owned()),
        ]
    );
    assert_eq!(
        object_ids(run.steps.last().map(|s| &s.records[..]).unwrap()),
        vec!["7"]
    );
}

#[test]
fn resume_re_sends_the_pending_window_page() {
    let pending = Request::get("https://hn.algolia.com/api/v1/search_by_date")
        .query("tags", "story")
        .query("hitsPerPage", 3)
        .query("page", 1);
    let run = Harness::<HackerNews>::new(json!({"hits_per_page": 3}), "stories")
        .with_state(json!({"max": 1_709_978_400}))
        .resume(pending, recorded)
        .unwrap();
    assert_eq!(object_ids(&run.records), vec!["39654977", "39654960"]);
    assert_eq!(run.state, Some(json!({"cursor": 1_709_978_400})));
}

#[test]
fn errors_are_unexpected_responses() {
    let err = Harness::<HackerNews>::new(json!({}), "stories")
        .run(|_| {
            testing::json_response_with_status(
                400,
                json!({"message": "Invalid syntax for numeric condition", "status": 400}),
            )
        })
        .unwrap_err();
    assert_eq!(
        err,
        Error::UnexpectedResponse(
            r#"HTTP 400: {"message":"Invalid syntax for numeric condition","status":400}"#.into()
        )
    );
    let err = Harness::<HackerNews>::new(json!({}), "stories")
        .run(|_| {
            testing::json_response(
                json!({"hits": [1], "nbHits": 1, "page": 0, "nbPages": 1, "hitsPerPage": 100}),
            )
        })
        .unwrap_err();
    assert_eq!(
        err,
        Error::UnexpectedResponse("a hit is a number, expected an object".into())
    );
}

#[test]
fn an_estimated_nb_hits_does_not_end_the_stream_early() {
    // The last page is full and `nbHits` is an estimate that says nothing is left: look again,
    // in the window below the oldest second read.
    let page = |hits: Value, nb_hits: u64| json!({"hits": hits, "nbHits": nb_hits, "page": 0, "nbPages": 1, "hitsPerPage": 2, "exhaustiveNbHits": false});
    let run = Harness::<HackerNews>::new(json!({"hits_per_page": 2}), "stories")
        .run(
            |request| match request.query_param("numericFilters").as_deref() {
                None => testing::json_response(page(json!([item(3, 30), item(2, 20)]), 2)),
                Some("created_at_i<=20") => {
                    testing::json_response(page(json!([item(2, 20), item(1, 10)]), 2))
                }
                Some("created_at_i<=10") => testing::json_response(page(json!([item(1, 10)]), 1)),
                Some(other) => panic!("unexpected filter {other}"),
            },
        )
        .unwrap();
    assert_eq!(run.steps.len(), 3);
    assert_eq!(object_ids(&run.records), vec!["3", "2", "2", "1", "1"]);
    assert_eq!(run.state, Some(json!({"cursor": 30})));

    // An exact `nbHits` is trusted.
    let run = Harness::<HackerNews>::new(json!({"hits_per_page": 2}), "stories")
        .run(|_| {
            let mut exact = page(json!([item(3, 30), item(2, 20)]), 2);
            exact["exhaustiveNbHits"] = json!(true);
            testing::json_response(exact)
        })
        .unwrap();
    assert_eq!(run.steps.len(), 1);
}
