//! The `[tls]` table: a client certificate for mutual TLS and extra trusted CAs for private APIs.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::Error;
use crate::secrets::SecretRef;

/// The `[tls]` table of a connection file.
///
/// ```toml
/// [tls]
/// client_cert = "/etc/sluice/client.crt"             # PEM certificate (chain)
/// client_key = { file = "/run/secrets/client.key" }  # PEM private key: a secret
/// ca_bundle = "/etc/sluice/private-ca.pem"           # extra trusted CAs (PEM)
/// ```
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM file of the client certificate (and its chain); needs `client_key`.
    pub client_cert: Option<PathBuf>,
    /// The client certificate's PEM private key; needs `client_cert`.
    pub client_key: Option<SecretRef>,
    /// PEM file of CA certificates trusted in addition to the built-in roots.
    pub ca_bundle: Option<PathBuf>,
}

/// A [`TlsConfig`] with its files read and parsed, ready for the HTTP client.
#[derive(Default)]
pub struct ResolvedTls {
    pub(super) identity: Option<reqwest::Identity>,
    pub(super) roots: Vec<reqwest::Certificate>,
}

impl std::fmt::Debug for ResolvedTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResolvedTls")
            .field("client_identity", &self.identity.is_some())
            .field("extra_roots", &self.roots.len())
            .finish()
    }
}

fn invalid(setting: &'static str, value: String, reason: &'static str) -> Error {
    Error::InvalidTls {
        setting,
        value,
        reason,
    }
}

fn read(setting: &'static str, path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|_| {
        invalid(
            setting,
            format!("`{}`", path.display()),
            "the file cannot be read; check that it exists and that sluice may read it",
        )
    })
}

impl TlsConfig {
    /// Reads the files and the key. Fails naming the setting when a file cannot be read or
    /// parsed, or when only one of `client_cert` and `client_key` is given.
    pub fn resolve(&self) -> Result<ResolvedTls, Error> {
        let identity = match (&self.client_cert, &self.client_key) {
            (None, None) => None,
            (Some(cert), Some(key)) => {
                let mut pem = read("client_cert", cert)?;
                let key = key
                    .resolve()
                    .map_err(|error| invalid("client_key", key.origin(), secret_reason(&error)))?;
                pem.push(b'\n');
                pem.extend_from_slice(key.expose().as_bytes());
                // The parse error is not kept: it could quote the key.
                Some(reqwest::Identity::from_pem(&pem).map_err(|_| {
                    invalid(
                        "client_key",
                        key_origin(self.client_key.as_ref()),
                        "the certificate and key are not a PEM certificate and a matching PEM \
                         (PKCS#8, PKCS#1 or SEC1) private key",
                    )
                })?)
            }
            (Some(cert), None) => {
                return Err(invalid(
                    "client_cert",
                    format!("`{}`", cert.display()),
                    "a client certificate needs `client_key` too",
                ));
            }
            (None, Some(key)) => {
                return Err(invalid(
                    "client_key",
                    key.origin(),
                    "a client key needs `client_cert` too",
                ));
            }
        };
        let roots = match &self.ca_bundle {
            None => Vec::new(),
            Some(path) => {
                let shown = format!("`{}`", path.display());
                let roots = reqwest::Certificate::from_pem_bundle(&read("ca_bundle", path)?)
                    .map_err(|_| {
                        invalid(
                            "ca_bundle",
                            shown.clone(),
                            "it is not a PEM certificate bundle",
                        )
                    })?;
                if roots.is_empty() {
                    return Err(invalid("ca_bundle", shown, "it holds no PEM certificate"));
                }
                roots
            }
        };
        Ok(ResolvedTls { identity, roots })
    }
}

fn key_origin(key: Option<&SecretRef>) -> String {
    key.map(SecretRef::origin).unwrap_or_default()
}

fn secret_reason(error: &crate::secrets::Error) -> &'static str {
    match error {
        crate::secrets::Error::MissingEnv { .. } => "the environment variable is not set",
        crate::secrets::Error::ReadFile { .. } => {
            "the file cannot be read; check that it exists and that sluice may read it"
        }
        crate::secrets::Error::Empty { .. } => "it is empty",
        _ => "it cannot be read as text",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_an_identity_is_refused() {
        let config: TlsConfig = toml::from_str("client_cert = \"/x.crt\"").unwrap();
        assert_eq!(
            config.resolve().unwrap_err().to_string(),
            "invalid `client_cert` = `/x.crt` in [tls]: a client certificate needs `client_key` too"
        );
        let config: TlsConfig = toml::from_str("ca_bundle = \"/nonexistent/ca.pem\"").unwrap();
        assert_eq!(
            config.resolve().unwrap_err().to_string(),
            "invalid `ca_bundle` = `/nonexistent/ca.pem` in [tls]: the file cannot be read; check \
             that it exists and that sluice may read it"
        );
        assert!(toml::from_str::<TlsConfig>("client_crt = \"x\"").is_err());
    }
}
