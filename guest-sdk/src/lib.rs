//! Write Sluice connectors: small WebAssembly components that decide
//! which HTTP request comes next and turn responses into records and a checkpoint. The host
//! does all the I/O — sending, credentials, retries, rate limits, output, checkpoints — so a
//! connector is a description of an API, not plumbing.
//!
//! ```
//! use sluice_sdk::prelude::*;
//!
//! struct Todos;
//!
//! impl Connector for Todos {
//!     type Config = Value;
//!     type State = ();
//!     fn spec() -> Spec {
//!         Spec::new("todos", "0.1.0", "Every todo of jsonplaceholder")
//!     }
//!     fn discover(_: &Value) -> Result<Catalog> {
//!         let todos = StreamInfo::new("todos").with_primary_key("/id");
//!         Ok(Catalog::new().with_allowed_host("jsonplaceholder.typicode.com").with_stream(todos))
//!     }
//!     fn begin(_: &Value, _: &str, _: (), _: &RunContext) -> Result<Next> {
//!         Ok(Next::Fetch(Request::get("https://jsonplaceholder.typicode.com/todos")))
//!     }
//!     fn next_page(_: &Value, _: &str, _: (), _: &RunContext, _: &Request, response: &Response) -> Result<Page<()>> {
//!         Page::new().with_records(&response.ok()?.json::<Vec<Value>>()?)
//!     }
//! }
//!
//! sluice_sdk::export_connector!(Todos);
//! ```
//!
//! Build it as a `cdylib` with `cargo build --release --target wasm32-wasip2`: the `.wasm` file
//! is a component the host loads.
//!
//! # What goes where
//! - [`Connector`] is the trait to implement; [`export_connector!`] exports it.
//! - [`Request`] / [`Response`] are requests and responses as data; [`Page`] and [`Next`] are
//!   what a connector returns; [`Spec`] and [`Catalog`] describe it.
//! - [`json`], [`url`], [`paginate`] and [`incremental`] are plain helpers for the usual API
//!   shapes, unit-testable natively.
//! - [`testing`] runs a connector natively against hand-written or recorded responses.
//!
//! # Allowed hosts
//! The host sends a request only if its host is in the connector's [`Catalog::allowed_hosts`]
//! (narrowed further by the operator) and it does not resolve to a private network. Declare
//! exactly the hosts the config points at ([`url::allowed_host`] turns a base URL into one).
//!
//! # Logging
//! [`info!`], [`warn!`] and friends write to the host's log (to stderr when run natively).
#![deny(missing_docs)]

mod adapter;
#[doc(hidden)]
#[allow(
    unsafe_code,
    missing_docs,
    unused_qualifications,
    clippy::all,
    reason = "wit-bindgen output"
)]
pub mod bindings;
mod connector;
mod convert;
mod error;
mod http;
pub mod incremental;
pub mod json;
pub mod log;
mod page;
pub mod paginate;
pub mod prelude;
mod spec;
pub mod testing;
pub mod time;
pub mod url;

pub use connector::{Connector, RunContext};
pub use error::{Error, Result};
pub use http::{Method, Request, Response};
pub use page::{Next, Page};
pub use spec::{AuthScheme, Catalog, RateLimit, Spec, StreamInfo, SyncMode};

pub use serde;
pub use serde_json;

/// Not public API: what [`export_connector!`] expands to.
#[doc(hidden)]
pub mod __private {
    pub use crate::adapter::Adapter;

    /// Fails to compile unless `C` implements [`crate::Connector`].
    pub const fn assert_connector<C: crate::Connector>() {}
}

/// Export a [`Connector`] as the component's implementation of the `sluice:connector` world.
///
/// Use it once, at the top level of a `cdylib` crate built for `wasm32-wasip2`. Natively (e.g.
/// under `cargo test`) it only checks that the type implements [`Connector`], so the crate's
/// unit tests link without the component exports.
///
/// ```
/// # use sluice_sdk::prelude::*;
/// # struct MyConnector;
/// # impl Connector for MyConnector {
/// #     type Config = Value;
/// #     type State = ();
/// #     fn spec() -> Spec { Spec::new("my", "0.1.0", "") }
/// #     fn discover(_: &Value) -> Result<Catalog> { Ok(Catalog::new()) }
/// #     fn begin(_: &Value, _: &str, _: (), _: &RunContext) -> Result<Next> { Ok(Next::Done) }
/// #     fn next_page(_: &Value, _: &str, _: (), _: &RunContext, _: &Request, _: &Response) -> Result<Page<()>> { Ok(Page::new()) }
/// # }
/// sluice_sdk::export_connector!(MyConnector);
/// ```
#[macro_export]
macro_rules! export_connector {
    ($connector:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            type SluiceExportedConnector = $crate::__private::Adapter<$connector>;
            $crate::bindings::__export_connector_world!(
                SluiceExportedConnector with_types_in $crate::bindings
            );
        };
        #[cfg(not(target_arch = "wasm32"))]
        const _: () = $crate::__private::assert_connector::<$connector>();
    };
}
