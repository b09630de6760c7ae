//! Credentials end to end: every `[auth]` scheme applied by the host through the real `rest`
//! connector and `sluice run`, OAuth2 token endpoints with short-lived tokens and refresh-token
//! rotation, a SIGKILL right after a refresh, `invalid_grant`, scheme checks, and a canary
//! secret searched for in everything a sync leaves behind.
//!
//! The API and the token endpoint are two [`ScriptedServer`]s on loopback sharing one
//! [`AuthState`]: the API answers `401` unless the request carries exactly the expected
//! credential, and the token endpoint accepts only the refresh token it issued last.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{Value, json};
use sluice_tests::cli::CmdOutput;
use sluice_tests::connection::{Connection, Style, rest_stream};
use sluice_tests::files;
use sluice_tests::scripted::{Hit, Reply, ScriptedServer, dataset_page};
use sluice_tests::wait;

use crate::{Workspace, sluice};

/// Records the API serves: three pages of 10 (the last short).
const RECORDS: u64 = 25;
/// Requests a complete sync sends with pages of 10.
const PAGES: usize = 3;
/// How long the API holds a request a test is about to kill the process during.
const HOLD: Duration = Duration::from_secs(25);
/// `SLUICE_LOG` for `-vvv` runs of a component from a file: trace, but not the compiler's.
const TRACE_BUT_CODEGEN: &str =
    "trace,cranelift_codegen=info,cranelift_frontend=info,regalloc2=info,wasmtime_cranelift=info";
/// Bound on waiting for the process to reach a point.
const WAIT: Duration = Duration::from_secs(60);

