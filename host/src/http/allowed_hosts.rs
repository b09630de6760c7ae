//! Host allow-lists: `host`, `host:port`, `host:*`, `*.suffix`, with an optional `http://` or
//! `https://` prefix.
//!
//! A pattern without a port allows only the default port of the URL's scheme (80 for `http`,
//! 443 for `https`); `host:*` allows any port. A pattern without a scheme allows both `http` and
//! `https`. `*.example.com` allows every subdomain of `example.com` at any depth, but not
//! `example.com` itself. Names are compared case-insensitively after IDNA normalisation, a
//! trailing dot is ignored, and IP literals are compared as addresses, so `127.1` and
//! `127.0.0.1` are the same host.

use std::fmt;
use std::net::IpAddr;

use url::{Host, Url};

use super::Error;

/// An allow-list of hosts, parsed from patterns (see the module docs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedHosts {
    hosts: Vec<AllowedHost>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct AllowedHost {
    scheme: Option<Scheme>,
    host: HostPattern,
    port: PortPattern,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    Http,
    Https,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    /// One name, lowercase ASCII, without a trailing dot.
    Domain(String),
    /// Every name ending in `.suffix`.
    Subdomains(String),
    /// One address.
    Ip(IpAddr),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PortPattern {
    /// The default port of the URL's scheme.
    Default,
    /// Any port.
    Any,
    /// This port.
    Exact(u16),
}

const PATH_NOT_ALLOWED: &str =
    "a path, query or fragment is not allowed; use `host`, `host:port` or `*.suffix`";
const BAD_PORT: &str = "the port must be a number from 1 to 65535, or `*` for any port";
const BAD_HOST: &str = "the host is not a valid domain name or IP address";

impl AllowedHosts {
    /// An empty list: allows nothing.
    pub fn none() -> Self {
        Self::default()
    }

    /// Parses patterns; the error names the first invalid one and why it is invalid.
    pub fn parse(patterns: &[String]) -> Result<Self, Error> {
        let hosts = patterns
            .iter()
            .map(|pattern| {
                AllowedHost::parse(pattern).map_err(|reason| Error::InvalidAllowedHost {
                    pattern: pattern.clone(),
                    reason,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { hosts })
    }

    /// Whether the list allows nothing.
    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }

    /// Whether some pattern matches `url`'s scheme, host and port.
    pub fn allows(&self, url: &Url) -> bool {
        self.hosts.iter().any(|host| host.matches(url))
    }
}

/// `[a, b:8080, *.c]`, the patterns in normalised form.
impl fmt::Display for AllowedHosts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, host) in self.hosts.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{host}")?;
        }
        f.write_str("]")
    }
}

impl AllowedHost {
    fn parse(pattern: &str) -> Result<Self, &'static str> {
        let text = pattern.trim();
        if text.is_empty() {
            return Err("it is empty");
        }
        let (scheme, rest) = match text.split_once("://") {
            Some((scheme, rest)) => match scheme.to_ascii_lowercase().as_str() {
                "http" => (Some(Scheme::Http), rest),
                "https" => (Some(Scheme::Https), rest),
                _ => return Err("only `http://` and `https://` prefixes are supported"),
            },
            None => (None, text),
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#']) {
            return Err(PATH_NOT_ALLOWED);
        }
        if rest.contains('@') {
            return Err("user info is not allowed");
        }
        let (host, port) = split_port(rest)?;
        let port = match port {
            None => PortPattern::Default,
            Some("*") => PortPattern::Any,
            Some(port) => match port.parse::<u16>() {
                Ok(number) if number != 0 && port.bytes().all(|b| b.is_ascii_digit()) => {
                    PortPattern::Exact(number)
                }
                _ => return Err(BAD_PORT),
            },
        };
        let host = if host == "*" {
            return Err("a bare `*` would allow every host; list the hosts, or use \
                        `*.example.com` for the subdomains of one");
        } else if let Some(suffix) = host.strip_prefix("*.") {
            if suffix.contains('*') {
                return Err("`*` is only allowed as the whole first label, as in `*.example.com`");
            }
            match Host::parse(suffix).map_err(|_| BAD_HOST)? {
                Host::Domain(domain) => HostPattern::Subdomains(normalise_domain(&domain)),
                Host::Ipv4(_) | Host::Ipv6(_) => {
                    return Err("`*.` must be followed by a domain name, not an IP address");
                }
            }
        } else if host.contains('*') {
            return Err("`*` is only allowed as the whole first label, as in `*.example.com`");
        } else {
            match Host::parse(host).map_err(|_| BAD_HOST)? {
                Host::Domain(domain) => HostPattern::Domain(normalise_domain(&domain)),
                Host::Ipv4(ip) => HostPattern::Ip(IpAddr::V4(ip)),
                Host::Ipv6(ip) => HostPattern::Ip(IpAddr::V6(ip)),
            }
        };
        if matches!(&host, HostPattern::Domain(d) | HostPattern::Subdomains(d) if d.is_empty()) {
            return Err(BAD_HOST);
        }
        Ok(Self { scheme, host, port })
    }

    fn matches(&self, url: &Url) -> bool {
        let scheme_ok = match self.scheme {
            None => matches!(url.scheme(), "http" | "https"),
            Some(Scheme::Http) => url.scheme() == "http",
            Some(Scheme::Https) => url.scheme() == "https",
        };
        // `Url` drops a port equal to its scheme's default, so `port()` is `None` exactly when
        // the default port is used.
        let port_ok = match self.port {
            PortPattern::Default => url.port().is_none(),
            PortPattern::Any => true,
            PortPattern::Exact(port) => url.port_or_known_default() == Some(port),
        };
        let host_ok = match (url.host(), &self.host) {
            (Some(Host::Domain(name)), HostPattern::Domain(allowed)) => {
                normalise_domain(name) == *allowed
            }
            (Some(Host::Domain(name)), HostPattern::Subdomains(suffix)) => {
                let name = normalise_domain(name);
                name.len() > suffix.len() + 1
                    && name.ends_with(suffix.as_str())
                    && name.as_bytes()[name.len() - suffix.len() - 1] == b'.'
            }
            (Some(Host::Ipv4(ip)), HostPattern::Ip(allowed)) => IpAddr::V4(ip) == *allowed,
            (Some(Host::Ipv6(ip)), HostPattern::Ip(allowed)) => IpAddr::V6(ip) == *allowed,
            _ => false,
        };
        scheme_ok && port_ok && host_ok
    }
}

