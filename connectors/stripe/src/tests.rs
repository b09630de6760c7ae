//! Native tests against Stripe-shaped list responses (`tests/fixtures/`).

use sluice_sdk::prelude::*;
use sluice_sdk::testing::{self, Harness};

use crate::Stripe;

const CUSTOMERS_PAGE_1: &str = include_str!("../tests/fixtures/customers_page1.json");
const CUSTOMERS_PAGE_2: &str = include_str!("../tests/fixtures/customers_page2.json");
const CHARGES: &str = include_str!("../tests/fixtures/charges.json");
const ERROR_401: &str = include_str!("../tests/fixtures/error_401.json");

fn fixture(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

/// `GET /v1/customers`: page 1 without `starting_after`, page 2 after its last customer.
fn customers(request: &Request) -> Response {
    match request.query_param("starting_after").as_deref() {
        None => testing::json_response(fixture(CUSTOMERS_PAGE_1)),
        Some("cus_PxP8vB2nTq7") => testing::json_response(fixture(CUSTOMERS_PAGE_2)),
        Some(other) => panic!("unexpected starting_after={other}"),
    }
}

fn ids(records: &[Value]) -> Vec<&str> {
    records.iter().map(|r| r["id"].as_str().unwrap()).collect()
}

#[test]
fn spec_and_discover() {
    let spec = testing::spec::<Stripe>();
    assert_eq!(spec.name, "stripe");
    assert_eq!(spec.auth_schemes, vec![AuthScheme::Bearer]);
    assert_eq!(
        spec.rate_limit,
        Some(RateLimit::per_second(25).with_burst(25))
    );

    let catalog = testing::discover::<Stripe>(&json!({})).unwrap();
    assert_eq!(catalog.allowed_hosts, vec!["api.stripe.com"]);
    let streams: Vec<(&str, &str, Option<&str>)> = catalog
        .streams
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
        streams,
        vec![
            ("customers", "/id", Some("/created")),
            ("charges", "/id", Some("/created")),
            ("invoices", "/id", Some("/created")),
        ]
    );
    assert_eq!(
        catalog.streams[1].json_schema["properties"]["object"],
        json!({"const": "charge"})
    );

    let local = json!({"base_url": "http://127.0.0.1:4242"});
    assert_eq!(
        testing::discover::<Stripe>(&local).unwrap().allowed_hosts,
        vec!["127.0.0.1:4242"]
    );
}

#[test]
fn config_errors() {
    let message = |config: Value| match testing::check::<Stripe>(&config) {
        Err(Error::InvalidConfig(message)) => message,
        other => panic!("expected invalid-config, got {other:?}"),
    };
    assert_eq!(
        message(json!({"page_size": 0})),
        "`page_size` is 0; Stripe returns 1 to 100 objects per request"
    );
    assert_eq!(
        message(json!({"page_size": 101})),
        "`page_size` is 101; Stripe returns 1 to 100 objects per request"
    );
    assert_eq!(
        message(json!({"start_date": "2024-02-30"})),
        "`start_date` is `2024-02-30`; use a UTC date like `2024-01-31` or a time like `2024-01-31T12:00:00Z`"
    );
    assert_eq!(
        message(json!({"account": "1032D82eZvKYlo2C"})),
        "`account` is `1032D82eZvKYlo2C`; a Stripe account id looks like `acct_1032D82eZvKYlo2C`"
    );
    assert!(message(json!({"base_url": "api.stripe.com"})).contains("not a usable base URL"));
    assert!(message(json!({"secret_key": "sk_test_x"})).contains("unknown field `secret_key`"));
    assert!(
        testing::check::<Stripe>(
            &json!({"page_size": 10, "start_date": "2024-01-31T12:00:00Z", "api_version": "2024-06-20", "account": "acct_1"})
        )
        .is_ok()
    );
}

#[test]
fn pages_with_starting_after_until_has_more_is_false() {
    let run = Harness::<Stripe>::new(json!({}), "customers")
        .run(customers)
        .unwrap();
    let requests: Vec<String> = run.requests().map(Request::full_url).collect();
    assert_eq!(
        requests,
        vec![
            "https://api.stripe.com/v1/customers?limit=100",
            "https://api.stripe.com/v1/customers?limit=100&starting_after=cus_PxP8vB2nTq7",
        ]
    );
    assert!(run.requests().all(|r| r.authenticate));
    assert_eq!(
        ids(&run.records),
        vec!["cus_PxQ3aLw9Kz1", "cus_PxP8vB2nTq7", "cus_PwZ1mK4sYe2"]
    );
    assert_eq!(run.records[0]["email"], "jenny.rosen@example.com");
    assert_eq!(run.steps[0].state, Some(json!({"max": 1_709_300_000})));
    assert_eq!(run.state, Some(json!({"cursor": 1_709_300_000})));
}

