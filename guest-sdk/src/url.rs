//! Small URL helpers for connector code: the allowed host of a base URL, joining a base URL and
//! a path, resolving a `Link` target, and reading a query parameter.
//!
//! These are deliberately minimal (no IDNA tables, no normalisation beyond what a connector
//! needs) to keep components small; the host parses every URL properly before sending it.

use crate::{Error, Result};

/// The parts of an absolute `http(s)` URL that the helpers here need.
struct Parts<'a> {
    /// `http` or `https`, as written.
    scheme: &'a str,
    /// `[userinfo@]host[:port]`, as written.
    authority: &'a str,
    /// The path (may be empty).
    path: &'a str,
    /// The query without `?`, if any.
    query: Option<&'a str>,
}

fn split(url: &str) -> Option<Parts<'_>> {
    let (scheme, rest) = url.split_once("://")?;
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return None;
    }
    let rest = rest.split_once('#').map_or(rest, |(before, _)| before);
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, rest) = rest.split_at(authority_end);
    let (path, query) = match rest.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (rest, None),
    };
    Some(Parts {
        scheme,
        authority,
        path,
        query,
    })
}

/// The `host` or `host:port` of an absolute `http`/`https` URL, lowercased and without user
/// info: the form a [`crate::Catalog`] lists in `allowed-hosts`. The port is kept only when
/// the URL spells it out.
///
/// Fails with [`Error::InvalidConfig`], since the URL almost always comes from config.
///
/// ```
/// use sluice_sdk::url::allowed_host;
///
/// assert_eq!(allowed_host("https://api.github.com/repos").unwrap(), "api.github.com");
/// assert_eq!(allowed_host("http://127.0.0.1:8080").unwrap(), "127.0.0.1:8080");
/// assert!(allowed_host("ftp://example.com").is_err());
/// ```
pub fn allowed_host(url: &str) -> Result<String> {
    let invalid = |why: &str| {
        Error::invalid_config(format!(
            "`{url}` is not a usable base URL ({why}); write it like `https://api.example.com`"
        ))
    };
    let parts = split(url).ok_or_else(|| invalid("it must start with http:// or https://"))?;
    let host_port = parts
        .authority
        .rsplit_once('@')
        .map_or(parts.authority, |(_, host)| host);
    let (host, port) = if let Some(bracketed) = host_port.strip_prefix('[') {
        let (host, after) = bracketed
            .split_once(']')
            .ok_or_else(|| invalid("unclosed `[` in the host"))?;
        let port = match after {
            "" => None,
            _ => Some(
                after
                    .strip_prefix(':')
                    .ok_or_else(|| invalid("junk after the IPv6 address"))?,
            ),
        };
        (format!("[{host}]"), port)
    } else {
        match host_port.split_once(':') {
            Some((host, port)) => (host.to_owned(), Some(port)),
            None => (host_port.to_owned(), None),
        }
    };
    if host.is_empty() || host == "[]" {
        return Err(invalid("it has no host"));
    }
    if host.contains(|c: char| c.is_whitespace() || c == '\\') {
        return Err(invalid("the host contains a space or a backslash"));
    }
    let host = host.to_ascii_lowercase();
    match port {
        None => Ok(host),
        Some(port) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => {
            Ok(format!("{host}:{port}"))
        }
        Some(_) => Err(invalid("the port is not a number")),
    }
}

/// Join a base URL and a path with exactly one `/` between them. An absolute `http(s)` URL in
/// `path` replaces the base; an empty path leaves the base as it is.
///
/// ```
/// use sluice_sdk::url::join;
///
/// assert_eq!(join("https://api.example.com/v1/", "/users"), "https://api.example.com/v1/users");
/// assert_eq!(join("https://api.example.com/v1", "users"), "https://api.example.com/v1/users");
/// assert_eq!(join("https://a.example", "https://b.example/x"), "https://b.example/x");
/// ```
pub fn join(base: &str, path: &str) -> String {
    if split(path).is_some() {
        return path.to_owned();
    }
    if path.is_empty() {
        return base.to_owned();
    }
    format!(
        "{}/{}",
        base.trim_end_matches('/'),
        path.trim_start_matches('/')
    )
}

