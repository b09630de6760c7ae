//! Transport tests against [`TestServer`] on 127.0.0.1 (real sockets, real time, short delays).

use std::io::Write as _;

use super::*;
use crate::http::test_server::{Reply, TestServer, response};
use crate::http::{AllowedHosts, BlockedClass};
use crate::retry::RetryConfig;
use crate::secrets::AuthConfig;

fn hosts(patterns: &[String]) -> AllowedHosts {
    AllowedHosts::parse(patterns).unwrap()
}

fn local(servers: &[&TestServer]) -> Vec<String> {
    servers
        .iter()
        .map(|s| format!("127.0.0.1:{}", s.port()))
        .collect()
}

/// Settings for tests: tiny retry delays, so real time stays short.
fn settings() -> HttpSettings {
    HttpSettings {
        retry: RetryConfig {
            max_attempts: 3,
            base_delay_ms: 1,
            max_delay_ms: 5,
            ..RetryConfig::default()
        },
        ..HttpSettings::default()
    }
}

/// A transport allowed to reach `declared` on loopback.
fn transport(declared: &[String], credential: Option<Credential>) -> Transport {
    transport_with(settings(), declared, credential)
}

fn transport_with(
    settings: HttpSettings,
    declared: &[String],
    credential: Option<Credential>,
) -> Transport {
    let policy = EgressPolicy::new(hosts(declared), None, true);
    Transport::new(&settings, policy, credential).unwrap()
}

fn bearer(bound: &[String]) -> Credential {
    let config: AuthConfig = toml::from_str("type = \"bearer\"\ntoken = \"tok-SECRET-1\"").unwrap();
    config.resolve(hosts(bound)).unwrap()
}

fn get(url: Url) -> HttpRequest {
    HttpRequest {
        method: Method::GET,
        url,
        headers: Vec::new(),
        body: None,
        authenticate: true,
        idempotent: false,
    }
}

fn ok(body: &'static [u8]) -> Reply {
    response(200, &[], body)
}

#[tokio::test]
async fn plain_get_returns_status_headers_body_and_url() {
    let server = TestServer::start(|_, _| response(200, &[("X-Thing", "1")], b"hello")).await;
    let t = transport(&local(&[&server]), None);
    let mut request = get(server.url("/items?page=2"));
    request
        .headers
        .push(("Accept".to_owned(), "application/json".to_owned()));
    let response = t.send(request).await.unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.body, b"hello");
    assert_eq!(response.header("x-thing"), Some("1"));
    assert_eq!(response.url, server.url("/items?page=2").as_str());
    let seen = &server.requests()[0];
    assert_eq!(seen.target, "/items?page=2");
    assert_eq!(seen.header("accept"), Some("application/json"));
    assert!(seen.header("user-agent").unwrap().starts_with("sluice/"));
    assert_eq!(t.stats().requests_sent, 1);
    assert_eq!(t.stats().bytes_received, 5);
}

#[tokio::test]
async fn gzip_is_decompressed() {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(b"{\"items\":[1,2,3]}").unwrap();
    let gz = encoder.finish().unwrap();
    let server =
        TestServer::start(move |_, _| response(200, &[("content-encoding", "gzip")], &gz)).await;
    let t = transport(&local(&[&server]), None);
    let response = t.send(get(server.url("/"))).await.unwrap();
    assert_eq!(response.body, b"{\"items\":[1,2,3]}");
    assert_eq!(response.header("content-encoding"), None);
}

#[tokio::test]
async fn non_2xx_is_returned_not_retried() {
    let server = TestServer::start(|_, _| response(404, &[], b"nope")).await;
    let t = transport(&local(&[&server]), None);
    let response = t.send(get(server.url("/"))).await.unwrap();
    assert_eq!(response.status, 404);
    assert_eq!(response.body, b"nope");
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn service_unavailable_then_ok_is_retried() {
    let server = TestServer::start(|_, n| match n {
        0 => response(503, &[("retry-after", "0")], b"busy"),
        1 => response(429, &[], b"slow down"),
        _ => ok(b"done"),
    })
    .await;
    let t = transport(&local(&[&server]), None);
    let response = t.send(get(server.url("/"))).await.unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.body, b"done");
    let stats = t.stats();
    assert_eq!(stats.requests_sent, 3);
    assert_eq!(stats.retries, 2);
    assert_eq!(stats.rate_limited, 1);
    // Every attempt's body is read, and counted.
    assert_eq!(stats.bytes_received, 4 + 9 + 4);
}

#[tokio::test]
async fn last_retryable_response_is_returned_after_the_last_attempt() {
    let server = TestServer::start(|_, _| response(503, &[], b"down")).await;
    let t = transport(&local(&[&server]), None);
    let response = t.send(get(server.url("/"))).await.unwrap();
    assert_eq!(response.status, 503);
    assert_eq!(server.requests().len(), 3);
}

#[tokio::test]
async fn post_is_not_retried_unless_idempotent() {
    let server = TestServer::start(|_, n| match n {
        0 | 1 => response(503, &[], b""),
        _ => ok(b""),
    })
    .await;
    let t = transport(&local(&[&server]), None);
    let mut request = get(server.url("/search"));
    request.method = Method::POST;
    request.body = Some(b"{\"q\":1}".to_vec());
    let response = t.send(request.clone()).await.unwrap();
    assert_eq!(response.status, 503);
    assert_eq!(server.requests().len(), 1);
    request.idempotent = true;
    let response = t.send(request).await.unwrap();
    assert_eq!(response.status, 200);
    let seen = server.requests();
    assert_eq!(seen.len(), 3);
    assert_eq!(seen[2].method, "POST");
    assert_eq!(seen[2].body, b"{\"q\":1}");
}