/// What the API accepts as the credential.
#[derive(Debug, Clone)]
enum Expect {
    /// A header with this exact value.
    Header(&'static str, String),
    /// A query parameter with this exact value.
    Query(&'static str, String),
    /// `Authorization: Bearer` with the access token the token endpoint issued last.
    LatestToken,
}

/// State shared by the API and the token endpoint.
#[derive(Debug)]
struct AuthState {
    expect: Expect,
    /// The refresh token the endpoint accepts now.
    refresh_token: String,
    /// Rotate the refresh token on every refresh.
    rotate: bool,
    /// `expires_in` of issued tokens (0: every request needs a new one).
    expires_in: u64,
    /// Access tokens issued, in order.
    issued: Vec<String>,
    /// Refresh tokens issued by rotation, in order.
    rotated: Vec<String>,
    /// `refresh_token` values presented, in order (`None` for client credentials).
    presented: Vec<Option<String>>,
    /// Answer every token request with `invalid_grant`.
    revoked: bool,
    /// Hold the API request with this number (from 0) for [`HOLD`].
    hold_api_request: Option<usize>,
    /// A prefix making every issued value distinctive.
    prefix: String,
}

struct AuthMock {
    api: ScriptedServer,
    token: ScriptedServer,
    state: Arc<Mutex<AuthState>>,
}

impl AuthMock {
    fn start(expect: Expect, prefix: &str) -> Self {
        let state = Arc::new(Mutex::new(AuthState {
            expect,
            refresh_token: format!("{prefix}-refresh-0"),
            rotate: true,
            expires_in: 3600,
            issued: Vec::new(),
            rotated: Vec::new(),
            presented: Vec::new(),
            revoked: false,
            hold_api_request: None,
            prefix: prefix.to_owned(),
        }));
        let api_state = Arc::clone(&state);
        let api = ScriptedServer::start(move |hit| api_reply(&api_state, hit));
        let token_state = Arc::clone(&state);
        let token = ScriptedServer::start(move |hit| token_reply(&token_state, hit));
        Self { api, token, state }
    }

    fn state(&self) -> MutexGuard<'_, AuthState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn api_hits(&self) -> Vec<Hit> {
        self.api.hits()
    }

    /// A `rest` connection to the API with one offset stream of pages of 10.
    fn connection(&self) -> Connection {
        Connection::new(json!({
            "base_url": self.api.base_url(),
            "streams": [rest_stream("items", Style::Offset, 10)],
        }))
        .allow_private_networks()
    }
}

fn api_reply(state: &Mutex<AuthState>, hit: &Hit) -> Reply {
    let state = state.lock().unwrap_or_else(|e| e.into_inner());
    let authorised = match &state.expect {
        Expect::Header(name, value) => hit.header(name) == Some(value.as_str()),
        Expect::Query(name, value) => hit.query_param(name) == Some(value.as_str()),
        Expect::LatestToken => state
            .issued
            .last()
            .is_some_and(|token| hit.header("authorization") == Some(&format!("Bearer {token}"))),
    };
    if !authorised {
        return Reply::json(401, &json!({ "message": "bad credentials" }));
    }
    let page = dataset_page(hit, RECORDS);
    if state.hold_api_request == Some(hit.index) {
        return Reply::Delayed(HOLD, Box::new(page));
    }
    page
}

fn token_reply(state: &Mutex<AuthState>, hit: &Hit) -> Reply {
    let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
    let presented = hit.form_value("refresh_token");
    state.presented.push(presented.clone());
    let secret_ok = hit.form_value("client_secret").as_deref()
        == Some(format!("{}-client-secret", state.prefix).as_str());
    if hit.method != "POST" || hit.path != "/token" || !secret_ok {
        return Reply::json(401, &json!({ "error": "invalid_client" }));
    }
    match hit.form_value("grant_type").as_deref() {
        Some("client_credentials") => {}
        Some("refresh_token")
            if !state.revoked && presented.as_deref() == Some(state.refresh_token.as_str()) => {}
        _ => return Reply::json(400, &json!({ "error": "invalid_grant" })),
    }
    let n = state.issued.len() + 1;
    let access = format!("{}-access-{n}", state.prefix);
    state.issued.push(access.clone());
    let mut body = json!({
        "access_token": access,
        "token_type": "bearer",
        "expires_in": state.expires_in,
    });
    if presented.is_some() && state.rotate {
        let next = format!("{}-refresh-{n}", state.prefix);
        state.refresh_token = next.clone();
        state.rotated.push(next.clone());
        body["refresh_token"] = Value::String(next);
    }
    Reply::json(200, &body)
}

/// `[auth]` for the OAuth2 `grant` against `mock`, secrets from environment variables.
fn oauth2_auth(connection: Connection, mock: &AuthMock, grant: &str) -> Connection {
    let connection = connection
        .set("auth", "type", json!(grant))
        .set("auth", "token_url", json!(mock.token.url("/token")))
        .set("auth", "client_id", json!("sluice-test-client"))
        .set(
            "auth",
            "client_secret",
            json!({ "env": "SLUICE_TEST_CLIENT_SECRET" }),
        )
        .set("auth", "scopes", json!(["read:items"]));
    if grant == "oauth2_refresh_token" {
        connection.set(
            "auth",
            "refresh_token",
            json!({ "env": "SLUICE_TEST_REFRESH_TOKEN" }),
        )
    } else {
        connection
    }
}

/// `sluice run --json` with `env` set for the child only, and extra arguments.
fn run(ws: &Workspace, env: &[(&str, &str)], extra: &[&str]) -> CmdOutput {
    let mut cmd = sluice().cmd(ws.run_args("rest")).args(extra);
    for (name, value) in env {
        cmd = cmd.env(name, value);
    }
    cmd.output()
}

fn oauth_env(prefix: &str) -> Vec<(&'static str, String)> {
    vec![
        (
            "SLUICE_TEST_CLIENT_SECRET",
            format!("{prefix}-client-secret"),
        ),
        ("SLUICE_TEST_REFRESH_TOKEN", format!("{prefix}-refresh-0")),
    ]
}

fn borrowed<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// A distinctive value, so that finding it cannot be a coincidence.
fn canary(label: &str) -> String {
    format!("CANARY{label}x{:x}q7Z", std::process::id())
}

fn assert_all_records(ws: &Workspace) {
    assert_eq!(
        ws.records("items"),
        sluice_tests::dataset::records(RECORDS),
        "every record, once, in order"
    );
}

/// Each fixed-secret scheme, with its secret in an environment variable: the API sees exactly
/// the credential on every request, the sync completes.
#[test]
fn each_fixed_secret_scheme_is_applied_by_the_host() {
    let key = canary("apikey");
    let password = canary("password");
    let token = canary("bearer");
    let basic = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(format!("alice:{password}"))
    };
    let cases: Vec<(&str, Expect, Value, (&str, String))> = vec![
        (
            "api_key header",
            Expect::Header("x-api-key", key.clone()),
            json!({ "type": "api_key", "header": "X-Api-Key", "key": { "env": "SLUICE_TEST_SECRET" } }),
            ("SLUICE_TEST_SECRET", key.clone()),
        ),
        (
            "api_key query",
            Expect::Query("api_key", key.clone()),
            json!({ "type": "api_key", "query": "api_key", "key": { "env": "SLUICE_TEST_SECRET" } }),
            ("SLUICE_TEST_SECRET", key.clone()),
        ),
        (
            "bearer",
            Expect::Header("authorization", format!("Bearer {token}")),
            json!({ "type": "bearer", "token": { "env": "SLUICE_TEST_SECRET" } }),
            ("SLUICE_TEST_SECRET", token.clone()),
        ),
        (
            "basic",
            Expect::Header("authorization", format!("Basic {basic}")),
            json!({ "type": "basic", "username": "alice", "password": { "env": "SLUICE_TEST_SECRET" } }),
            ("SLUICE_TEST_SECRET", password.clone()),
        ),
    ];
    for (name, expect, auth, (var, secret)) in cases {
        let mock = AuthMock::start(expect, "unused");
        let ws = Workspace::new();
        let mut connection = mock.connection();
        for (k, v) in auth.as_object().expect("auth table") {
            connection = connection.set("auth", k, v.clone());
        }
        ws.write(&connection);
        let output = run(&ws, &[(var, &secret)], &["-vvv"]);
        output.assert_success();
        assert_all_records(&ws);
        let hits = mock.api_hits();
        assert_eq!(
            hits.len(),
            PAGES,
            "{name}: no request was refused: {hits:?}"
        );
        assert_no_secret(&ws, &output, &[&secret, &basic], name);
    }
}

