//! A loaded connector component and the sessions that call it.
//!
//! Loading validates the file (a component of the supported contract, importing nothing the
//! host does not provide) and pre-links it once; every session then only instantiates it in a
//! fresh [`wasmtime::Store`]. A session whose guest trapped is discarded, never reused.

use std::path::Path;
use std::time::Duration;

use wasmtime::Store;
use wasmtime::component::Component;

use crate::bindings::{self, ConnectorPre};
use crate::host_impl;
use crate::http::HttpResponse;
use crate::protocol::{Catalog, ConnectorRequest, Next, Page, RunContext, Spec};
use crate::sandbox::{self, Error, Limits, Runtime, StoreState};

/// Largest `.wasm` file accepted: real connectors are a few hundred KiB.
pub const MAX_COMPONENT_BYTES: u64 = 64 * 1024 * 1024;

/// Longest a component may take to compile. Compilation runs on its own thread; a component
/// that takes longer is refused (the thread finishes in the background and its result is
/// dropped). A real connector compiles in well under a second.
pub const COMPILE_TIMEOUT: Duration = Duration::from_secs(60);

/// Interfaces a connector may import, by name without the version: the contract's own, and
/// WASI 0.2, which is linked with nothing granted (a Rust-std guest imports ~24 of these).
pub const ALLOWED_IMPORTS: &[&str] = &[
    "sluice:connector/log",
    "sluice:connector/types",
    "wasi:cli/environment",
    "wasi:cli/exit",
    "wasi:cli/stdin",
    "wasi:cli/stdout",
    "wasi:cli/stderr",
    "wasi:cli/terminal-input",
    "wasi:cli/terminal-output",
    "wasi:cli/terminal-stdin",
    "wasi:cli/terminal-stdout",
    "wasi:cli/terminal-stderr",
    "wasi:clocks/monotonic-clock",
    "wasi:clocks/wall-clock",
    "wasi:filesystem/types",
    "wasi:filesystem/preopens",
    "wasi:io/error",
    "wasi:io/poll",
    "wasi:io/streams",
    "wasi:random/random",
    "wasi:random/insecure",
    "wasi:random/insecure-seed",
    "wasi:sockets/network",
    "wasi:sockets/instance-network",
    "wasi:sockets/udp",
    "wasi:sockets/udp-create-socket",
    "wasi:sockets/tcp",
    "wasi:sockets/tcp-create-socket",
    "wasi:sockets/ip-name-lookup",
];

/// The first eight bytes of a WebAssembly component (magic, then layer 1, version 0x0d).
const COMPONENT_HEADER: [u8; 8] = [0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];
/// The first eight bytes of a core WebAssembly module.
const CORE_MODULE_HEADER: [u8; 8] = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];

/// A compiled, pre-linked connector, shared by every session and connection that uses it.
pub struct Connector {
    name: String,
    pre: ConnectorPre<StoreState>,
    imports: Vec<String>,
    exports: Vec<String>,
}

impl Connector {
    /// Loads `source`: the name of a bundled connector (`rest`, `github`) or a path to a
    /// `.wasm` component.
    pub fn load(runtime: &Runtime, source: &str) -> Result<Self, Error> {
        let (name, bytes) = Self::read(source)?;
        Self::from_bytes(runtime, &name, &bytes).map_err(|error| rename_source(error, source))
    }