impl fmt::Display for AllowedHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.scheme {
            Some(Scheme::Http) => f.write_str("http://")?,
            Some(Scheme::Https) => f.write_str("https://")?,
            None => {}
        }
        match &self.host {
            HostPattern::Domain(name) => f.write_str(name)?,
            HostPattern::Subdomains(suffix) => write!(f, "*.{suffix}")?,
            HostPattern::Ip(IpAddr::V4(ip)) => write!(f, "{ip}")?,
            HostPattern::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]")?,
        }
        match self.port {
            PortPattern::Default => Ok(()),
            PortPattern::Any => f.write_str(":*"),
            PortPattern::Exact(port) => write!(f, ":{port}"),
        }
    }
}

/// Splits `host[:port]`, where the host may be a bracketed IPv6 address.
fn split_port(text: &str) -> Result<(&str, Option<&str>), &'static str> {
    if text.starts_with('[') {
        let end = text.find(']').ok_or(BAD_HOST)?;
        let (host, after) = text.split_at(end + 1);
        return match after {
            "" => Ok((host, None)),
            _ => after
                .strip_prefix(':')
                .map(|port| (host, Some(port)))
                .ok_or(BAD_HOST),
        };
    }
    match text.split_once(':') {
        None => Ok((text, None)),
        Some((host, port)) if !port.contains(':') => Ok((host, Some(port))),
        Some(_) => Err("an IPv6 address must be written in brackets, as in `[::1]:8080`"),
    }
}