#[test]
fn oauth2_client_credentials_end_to_end() {
    let prefix = canary("cc");
    let mock = AuthMock::start(Expect::LatestToken, &prefix);
    let ws = Workspace::new();
    ws.write(&oauth2_auth(
        mock.connection(),
        &mock,
        "oauth2_client_credentials",
    ));
    let env = oauth_env(&prefix);
    let output = run(&ws, &borrowed(&env), &[]);
    output.assert_success();
    assert_all_records(&ws);
    let state = mock.state();
    assert_eq!(
        state.issued.len(),
        1,
        "one token, cached for the whole sync"
    );
    assert_eq!(state.presented, vec![None]);
    let token_hits = mock.token.hits();
    assert_eq!(
        token_hits[0].form_value("scope").as_deref(),
        Some("read:items")
    );
    assert_eq!(mock.api_hits().len(), PAGES);
}

/// Tokens that expire at once (`expires_in = 0`), so every request needs a refresh, and the
/// refresh token rotates every time: the endpoint accepts only the one it issued last.
#[test]
fn oauth2_refresh_token_with_short_lived_tokens_and_rotation() {
    let prefix = canary("rt");
    let mock = AuthMock::start(Expect::LatestToken, &prefix);
    mock.state().expires_in = 0;
    let ws = Workspace::new();
    ws.write(&oauth2_auth(
        mock.connection(),
        &mock,
        "oauth2_refresh_token",
    ));
    let env = oauth_env(&prefix);
    let output = run(&ws, &borrowed(&env), &[]);
    output.assert_success();
    assert_all_records(&ws);
    let state = mock.state();
    assert_eq!(state.issued.len(), PAGES, "a fresh token per request");
    let expected: Vec<Option<String>> = (0..PAGES)
        .map(|n| Some(format!("{prefix}-refresh-{n}")))
        .collect();
    assert_eq!(
        state.presented, expected,
        "each refresh uses the rotated token"
    );
}