    /// The label and component bytes `source` names (see [`load`](Self::load)), without
    /// compiling them: a process running many connections compiles each distinct content once.
    pub fn read(source: &str) -> Result<(String, std::borrow::Cow<'static, [u8]>), Error> {
        let path = Path::new(source);
        if let Some(bytes) = crate::bundled::get(source).filter(|_| !path.exists()) {
            return Ok((source.to_owned(), std::borrow::Cow::Borrowed(bytes)));
        }
        let available = crate::bundled::names().collect::<Vec<_>>().join(", ");
        let not_found = |detail: String| Error::NotFound {
            source_name: source.to_owned(),
            available: available.clone(),
            detail,
        };
        let metadata = std::fs::metadata(path).map_err(|error| not_found(error.to_string()))?;
        if metadata.len() > MAX_COMPONENT_BYTES {
            return Err(Error::TooLarge {
                source_name: source.to_owned(),
                size_bytes: metadata.len(),
                limit_bytes: MAX_COMPONENT_BYTES,
            });
        }
        let bytes = std::fs::read(path).map_err(|error| not_found(error.to_string()))?;
        let name = path
            .file_stem()
            .map(|stem| stem.to_string_lossy().into_owned())
            .unwrap_or_else(|| source.to_owned());
        Ok((name, std::borrow::Cow::Owned(bytes)))
    }

    /// Validates, compiles and pre-links a component held in memory. `name` labels it in logs
    /// and errors.
    pub fn from_bytes(runtime: &Runtime, name: &str, bytes: &[u8]) -> Result<Self, Error> {
        check_header(name, bytes)?;
        let component = compile(runtime, name, bytes, COMPILE_TIMEOUT)?;
        let forbidden = forbidden_imports(runtime, &component);
        if !forbidden.is_empty() {
            return Err(Error::ForbiddenImports {
                source_name: name.to_owned(),
                imports: forbidden,
            });
        }
        let instance_pre = runtime
            .linker()
            .instantiate_pre(&component)
            .map_err(|error| Error::Link {
                source_name: name.to_owned(),
                detail: format!(
                    "{error:#}; a connector may import only `sluice:connector/log` and WASI"
                ),
            })?;
        let pre = ConnectorPre::new(instance_pre).map_err(|error| Error::Link {
            source_name: name.to_owned(),
            detail: format!(
                "it does not export the `sluice:connector@0.1.0` world ({error:#}); build it against this host's `wit/`"
            ),
        })?;
        let component_type = component.component_type();
        let imports = component_type
            .imports(runtime.engine())
            .map(|(name, _)| name.to_owned())
            .collect();
        let exports = component_type
            .exports(runtime.engine())
            .map(|(name, _)| name.to_owned())
            .collect();
        Ok(Self {
            name: name.to_owned(),
            pre,
            imports,
            exports,
        })
    }

    /// The connector's label (bundled name or file stem).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The interfaces the component imports (all of them in [`ALLOWED_IMPORTS`]).
    pub fn imports(&self) -> &[String] {
        &self.imports
    }

    /// The names the component exports.
    pub fn exports(&self) -> &[String] {
        &self.exports
    }

    /// Starts a session: a fresh store and instance, limited by `limits`. `now_ms` is the
    /// wall-clock time the guest will see.
    pub async fn session(
        &self,
        runtime: &Runtime,
        limits: &Limits,
        now_ms: u64,
    ) -> Result<Session, Error> {
        let mut store = runtime.new_store(&self.name, limits, now_ms);
        let outcome = tokio::time::timeout(
            sandbox::outer_timeout(limits),
            self.pre.instantiate_async(&mut store),
        )
        .await;
        let instance = sandbox::classify(&store, limits, "instantiate", outcome)?;
        Ok(Session {
            store,
            instance,
            limits: limits.clone(),
            poisoned: false,
            cpu_used: Duration::ZERO,
        })
    }

    /// The connector's spec, from a short-lived session.
    pub async fn spec(&self, runtime: &Runtime, limits: &Limits) -> Result<Spec, Error> {
        self.session(runtime, limits, now_ms()).await?.spec().await
    }

    /// Validates `config` (JSON text) with the connector, offline.
    pub async fn check(
        &self,
        runtime: &Runtime,
        limits: &Limits,
        config: &str,
    ) -> Result<(), Error> {
        self.session(runtime, limits, now_ms())
            .await?
            .check(config)
            .await
    }

