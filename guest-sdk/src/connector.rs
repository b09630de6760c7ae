//! The [`Connector`] trait: what a connector author implements.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Catalog, Next, Page, Request, Response, Result, Spec};

/// A connector: a pure decision function with memory.
///
/// It never performs I/O. Given its config, a stream name, the last checkpoint
/// ([`Connector::State`]) and a response, it returns records, the next checkpoint and the next
/// request. The host sends requests, applies credentials, retries, rate-limits, writes records
/// and commits checkpoints. All methods are associated functions: instances may be recycled
/// between calls, so nothing can be remembered except through the state.
///
/// The SDK parses the config JSON into [`Connector::Config`] (a serde error becomes
/// [`crate::Error::InvalidConfig`] naming the field's path) and runs [`Connector::check`]
/// before [`Connector::discover`] and [`Connector::begin`], so those can rely on a checked
/// config. It parses the saved state into [`Connector::State`] (`Default` when there is none)
/// and serialises the state a [`Page`] carries.
///
/// ```
/// use sluice_sdk::prelude::*;
///
/// /// Every user of a tiny API, one page per request, until a short page.
/// struct Users;
///
/// #[derive(serde::Deserialize)]
/// struct Config {
///     base_url: String,
/// }
///
/// fn pages() -> paginate::Offset {
///     paginate::Offset::new("limit", "offset", 100)
/// }
///
/// impl Connector for Users {
///     type Config = Config;
///     type State = ();
///
///     fn spec() -> Spec {
///         Spec::new("users", "0.1.0", "Users of the example API")
///     }
///
///     fn discover(config: &Config) -> Result<Catalog> {
///         Ok(Catalog::new()
///             .with_allowed_host(sluice_sdk::url::allowed_host(&config.base_url)?)
///             .with_stream(StreamInfo::new("users").with_primary_key("/id")))
///     }
///
///     fn begin(config: &Config, _: &str, _: (), _: &RunContext) -> Result<Next> {
///         let url = sluice_sdk::url::join(&config.base_url, "/users");
///         Ok(Next::Fetch(pages().first(Request::get(url).authenticated())))
///     }
///
///     fn next_page(
///         _: &Config,
///         _: &str,
///         _: (),
///         _: &RunContext,
///         request: &Request,
///         response: &Response,
///     ) -> Result<Page<()>> {
///         let body = response.ok()?.json_value()?;
///         let users = json::records_at(&body, "/users")?;
///         let next = pages().next(&PageInfo::new(request, response, users.len()))?;
///         Ok(Page::new().with_records(users)?.with_next(next))
///     }
/// }
///
/// sluice_sdk::export_connector!(Users);
/// # fn main() {}
/// ```
pub trait Connector {
    /// The config, deserialised from the operator's JSON.
    type Config: DeserializeOwned;

    /// The checkpoint state of one stream. `Default` is the state of a stream never read
    /// before. Use `()` for a stream without state.
    type State: Serialize + DeserializeOwned + Default;

    /// Static description of the connector: name, version, config schema, rate-limit hint,
    /// auth schemes.
    fn spec() -> Spec;

    /// Validate a config beyond what deserialising it checks, without any I/O. The default
    /// accepts every config that deserialises.
    fn check(config: &Self::Config) -> Result<()> {
        let _ = config;
        Ok(())
    }

    /// The hosts the connector needs to reach and the streams available under `config`.
    fn discover(config: &Self::Config) -> Result<Catalog>;

    /// First step of reading `stream` from the saved `state`: the first request, or
    /// [`Next::Done`] when there is nothing to read.
    fn begin(
        config: &Self::Config,
        stream: &str,
        state: Self::State,
        context: &RunContext,
    ) -> Result<Next>;

    /// Turn the `response` to `request` into a [`Page`]: records, the new state and what to do
    /// next.
    ///
    /// The host commits the page's state together with the records, and after a crash re-sends
    /// the request that was pending, handing in the state committed with the page before it.
    /// So the state must describe what has been emitted, and the position in the pagination
    /// can come from `request` instead of the state.
    fn next_page(
        config: &Self::Config,
        stream: &str,
        state: Self::State,
        context: &RunContext,
        request: &Request,
        response: &Response,
    ) -> Result<Page<Self::State>>;
}

/// Facts about the current run that a connector may rely on instead of a clock.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunContext {
    /// Unique id of this run (stable across a resume of the same sync).
    pub run_id: String,
    /// Start of the sync in milliseconds since the Unix epoch.
    pub started_at_ms: u64,
}

impl RunContext {
    /// A context for run `run_id`, started at `started_at_ms` (milliseconds since the epoch).
    pub fn new(run_id: impl Into<String>, started_at_ms: u64) -> Self {
        Self {
            run_id: run_id.into(),
            started_at_ms,
        }
    }
}