/// Resolve a URI reference (as found in a `Link` header) against the URL it came from
/// (RFC 3986 section 5.2, for `http(s)` bases).
///
/// ```
/// use sluice_sdk::url::resolve;
///
/// let base = "https://api.example.com/v1/items?page=1";
/// assert_eq!(resolve(base, "/v1/items?page=2"), "https://api.example.com/v1/items?page=2");
/// assert_eq!(resolve(base, "?page=3"), "https://api.example.com/v1/items?page=3");
/// assert_eq!(resolve(base, "other?page=4"), "https://api.example.com/v1/other?page=4");
/// assert_eq!(resolve(base, "https://cdn.example.com/x"), "https://cdn.example.com/x");
/// ```
pub fn resolve(base: &str, reference: &str) -> String {
    if has_scheme(reference) {
        return reference.to_owned();
    }
    let Some(parts) = split(base) else {
        return reference.to_owned();
    };
    let origin = format!("{}://{}", parts.scheme, parts.authority);
    if let Some(rest) = reference.strip_prefix("//") {
        return format!("{}://{rest}", parts.scheme);
    }
    if reference.is_empty() || reference.starts_with('#') {
        let query = parts.query.map(|q| format!("?{q}")).unwrap_or_default();
        return format!("{origin}{}{query}", parts.path);
    }
    if reference.starts_with('?') {
        return format!("{origin}{}{reference}", parts.path);
    }
    let (ref_path, ref_rest) = match reference.find(['?', '#']) {
        Some(at) => reference.split_at(at),
        None => (reference, ""),
    };
    let merged = if ref_path.starts_with('/') {
        ref_path.to_owned()
    } else {
        let directory = parts.path.rfind('/').map_or("/", |at| &parts.path[..=at]);
        let directory = if directory.is_empty() { "/" } else { directory };
        format!("{directory}{ref_path}")
    };
    format!("{origin}{}{ref_rest}", remove_dot_segments(&merged))
}

fn has_scheme(reference: &str) -> bool {
    match reference.split_once(':') {
        Some((scheme, _)) => {
            let mut chars = scheme.chars();
            chars.next().is_some_and(|c| c.is_ascii_alphabetic())
                && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        }
        None => false,
    }
}

fn remove_dot_segments(path: &str) -> String {
    let mut output: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').collect();
    let last = segments.len().saturating_sub(1);
    for (index, segment) in segments.iter().enumerate() {
        match *segment {
            "." => {
                if index == last {
                    output.push("");
                }
            }
            ".." => {
                if output.len() > 1 {
                    output.pop();
                }
                if index == last {
                    output.push("");
                }
            }
            other => output.push(other),
        }
    }
    let joined = output.join("/");
    if joined.starts_with('/') {
        joined
    } else {
        format!("/{joined}")
    }
}

/// The value of query parameter `name` in the query string of `url`, percent-decoded (`+` reads
/// as a space). When the parameter repeats, the last value wins.
///
/// ```
/// use sluice_sdk::url::query_param;
///
/// let url = "https://api.example.com/items?q=a%20b&page=2&page=3";
/// assert_eq!(query_param(url, "page").as_deref(), Some("3"));
/// assert_eq!(query_param(url, "q").as_deref(), Some("a b"));
/// assert_eq!(query_param(url, "missing"), None);
/// ```
pub fn query_param(url: &str, name: &str) -> Option<String> {
    let without_fragment = url.split_once('#').map_or(url, |(before, _)| before);
    let (_, query) = without_fragment.split_once('?')?;
    query.rsplit('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(key) == name).then(|| percent_decode(value))
    })
}