    /// The hosts and streams available under `config`.
    pub async fn discover(
        &self,
        runtime: &Runtime,
        limits: &Limits,
        config: &str,
    ) -> Result<Catalog, Error> {
        self.session(runtime, limits, now_ms())
            .await?
            .discover(config)
            .await
    }
}

/// Compiles `bytes` on a thread of its own, giving up after `budget`.
fn compile(
    runtime: &Runtime,
    name: &str,
    bytes: &[u8],
    budget: Duration,
) -> Result<Component, Error> {
    let engine = runtime.engine().clone();
    let owned = bytes.to_vec();
    let (done, outcome) = std::sync::mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("sluice-compile".into())
        .spawn(move || {
            // The receiver is gone only if the budget ran out; the result is not wanted then.
            let _ = done.send(Component::new(&engine, &owned));
        })
        .map_err(|error| Error::Engine {
            detail: format!("cannot start a compilation thread: {error}"),
        })?;
    match outcome.recv_timeout(budget) {
        Ok(Ok(component)) => Ok(component),
        Ok(Err(error)) => Err(Error::NotAComponent {
            source_name: name.to_owned(),
            reason: format!("it could not be compiled ({error:#}); is the file complete?"),
        }),
        Err(_) => Err(Error::CompileTimeout {
            source_name: name.to_owned(),
            limit_ms: u64::try_from(budget.as_millis()).unwrap_or(u64::MAX),
        }),
    }
}

/// The imports of `component` that are not in [`ALLOWED_IMPORTS`] (compared without their
/// `@version`; a WASI version the linker cannot satisfy is still caught by linking).
pub fn forbidden_imports(runtime: &Runtime, component: &Component) -> Vec<String> {
    component
        .component_type()
        .imports(runtime.engine())
        .map(|(name, _)| name)
        .filter(|name| !is_allowed_import(name))
        .map(str::to_owned)
        .collect()
}

/// Whether an import name (`ns:pkg/iface@version`) is one the host provides.
pub fn is_allowed_import(name: &str) -> bool {
    let unversioned = name.split_once('@').map_or(name, |(name, _)| name);
    ALLOWED_IMPORTS.contains(&unversioned)
}

/// The current time in milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn check_header(name: &str, bytes: &[u8]) -> Result<(), Error> {
    let not_a_component = |reason: &str| Error::NotAComponent {
        source_name: name.to_owned(),
        reason: reason.to_owned(),
    };
    match bytes.get(..8) {
        Some(header) if header == COMPONENT_HEADER => Ok(()),
        Some(header) if header == CORE_MODULE_HEADER => Err(not_a_component(
            "it is a core WebAssembly module, not a component; build it with `cargo build --target wasm32-wasip2` against the Sluice SDK",
        )),
        Some(header) if header.starts_with(b"\x7fELF") || header.starts_with(b"\x7fWASMTIM") => {
            Err(not_a_component(
                "it is a precompiled native artifact; Sluice only loads `.wasm` components and compiles them itself",
            ))
        }
        Some(header) if header.starts_with(b"\0asm") => Err(not_a_component(
            "it has an unsupported WebAssembly version; rebuild it with the Sluice SDK for `wasm32-wasip2`",
        )),
        _ => Err(not_a_component(
            "it does not start with the WebAssembly magic bytes; pass a `.wasm` component built for `wasm32-wasip2`",
        )),
    }
}

/// Errors from [`Connector::from_bytes`] name the file stem; the operator passed a path.
fn rename_source(error: Error, source: &str) -> Error {
    match error {
        Error::NotAComponent { reason, .. } => Error::NotAComponent {
            source_name: source.to_owned(),
            reason,
        },
        Error::Link { detail, .. } => Error::Link {
            source_name: source.to_owned(),
            detail,
        },
        Error::ForbiddenImports { imports, .. } => Error::ForbiddenImports {
            source_name: source.to_owned(),
            imports,
        },
        Error::CompileTimeout { limit_ms, .. } => Error::CompileTimeout {
            source_name: source.to_owned(),
            limit_ms,
        },
        other => other,
    }
}

