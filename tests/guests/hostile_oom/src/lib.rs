//! Hostile guest: `begin` allocates memory and writes to every page of it, without bound, until
//! the host's memory limit (or the 4 GiB of wasm32) stops it. Every other export behaves: one
//! stream, `items`, and `allowed-hosts` from an optional `url` in the config.

use sluice_sdk::prelude::*;

/// The guest.
pub struct Oom;

/// One allocation: 1 MiB.
const BLOCK_BYTES: usize = 1 << 20;

/// Wasm page size; one write per page makes every page resident.
const PAGE_BYTES: usize = 64 * 1024;

fn exhaust_memory() -> ! {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        let mut block = vec![0_u8; BLOCK_BYTES];
        for byte in block.iter_mut().step_by(PAGE_BYTES) {
            *byte = 0xA5;
        }
        hoard.push(std::hint::black_box(block));
    }
}

impl Connector for Oom {
    type Config = Value;
    type State = ();

    fn spec() -> Spec {
        Spec::new("hostile-oom", "0.1.0", "Allocates without bound in begin")
    }

    fn discover(config: &Value) -> Result<Catalog> {
        let catalog = Catalog::new().with_stream(StreamInfo::new("items"));
        Ok(match config["url"].as_str() {
            Some(url) => catalog.with_allowed_host(sluice_sdk::url::allowed_host(url)?),
            None => catalog,
        })
    }

    fn begin(_: &Value, _: &str, _: (), _: &RunContext) -> Result<Next> {
        exhaust_memory()
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

sluice_sdk::export_connector!(Oom);
