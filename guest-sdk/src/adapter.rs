//! The glue between the WIT world and a [`Connector`]: parse the config and state JSON, call
//! the connector, render its page as JSON lines. [`export_connector!`](crate::export_connector)
//! exports [`Adapter<C>`]; [`crate::testing`] calls the same functions natively.

use std::marker::PhantomData;

use serde::de::DeserializeOwned;

use crate::bindings::{self, Guest};
use crate::{Catalog, Connector, Error, Next, Request, Response, Result, RunContext};

/// Implements the generated `Guest` trait for any [`Connector`]. Not for direct use: see
/// [`export_connector!`](crate::export_connector).
#[doc(hidden)]
pub struct Adapter<C>(PhantomData<C>);

/// A page as it crosses to the host: JSON lines, state JSON, next step.
#[derive(Debug)]
pub(crate) struct RenderedPage {
    /// One compact JSON object per line.
    pub(crate) records: String,
    /// The new state as JSON text, or `None` to keep the previous one.
    pub(crate) state: Option<String>,
    /// What happens next.
    pub(crate) next: Next,
}

/// Parse the operator's config, naming the offending field on failure.
pub(crate) fn parse_config<C: Connector>(config: &str) -> Result<C::Config> {
    parse_json(config)
        .map_err(|why| Error::invalid_config(format!("{why}; see the connector's config schema")))
}

/// Parse the saved state; no state is the default state.
pub(crate) fn parse_state<C: Connector>(state: Option<&str>) -> Result<C::State> {
    match state {
        None => Ok(C::State::default()),
        Some(state) => parse_json(state).map_err(|why| {
            Error::invalid_config(format!(
                "the saved state cannot be read by this connector version ({why}); reset the stream's state"
            ))
        }),
    }
}

/// Deserialise `text`, describing a failure by the path of the field at fault.
fn parse_json<T: DeserializeOwned>(text: &str) -> Result<T, String> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            return format!("not valid JSON: {inner}");
        }
        let position = format!(" at line {} column {}", inner.line(), inner.column());
        let message = inner.to_string();
        let message = message.strip_suffix(&position).unwrap_or(&message);
        // The path of an unknown field ends with that field; the message names it already.
        let path = match unknown_field(message) {
            Some(field) if path == field => ".",
            Some(field) => path.strip_suffix(&format!(".{field}")).unwrap_or(&path),
            None => &path,
        };
        match path {
            "." => message.to_owned(),
            path => format!("at `{path}`: {message}"),
        }
    })?;
    deserializer
        .end()
        .map_err(|error| format!("not valid JSON: {error}"))?;
    Ok(value)
}

/// The field named by serde's "unknown field `x`, expected ..." message.
fn unknown_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("unknown field `")?;
    rest.split_once('`').map(|(field, _)| field)
}

/// `check`: the config deserialises and passes [`Connector::check`].
pub(crate) fn check<C: Connector>(config: &str) -> Result<C::Config> {
    let config = parse_config::<C>(config)?;
    C::check(&config)?;
    Ok(config)
}

/// `discover`, on a checked config.
pub(crate) fn discover<C: Connector>(config: &str) -> Result<Catalog> {
    C::discover(&check::<C>(config)?)
}

/// `begin`, on a checked config and the parsed state.
pub(crate) fn begin<C: Connector>(
    config: &str,
    stream: &str,
    state: Option<&str>,
    context: &RunContext,
) -> Result<Next> {
    let config = check::<C>(config)?;
    C::begin(&config, stream, parse_state::<C>(state)?, context)
}

/// `next-page`: the connector's page rendered as it crosses to the host.
pub(crate) fn next_page<C: Connector>(
    config: &str,
    stream: &str,
    state: Option<&str>,
    context: &RunContext,
    request: &Request,
    response: &Response,
) -> Result<RenderedPage> {
    let config = parse_config::<C>(config)?;
    let state = parse_state::<C>(state)?;
    let page = C::next_page(&config, stream, state, context, request, response)?;
    let (records, state, next) = page.into_parts();
    let state = state
        .map(|state| serde_json::to_string(&state))
        .transpose()
        .map_err(|error| Error::bug(format!("the new state cannot be serialised: {error}")))?;
    Ok(RenderedPage {
        records,
        state,
        next,
    })
}

impl<C: Connector> Guest for Adapter<C> {
    fn spec() -> bindings::Spec {
        C::spec().into()
    }

    fn check(config: String) -> Result<(), bindings::Error> {
        check::<C>(&config).map(drop).map_err(Into::into)
    }

    fn discover(config: String) -> Result<bindings::Catalog, bindings::Error> {
        discover::<C>(&config).map(Into::into).map_err(Into::into)
    }