/// One instance of a connector in its own store. Every call runs under the CPU deadline and
/// memory limit; after a trap the session refuses further calls.
pub struct Session {
    store: Store<StoreState>,
    instance: bindings::Connector,
    limits: Limits,
    poisoned: bool,
    /// Time spent inside guest calls so far, against `guest_cpu_budget_ms`.
    cpu_used: Duration,
}

macro_rules! guest_call {
    ($session:ident, $call:literal, |$instance:ident, $store:ident| $body:expr) => {{
        $session.ensure_usable($call)?;
        let by_budget = $session.arm($call)?;
        let started = std::time::Instant::now();
        let $instance = &$session.instance;
        let $store = &mut $session.store;
        let outcome = tokio::time::timeout(sandbox::outer_timeout(&$session.limits), $body).await;
        let result = sandbox::classify(&$session.store, &$session.limits, $call, outcome);
        let result = $session.account(started, by_budget, result);
        if let Err(error) = &result {
            $session.poisoned |= error.poisons_store();
        }
        let result = result?;
        result.map_err(|error| Error::Guest {
            connector: $session.connector().to_owned(),
            call: $call,
            error: host_impl::guest_error_from_wit(error),
        })
    }};
}

impl Session {
    fn connector(&self) -> &str {
        &self.store.data().log.connector
    }

    fn ensure_usable(&self, call: &'static str) -> Result<(), Error> {
        if self.poisoned {
            return Err(Error::Trapped {
                connector: self.connector().to_owned(),
                call,
                detail: "the instance trapped earlier and was discarded".to_owned(),
            });
        }
        Ok(())
    }

    fn protocol_error(&self, call: &'static str, detail: String) -> Error {
        Error::Protocol {
            connector: self.connector().to_owned(),
            call,
            detail,
        }
    }

