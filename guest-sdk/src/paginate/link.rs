//! `Link` header pagination (RFC 8288), as used by GitHub, GitLab and many others.

use super::{PageInfo, Paginate};
use crate::{Request, Response, Result, url};

/// One link of a `Link` header: a target and its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// The URI reference between `<` and `>`, as written (unresolved).
    pub target: String,
    /// Parameters in order, names lowercased, quoted values unquoted.
    pub params: Vec<(String, String)>,
}

impl Link {
    /// The value of the first parameter called `name` (case-insensitive).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// Whether the link's relation types (the first `rel` parameter, a space-separated list)
    /// include `rel`, compared case-insensitively.
    pub fn has_rel(&self, rel: &str) -> bool {
        self.param("rel")
            .is_some_and(|rels| rels.split_whitespace().any(|r| r.eq_ignore_ascii_case(rel)))
    }
}

/// Parse one `Link` header value into its links. Commas inside `<…>` and inside quoted
/// strings do not split links; a malformed link is skipped, not fatal.
///
/// ```
/// use sluice_sdk::paginate::parse_link_header;
///
/// let links = parse_link_header(
///     r#"<https://api.github.com/repositories/1/issues?page=2>; rel="next", <https://api.github.com/repositories/1/issues?page=9>; rel="last""#,
/// );
/// assert_eq!(links.len(), 2);
/// assert!(links[0].has_rel("next"));
/// assert_eq!(links[1].target, "https://api.github.com/repositories/1/issues?page=9");
/// ```
pub fn parse_link_header(value: &str) -> Vec<Link> {
    let mut links = Vec::new();
    let mut rest = value;
    loop {
        rest = rest.trim_start_matches(|c: char| c == ',' || c.is_whitespace());
        if rest.is_empty() {
            return links;
        }
        let Some(after_open) = rest.strip_prefix('<') else {
            rest = skip_link(rest);
            continue;
        };
        let Some(close) = after_open.find('>') else {
            return links;
        };
        let target = after_open[..close].trim().to_owned();
        rest = &after_open[close + 1..];
        let mut params = Vec::new();
        while let Some(after_semicolon) = rest.trim_start().strip_prefix(';') {
            let (param, remaining) = parse_param(after_semicolon.trim_start());
            rest = remaining;
            params.extend(param);
        }
        let trailing = rest.trim_start();
        rest = match trailing.is_empty() || trailing.starts_with(',') {
            true => trailing,
            // Junk after the parameters: keep what was understood, resynchronise at the next
            // top-level comma.
            false => skip_link(trailing),
        };
        links.push(Link { target, params });
    }
}

/// Parse `name[=value]` at the start of `input`; return it and the rest.
fn parse_param(input: &str) -> (Option<(String, String)>, &str) {
    let name_end = input
        .find(|c: char| matches!(c, '=' | ';' | ',') || c.is_whitespace())
        .unwrap_or(input.len());
    let name = input[..name_end].to_ascii_lowercase();
    let rest = input[name_end..].trim_start();
    let (value, rest) = match rest.strip_prefix('=') {
        None => (String::new(), rest),
        Some(after_equals) => {
            let after_equals = after_equals.trim_start();
            match after_equals.strip_prefix('"') {
                Some(quoted) => read_quoted(quoted),
                None => {
                    let end = after_equals
                        .find(|c: char| matches!(c, ';' | ',') || c.is_whitespace())
                        .unwrap_or(after_equals.len());
                    (after_equals[..end].to_owned(), &after_equals[end..])
                }
            }
        }
    };
    let param = (!name.is_empty()).then_some((name, value));
    (param, rest)
}

/// Read a quoted string whose opening quote is already consumed; `\x` stands for `x`.
fn read_quoted(input: &str) -> (String, &str) {
    let mut value = String::new();
    let mut chars = input.char_indices();
    while let Some((at, c)) = chars.next() {
        match c {
            '"' => return (value, &input[at + 1..]),
            '\\' => {
                if let Some((_, escaped)) = chars.next() {
                    value.push(escaped);
                }
            }
            other => value.push(other),
        }
    }
    (value, "")
}

/// Skip to just after the next comma that is outside `<…>` and quotes.
fn skip_link(input: &str) -> &str {
    let mut in_quotes = false;
    let mut in_target = false;
    let mut escaped = false;
    for (at, c) in input.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_quotes => escaped = true,
            '"' if !in_target => in_quotes = !in_quotes,
            '<' if !in_quotes => in_target = true,
            '>' if !in_quotes => in_target = false,
            ',' if !in_quotes && !in_target => return &input[at + 1..],
            _ => {}
        }
    }
    ""
}

/// The target of the first link with relation `rel` in any `Link` header of `response`,
/// resolved against the URL that answered.
///
/// ```
/// use sluice_sdk::prelude::*;
/// use sluice_sdk::paginate::find_link;
///
/// let response = Response::new(200)
///     .with_url("https://api.example.com/v1/items?page=1")
///     .with_header("link", "</v1/items?page=2>; rel=next");
/// assert_eq!(
///     find_link(&response, "next").as_deref(),
///     Some("https://api.example.com/v1/items?page=2")
/// );
/// ```
pub fn find_link(response: &Response, rel: &str) -> Option<String> {
    response
        .header_values("link")
        .flat_map(parse_link_header)
        .find(|link| link.has_rel(rel))
        .map(|link| url::resolve(&response.url, &link.target))
}