/// The process is killed (SIGKILL) while the API holds the first request sent with the token
/// of a refresh that rotated the refresh token. The restart must use the rotated token: the
/// endpoint refuses the configured one, now spent.
#[test]
fn kill_9_right_after_a_refresh_restarts_with_the_rotated_token() {
    let prefix = canary("kill");
    let mock = AuthMock::start(Expect::LatestToken, &prefix);
    mock.state().hold_api_request = Some(0);
    let ws = Workspace::new();
    ws.write(&oauth2_auth(
        mock.connection(),
        &mock,
        "oauth2_refresh_token",
    ));
    let env = oauth_env(&prefix);

    let mut cmd = sluice().cmd(ws.run_args("rest"));
    for (name, value) in &env {
        cmd = cmd.env(name, value);
    }
    let child = cmd.spawn();
    assert!(
        wait::until(WAIT, || !mock.api_hits().is_empty()),
        "the sync never reached the API"
    );
    assert!(child.kill().is_some(), "killed while the request was held");
    {
        let mut state = mock.state();
        assert_eq!(state.presented, vec![Some(format!("{prefix}-refresh-0"))]);
        assert_eq!(state.refresh_token, format!("{prefix}-refresh-1"));
        state.hold_api_request = None;
    }

    let output = run(&ws, &borrowed(&env), &[]);
    output.assert_success();
    assert_all_records(&ws);
    let state = mock.state();
    assert_eq!(
        state.presented,
        vec![
            Some(format!("{prefix}-refresh-0")),
            Some(format!("{prefix}-refresh-1")),
        ],
        "the restart presented the rotated token saved before the kill"
    );
}

#[test]
fn invalid_grant_stops_the_sync_with_a_reauthorisation_message() {
    let prefix = canary("revoked");
    let mock = AuthMock::start(Expect::LatestToken, &prefix);
    mock.state().revoked = true;
    let ws = Workspace::new();
    let mut connection = oauth2_auth(mock.connection(), &mock, "oauth2_refresh_token");
    // Two streams: the second must not try again.
    connection.config_mut().insert(
        "streams".to_owned(),
        json!([
            rest_stream("items", Style::Offset, 10),
            rest_stream("more", Style::Offset, 10),
        ]),
    );
    ws.write(&connection);
    let env = oauth_env(&prefix);
    let output = run(&ws, &borrowed(&env), &[]);
    let message = output.assert_error();
    assert!(message.contains("invalid_grant"), "{message}");
    assert!(message.contains("re-authorisation is needed"), "{message}");
    assert_eq!(mock.token.hits().len(), 1, "no retry loop");
    assert!(mock.api_hits().is_empty());
    assert!(!output.stdout.contains(&prefix) && !output.stderr.contains(&prefix));
}

#[test]
fn unsupported_scheme_is_refused_at_check_and_run() {
    let ws = Workspace::new();
    // The bundled github connector supports bearer only.
    let connection = Connection::new(
        json!({ "repository": "octo/hello", "base_url": "https://api.github.com" }),
    )
    .set("auth", "type", json!("basic"))
    .set("auth", "username", json!("alice"))
    .set("auth", "password", json!({ "env": "SLUICE_TEST_UNUSED" }));
    let path = ws.write(&connection);
    let check = sluice().run([
        "check",
        "--connector",
        "github",
        "--config",
        &path.display().to_string(),
    ]);
    let message = check.assert_error();
    assert!(
        message.contains(
            "has `type = \"basic\"`, which connector `github` does not support; use one of: bearer"
        ),
        "{message}"
    );
    let run = ws.run_output("github");
    let message = run.assert_error();
    assert!(
        message.contains("does not support; use one of: bearer"),
        "{message}"
    );
}

