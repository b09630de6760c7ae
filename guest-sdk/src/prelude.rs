//! Everything a connector usually needs: `use sluice_sdk::prelude::*;`, including the logging
//! macros (`info!("fetched {n} issues")`).

pub use crate::incremental::Watermark;
pub use crate::json;
pub use crate::paginate::{self, PageInfo, Paginate, Pagination};
pub use crate::{
    AuthScheme, Catalog, Connector, Error, Method, Next, Page, RateLimit, Request, Response,
    Result, RunContext, Spec, StreamInfo, SyncMode,
};
pub use crate::{debug, error, info, trace, warn};
pub use serde::{Deserialize, Serialize};
pub use serde_json::{Value, json};