/// Lowercase (already done by IDNA for `Host::parse` output) and without one trailing dot, so
/// that `example.com.` and `example.com` compare equal.
pub(crate) fn normalise_domain(name: &str) -> String {
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(patterns: &[&str]) -> AllowedHosts {
        let patterns: Vec<String> = patterns.iter().map(|p| (*p).to_owned()).collect();
        AllowedHosts::parse(&patterns).unwrap()
    }

    fn parse_err(pattern: &str) -> String {
        AllowedHosts::parse(&[pattern.to_owned()])
            .unwrap_err()
            .to_string()
    }

    fn allows(list: &AllowedHosts, url: &str) -> bool {
        list.allows(&Url::parse(url).unwrap())
    }

    #[test]
    fn parse_normalises_patterns() {
        let list = hosts(&[
            "API.Example.COM",
            "https://secure.example.com:8443/",
            "HTTP://*.Example.org:*",
            "127.1",
            "[::1]:8080",
            "bücher.example",
            "  spaced.example  ",
        ]);
        assert_eq!(
            list.to_string(),
            "[api.example.com, https://secure.example.com:8443, http://*.example.org:*, \
             127.0.0.1, [::1]:8080, xn--bcher-kva.example, spaced.example]"
        );
        assert!(AllowedHosts::none().is_empty());
        assert_eq!(AllowedHosts::none().to_string(), "[]");
    }

    #[test]
    fn parse_errors_are_exact() {
        let cases = [
            ("", "invalid allowed host ``: it is empty"),
            (
                "ftp://files.example.com",
                "invalid allowed host `ftp://files.example.com`: only `http://` and `https://` \
                 prefixes are supported",
            ),
            (
                "api.example.com/v1",
                "invalid allowed host `api.example.com/v1`: a path, query or fragment is not \
                 allowed; use `host`, `host:port` or `*.suffix`",
            ),
            (
                "api.example.com?x=1",
                "invalid allowed host `api.example.com?x=1`: a path, query or fragment is not \
                 allowed; use `host`, `host:port` or `*.suffix`",
            ),
            (
                "user:pw@api.example.com",
                "invalid allowed host `user:pw@api.example.com`: user info is not allowed",
            ),
            (
                "api.example.com:0",
                "invalid allowed host `api.example.com:0`: the port must be a number from 1 to \
                 65535, or `*` for any port",
            ),
            (
                "api.example.com:99999",
                "invalid allowed host `api.example.com:99999`: the port must be a number from 1 \
                 to 65535, or `*` for any port",
            ),
            (
                "api.example.com:",
                "invalid allowed host `api.example.com:`: the port must be a number from 1 to \
                 65535, or `*` for any port",
            ),
            (
                "*",
                "invalid allowed host `*`: a bare `*` would allow every host; list the hosts, or \
                 use `*.example.com` for the subdomains of one",
            ),
            (
                "api.*.example.com",
                "invalid allowed host `api.*.example.com`: `*` is only allowed as the whole first \
                 label, as in `*.example.com`",
            ),
            (
                "*api.example.com",
                "invalid allowed host `*api.example.com`: `*` is only allowed as the whole first \
                 label, as in `*.example.com`",
            ),
            (
                "*.10.0.0.1",
                "invalid allowed host `*.10.0.0.1`: `*.` must be followed by a domain name, not \
                 an IP address",
            ),
            (
                "::1",
                "invalid allowed host `::1`: an IPv6 address must be written in brackets, as in \
                 `[::1]:8080`",
            ),
            (
                "exa mple.com",
                "invalid allowed host `exa mple.com`: the host is not a valid domain name or IP \
                 address",
            ),
            (
                "[::1",
                "invalid allowed host `[::1`: the host is not a valid domain name or IP address",
            ),
        ];
        for (pattern, expected) in cases {
            assert_eq!(parse_err(pattern), expected, "{pattern:?}");
        }
    }

    #[test]
    fn plain_host_allows_default_ports_of_both_schemes() {
        let list = hosts(&["api.example.com"]);
        assert!(allows(&list, "https://api.example.com/v1?page=2"));
        assert!(allows(&list, "http://API.EXAMPLE.COM/"));
        assert!(allows(&list, "https://api.example.com:443/"));
        assert!(allows(&list, "https://api.example.com./"));
        assert!(!allows(&list, "https://api.example.com:8443/"));
        assert!(!allows(&list, "http://api.example.com:443/"));
        assert!(!allows(&list, "https://example.com/"));
        assert!(!allows(&list, "https://x.api.example.com/"));
        assert!(!allows(&list, "https://api.example.com.evil.net/"));
        assert!(!allows(&list, "https://evilapi.example.com/"));
    }

    #[test]
    fn ports_and_schemes_narrow() {
        let list = hosts(&[
            "https://secure.example.com",
            "svc.example.com:8080",
            "any.example:*",
        ]);
        assert!(allows(&list, "https://secure.example.com/"));
        assert!(!allows(&list, "http://secure.example.com/"));
        assert!(allows(&list, "http://svc.example.com:8080/"));
        assert!(allows(&list, "https://svc.example.com:8080/"));
        assert!(!allows(&list, "http://svc.example.com/"));
        assert!(allows(&list, "http://any.example:1/"));
        assert!(allows(&list, "https://any.example/"));
    }

    #[test]
    fn wildcard_matches_subdomains_only() {
        let list = hosts(&["*.example.com"]);
        assert!(allows(&list, "https://a.example.com/"));
        assert!(allows(&list, "https://a.b.example.com/"));
        assert!(!allows(&list, "https://example.com/"));
        assert!(!allows(&list, "https://badexample.com/"));
        assert!(!allows(&list, "https://example.com.evil.net/"));
    }

    #[test]
    fn ip_literals_compare_as_addresses() {
        let list = hosts(&["127.0.0.1:8080", "[::1]:8080"]);
        assert!(allows(&list, "http://127.0.0.1:8080/"));
        assert!(allows(&list, "http://2130706433:8080/"));
        assert!(allows(&list, "http://0x7f.1:8080/"));
        assert!(allows(&list, "http://[0:0::1]:8080/"));
        assert!(!allows(&list, "http://127.0.0.2:8080/"));
        assert!(!allows(&list, "http://127.0.0.1/"));
        assert!(!allows(&list, "http://localhost:8080/"));
    }

    #[test]
    fn empty_list_allows_nothing() {
        assert!(!allows(&AllowedHosts::none(), "https://example.com/"));
    }
}
