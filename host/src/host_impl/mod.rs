//! The guest-facing adapter: the host's implementation of the `log` import, and conversions
//! between the generated WIT types and the host's [`crate::protocol`] types.
//!
//! Thin by design: no business logic here, and no `unwrap` on anything a guest produced.

mod convert;
mod log;

pub use convert::{
    catalog_from_wit, guest_error_from_wit, next_from_wit, page_from_wit, request_to_wit,
    response_to_wit, run_context_to_wit, spec_from_wit,
};

use wasmtime::component::{HasSelf, Linker};

use crate::bindings;
use crate::sandbox::StoreState;

/// Adds the connector world's own imports (`log`) to `linker`.
pub fn add_to_linker(linker: &mut Linker<StoreState>) -> wasmtime::Result<()> {
    bindings::Connector::add_to_linker::<StoreState, HasSelf<StoreState>>(linker, |state| state)
}