#[tokio::test]
async fn connection_refused_is_retried_then_reported() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let t = transport(&[format!("127.0.0.1:{port}")], None);
    let url = Url::parse(&format!("http://127.0.0.1:{port}/x?token=abc")).unwrap();
    let err = t.send(get(url)).await.unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    assert!(err.is_retryable());
    assert_eq!(
        err.to_string(),
        format!("cannot connect to `http://127.0.0.1:{port}/x`")
    );
    assert_eq!(t.stats().requests_sent, 3);
}

#[tokio::test]
async fn content_length_lie_is_incomplete() {
    let server = TestServer::start(|_, _| {
        Reply::Raw(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly ten b".to_vec())
    })
    .await;
    let t = transport(&local(&[&server]), None);
    let err = t.send(get(server.url("/page"))).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Incomplete {
                received_bytes: 10,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.is_retryable());
    assert_eq!(
        err.to_string(),
        format!(
            "response body from `http://127.0.0.1:{}/page` was cut off after 10 bytes",
            server.port()
        )
    );
    // Retried like any transient failure.
    assert_eq!(server.requests().len(), 3);
}

#[tokio::test]
async fn cut_chunked_body_is_incomplete() {
    let server = TestServer::start(|_, _| {
        Reply::Raw(
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n10\r\nabc"
                .to_vec(),
        )
    })
    .await;
    let t = transport(&local(&[&server]), None);
    let err = t.send(get(server.url("/"))).await.unwrap_err();
    assert!(matches!(err, Error::Incomplete { .. }), "{err:?}");
}

#[tokio::test]
async fn oversized_body_is_too_large() {
    let big = vec![b'x'; 2048];
    let server = TestServer::start(move |_, n| match n {
        // Declared length over the cap: refused before reading.
        0 => response(200, &[], &big),
        // Chunked, no declared length: refused when the cap is passed.
        _ => {
            let mut raw = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
            for _ in 0..4 {
                raw.extend_from_slice(b"200\r\n");
                raw.extend_from_slice(&[b'y'; 512]);
                raw.extend_from_slice(b"\r\n");
            }
            raw.extend_from_slice(b"0\r\n\r\n");
            Reply::Raw(raw)
        }
    })
    .await;
    let t = transport_with(
        HttpSettings {
            max_response_bytes: 1024,
            ..settings()
        },
        &local(&[&server]),
        None,
    );
    for _ in 0..2 {
        let err = t.send(get(server.url("/export"))).await.unwrap_err();
        assert!(
            matches!(
                err,
                Error::TooLarge {
                    limit_bytes: 1024,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(!err.is_retryable());
        assert_eq!(
            err.to_string(),
            format!(
                "response from `http://127.0.0.1:{}/export` is larger than 1024 bytes; raise \
                 `max_response_bytes` in [http] if this is expected",
                server.port()
            )
        );
    }
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn compression_bomb_is_capped_on_decompressed_bytes() {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(&vec![0u8; 4 * 1024 * 1024]).unwrap();
    let gz = encoder.finish().unwrap();
    assert!(gz.len() < 64 * 1024);
    let server =
        TestServer::start(move |_, _| response(200, &[("content-encoding", "gzip")], &gz)).await;
    let t = transport_with(
        HttpSettings {
            max_response_bytes: 1024 * 1024,
            ..settings()
        },
        &local(&[&server]),
        None,
    );
    let err = t.send(get(server.url("/"))).await.unwrap_err();
    assert!(matches!(err, Error::TooLarge { .. }), "{err:?}");
}

#[tokio::test]
async fn silent_server_hits_the_read_timeout() {
    let server = TestServer::start(|_, _| {
        Reply::Stall(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nab".to_vec())
    })
    .await;
    let t = transport_with(
        HttpSettings {
            read_timeout_ms: 100,
            retry: RetryConfig {
                max_attempts: 1,
                ..RetryConfig::default()
            },
            ..settings()
        },
        &local(&[&server]),
        None,
    );
    let err = t.send(get(server.url("/slow"))).await.unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    assert!(err.is_retryable());
}

#[tokio::test]
async fn redirect_is_followed_within_the_allowed_hosts() {
    let target = TestServer::start(|_, _| ok(b"moved here")).await;
    let location = target.url("/new?page=2").to_string();
    let source =
        TestServer::start(move |_, _| response(301, &[("location", &location)], b"")).await;
    let t = transport(&local(&[&source, &target]), None);
    let response = t.send(get(source.url("/old"))).await.unwrap();
    assert_eq!(response.body, b"moved here");
    assert_eq!(response.url, target.url("/new?page=2").as_str());
    assert_eq!(target.requests()[0].target, "/new?page=2");
    assert_eq!(t.stats().requests_sent, 2);
}

#[tokio::test]
async fn redirect_to_a_disallowed_host_is_refused() {
    let elsewhere = TestServer::start(|_, _| ok(b"should not be reached")).await;
    let location = elsewhere.url("/steal").to_string();
    let source =
        TestServer::start(move |_, _| response(302, &[("location", &location)], b"")).await;
    let t = transport(&local(&[&source]), None);
    let err = t.send(get(source.url("/"))).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "request to `http://127.0.0.1:{p}/steal` denied: host `127.0.0.1:{p}` is not among \
             the hosts the connector declares [127.0.0.1:{s}]; a connector may only reach hosts \
             it declares",
            p = elsewhere.port(),
            s = source.port()
        )
    );
    assert!(!err.is_retryable());
    assert!(elsewhere.requests().is_empty());
    assert_eq!(source.requests().len(), 1);
}

#[tokio::test]
async fn redirect_to_metadata_is_refused() {
    let source = TestServer::start(|_, _| {
        response(
            307,
            &[("location", "http://169.254.169.254/latest/meta-data/")],
            b"",
        )
    })
    .await;
    let mut declared = local(&[&source]);
    declared.push("169.254.169.254".to_owned());
    let t = transport(&declared, None);
    let err = t.send(get(source.url("/"))).await.unwrap_err();
    assert!(
        matches!(
            &err,
            Error::Denied {
                reason: Denial::Metadata { .. },
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn redirect_loops_stop_at_max_redirects() {
    let server = TestServer::start(|_, _| response(302, &[("location", "/again")], b"")).await;
    let t = transport_with(
        HttpSettings {
            max_redirects: 2,
            ..settings()
        },
        &local(&[&server]),
        None,
    );
    let err = t.send(get(server.url("/start"))).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "too many redirects from `http://127.0.0.1:{}/start` (more than 2); raise \
             `max_redirects` in [http] if this is expected",
            server.port()
        )
    );
    assert_eq!(server.requests().len(), 3);
}

#[tokio::test]
async fn see_other_after_post_becomes_get_without_body() {
    let server = TestServer::start(|_, n| match n {
        0 => response(303, &[("location", "/result")], b""),
        _ => ok(b"result"),
    })
    .await;
    let t = transport(&local(&[&server]), None);
    let mut request = get(server.url("/jobs"));
    request.method = Method::POST;
    request.body = Some(b"{}".to_vec());
    request
        .headers
        .push(("content-type".to_owned(), "application/json".to_owned()));
    let response = t.send(request).await.unwrap();
    assert_eq!(response.body, b"result");
    let seen = server.requests();
    assert_eq!(seen[1].method, "GET");
    assert!(seen[1].body.is_empty());
    assert_eq!(seen[1].header("content-type"), None);
}

#[tokio::test]
async fn credential_is_not_sent_to_another_origin_after_redirect() {
    let other = TestServer::start(|_, _| ok(b"other")).await;
    let location = other.url("/landing").to_string();
    let api = TestServer::start(move |_, _| response(302, &[("location", &location)], b"")).await;
    let declared = local(&[&api, &other]);
    // Bound to both hosts: the origin rule alone must keep the token from the second one.
    let t = transport(&declared, Some(bearer(&declared)));
    let response = t.send(get(api.url("/me"))).await.unwrap();
    assert_eq!(response.body, b"other");
    assert_eq!(
        api.requests()[0].header("authorization"),
        Some("Bearer tok-SECRET-1")
    );
    assert_eq!(other.requests()[0].header("authorization"), None);
}

#[tokio::test]
async fn credential_only_when_asked_and_bound() {
    let server = TestServer::start(|_, _| ok(b"")).await;
    let declared = local(&[&server]);
    let t = transport(&declared, Some(bearer(&["api.example.com".to_owned()])));
    t.send(get(server.url("/"))).await.unwrap();
    assert_eq!(server.requests()[0].header("authorization"), None);

    let t = transport(&declared, Some(bearer(&declared)));
    let mut request = get(server.url("/"));
    request.authenticate = false;
    t.send(request).await.unwrap();
    assert_eq!(server.requests()[1].header("authorization"), None);
    t.send(get(server.url("/"))).await.unwrap();
    assert_eq!(
        server.requests()[2].header("authorization"),
        Some("Bearer tok-SECRET-1")
    );
}

#[tokio::test]
async fn query_credential_is_stripped_from_redirects_urls_and_echoes() {
    let other = TestServer::start(|request, _| {
        // A careless server echoing what it got.
        let echo = request.target.clone();
        response(200, &[("x-echo", &echo), ("x-plain", "fine")], b"")
    })
    .await;
    let other_base = other.url("/next").to_string();
    let api = TestServer::start(move |request, _| {
        // Echo the whole query (key included) into a cross-origin redirect.
        let query = request.target.split_once('?').map_or("", |(_, q)| q);
        let location = format!("{other_base}?{query}");
        response(
            302,
            &[("location", &location), ("x-seen", request.target.as_str())],
            b"",
        )
    })
    .await;
    let declared = local(&[&api, &other]);
    let config: AuthConfig =
        toml::from_str("type = \"api_key\"\nkey = \"key-SECRET-9\"\nquery = \"api_key\"").unwrap();
    let t = transport(&declared, Some(config.resolve(hosts(&declared)).unwrap()));
    let response = t.send(get(api.url("/items?page=2"))).await.unwrap();
    assert_eq!(
        api.requests()[0].target,
        "/items?page=2&api_key=key-SECRET-9"
    );
    assert_eq!(other.requests()[0].target, "/next?page=2");
    assert_eq!(response.url, other.url("/next?page=2").as_str());
    assert_eq!(response.header("x-plain"), Some("fine"));

    // The connector may not set the parameter itself.
    let err = t
        .send(get(api.url("/items?api_key=mine")))
        .await
        .unwrap_err();
    assert!(
        matches!(
            &err,
            Error::InvalidRequest {
                problem: RequestProblem::ReservedQuery { .. },
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn response_headers_echoing_the_secret_are_dropped() {
    let server = TestServer::start(|request, _| {
        let auth = request
            .header("authorization")
            .unwrap_or_default()
            .to_owned();
        response(200, &[("x-debug-auth", &auth), ("x-request-id", "42")], b"")
    })
    .await;
    let declared = local(&[&server]);
    let t = transport(&declared, Some(bearer(&declared)));
    let response = t.send(get(server.url("/"))).await.unwrap();
    assert_eq!(response.header("x-debug-auth"), None);
    assert_eq!(response.header("x-request-id"), Some("42"));
}

#[tokio::test]
async fn reserved_and_invalid_headers_are_refused_before_sending() {
    let server = TestServer::start(|_, _| ok(b"")).await;
    let declared = local(&[&server]);
    let config: AuthConfig =
        toml::from_str("type = \"api_key\"\nkey = \"key-SECRET-9\"\nheader = \"X-Api-Key\"")
            .unwrap();
    let t = transport(&declared, Some(config.resolve(hosts(&declared)).unwrap()));
    let port = server.port();
    let cases = [
        (
            "Authorization",
            "Bearer mine",
            "header `authorization` is set by the host; a connector may not set it",
        ),
        (
            "proxy-authorization",
            "x",
            "header `proxy-authorization` is set by the host; a connector may not set it",
        ),
        (
            "Host",
            "evil.example",
            "header `host` is set by the host; a connector may not set it",
        ),
        (
            "cookie",
            "a=b",
            "header `cookie` is set by the host; a connector may not set it",
        ),
        (
            "x-api-key",
            "guess",
            "header `x-api-key` is set by the host; a connector may not set it",
        ),
        (
            "transfer-encoding",
            "chunked",
            "header `transfer-encoding` is set by the host; a connector may not set it",
        ),
        (
            "x-note",
            "a\r\nx-injected: 1",
            "the value of header `x-note` contains a control character (such as CR or LF) or an invalid byte",
        ),
        (
            "x-nul",
            "a\0b",
            "the value of header `x-nul` contains a control character (such as CR or LF) or an invalid byte",
        ),
        (
            "bad name",
            "v",
            "header name \"bad name\" is not a valid HTTP header name",
        ),
        (
            "x-a\r\nx-b",
            "v",
            "header name \"x-a\\r\\nx-b\" is not a valid HTTP header name",
        ),
    ];
    for (name, value, problem) in cases {
        let mut request = get(server.url("/"));
        request.headers.push((name.to_owned(), value.to_owned()));
        let err = t.send(request).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("invalid request to `http://127.0.0.1:{port}/`: {problem}"),
            "{name}"
        );
    }
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn loopback_name_is_refused_on_the_resolved_address() {
    let server = TestServer::start(|_, _| ok(b"")).await;
    let declared = vec![format!("localhost:{}", server.port())];
    let policy = EgressPolicy::new(hosts(&declared), None, false);
    let t = Transport::new(&settings(), policy, None).unwrap();
    let url = Url::parse(&format!("http://localhost:{}/", server.port())).unwrap();
    let err = t.send(get(url.clone())).await.unwrap_err();
    match &err {
        Error::Denied {
            reason: Denial::ResolvedToBlocked { host, addresses },
            ..
        } => {
            assert_eq!(host, "localhost");
            assert!(addresses.iter().all(|(_, c)| *c == BlockedClass::Loopback));
        }
        other => panic!("{other:?}"),
    }
    assert!(
        err.to_string()
            .ends_with("set `allow_private_networks = true` in [network] to allow it")
    );
    assert!(!err.is_retryable());
    assert_eq!(t.stats().requests_sent, 1);
    assert!(server.requests().is_empty());

    // With private networks allowed, the same request goes through.
    let t = transport(&declared, None);
    assert_eq!(t.send(get(url)).await.unwrap().status, 200);
}

#[tokio::test]
async fn loopback_literal_is_refused_without_allow_private_networks() {
    let server = TestServer::start(|_, _| ok(b"")).await;
    let declared = local(&[&server]);
    let policy = EgressPolicy::new(hosts(&declared), None, false);
    let t = Transport::new(&settings(), policy, None).unwrap();
    let err = t.send(get(server.url("/"))).await.unwrap_err();
    assert!(
        matches!(
            &err,
            Error::Denied {
                reason: Denial::BlockedAddress {
                    class: BlockedClass::Loopback,
                    ..
                },
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(t.stats().requests_sent, 0);
    assert!(server.requests().is_empty());
}

#[test]
fn https_to_http_redirect_is_a_downgrade() {
    let declared = vec!["api.example.com".to_owned()];
    let t = transport(&declared, None);
    let current = Url::parse("https://api.example.com/a").unwrap();
    let err = t
        .redirect_target(
            &current,
            &HeaderValue::from_static("http://api.example.com/b"),
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "request to `https://api.example.com/a` denied: the redirect to \
         `http://api.example.com/b` would downgrade https to plain http"
    );
    let next = t
        .redirect_target(&current, &HeaderValue::from_static("/b?x=1#frag"))
        .unwrap();
    assert_eq!(next.as_str(), "https://api.example.com/b?x=1");
    let err = t
        .redirect_target(&current, &HeaderValue::from_static("http://[::1"))
        .unwrap_err();
    assert!(matches!(err, Error::InvalidRedirect { .. }), "{err:?}");
}

#[test]
fn invalid_settings_are_named() {
    let policy = || EgressPolicy::new(AllowedHosts::none(), None, false);
    let err = Transport::new(
        &HttpSettings {
            read_timeout_ms: 0,
            ..HttpSettings::default()
        },
        policy(),
        None,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid `read_timeout_ms` = 0 in [http]: it must be at least 1"
    );
    let err = Transport::new(
        &HttpSettings {
            max_response_bytes: 0,
            ..HttpSettings::default()
        },
        policy(),
        None,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid `max_response_bytes` = 0 in [http]: it must be from 1 to 1073741824 (1 GiB)"
    );
    let err = Transport::new(
        &HttpSettings {
            user_agent: "bad\nagent".to_owned(),
            ..HttpSettings::default()
        },
        policy(),
        None,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid `user_agent` = \"bad\\nagent\" in [http]: it must be printable ASCII"
    );
    let err = Transport::new(
        &HttpSettings {
            retry: RetryConfig {
                max_attempts: 0,
                ..RetryConfig::default()
            },
            ..HttpSettings::default()
        },
        policy(),
        None,
    )
    .unwrap_err();
    assert!(matches!(err, Error::InvalidRetry(_)), "{err:?}");
}

#[test]
fn remove_query_param_keeps_the_rest() {
    let mut url = Url::parse("https://x/p?a=1&api_key=s&b=2&api_key=t").unwrap();
    remove_query_param(&mut url, "api_key");
    assert_eq!(url.as_str(), "https://x/p?a=1&b=2");
    let mut url = Url::parse("https://x/p?api_key=s").unwrap();
    remove_query_param(&mut url, "api_key");
    assert_eq!(url.as_str(), "https://x/p");
    let mut url = Url::parse("https://x/p?a=%20").unwrap();
    remove_query_param(&mut url, "api_key");
    assert_eq!(url.as_str(), "https://x/p?a=%20");
}

#[tokio::test]
async fn truncated_gzip_is_incomplete_and_corrupt_gzip_is_a_decode_error() {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(&vec![7u8; 100_000]).unwrap();
    let gz = encoder.finish().unwrap();
    let full_len = gz.len();
    let half = gz[..full_len / 2].to_vec();
    let server = TestServer::start(move |_, n| match n {
        0 => {
            let mut raw = format!(
                "HTTP/1.1 200 OK\r\ncontent-encoding: gzip\r\ncontent-length: {full_len}\r\n\r\n"
            )
            .into_bytes();
            raw.extend_from_slice(&half);
            Reply::Raw(raw)
        }
        _ => response(
            200,
            &[("content-encoding", "gzip")],
            b"this is not gzip at all",
        ),
    })
    .await;
    let t = transport_with(
        HttpSettings {
            retry: RetryConfig {
                max_attempts: 1,
                ..RetryConfig::default()
            },
            ..settings()
        },
        &local(&[&server]),
        None,
    );
    let err = t.send(get(server.url("/"))).await.unwrap_err();
    assert!(matches!(err, Error::Incomplete { .. }), "{err:?}");
    assert!(err.is_retryable());
    let err = t.send(get(server.url("/"))).await.unwrap_err();
    assert!(matches!(err, Error::Decode { .. }), "{err:?}");
    assert!(!err.is_retryable());
    assert_eq!(
        err.to_string(),
        format!(
            "cannot decode the response body from `http://127.0.0.1:{}/`",
            server.port()
        )
    );
}

#[test]
fn transport_and_its_futures_can_cross_threads() {
    fn assert_send_sync<T: Send + Sync>(_: &T) {}
    fn assert_send<T: Send>(_: &T) {}
    let t = transport(&["api.example.com".to_owned()], None);
    assert_send_sync(&t);
    let future = t.send(get(Url::parse("https://api.example.com/").unwrap()));
    assert_send(&future);
}

#[test]
fn connector_rate_hint_applies_unless_the_operator_sets_a_rate() {
    use crate::protocol::RateLimitHint;
    use crate::rate_limit::{Rate, RateLimitConfig};
    let hint = Some(RateLimitHint {
        requests: 5000,
        per_seconds: 3600,
        burst: 100,
    });
    let t = transport(&[], None).with_rate_limit_hint(hint).unwrap();
    assert_eq!(t.rate_limiter().quota(), Rate::new(5000, 3600, 100));
    let operator = HttpSettings {
        rate_limit: RateLimitConfig {
            requests: Some(2),
            ..RateLimitConfig::default()
        },
        ..settings()
    };
    let t = transport_with(operator, &[], None)
        .with_rate_limit_hint(hint)
        .unwrap();
    assert_eq!(t.rate_limiter().quota(), Rate::new(2, 1, 1));
    let err = Transport::new(
        &HttpSettings {
            rate_limit: RateLimitConfig {
                requests: Some(0),
                ..RateLimitConfig::default()
            },
            ..settings()
        },
        EgressPolicy::new(hosts(&[]), None, true),
        None,
    )
    .unwrap_err();
    assert!(matches!(err, Error::InvalidRateLimit(_)), "{err:?}");
    assert!(
        err.to_string()
            .starts_with("invalid `requests` = 0 in [http.rate_limit]"),
        "{err}"
    );
}

#[tokio::test]
async fn retries_are_counted_by_cause() {
    let server = TestServer::start(|_, n| match n {
        0 => response(503, &[], b""),
        1 => Reply::Raw(b"HTTP/1.1 200 OK\r\ncontent-length: 50\r\n\r\ncut".to_vec()),
        2 => response(429, &[], b""),
        _ => ok(b"done"),
    })
    .await;
    let t = transport_with(
        HttpSettings {
            retry: RetryConfig {
                max_attempts: 4,
                base_delay_ms: 1,
                max_delay_ms: 5,
                ..RetryConfig::default()
            },
            ..settings()
        },
        &local(&[&server]),
        None,
    );
    let response = t.send(get(server.url("/"))).await.unwrap();
    assert_eq!(response.body, b"done");
    let stats = t.stats();
    assert_eq!(stats.retries, 3);
    let causes: Vec<(&str, u64)> = stats
        .retries_by_cause
        .iter()
        .map(|(cause, count)| (cause.as_str(), *count))
        .collect();
    assert_eq!(
        causes,
        vec![("incomplete_body", 1), ("status_429", 1), ("status_503", 1)]
    );
    assert_eq!(stats.rate_limited, 1);
    assert_eq!(stats.rate_limit_waits, 0);
}

// OAuth2: a token endpoint and an API on loopback. The endpoint issues `at-N` for the N-th
// token; the API accepts only tokens from `accepted_from` on.

struct OAuthApi {
    api: TestServer,
    token: TestServer,
    /// Token requests that reached the endpoint.
    token_hits: Arc<AtomicU64>,
    /// Lowest token number the API accepts.
    accepted_from: Arc<AtomicU64>,
}

fn form_value(body: &[u8], name: &str) -> Option<String> {
    url::form_urlencoded::parse(body)
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

async fn oauth_api(token_reply: impl Fn(&[u8], u64) -> Reply + Send + Sync + 'static) -> OAuthApi {
    let token_hits = Arc::new(AtomicU64::new(0));
    let accepted_from = Arc::new(AtomicU64::new(1));
    let hits = Arc::clone(&token_hits);
    let token = TestServer::start(move |request, _| {
        let n = hits.fetch_add(1, Ordering::SeqCst) + 1;
        token_reply(&request.body, n)
    })
    .await;
    let accepted = Arc::clone(&accepted_from);
    let api = TestServer::start(move |request, _| {
        let number = request
            .header("authorization")
            .and_then(|v| v.strip_prefix("Bearer at-"))
            .and_then(|n| n.parse::<u64>().ok());
        match number {
            Some(n) if n >= accepted.load(Ordering::SeqCst) => ok(b"data"),
            _ => response(401, &[], b"unauthorized"),
        }
    })
    .await;
    OAuthApi {
        api,
        token,
        token_hits,
        accepted_from,
    }
}

fn token_json(n: u64, extra: &str) -> Reply {
    let body = format!(r#"{{"access_token":"at-{n}","token_type":"Bearer"{extra}}}"#);
    response(
        200,
        &[("content-type", "application/json")],
        body.as_bytes(),
    )
}

fn oauth_credential(
    api: &OAuthApi,
    grant: &str,
    options: crate::secrets::ResolveOptions,
) -> Credential {
    let text = format!(
        "type = \"{grant}\"\ntoken_url = \"{}\"\nclient_id = \"cid\"\nclient_secret = \"csecret-XYZ\"\n\
         refresh_token = \"rt-1\"\nscopes = [\"read\", \"write\"]\n",
        api.token.url("/token")
    );
    let text = if grant == "oauth2_client_credentials" {
        text.replace("refresh_token = \"rt-1\"\n", "")
    } else {
        text
    };
    let config: AuthConfig = toml::from_str(&text).unwrap();
    config
        .resolve_with(hosts(&local(&[&api.api])), options)
        .unwrap()
}

fn private_ok() -> crate::secrets::ResolveOptions {
    crate::secrets::ResolveOptions {
        allow_private_networks: true,
        store: None,
    }
}

#[tokio::test]
async fn oauth2_client_credentials_token_is_fetched_once_and_cached() {
    let api = oauth_api(|body, n| {
        assert_eq!(
            form_value(body, "grant_type").as_deref(),
            Some("client_credentials")
        );
        assert_eq!(
            form_value(body, "client_secret").as_deref(),
            Some("csecret-XYZ")
        );
        assert_eq!(form_value(body, "scope").as_deref(), Some("read write"));
        token_json(n, r#","expires_in":3600"#)
    })
    .await;
    let credential = oauth_credential(&api, "oauth2_client_credentials", private_ok());
    // The token endpoint is not one of the connector's hosts: allowed for the token only.
    let t = transport(&local(&[&api.api]), Some(credential));
    for _ in 0..3 {
        let response = t.send(get(api.api.url("/data"))).await.unwrap();
        assert_eq!(response.status, 200);
    }
    assert_eq!(api.token_hits.load(Ordering::SeqCst), 1);
    for seen in api.api.requests() {
        assert_eq!(seen.header("authorization"), Some("Bearer at-1"));
    }
}

#[tokio::test]
async fn oauth2_token_without_lifetime_left_is_fetched_for_every_request() {
    let api = oauth_api(|_, n| token_json(n, r#","expires_in":0"#)).await;
    let credential = oauth_credential(&api, "oauth2_client_credentials", private_ok());
    let t = transport(&local(&[&api.api]), Some(credential));
    t.send(get(api.api.url("/data"))).await.unwrap();
    t.send(get(api.api.url("/data"))).await.unwrap();
    assert_eq!(api.token_hits.load(Ordering::SeqCst), 2);
    let seen = api.api.requests();
    assert_eq!(seen[1].header("authorization"), Some("Bearer at-2"));
}

#[tokio::test]
async fn fifty_concurrent_401s_cause_exactly_one_refresh() {
    let api = oauth_api(|_, n| token_json(n, r#","expires_in":3600"#)).await;
    let credential = oauth_credential(&api, "oauth2_refresh_token", private_ok());
    let t = transport(&local(&[&api.api]), Some(credential));
    assert_eq!(t.send(get(api.api.url("/data"))).await.unwrap().status, 200);
    assert_eq!(api.token_hits.load(Ordering::SeqCst), 1);
    // The API revokes token 1: all 50 requests carry it, get 401, and need a new one.
    api.accepted_from.store(2, Ordering::SeqCst);
    let sends = (0..50).map(|_| t.send(get(api.api.url("/data"))));
    let responses = futures_util::future::join_all(sends).await;
    for response in responses {
        assert_eq!(response.unwrap().status, 200);
    }
    assert_eq!(
        api.token_hits.load(Ordering::SeqCst),
        2,
        "one refresh for all 50 requests"
    );
    let refused = api
        .api
        .requests()
        .iter()
        .filter(|r| r.header("authorization") == Some("Bearer at-1"))
        .count();
    assert!(refused >= 2, "the 401s happened: {refused}");
}

#[tokio::test]
async fn a_401_is_retried_once_with_a_new_token_then_returned() {
    let api = oauth_api(|_, n| token_json(n, "")).await;
    let credential = oauth_credential(&api, "oauth2_client_credentials", private_ok());
    let t = transport(&local(&[&api.api]), Some(credential));
    // No token is ever accepted: one refresh, one retry, then the 401 goes to the connector.
    api.accepted_from.store(u64::MAX, Ordering::SeqCst);
    let response = t.send(get(api.api.url("/data"))).await.unwrap();
    assert_eq!(response.status, 401);
    assert_eq!(api.token_hits.load(Ordering::SeqCst), 2);
    assert_eq!(api.api.requests().len(), 2);
}

#[tokio::test]
async fn invalid_grant_fails_fast_and_is_never_asked_again() {
    let api = oauth_api(|_, _| {
        response(
            400,
            &[("content-type", "application/json")],
            br#"{"error":"invalid_grant","error_description":"revoked"}"#,
        )
    })
    .await;
    let credential = oauth_credential(&api, "oauth2_refresh_token", private_ok());
    let t = transport(&local(&[&api.api]), Some(credential));
    for _ in 0..2 {
        let error = t.send(get(api.api.url("/data"))).await.unwrap_err();
        assert!(
            matches!(
                error,
                Error::Auth(crate::http::oauth2::Error::InvalidGrant { .. })
            ),
            "{error}"
        );
        assert!(
            error.to_string().contains("re-authorisation is needed"),
            "{error}"
        );
        assert_eq!(error.kind(), "reauthorization_required");
        assert!(!error.to_string().contains("rt-1"), "{error}");
    }
    assert_eq!(api.token_hits.load(Ordering::SeqCst), 1, "no retry loop");
    assert!(api.api.requests().is_empty());
}

#[tokio::test]
async fn failing_token_endpoint_is_retried_with_backoff_and_bounded() {
    let api = oauth_api(|_, n| match n {
        1 | 2 => response(503, &[], b"busy"),
        _ => token_json(n, ""),
    })
    .await;
    let credential = oauth_credential(&api, "oauth2_client_credentials", private_ok());
    let t = transport(&local(&[&api.api]), Some(credential));
    api.accepted_from.store(3, Ordering::SeqCst);
    assert_eq!(t.send(get(api.api.url("/data"))).await.unwrap().status, 200);
    assert_eq!(api.token_hits.load(Ordering::SeqCst), 3);

    let down = oauth_api(|_, _| response(500, &[], b"down")).await;
    let credential = oauth_credential(&down, "oauth2_client_credentials", private_ok());
    let t = transport(&local(&[&down.api]), Some(credential));
    let error = t.send(get(down.api.url("/data"))).await.unwrap_err();
    assert!(
        matches!(
            error,
            Error::Auth(crate::http::oauth2::Error::Unavailable { attempts: 4, .. })
        ),
        "{error}"
    );
    assert_eq!(
        down.token_hits.load(Ordering::SeqCst),
        u64::from(crate::http::oauth2::TOKEN_MAX_ATTEMPTS)
    );
}

#[tokio::test]
async fn token_endpoint_on_a_private_network_is_refused_unless_allowed() {
    let api = oauth_api(|_, n| token_json(n, "")).await;
    let credential = oauth_credential(
        &api,
        "oauth2_client_credentials",
        crate::secrets::ResolveOptions::default(),
    );
    let client = reqwest::Client::new();
    let mut url = api.api.url("/data");
    let mut headers = HeaderMap::new();
    let error = credential
        .apply(&client, &mut url, &mut headers)
        .await
        .unwrap_err();
    assert!(
        matches!(error, crate::http::oauth2::Error::Denied(_)),
        "{error}"
    );
    assert_eq!(api.token_hits.load(Ordering::SeqCst), 0);
    assert!(headers.is_empty());
}

#[tokio::test]
async fn rotated_refresh_token_is_saved_before_use_and_wins_on_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store = crate::checkpoint::CheckpointStore::open(dir.path()).unwrap();
    let options = || crate::secrets::ResolveOptions {
        allow_private_networks: true,
        store: Some(store.credential_slot("conn").unwrap()),
    };
    // Rotation: token N is issued for refresh token rt-N and comes with rt-(N+1).
    let api = oauth_api(|body, n| {
        let expected = format!("rt-{n}");
        if form_value(body, "refresh_token").as_deref() != Some(expected.as_str()) {
            return response(400, &[], br#"{"error":"invalid_grant"}"#);
        }
        token_json(
            n,
            &format!(r#","expires_in":3600,"refresh_token":"rt-{}""#, n + 1),
        )
    })
    .await;
    let t = transport(
        &local(&[&api.api]),
        Some(oauth_credential(&api, "oauth2_refresh_token", options())),
    );
    assert_eq!(t.send(get(api.api.url("/data"))).await.unwrap().status, 200);
    let saved = store
        .credential_slot("conn")
        .unwrap()
        .load()
        .unwrap()
        .unwrap();
    assert_eq!(saved.refresh_token.expose(), "rt-2");
    drop(t);
    // A new process: the configured rt-1 is spent, the saved rt-2 is used.
    let t = transport(
        &local(&[&api.api]),
        Some(oauth_credential(&api, "oauth2_refresh_token", options())),
    );
    api.accepted_from.store(2, Ordering::SeqCst);
    assert_eq!(t.send(get(api.api.url("/data"))).await.unwrap().status, 200);
    assert_eq!(api.token_hits.load(Ordering::SeqCst), 2);
    let saved = store
        .credential_slot("conn")
        .unwrap()
        .load()
        .unwrap()
        .unwrap();
    assert_eq!(saved.refresh_token.expose(), "rt-3");
    // The access token is never persisted.
    drop(t);
    drop(store);
    for path in walk(dir.path()) {
        let bytes = std::fs::read(&path).unwrap();
        assert!(
            !bytes.windows(4).any(|w| w == b"at-1" || w == b"at-2"),
            "{}",
            path.display()
        );
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

// Mutual TLS: a loopback TLS server that requires a client certificate from a test CA, with
// every certificate generated here.

struct Pki {
    ca_pem: String,
    ca_der: tokio_rustls::rustls::pki_types::CertificateDer<'static>,
    server_cert: tokio_rustls::rustls::pki_types::CertificateDer<'static>,
    server_key: Vec<u8>,
    client_cert_pem: String,
    client_key_pem: String,
}

fn pki() -> Pki {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    };
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "sluice test CA");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let server_key = KeyPair::generate().unwrap();
    let mut server_params = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
    server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_cert = server_params.signed_by(&server_key, &issuer).unwrap();
    let client_key = KeyPair::generate().unwrap();
    let mut client_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    client_params
        .distinguished_name
        .push(DnType::CommonName, "sluice client");
    client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client_cert = client_params.signed_by(&client_key, &issuer).unwrap();
    Pki {
        ca_pem: ca_cert.pem(),
        ca_der: ca_cert.der().clone(),
        server_cert: server_cert.der().clone(),
        server_key: server_key.serialize_der(),
        client_cert_pem: client_cert.pem(),
        client_key_pem: client_key.serialize_pem(),
    }
}

/// Starts a TLS server on 127.0.0.1 that requires a client certificate signed by the test CA
/// and answers `200 ok` to every request. Returns its port and the count of requests served.
async fn mtls_server(pki: &Pki) -> (u16, Arc<AtomicU64>) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio_rustls::rustls;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.ca_der.clone()).unwrap();
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            vec![pki.server_cert.clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(pki.server_key.clone().into()),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let served = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&served);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let counter = Arc::clone(&counter);
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                counter.fetch_add(1, Ordering::SeqCst);
                let _ = tls
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                    )
                    .await;
                let _ = tls.shutdown().await;
            });
        }
    });
    (port, served)
}

fn mtls_transport(port: u16, tls: &str) -> Transport {
    let config: crate::http::TlsConfig = toml::from_str(tls).unwrap();
    let settings = HttpSettings {
        retry: RetryConfig {
            max_attempts: 1,
            ..RetryConfig::default()
        },
        ..HttpSettings::default()
    };
    let policy = EgressPolicy::new(hosts(&[format!("127.0.0.1:{port}")]), None, true);
    Transport::with_tls(&settings, policy, None, config.resolve().unwrap()).unwrap()
}

#[tokio::test]
async fn mutual_tls_with_client_certificate_and_private_ca() {
    let pki = pki();
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let ca = write("ca.pem", &pki.ca_pem);
    let cert = write("client.crt", &pki.client_cert_pem);
    let key = write("client.key", &pki.client_key_pem);
    let (port, served) = mtls_server(&pki).await;
    let url = Url::parse(&format!("https://127.0.0.1:{port}/items")).unwrap();

    let full =
        format!("client_cert = {cert:?}\nclient_key = {{ file = {key:?} }}\nca_bundle = {ca:?}\n");
    let response = mtls_transport(port, &full)
        .send(get(url.clone()))
        .await
        .unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.body, b"ok");
    assert_eq!(served.load(Ordering::SeqCst), 1);

    // Without the client certificate the server refuses the handshake.
    let no_identity = format!("ca_bundle = {ca:?}\n");
    let error = mtls_transport(port, &no_identity)
        .send(get(url.clone()))
        .await
        .unwrap_err();
    assert!(!matches!(error, Error::Denied { .. }), "{error}");
    // Without the private CA the server's certificate is not trusted.
    let no_ca = format!("client_cert = {cert:?}\nclient_key = {{ file = {key:?} }}\n");
    let error = mtls_transport(port, &no_ca)
        .send(get(url))
        .await
        .unwrap_err();
    assert!(!matches!(error, Error::Denied { .. }), "{error}");
    assert_eq!(
        served.load(Ordering::SeqCst),
        1,
        "only the mutual-TLS request was served"
    );
}

#[test]
fn a_key_that_is_not_pem_is_refused_without_quoting_it() {
    let pki = pki();
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("client.crt");
    std::fs::write(&cert, &pki.client_cert_pem).unwrap();
    let config: crate::http::TlsConfig = toml::from_str(&format!(
        "client_cert = {:?}\nclient_key = \"not-a-key-SECRET\"\n",
        cert.display().to_string()
    ))
    .unwrap();
    let message = config.resolve().unwrap_err().to_string();
    assert!(
        message.starts_with("invalid `client_key` = the config file in [tls]"),
        "{message}"
    );
    assert!(!message.contains("SECRET"), "{message}");
}