#[test]
fn missing_secret_variable_is_named_at_check() {
    let mock = AuthMock::start(Expect::LatestToken, "unused");
    let ws = Workspace::new();
    let path = ws.write(&oauth2_auth(
        mock.connection(),
        &mock,
        "oauth2_refresh_token",
    ));
    let check = sluice()
        .cmd([
            "check",
            "--connector",
            "rest",
            "--config",
            &path.display().to_string(),
        ])
        .env("SLUICE_TEST_CLIENT_SECRET", "x-client-secret")
        .output();
    let message = check.assert_error();
    assert!(
        message.contains("environment variable `SLUICE_TEST_REFRESH_TOKEN` is not set"),
        "{message}"
    );
    assert!(mock.token.hits().is_empty() && mock.api_hits().is_empty());
}

/// Files under `dir` that contain `needle`.
fn found_in(dir: &Path, needle: &str) -> Vec<std::path::PathBuf> {
    if dir.exists() {
        files::files_containing(dir, needle.as_bytes())
    } else {
        Vec::new()
    }
}

/// None of `secrets` appears in stdout, stderr, the output files (the records), or the state
/// directory.
fn assert_no_secret(ws: &Workspace, output: &CmdOutput, secrets: &[&str], case: &str) {
    for secret in secrets {
        assert!(
            !output.stdout.contains(secret),
            "{case}: stdout has a secret"
        );
        assert!(
            !output.stderr.contains(secret),
            "{case}: stderr has a secret"
        );
        assert_eq!(
            found_in(&ws.output(), secret),
            Vec::<std::path::PathBuf>::new(),
            "{case}"
        );
        assert_eq!(
            found_in(&ws.state(), secret),
            Vec::<std::path::PathBuf>::new(),
            "{case}"
        );
    }
}

/// The canary test: a distinctive secret in every scheme (API key, bearer token, basic
/// password, OAuth2 client secret and refresh token), plus every access token the endpoint
/// issues, searched for in stdout, stderr at `-vvv`, the JSONL output (the records) and every
/// file of the sled state directory. The only value allowed in the state directory is a
/// rotated refresh token, which is saved there on purpose (the `credentials` tree); the
/// configured refresh token and every access token must not be.
#[test]
fn canary_secrets_appear_in_no_output() {
    // Fixed-secret schemes: covered with -vvv by `each_fixed_secret_scheme_is_applied_by_the_host`
    // through `assert_no_secret`; here the OAuth2 grants, with rotation and a 401 refresh.
    for grant in ["oauth2_client_credentials", "oauth2_refresh_token"] {
        let prefix = canary(if grant.ends_with("credentials") {
            "ccx"
        } else {
            "rtx"
        });
        let mock = AuthMock::start(Expect::LatestToken, &prefix);
        mock.state().expires_in = 0;
        let ws = Workspace::new();
        ws.write(&oauth2_auth(mock.connection(), &mock, grant));
        let env = oauth_env(&prefix);
        let output = run(&ws, &borrowed(&env), &["-vvv"]);
        output.assert_success();
        assert_all_records(&ws);
        let state = mock.state();
        assert!(state.issued.len() >= PAGES, "{grant}: tokens were issued");
        let mut secrets: Vec<String> = env.iter().map(|(_, v)| v.clone()).collect();
        secrets.extend(state.issued.iter().cloned());
        let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
        assert_no_secret(&ws, &output, &secrets, grant);
        for rotated in &state.rotated {
            assert!(!output.stdout.contains(rotated.as_str()), "{grant}: stdout");
            assert!(!output.stderr.contains(rotated.as_str()), "{grant}: stderr");
            assert!(
                found_in(&ws.output(), rotated).is_empty(),
                "{grant}: output"
            );
        }
        if grant == "oauth2_refresh_token" {
            let last = state.rotated.last().expect("rotated");
            assert!(
                !found_in(&ws.state(), last).is_empty(),
                "the rotated refresh token is saved in the state directory"
            );
        }
        // The generic prefix of every secret, in case a value is printed in part.
        assert!(
            !output.stderr.contains(&prefix),
            "{grant}: stderr has a secret prefix"
        );
    }
}