/// `url` without any query parameter called `name` (compared after percent-decoding); the rest
/// of the URL, including the order of the other parameters, is kept as written.
///
/// ```
/// use sluice_sdk::url::remove_query_param;
///
/// assert_eq!(remove_query_param("https://h/x?page=2&q=a", "page"), "https://h/x?q=a");
/// assert_eq!(remove_query_param("https://h/x?page=2#top", "page"), "https://h/x#top");
/// ```
pub fn remove_query_param(url: &str, name: &str) -> String {
    let (without_fragment, fragment) = match url.split_once('#') {
        Some((before, after)) => (before, Some(after)),
        None => (url, None),
    };
    let Some((base, query)) = without_fragment.split_once('?') else {
        return url.to_owned();
    };
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| {
            let key = pair.split_once('=').map_or(*pair, |(key, _)| key);
            percent_decode(key) != name
        })
        .collect();
    let mut out = base.to_owned();
    if kept.iter().any(|pair| !pair.is_empty()) {
        out.push('?');
        out.push_str(&kept.join("&"));
    }
    if let Some(fragment) = fragment {
        out.push('#');
        out.push_str(fragment);
    }
    out
}

/// Percent-decode a query component; `+` becomes a space and invalid UTF-8 is replaced.
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'+' => out.push(b' '),
            b'%' if index + 2 < bytes.len() => {
                match (hex(bytes[index + 1]), hex(bytes[index + 2])) {
                    (Some(high), Some(low)) => {
                        out.push(high << 4 | low);
                        index += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            other => out.push(other),
        }
        index += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

/// Percent-encode a query component (everything but RFC 3986 unreserved characters).
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowed_host_forms() {
        assert_eq!(
            allowed_host("HTTPS://API.Example.com").unwrap(),
            "api.example.com"
        );
        assert_eq!(
            allowed_host("http://user:pw@127.0.0.1:9000/x?y#z").unwrap(),
            "127.0.0.1:9000"
        );
        assert_eq!(allowed_host("http://[::1]:8080/").unwrap(), "[::1]:8080");
        assert_eq!(allowed_host("http://[::1]").unwrap(), "[::1]");
        for bad in [
            "api.example.com",
            "https://",
            "https://:80",
            "https://h:x",
            "file:///etc",
        ] {
            let err = allowed_host(bad).unwrap_err();
            assert!(matches!(err, Error::InvalidConfig(_)), "{bad}: {err}");
        }
        assert_eq!(
            allowed_host("https://h:x").unwrap_err().message(),
            "`https://h:x` is not a usable base URL (the port is not a number); write it like `https://api.example.com`"
        );
    }

    #[test]
    fn join_paths() {
        assert_eq!(join("http://h/", ""), "http://h/");
        assert_eq!(join("http://h//", "//a"), "http://h/a");
        assert_eq!(join("http://h/v1", "a?b=c"), "http://h/v1/a?b=c");
    }

    #[test]
    fn resolve_references() {
        let base = "https://h.example/a/b/c?x=1#f";
        assert_eq!(resolve(base, "d"), "https://h.example/a/b/d");
        assert_eq!(resolve(base, "../d?y=2"), "https://h.example/a/d?y=2");
        assert_eq!(resolve(base, "./"), "https://h.example/a/b/");
        assert_eq!(
            resolve(base, "//other.example/p"),
            "https://other.example/p"
        );
        assert_eq!(resolve(base, ""), "https://h.example/a/b/c?x=1");
        assert_eq!(
            resolve("https://h.example", "next"),
            "https://h.example/next"
        );
        assert_eq!(resolve(base, "/../x"), "https://h.example/x");
    }

    #[test]
    fn decode_and_encode() {
        assert_eq!(percent_decode("a%2Fb+c%zz%4"), "a/b c%zz%4");
        assert_eq!(percent_decode("%"), "%");
        assert_eq!(percent_encode("a b/ü"), "a%20b%2F%C3%BC");
        assert_eq!(query_param("http://h/?a&b=", "a").as_deref(), Some(""));
        assert_eq!(query_param("http://h/#?a=1", "a"), None);
    }
}