#[test]
fn incremental_sync_sends_created_gt_the_cursor() {
    let run = Harness::<Stripe>::new(json!({"page_size": 2}), "charges")
        .with_state(json!({"cursor": 1_709_200_000}))
        .run(|request| {
            assert_eq!(
                request.full_url(),
                "https://api.stripe.com/v1/charges?limit=2&created%5Bgt%5D=1709200000"
            );
            testing::json_response(fixture(CHARGES))
        })
        .unwrap();
    assert_eq!(
        ids(&run.records),
        vec!["ch_3OqK1x2eZvKYlo2C0abc", "ch_3OqJ9z2eZvKYlo2C1def"]
    );
    assert_eq!(run.records[1]["status"], "failed");
    assert_eq!(run.state, Some(json!({"cursor": 1_709_300_500})));

    // Nothing newer: the mark stays.
    let run = Harness::<Stripe>::new(json!({}), "charges")
        .with_state(json!({"cursor": 1_709_300_500}))
        .run(|_| {
            testing::json_response(
                json!({"object": "list", "data": [], "has_more": false, "url": "/v1/charges"}),
            )
        })
        .unwrap();
    assert!(run.records.is_empty());
    assert_eq!(run.state, Some(json!({"cursor": 1_709_300_500})));
}

#[test]
fn start_date_headers_and_resume() {
    let config = json!({
        "start_date": "2024-02-29",
        "api_version": "2024-06-20",
        "account": "acct_1032D82eZvKYlo2C"
    });
    let run = Harness::<Stripe>::new(config.clone(), "customers")
        .run(customers)
        .unwrap();
    let first = &run.steps[0].request;
    assert_eq!(
        first.query_param("created[gte]").as_deref(),
        Some("1709164800")
    );
    assert_eq!(first.header_value("stripe-version"), Some("2024-06-20"));
    assert_eq!(
        first.header_value("stripe-account"),
        Some("acct_1032D82eZvKYlo2C")
    );
    assert_eq!(
        run.steps[1].request.header_value("stripe-version"),
        Some("2024-06-20")
    );
    assert_eq!(
        run.steps[1].request.query_param("created[gte]").as_deref(),
        Some("1709164800"),
        "the filter stays on every page"
    );

    // After a crash the host re-sends page 2 with the state committed with page 1.
    let pending = run.steps[1].request.clone();
    let resumed = Harness::<Stripe>::new(config, "customers")
        .with_state(run.steps[0].state.clone().unwrap())
        .resume(pending, customers)
        .unwrap();
    assert_eq!(ids(&resumed.records), vec!["cus_PwZ1mK4sYe2"]);
    assert_eq!(resumed.state, Some(json!({"cursor": 1_709_300_000})));
}

#[test]
fn errors_say_what_stripe_said() {
    let err = Harness::<Stripe>::new(json!({}), "customers")
        .run(|_| testing::json_response_with_status(401, fixture(ERROR_401)))
        .unwrap_err();
    assert_eq!(
        err,
        Error::UnexpectedResponse(
            "Stripe answered HTTP 401 (invalid_request_error): Expired API Key provided: sk_test_********************1234".into()
        )
    );
    let err = Harness::<Stripe>::new(json!({}), "customers")
        .run(|_| testing::text_response(502, "Bad Gateway"))
        .unwrap_err();
    assert_eq!(
        err,
        Error::UnexpectedResponse("HTTP 502: Bad Gateway".into())
    );
    let err = Harness::<Stripe>::new(json!({}), "customers")
        .run(|_| testing::json_response(json!({"object": "customer", "id": "cus_1"})))
        .unwrap_err();
    assert!(
        matches!(err, Error::UnexpectedResponse(ref m) if m.contains("missing field `data`")),
        "{err}"
    );
    let err = Harness::<Stripe>::new(json!({}), "customers")
        .run(|_| {
            testing::json_response(
                json!({"object": "list", "data": [{"created": 1}], "has_more": true}),
            )
        })
        .unwrap_err();
    assert_eq!(
        err,
        Error::UnexpectedResponse(
            "the last item of the customer list has no string `id` to continue after".into()
        )
    );
    let err = Harness::<Stripe>::new(json!({}), "payouts")
        .run(|_| Response::new(200))
        .unwrap_err();
    assert_eq!(
        err,
        Error::InvalidConfig(
            "unknown stream `payouts`; the stripe connector has: customers, charges, invoices"
                .into()
        )
    );
}
