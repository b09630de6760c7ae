//! Hostile guest: `spec` never returns. Every other export behaves (one stream, `items`, that
//! fetches the config's `url` once), so a host that calls `spec` late still gets that far.

use sluice_sdk::prelude::*;

/// The guest.
pub struct IloopSpec;

impl Connector for IloopSpec {
    type Config = Value;
    type State = ();

    fn spec() -> Spec {
        let mut turns: u64 = 0;
        loop {
            turns = std::hint::black_box(turns.wrapping_add(1));
        }
    }

    fn discover(_: &Value) -> Result<Catalog> {
        Ok(Catalog::new().with_stream(StreamInfo::new("items")))
    }

    fn begin(config: &Value, _: &str, _: (), _: &RunContext) -> Result<Next> {
        let url = config["url"]
            .as_str()
            .ok_or_else(|| Error::invalid_config("`url` is missing"))?;
        Ok(Next::Fetch(Request::get(url)))
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

sluice_sdk::export_connector!(IloopSpec);