    fn begin(
        config: String,
        stream: String,
        state: Option<String>,
        context: bindings::RunContext,
    ) -> Result<bindings::Next, bindings::Error> {
        begin::<C>(&config, &stream, state.as_deref(), &context.into())
            .map(Into::into)
            .map_err(Into::into)
    }

    fn next_page(
        config: String,
        stream: String,
        state: Option<String>,
        context: bindings::RunContext,
        request: bindings::Request,
        response: bindings::Response,
    ) -> Result<bindings::Page, bindings::Error> {
        let page = next_page::<C>(
            &config,
            &stream,
            state.as_deref(),
            &context.into(),
            &request.into(),
            &response.into(),
        )?;
        Ok(bindings::Page {
            records: page.records,
            state: page.state,
            next: page.next.into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Page, Spec};
    use serde::Deserialize;

    struct Strict;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code, reason = "only deserialised")]
    struct Config {
        base_url: String,
        streams: Vec<Stream>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code, reason = "only deserialised")]
    struct Stream {
        name: String,
        page_size: u32,
    }

    #[derive(Debug, Default, serde::Serialize, Deserialize)]
    struct State {
        cursor: u64,
    }

    impl Connector for Strict {
        type Config = Config;
        type State = State;

        fn spec() -> Spec {
            Spec::new("strict", "0.0.0", "test")
        }

        fn check(config: &Config) -> Result<()> {
            match config.base_url.starts_with("https://") {
                true => Ok(()),
                false => Err(Error::invalid_config("`base_url` must use https")),
            }
        }

        fn discover(_: &Config) -> Result<Catalog> {
            Ok(Catalog::new())
        }

        fn begin(_: &Config, _: &str, state: State, _: &RunContext) -> Result<Next> {
            Ok(match state.cursor {
                0 => Next::Fetch(Request::get("https://h/")),
                _ => Next::Done,
            })
        }

        fn next_page(
            _: &Config,
            _: &str,
            state: State,
            _: &RunContext,
            _: &Request,
            _: &Response,
        ) -> Result<Page<State>> {
            Ok(Page::new().with_state(State {
                cursor: state.cursor + 1,
            }))
        }
    }

    fn config_error(config: &str) -> String {
        match check::<Strict>(config) {
            Err(Error::InvalidConfig(message)) => message,
            other => panic!("expected invalid-config, got {other:?}"),
        }
    }

    #[test]
    fn config_errors_name_the_field() {
        assert_eq!(
            config_error(r#"{"streams": []}"#),
            "missing field `base_url`; see the connector's config schema"
        );
        assert_eq!(
            config_error(
                r#"{"base_url": "https://h", "streams": [{"name": "a", "page_size": "10"}]}"#
            ),
            "at `streams[0].page_size`: invalid type: string \"10\", expected u32; see the connector's config schema"
        );
        assert_eq!(
            config_error(r#"{"base_url": "https://h", "streams": [], "extra": 1}"#),
            "unknown field `extra`, expected `base_url` or `streams`; see the connector's config schema"
        );
        assert_eq!(
            config_error("{"),
            "not valid JSON: EOF while parsing an object at line 1 column 1; see the connector's config schema"
        );
        assert!(
            config_error(r#"{"base_url": "https://h", "streams": []} x"#)
                .starts_with("not valid JSON: trailing characters")
        );
    }

    #[test]
    fn check_runs_before_begin_and_discover() {
        let plain_http = r#"{"base_url": "http://h", "streams": []}"#;
        let context = RunContext::default();
        assert!(matches!(
            discover::<Strict>(plain_http),
            Err(Error::InvalidConfig(_))
        ));
        assert!(matches!(
            begin::<Strict>(plain_http, "s", None, &context),
            Err(Error::InvalidConfig(_))
        ));
    }

    #[test]
    fn state_is_parsed_and_rendered() {
        let config = r#"{"base_url": "https://h", "streams": []}"#;
        let context = RunContext::default();
        assert!(matches!(
            begin::<Strict>(config, "s", None, &context),
            Ok(Next::Fetch(_))
        ));
        assert_eq!(
            begin::<Strict>(config, "s", Some(r#"{"cursor": 3}"#), &context),
            Ok(Next::Done)
        );
        let page = next_page::<Strict>(
            config,
            "s",
            Some(r#"{"cursor": 3}"#),
            &context,
            &Request::get("https://h/"),
            &Response::new(200),
        )
        .unwrap();
        assert_eq!(page.state.as_deref(), Some(r#"{"cursor":4}"#));
        match begin::<Strict>(config, "s", Some(r#"{"cursor": "x"}"#), &context) {
            Err(Error::InvalidConfig(message)) => assert_eq!(
                message,
                "the saved state cannot be read by this connector version (at `cursor`: invalid type: string \"x\", expected u64); reset the stream's state"
            ),
            other => panic!("{other:?}"),
        }
    }
}