    /// Arms the CPU deadline for the next call: the per-call limit, or what is left of the
    /// session's CPU budget if that is less. Returns whether the budget set the deadline.
    fn arm(&mut self, call: &'static str) -> Result<bool, Error> {
        let budget = Duration::from_millis(self.limits.guest_cpu_budget_ms);
        let remaining = budget.saturating_sub(self.cpu_used);
        if remaining.is_zero() {
            return Err(self.cpu_budget_exceeded(call));
        }
        let remaining_ms = u64::try_from(remaining.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let by_budget = remaining_ms < self.limits.guest_call_timeout_ms;
        let deadline_ms = if by_budget {
            remaining_ms
        } else {
            self.limits.guest_call_timeout_ms
        };
        sandbox::arm_deadline_ms(&mut self.store, deadline_ms);
        Ok(by_budget)
    }

    /// Adds the call's time to the budget; a deadline the budget set is reported as such.
    fn account<T>(
        &mut self,
        started: std::time::Instant,
        by_budget: bool,
        result: Result<T, Error>,
    ) -> Result<T, Error> {
        self.cpu_used = self.cpu_used.saturating_add(started.elapsed());
        match result {
            Err(Error::Timeout { call, .. }) if by_budget => Err(self.cpu_budget_exceeded(call)),
            other => other,
        }
    }

    fn cpu_budget_exceeded(&self, call: &'static str) -> Error {
        Error::CpuBudgetExceeded {
            connector: self.connector().to_owned(),
            call,
            limit_ms: self.limits.guest_cpu_budget_ms,
        }
    }

    /// Time spent inside guest calls so far.
    pub fn cpu_used(&self) -> Duration {
        self.cpu_used
    }

    /// The most linear memory the guest held at once so far, in bytes.
    pub fn peak_memory_bytes(&self) -> u64 {
        self.store.data().limiter.peak_bytes()
    }

    /// Guest log lines dropped because the session's log budget was spent.
    pub fn dropped_log_lines(&self) -> u64 {
        self.store.data().log.dropped
    }

    /// Calls `spec`.
    pub async fn spec(&mut self) -> Result<Spec, Error> {
        self.ensure_usable("spec")?;
        let by_budget = self.arm("spec")?;
        let started = std::time::Instant::now();
        let outcome = tokio::time::timeout(
            sandbox::outer_timeout(&self.limits),
            self.instance.call_spec(&mut self.store),
        )
        .await;
        let spec = sandbox::classify(&self.store, &self.limits, "spec", outcome);
        let spec = self.account(started, by_budget, spec);
        if let Err(error) = &spec {
            self.poisoned |= error.poisons_store();
        }
        host_impl::spec_from_wit(spec?).map_err(|detail| self.protocol_error("spec", detail))
    }

    /// Calls `check`.
    pub async fn check(&mut self, config: &str) -> Result<(), Error> {
        guest_call!(self, "check", |instance, store| instance
            .call_check(store, config))
    }

    /// Calls `discover`.
    pub async fn discover(&mut self, config: &str) -> Result<Catalog, Error> {
        let catalog = guest_call!(self, "discover", |instance, store| instance
            .call_discover(store, config))?;
        host_impl::catalog_from_wit(catalog)
            .map_err(|detail| self.protocol_error("discover", detail))
    }

    /// Calls `begin`: the first step of reading `stream` from `state`.
    pub async fn begin(
        &mut self,
        config: &str,
        stream: &str,
        state: Option<&str>,
        context: &RunContext,
    ) -> Result<Next, Error> {
        let context = host_impl::run_context_to_wit(context);
        let next = guest_call!(self, "begin", |instance, store| instance
            .call_begin(store, config, stream, state, &context))?;
        Ok(host_impl::next_from_wit(next))
    }

    /// Calls `next-page` with the response to `request`.
    pub async fn next_page(
        &mut self,
        config: &str,
        stream: &str,
        state: Option<&str>,
        context: &RunContext,
        request: &ConnectorRequest,
        response: HttpResponse,
    ) -> Result<Page, Error> {
        let context = host_impl::run_context_to_wit(context);
        let request = host_impl::request_to_wit(request)
            .map_err(|detail| self.protocol_error("next-page", detail))?;
        let response = host_impl::response_to_wit(response);
        let page = guest_call!(self, "next-page", |instance, store| instance
            .call_next_page(store, config, stream, state, &context, &request, &response))?;
        Ok(host_impl::page_from_wit(page))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imports_are_allowed_by_interface_whatever_the_version() {
        assert!(is_allowed_import("sluice:connector/log@0.1.0"));
        assert!(is_allowed_import("wasi:io/streams@0.2.6"));
        assert!(is_allowed_import("wasi:cli/environment"));
        assert!(!is_allowed_import("wasi:http/outgoing-handler@0.2.6"));
        assert!(!is_allowed_import("sluice:connector/secrets@0.1.0"));
        assert!(!is_allowed_import("wasi:io/streams-extra@0.2.6"));
        assert!(!is_allowed_import(""));
    }

    #[test]
    fn compilation_past_its_budget_is_refused() {
        let runtime = Runtime::with_cache_dir(None).unwrap();
        let bytes = crate::bundled::get("rest").unwrap();
        let error = compile(&runtime, "rest", bytes, Duration::ZERO)
            .err()
            .unwrap();
        assert_eq!(error.kind(), "compile_timeout");
        assert_eq!(
            error.to_string(),
            "connector `rest` did not compile within 0 ms; a real connector compiles in well under a second, so this component is too large or built to stall the compiler"
        );
        // With the real budget the same bytes compile.
        compile(&runtime, "rest", bytes, COMPILE_TIMEOUT).unwrap();
    }
}