/// A hostile connector tries to learn the bearer token: the server it talks to echoes every
/// request header in its response headers and body, the connector requests its own URL again
/// with the credential, sets `authorization` itself in another stream, and writes what it sees
/// (response headers, body, URL, environment, arguments) into records. It finds nothing: the
/// echoing headers are dropped, the body is redacted, the environment is empty, and its own
/// `authorization` header is refused before anything is sent.
#[test]
pub fn hostile_secret_probe() {
    let token = canary("probe");
    let server = ScriptedServer::start(|hit| {
        let authorization = hit.header("authorization").unwrap_or("").to_owned();
        Reply::json(
            200,
            &json!({ "headers": hit.headers, "query": hit.query, "path": hit.path }),
        )
        .with_header("x-echo-authorization", &authorization)
        .with_header("x-echo-all", &format!("{:?}", hit.headers))
    });
    let ws = Workspace::new();
    let connection = Connection::new(json!({
        "declared": server.host_port(),
        "base_url": server.base_url(),
    }))
    .allow_private_networks()
    .bearer_from_env("SLUICE_TEST_PROBE_TOKEN");
    ws.write(&connection);
    let output = sluice()
        .cmd(ws.run_args(sluice_tests::HOSTILE_SECRET_PROBE_COMPONENT))
        .args(["-vvv"])
        // Everything at trace except the code generator (its trace output of a component
        // that is not cached makes compiling it take minutes).
        .env("SLUICE_LOG", TRACE_BUT_CODEGEN)
        .env("SLUICE_TEST_PROBE_TOKEN", &token)
        .output();
    // The `ask` stream fails: a connector may not set `authorization`.
    let message = output.assert_error();
    assert!(message.contains("stream `ask`"), "{message}");
    assert!(message.contains("authorization"), "{message}");

    let hits = server.hits();
    assert_eq!(
        hits.len(),
        2,
        "only the `probe` stream's two requests: {hits:?}"
    );
    for hit in &hits {
        assert_eq!(
            hit.header("authorization"),
            Some(format!("Bearer {token}").as_str()),
            "the host applied the credential, and the server echoed it"
        );
    }
    let records = ws.records("probe");
    assert_eq!(records.len(), 2, "{records:?}");
    for record in &records {
        let text = record.to_string();
        assert!(!text.contains(&token), "a record holds the token: {text}");
        assert!(text.contains("[redacted]"), "the echo was redacted: {text}");
        let headers = record["headers"].as_array().expect("headers");
        assert!(
            !headers
                .iter()
                .any(|h| h[0] == "x-echo-authorization" || h[0] == "x-echo-all"),
            "echoing headers are dropped: {headers:?}"
        );
        assert_eq!(record["env"], json!([]), "the guest has no environment");
    }
    assert_eq!(
        records[1]["sent_url"].as_str().map(|u| u.contains("/echo")),
        Some(true),
        "the second request went to the connector's own URL"
    );
    assert_no_secret(&ws, &output, &[&token], "hostile_secret_probe");
}

/// The API redirects to another origin: the hop is refused by the egress policy (the other
/// origin is not one the connector declared), and the other server never sees a request, let
/// alone the credential.
#[test]
fn redirect_to_another_origin_never_carries_the_credential() {
    let token = canary("redirect");
    let other = ScriptedServer::start(|hit| dataset_page(hit, RECORDS));
    let location = other.url("/offset/items?limit=10&offset=0");
    let api =
        ScriptedServer::start(move |_| Reply::new(302, &[("location", location.as_str())], ""));
    let ws = Workspace::new();
    let connection = Connection::new(json!({
        "base_url": api.base_url(),
        "streams": [rest_stream("items", Style::Offset, 10)],
    }))
    .allow_private_networks()
    .bearer_from_env("SLUICE_TEST_REDIRECT_TOKEN");
    ws.write(&connection);
    let output = run(&ws, &[("SLUICE_TEST_REDIRECT_TOKEN", &token)], &[]);
    let message = output.assert_error();
    assert!(message.contains("denied"), "{message}");
    let hits = api.hits();
    assert!(!hits.is_empty());
    assert_eq!(
        hits[0].header("authorization"),
        Some(format!("Bearer {token}").as_str()),
        "the bound origin got the credential"
    );
    assert!(other.hits().is_empty(), "nothing reached the other origin");
    assert_no_secret(&ws, &output, &[&token], "redirect");
}
