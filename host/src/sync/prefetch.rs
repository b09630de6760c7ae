//! Guessing a connector's next request, so the host can send it while the guest parses the
//! current response (`[sync] prefetch`).
//!
//! Offset and page-number pagination step one query parameter by a constant: `offset=100`,
//! then `offset=200`, so `offset=300` comes next unless the stream ends. The guess is only ever a
//! head start: the host uses a prefetched response only when the guest then asks for exactly
//! the request that was guessed, and drops it otherwise, so what the guest sees is unchanged.

use crate::protocol::ConnectorRequest;

/// The request after `current`, when `previous` and `current` are the same `GET` but for one
/// query parameter whose whole-number value went up by some step: `current` with that value one
/// more step up. Parameters are matched by name (each once), in any order. `None` for anything
/// else (a cursor, a next link, a body, a method other than `GET`).
pub(super) fn predict(
    previous: &ConnectorRequest,
    current: &ConnectorRequest,
) -> Option<ConnectorRequest> {
    let same_but_query = current.method == "GET"
        && previous.method == current.method
        && previous.url == current.url
        && previous.headers == current.headers
        && previous.body.is_none()
        && current.body.is_none()
        && previous.authenticate == current.authenticate
        && previous.query.len() == current.query.len();
    if !same_but_query {
        return None;
    }
    let once = |query: &[(String, String)], name: &str| {
        let mut values = query.iter().filter(|(key, _)| key == name);
        match (values.next(), values.next()) {
            (Some((_, value)), None) => Some(value.clone()),
            _ => None,
        }
    };
    let mut stepped = None;
    for (index, (name, now)) in current.query.iter().enumerate() {
        once(&current.query, name)?;
        let before = once(&previous.query, name)?;
        if before == *now {
            continue;
        }
        let (before_value, now_value) = (before.parse::<u64>().ok()?, now.parse::<u64>().ok()?);
        let step = now_value
            .checked_sub(before_value)
            .filter(|step| *step > 0)?;
        if stepped
            .replace((index, now_value.checked_add(step)?))
            .is_some()
        {
            return None;
        }
    }
    let (index, value) = stepped?;
    let mut next = current.clone();
    next.query[index].1 = value.to_string();
    Some(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(query: &[(&str, &str)]) -> ConnectorRequest {
        ConnectorRequest {
            method: "GET".to_owned(),
            url: "https://api.example.com/items".to_owned(),
            query: query
                .iter()
                .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
                .collect(),
            headers: Vec::new(),
            body: None,
            authenticate: true,
            idempotent: false,
        }
    }

    #[test]
    fn offsets_and_page_numbers_are_stepped_on() {
        let next = predict(
            &get(&[("limit", "100"), ("offset", "100")]),
            &get(&[("limit", "100"), ("offset", "200")]),
        );
        assert_eq!(next, Some(get(&[("limit", "100"), ("offset", "300")])));
        let next = predict(
            &get(&[("page", "1"), ("size", "20")]),
            &get(&[("size", "20"), ("page", "2")]),
        );
        assert_eq!(next, Some(get(&[("size", "20"), ("page", "3")])));
    }

    #[test]
    fn anything_but_one_rising_number_is_not_guessed() {
        let cases = [
            // A cursor, a repeated request, a falling or two changing values, a renamed pair.
            (get(&[("after", "abc")]), get(&[("after", "abd")])),
            (get(&[("offset", "100")]), get(&[("offset", "100")])),
            (get(&[("offset", "200")]), get(&[("offset", "100")])),
            (
                get(&[("offset", "1"), ("page", "1")]),
                get(&[("offset", "2"), ("page", "2")]),
            ),
            (get(&[("offset", "1")]), get(&[("start", "2")])),
            (
                get(&[("offset", "1"), ("offset", "1")]),
                get(&[("offset", "2"), ("offset", "2")]),
            ),
            (get(&[("offset", "1")]), get(&[("offset", "2"), ("x", "1")])),
            (
                get(&[("offset", "1")]),
                get(&[("offset", &u64::MAX.to_string())]),
            ),
        ];
        for (previous, current) in cases {
            assert_eq!(predict(&previous, &current), None, "{current:?}");
        }
        let mut post = get(&[("offset", "2")]);
        post.method = "POST".to_owned();
        assert_eq!(predict(&get(&[("offset", "1")]), &post), None);
        let mut other_path = get(&[("offset", "2")]);
        other_path.url.push_str("/more");
        assert_eq!(predict(&get(&[("offset", "1")]), &other_path), None);
    }
}
