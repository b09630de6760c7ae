//! The error a connector call returns. Each variant is one case of the WIT `error` variant, so
//! the host can tell bad config, a surprising API and a connector bug apart.

use std::fmt;

/// `Result` with [`Error`] as the default error type.
pub type Result<T, E = Error> = core::result::Result<T, E>;

/// Why a connector call failed.
///
/// Build one with [`Error::invalid_config`], [`Error::unexpected_response`] or [`Error::bug`].
/// Any `std::error::Error` converts into a [`Error::ConnectorBug`] through `?`; the SDK's own
/// helpers (config parsing, [`crate::Response::json`], pagination) already return the precise
/// variant. Like `anyhow::Error`, this type does not implement `std::error::Error` itself, which
/// is what makes that blanket conversion possible.
///
/// ```
/// use sluice_sdk::prelude::*;
///
/// fn page_size(value: u64) -> Result<u64> {
///     if value == 0 || value > 1000 {
///         return Err(Error::invalid_config(format!(
///             "`page_size` is {value}; use a number from 1 to 1000"
///         )));
///     }
///     Ok(value)
/// }
/// assert!(matches!(page_size(0), Err(Error::InvalidConfig(_))));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The config is wrong; the message names the field and says how to fix it.
    InvalidConfig(String),
    /// The API answered something the connector cannot interpret.
    UnexpectedResponse(String),
    /// The connector itself is wrong.
    ConnectorBug(String),
}

impl Error {
    /// The operator's config (or saved state) is wrong. Say which field and how to fix it.
    pub fn invalid_config(message: impl fmt::Display) -> Self {
        Self::InvalidConfig(message.to_string())
    }

    /// The API answered something this connector cannot interpret.
    pub fn unexpected_response(message: impl fmt::Display) -> Self {
        Self::UnexpectedResponse(message.to_string())
    }

    /// The connector itself is wrong: an invariant it relies on does not hold.
    pub fn bug(message: impl fmt::Display) -> Self {
        Self::ConnectorBug(message.to_string())
    }

    /// The message, without the kind prefix that `Display` adds.
    pub fn message(&self) -> &str {
        match self {
            Self::InvalidConfig(m) | Self::UnexpectedResponse(m) | Self::ConnectorBug(m) => m,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidConfig(m) => write!(f, "invalid config: {m}"),
            Self::UnexpectedResponse(m) => write!(f, "unexpected response: {m}"),
            Self::ConnectorBug(m) => write!(f, "connector bug: {m}"),
        }
    }
}

impl<E> From<E> for Error
where
    E: std::error::Error + Send + Sync + 'static,
{
    /// Any other error is the connector's fault unless it says otherwise: it becomes a
    /// [`Error::ConnectorBug`] carrying the whole source chain.
    fn from(error: E) -> Self {
        let mut message = error.to_string();
        let mut source = error.source();
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        Self::ConnectorBug(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_the_kind() {
        assert_eq!(
            Error::invalid_config("`base_url` is missing").to_string(),
            "invalid config: `base_url` is missing"
        );
        assert_eq!(Error::bug("x").message(), "x");
    }

    #[test]
    fn std_errors_become_connector_bugs() {
        fn parse() -> Result<u32> {
            Ok("x".parse::<u32>()?)
        }
        assert_eq!(
            parse(),
            Err(Error::ConnectorBug("invalid digit found in string".into()))
        );
    }
}
