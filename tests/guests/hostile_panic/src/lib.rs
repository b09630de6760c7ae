//! Hostile guest: panics in `begin`. Built with `panic = "abort"`, the panic is a trap the host
//! must report without disturbing anything else. Every other export behaves.

use sluice_sdk::prelude::*;

/// The guest.
pub struct Panic;

impl Connector for Panic {
    type Config = Value;
    type State = ();

    fn spec() -> Spec {
        Spec::new("hostile-panic", "0.1.0", "Panics in begin")
    }

    fn discover(_: &Value) -> Result<Catalog> {
        Ok(Catalog::new().with_stream(StreamInfo::new("items")))
    }

    fn begin(_: &Value, _: &str, _: (), _: &RunContext) -> Result<Next> {
        panic!("hostile_panic: deliberate panic in begin")
    }

    fn next_page(
        _: &Value,
        _: &str,
        _: (),
        _: &RunContext,
        _: &Request,
        _: &Response,
    ) -> Result<Page<()>> {
        Ok(Page::new())
    }
}

sluice_sdk::export_connector!(Panic);
