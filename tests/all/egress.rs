//! Egress policy: a request outside the allow-list, or to a private address without the
//! operator's consent, is refused before anything reaches the network.

use serde_json::json;
use sluice_tests::connection::{Connection, Style, rest_connection, rest_stream};
use sluice_tests::mock::MockApi;

use crate::Workspace;

/// An operator allow-list that leaves out the mock's `127.0.0.1:PORT` (another host, or the same
/// address on another port) denies the request, and the mock never sees it.
#[test]
fn operator_allowlist_excluding_the_mock_is_denied() {
    let mock = MockApi::start(30);
    for allowed in ["api.example.com", "127.0.0.1:9"] {
        let ws = Workspace::new();
        ws.write(
            &rest_connection(&mock, vec![rest_stream("items", Style::Offset, 10)])
                .allowed_hosts(&[allowed]),
        );
        let output = ws.run_output("rest");
        let error = output.assert_error();
        assert!(
            error.contains("denied") && error.contains("127.0.0.1"),
            "allowed_hosts = [{allowed:?}]: the error must say the request to the mock was denied\n{output}"
        );
        assert_eq!(mock.request_count(), 0, "allowed_hosts = [{allowed:?}]");
        assert!(
            !ws.output_file("items").exists()
                || std::fs::read(ws.output_file("items"))
                    .expect("read")
                    .is_empty(),
            "no records without a response"
        );
    }

    // The same connection with the mock allowed works: the denial above was the allow-list's.
    let ws = Workspace::new();
    ws.write(
        &rest_connection(&mock, vec![rest_stream("items", Style::Offset, 10)])
            .allowed_hosts(&[&mock.host_port()]),
    );
    assert_eq!(ws.run("rest").stream("items").records, 30);
}

/// Loopback is a private network: without `allow_private_networks = true` the request is refused
/// (even though the connector declares the host) and the mock sees nothing.
#[test]
fn loopback_refused_without_allow_private_networks() {
    let mock = MockApi::start(30);
    for base_url in [
        mock.base_url(),
        format!("http://localhost:{}", mock.addr().port()),
    ] {
        let ws = Workspace::new();
        ws.write(&Connection::new(json!({
            "base_url": base_url,
            "streams": [rest_stream("items", Style::Offset, 10)],
        })));
        let output = ws.run_output("rest");
        let error = output.assert_error().to_lowercase();
        assert!(
            ["denied", "private", "loopback"]
                .iter()
                .any(|word| error.contains(word)),
            "{base_url}: the error must say why the address is refused\n{output}"
        );
        assert_eq!(mock.request_count(), 0, "{base_url}");
    }
}

/// A connector that declares the mock's host but asks for another server's URL is denied: the
/// other server (also on 127.0.0.1, so only the port differs) receives nothing.
#[test]
pub(crate) fn hostile_disallowed_host() {
    let declared = MockApi::start(5);
    let other = MockApi::start(5);
    let targets = [
        other.url("/none/items"),
        // The other server under a name instead of an address.
        format!("http://localhost:{}/none/items", other.addr().port()),
    ];
    for url in targets {
        let ws = Workspace::new();
        ws.write(
            &Connection::new(json!({ "declared": declared.host_port(), "url": url }))
                .allow_private_networks(),
        );
        let output = ws.run_output(sluice_tests::HOSTILE_DISALLOWED_HOST_COMPONENT);
        let error = output.assert_error();
        assert!(
            error.contains("denied"),
            "{url}: the error must say `denied`\n{output}"
        );
        assert_eq!(
            other.request_count(),
            0,
            "{url}: the undeclared server was reached"
        );
        assert_eq!(declared.request_count(), 0, "{url}");
    }
}