/// `Link` header pagination: each next request goes to the target of the response's
/// `rel="next"` link (resolved against the URL that answered), with the method, headers,
/// body and authentication of the request before it; the target URL carries the whole query.
/// No such link (or a link back to the same URL) ends the stream.
///
/// ```
/// use sluice_sdk::prelude::*;
///
/// # fn main() -> Result<()> {
/// let pages = paginate::LinkHeader::new();
/// let first = pages.first(Request::get("https://api.github.com/repos/o/r/issues").query("per_page", 100).authenticated());
/// let response = Response::new(200)
///     .with_url(first.full_url())
///     .with_header("link", r#"<https://api.github.com/repositories/1/issues?per_page=100&page=2>; rel="next""#);
/// let next = pages.next(&PageInfo::new(&first, &response, 100))?.unwrap();
/// assert_eq!(next.url, "https://api.github.com/repositories/1/issues?per_page=100&page=2");
/// assert!(next.query.is_empty() && next.authenticate);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkHeader {
    /// The relation type to follow.
    pub rel: String,
}

impl Default for LinkHeader {
    fn default() -> Self {
        Self::new()
    }
}

impl LinkHeader {
    /// Follow `rel="next"`.
    pub fn new() -> Self {
        Self {
            rel: "next".to_owned(),
        }
    }

    /// Follow another relation type.
    pub fn with_rel(mut self, rel: impl Into<String>) -> Self {
        self.rel = rel.into();
        self
    }
}

impl Paginate for LinkHeader {
    fn first(&self, request: Request) -> Request {
        request
    }

    fn next(&self, page: &PageInfo<'_>) -> Result<Option<Request>> {
        let sent = page.request.full_url();
        let base = match page.response.url.is_empty() {
            true => sent.as_str(),
            false => page.response.url.as_str(),
        };
        let Some(target) = page
            .response
            .header_values("link")
            .flat_map(parse_link_header)
            .find(|link| link.has_rel(&self.rel))
            .map(|link| url::resolve(base, &link.target))
        else {
            return Ok(None);
        };
        if target == sent {
            return Ok(None);
        }
        let mut next = page.request.clone();
        next.url = target;
        next.query.clear();
        Ok(Some(next))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn targets_with_rel(header: &str, rel: &str) -> Vec<String> {
        parse_link_header(header)
            .into_iter()
            .filter(|link| link.has_rel(rel))
            .map(|link| link.target)
            .collect()
    }

    #[test]
    fn github_style_header() {
        let header = "<https://api.github.com/repositories/1300192/issues?page=2>; rel=\"next\", \
                      <https://api.github.com/repositories/1300192/issues?page=515>; rel=\"last\"";
        assert_eq!(
            targets_with_rel(header, "next"),
            vec!["https://api.github.com/repositories/1300192/issues?page=2"]
        );
        assert_eq!(targets_with_rel(header, "prev"), Vec::<String>::new());
    }

    #[test]
    fn commas_and_semicolons_inside_targets_and_quotes() {
        let header =
            r#"<https://h/x?ids=1,2;3>; title="a, \"b\"; c"; rel=next, <https://h/y>; rel="last""#;
        let links = parse_link_header(header);
        assert_eq!(links.len(), 2);
        assert_eq!(links[0].target, "https://h/x?ids=1,2;3");
        assert_eq!(links[0].param("title"), Some(r#"a, "b"; c"#));
        assert!(links[0].has_rel("next"));
        assert!(links[1].has_rel("last"));
    }

    #[test]
    fn multiple_relation_types_case_and_first_rel_wins() {
        let links = parse_link_header("<a>; REL=\"Prev Next\"; rel=last, <b> ; rel = next");
        assert!(links[0].has_rel("next") && links[0].has_rel("prev"));
        assert!(
            !links[0].has_rel("last"),
            "only the first rel parameter counts"
        );
        assert!(links[1].has_rel("next"));
    }

    #[test]
    fn malformed_links_are_skipped() {
        let links = parse_link_header(
            "garbage; rel=next, <ok>; rel=next junk, <also>; rel=next, <unclosed",
        );
        let targets: Vec<&str> = links.iter().map(|l| l.target.as_str()).collect();
        assert_eq!(targets, vec!["ok", "also"]);
        assert!(parse_link_header("").is_empty());
        assert!(parse_link_header(" , ,").is_empty());
    }

    #[test]
    fn follows_next_across_repeated_headers() {
        let request = Request::get("https://h/v1/items")
            .query("per_page", 2)
            .header("accept", "application/json")
            .authenticated();
        let response = Response::new(200)
            .with_url("https://h/v1/items?per_page=2")
            .with_header(
                "Link",
                "<https://h/v1/items?per_page=2&page=9>; rel=\"last\"",
            )
            .with_header("Link", "<items?per_page=2&page=2>; rel=\"next\"");
        let next = LinkHeader::new()
            .next(&PageInfo::new(&request, &response, 2))
            .unwrap()
            .unwrap();
        assert_eq!(next.url, "https://h/v1/items?per_page=2&page=2");
        assert!(next.query.is_empty());
        assert_eq!(next.headers, request.headers);
        assert!(next.authenticate);
    }

    #[test]
    fn no_next_or_self_link_ends() {
        let request = Request::get("https://h/x").query("page", 3);
        let last = Response::new(200).with_header("link", "<https://h/x?page=1>; rel=\"first\"");
        assert_eq!(
            LinkHeader::new()
                .next(&PageInfo::new(&request, &last, 1))
                .unwrap(),
            None
        );
        let looping = Response::new(200).with_header("link", "<https://h/x?page=3>; rel=\"next\"");
        assert_eq!(
            LinkHeader::new()
                .next(&PageInfo::new(&request, &looping, 1))
                .unwrap(),
            None
        );
    }
}
