//! Secrets named in the operator's config and the credentials built from them.
//!
//! A [`SecretRef`] says where a secret lives (an environment variable, a file, or, discouraged,
//! inline in the config); resolving it yields a [`Secret`] whose `Debug` and `Display` print
//! `[redacted]`. An [`AuthConfig`] (the `[auth]` table) resolves into a [`Credential`]: the
//! scheme, the secret values, and the hosts the credential is bound to. The HTTP transport applies
//! it, on the host side only, to requests that ask for it and go to a bound host.
//!
//! OAuth2 credentials hold a [`crate::http::oauth2::TokenSource`], which fetches, caches and
//! refreshes access tokens; rotated refresh tokens are saved through a
//! [`crate::checkpoint::CredentialSlot`].
//!
//! Secret values must never reach logs or guest memory: nothing here formats a value, and the
//! transport drops response headers that echo one and redacts response bodies that do.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine as _;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde::Deserialize;
use url::Url;

use crate::checkpoint::CredentialSlot;
use crate::http::AllowedHosts;
use crate::http::oauth2::{self, Grant, TokenSource, TokenSourceConfig};
use crate::protocol::AuthScheme;

/// Secrets shorter than this are not searched for in response headers: a one- or two-byte value
/// would match unrelated headers and strip them for nothing.
const MIN_ECHO_CHECK_BYTES: usize = 4;

/// What a secret echoed in a response body is replaced with.
const REDACTED: &str = "[redacted]";

/// Why a secret or credential could not be resolved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The environment variable named by `{ env = "..." }` is not set.
    #[error(
        "environment variable `{name}` is not set; set it before starting sluice, or point the \
         secret at a file with `{{ file = \"PATH\" }}`"
    )]
    MissingEnv {
        /// The variable's name.
        name: String,
    },
    /// The environment variable is set but not valid UTF-8.
    #[error("environment variable `{name}` is not valid UTF-8")]
    EnvNotUnicode {
        /// The variable's name.
        name: String,
    },
    /// The file named by `{ file = "..." }` cannot be read.
    #[error(
        "cannot read secret file `{}` (check that it exists and that sluice may read it)",
        path.display()
    )]
    ReadFile {
        /// The file's path.
        path: PathBuf,
        /// Why reading failed.
        #[source]
        source: std::io::Error,
    },
    /// The secret file is not valid UTF-8.
    #[error("secret file `{}` is not valid UTF-8", path.display())]
    FileNotUnicode {
        /// The file's path.
        path: PathBuf,
    },
    /// The secret resolved to an empty string.
    #[error("the secret from {origin} is empty")]
    Empty {
        /// Where the secret came from, e.g. "environment variable `TOKEN`".
        origin: String,
    },
    /// The secret cannot be sent in an HTTP header.
    #[error(
        "the secret from {origin} cannot be sent in an HTTP header: it contains a control \
         character such as a newline"
    )]
    NotHeaderSafe {
        /// Where the secret came from.
        origin: String,
    },
    /// The `[auth]` table is inconsistent.
    #[error("invalid [auth] table: {reason}")]
    InvalidAuth {
        /// What is wrong and how to fix it.
        reason: String,
    },
}

/// A secret value. `Debug` and `Display` print `[redacted]`; [`expose`](Self::expose) is the only
/// way to the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value. Call it only where the value is put on the wire.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Where a secret comes from, as written in the config file.
///
/// ```toml
/// token = { env = "GITHUB_TOKEN" }     # an environment variable
/// token = { file = "/run/secrets/gh" } # a file; one trailing newline is removed
/// token = "ghp_..."                    # inline: works, but warns when resolved
/// ```
#[derive(Clone, Deserialize)]
#[serde(
    untagged,
    deny_unknown_fields,
    expecting = "a secret: `{ env = \"VAR\" }`, `{ file = \"PATH\" }` or a string"
)]
pub enum SecretRef {
    /// The value of an environment variable.
    Env {
        /// The variable's name.
        env: String,
    },
    /// The contents of a file, without one trailing newline.
    File {
        /// The file's path.
        file: PathBuf,
    },
    /// The value itself, inline in the config file.
    Literal(String),
}

impl fmt::Debug for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Env { env } => f.debug_struct("Env").field("env", env).finish(),
            Self::File { file } => f.debug_struct("File").field("file", file).finish(),
            Self::Literal(_) => f.write_str("Literal([redacted])"),
        }
    }
}

impl SecretRef {
    /// Reads the secret. An inline value logs a warning suggesting `env` or `file`.
    pub fn resolve(&self) -> Result<Secret, Error> {
        if matches!(self, Self::Literal(_)) {
            tracing::warn!(
                "A secret is written inline in the config file; prefer `{{ env = \"VAR\" }}` or `{{ file = \"PATH\" }}`."
            );
        }
        self.resolve_quietly()
    }

    /// Reads the value without warning about inline values (for non-secret parts such as a
    /// basic-auth user name).
    fn resolve_quietly(&self) -> Result<Secret, Error> {
        let value = match self {
            Self::Env { env } => read_env(env)?,
            Self::File { file } => read_file(file)?,
            Self::Literal(value) => value.clone(),
        };
        if value.is_empty() {
            return Err(Error::Empty {
                origin: self.origin(),
            });
        }
        Ok(Secret(value))
    }

    /// Where the secret comes from, for error messages; never the value.
    pub fn origin(&self) -> String {
        match self {
            Self::Env { env } => format!("environment variable `{env}`"),
            Self::File { file } => format!("file `{}`", file.display()),
            Self::Literal(_) => "the config file".to_owned(),
        }
    }
}

#[allow(
    clippy::disallowed_methods,
    reason = "secrets are read from the environment by design; this is the one place that does"
)]
fn read_env(name: &str) -> Result<String, Error> {
    match std::env::var(name) {
        Ok(value) => Ok(value),
        Err(std::env::VarError::NotPresent) => Err(Error::MissingEnv {
            name: name.to_owned(),
        }),
        Err(std::env::VarError::NotUnicode(_)) => Err(Error::EnvNotUnicode {
            name: name.to_owned(),
        }),
    }
}

fn read_file(path: &Path) -> Result<String, Error> {
    let bytes = std::fs::read(path).map_err(|source| Error::ReadFile {
        path: path.to_owned(),
        source,
    })?;
    let mut value = String::from_utf8(bytes).map_err(|_| Error::FileNotUnicode {
        path: path.to_owned(),
    })?;
    // Editors and `echo` add one newline; anything beyond that is kept as part of the value.
    if value.ends_with('\n') {
        value.pop();
        if value.ends_with('\r') {
            value.pop();
        }
    }
    Ok(value)
}

/// The `[auth]` table of a connection file: how the host authenticates to the upstream API.
///
/// ```toml
/// [auth]
/// type = "bearer"
/// token = { env = "GITHUB_TOKEN" }
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum AuthConfig {
    /// A key sent in a header or a query parameter (exactly one of the two).
    ApiKey {
        /// The key.
        key: SecretRef,
        /// Header that carries the key, e.g. `x-api-key`.
        header: Option<String>,
        /// Query parameter that carries the key, e.g. `api_key`.
        query: Option<String>,
    },
    /// `Authorization: Bearer <token>`.
    Bearer {
        /// The token.
        token: SecretRef,
    },
    /// `Authorization: Basic <base64(username:password)>`.
    Basic {
        /// The user name (not treated as secret: an inline value does not warn).
        username: SecretRef,
        /// The password.
        password: SecretRef,
    },
    /// OAuth2 client-credentials grant: the host fetches `Bearer` access tokens at `token_url`.
    Oauth2ClientCredentials {
        /// The token endpoint.
        token_url: String,
        /// The client id (not treated as secret: an inline value does not warn).
        client_id: SecretRef,
        /// The client secret.
        client_secret: SecretRef,
        /// Scopes to ask for; none by default.
        #[serde(default)]
        scopes: Vec<String>,
    },
    /// OAuth2 refresh-token grant: the host exchanges `refresh_token` for access tokens and
    /// saves a rotated refresh token in the state directory.
    Oauth2RefreshToken {
        /// The token endpoint.
        token_url: String,
        /// The client id (not treated as secret: an inline value does not warn).
        client_id: SecretRef,
        /// The client secret; public clients have none.
        client_secret: Option<SecretRef>,
        /// The refresh token from the authorisation.
        refresh_token: SecretRef,
        /// Scopes to ask for; none by default.
        #[serde(default)]
        scopes: Vec<String>,
    },
}

/// What resolving an [`AuthConfig`] needs besides the secrets.
#[derive(Debug, Clone, Default)]
pub struct ResolveOptions {
    /// Whether an OAuth2 token endpoint may be on a private network
    /// (`[network] allow_private_networks`).
    pub allow_private_networks: bool,
    /// Where a rotated OAuth2 refresh token is saved; `None` keeps it in memory only.
    pub store: Option<CredentialSlot>,
}

impl AuthConfig {
    /// The scheme, as connectors list them in their spec.
    pub fn scheme(&self) -> AuthScheme {
        match self {
            Self::ApiKey { .. } => AuthScheme::ApiKey,
            Self::Bearer { .. } => AuthScheme::Bearer,
            Self::Basic { .. } => AuthScheme::Basic,
            Self::Oauth2ClientCredentials { .. } => AuthScheme::Oauth2ClientCredentials,
            Self::Oauth2RefreshToken { .. } => AuthScheme::Oauth2RefreshToken,
        }
    }

    /// The `type` value of the scheme, as written in the `[auth]` table.
    pub fn type_name(&self) -> &'static str {
        scheme_name(self.scheme())
    }

    /// [`resolve_with`](Self::resolve_with) with default options: OAuth2 token endpoints on
    /// public networks only, rotated refresh tokens kept in memory.
    pub fn resolve(&self, bound_to: AllowedHosts) -> Result<Credential, Error> {
        self.resolve_with(bound_to, ResolveOptions::default())
    }

    /// Reads the secrets and binds the credential to `bound_to`, normally the hosts the connector
    /// declares: the transport applies it to no other host. No request is made: OAuth2 tokens
    /// are fetched when the first request needs one.
    pub fn resolve_with(
        &self,
        bound_to: AllowedHosts,
        options: ResolveOptions,
    ) -> Result<Credential, Error> {
        let oauth2 = |grant,
                      token_url: &String,
                      client_id: &SecretRef,
                      client_secret: Option<&SecretRef>,
                      refresh_token: Option<&SecretRef>,
                      scopes: &Vec<String>| {
            let token_url = Url::parse(token_url).map_err(|_| Error::InvalidAuth {
                reason: format!("`token_url = {token_url:?}` is not a URL"),
            })?;
            let source = TokenSource::new(TokenSourceConfig {
                grant,
                token_url,
                client_id: client_id.resolve_quietly()?,
                client_secret: client_secret.map(SecretRef::resolve).transpose()?,
                scopes: scopes.clone(),
                refresh_token: refresh_token.map(SecretRef::resolve).transpose()?,
                allow_private_networks: options.allow_private_networks,
                store: options.store.clone(),
            })?;
            Ok::<_, Error>((Scheme::OAuth2(Arc::new(source)), Vec::new()))
        };
        let (scheme, echo) = match self {
            Self::Oauth2ClientCredentials {
                token_url,
                client_id,
                client_secret,
                scopes,
            } => oauth2(
                Grant::ClientCredentials,
                token_url,
                client_id,
                Some(client_secret),
                None,
                scopes,
            )?,
            Self::Oauth2RefreshToken {
                token_url,
                client_id,
                client_secret,
                refresh_token,
                scopes,
            } => oauth2(
                Grant::RefreshToken,
                token_url,
                client_id,
                client_secret.as_ref(),
                Some(refresh_token),
                scopes,
            )?,
            Self::ApiKey { key, header, query } => {
                let secret = key.resolve()?;
                let scheme = match (header, query) {
                    (Some(name), None) => {
                        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                            Error::InvalidAuth {
                                reason: format!("`header = {name:?}` is not a valid header name"),
                            }
                        })?;
                        Scheme::Header {
                            value: header_value(secret.expose(), key)?,
                            name,
                        }
                    }
                    (None, Some(name)) if !name.is_empty() => Scheme::Query {
                        name: name.clone(),
                        value: secret.clone(),
                    },
                    (None, Some(_)) => {
                        return Err(Error::InvalidAuth {
                            reason: "`query` must not be empty".to_owned(),
                        });
                    }
                    (Some(_), Some(_)) | (None, None) => {
                        return Err(Error::InvalidAuth {
                            reason: "`type = \"api_key\"` needs exactly one of \
                                     `header = \"NAME\"` or `query = \"NAME\"`"
                                .to_owned(),
                        });
                    }
                };
                (scheme, vec![secret])
            }
            Self::Bearer { token } => {
                let secret = token.resolve()?;
                let scheme = Scheme::Header {
                    name: reqwest::header::AUTHORIZATION,
                    value: header_value(&format!("Bearer {}", secret.expose()), token)?,
                };
                (scheme, vec![secret])
            }
            Self::Basic { username, password } => {
                let user = username.resolve_quietly()?;
                if user.expose().contains(':') {
                    return Err(Error::InvalidAuth {
                        reason: "a basic-auth `username` must not contain `:`".to_owned(),
                    });
                }
                let pass = password.resolve()?;
                let encoded = base64::engine::general_purpose::STANDARD.encode(format!(
                    "{}:{}",
                    user.expose(),
                    pass.expose()
                ));
                let scheme = Scheme::Header {
                    name: reqwest::header::AUTHORIZATION,
                    value: header_value(&format!("Basic {encoded}"), password)?,
                };
                (scheme, vec![pass, Secret(encoded)])
            }
        };
        Ok(Credential {
            scheme,
            echo: echo
                .into_iter()
                .filter(|s| s.expose().len() >= MIN_ECHO_CHECK_BYTES)
                .collect(),
            bound_to,
        })
    }
}

fn header_value(value: &str, origin: &SecretRef) -> Result<HeaderValue, Error> {
    let mut value = HeaderValue::from_str(value).map_err(|_| Error::NotHeaderSafe {
        origin: origin.origin(),
    })?;
    value.set_sensitive(true);
    Ok(value)
}

/// How a credential is put on a request.
#[derive(Clone)]
enum Scheme {
    /// A header with this name and value.
    Header {
        name: HeaderName,
        value: HeaderValue,
    },
    /// A query parameter with this name and value.
    Query { name: String, value: Secret },
    /// An OAuth2 access token in `Authorization: Bearer`.
    OAuth2(Arc<TokenSource>),
}

/// The `type` value of `scheme` in an `[auth]` table.
pub fn scheme_name(scheme: AuthScheme) -> &'static str {
    match scheme {
        AuthScheme::ApiKey => "api_key",
        AuthScheme::Bearer => "bearer",
        AuthScheme::Basic => "basic",
        AuthScheme::Oauth2ClientCredentials => "oauth2_client_credentials",
        AuthScheme::Oauth2RefreshToken => "oauth2_refresh_token",
    }
}

/// What [`Credential::apply`] put on a request: for an OAuth2 token, its generation, to pass
/// to [`Credential::rejected`] when the API answers `401`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// A fixed secret.
    Static,
    /// An OAuth2 access token of this generation.
    Token(u64),
}

/// A resolved credential, bound to the hosts it may be sent to. `Debug` shows no secret.
#[derive(Clone)]
pub struct Credential {
    scheme: Scheme,
    /// Values whose appearance in a response header gets that header dropped.
    echo: Vec<Secret>,
    bound_to: AllowedHosts,
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let carrier = match &self.scheme {
            Scheme::Header { name, .. } => format!("header `{name}`"),
            Scheme::Query { name, .. } => format!("query parameter `{name}`"),
            Scheme::OAuth2(source) => {
                format!(
                    "header `authorization` (OAuth2 from `{}`)",
                    source.token_url()
                )
            }
        };
        f.debug_struct("Credential")
            .field("carrier", &carrier)
            .field("bound_to", &self.bound_to)
            .finish_non_exhaustive()
    }
}

impl Credential {
    /// Whether the credential may be sent to `url`'s host.
    pub fn is_bound_to(&self, url: &Url) -> bool {
        self.bound_to.allows(url)
    }

    /// The header that carries the credential, if it travels in a header. Connectors may not set it.
    pub fn header_name(&self) -> Option<&HeaderName> {
        match &self.scheme {
            Scheme::Header { name, .. } => Some(name),
            Scheme::OAuth2(_) => Some(&reqwest::header::AUTHORIZATION),
            Scheme::Query { .. } => None,
        }
    }

    /// The query parameter that carries the credential, if it travels in the URL. Connectors may
    /// not set it, and it is stripped from redirect targets and from URLs shown to them.
    pub fn query_name(&self) -> Option<&str> {
        match &self.scheme {
            Scheme::Query { name, .. } => Some(name),
            Scheme::Header { .. } | Scheme::OAuth2(_) => None,
        }
    }

    /// Puts the credential on a request about to be sent. An OAuth2 credential may first
    /// fetch a token with `client` (see [`oauth2::TokenSource::token`]).
    pub async fn apply(
        &self,
        client: &reqwest::Client,
        url: &mut Url,
        headers: &mut HeaderMap,
    ) -> Result<Applied, oauth2::Error> {
        match &self.scheme {
            Scheme::Header { name, value } => {
                headers.insert(name.clone(), value.clone());
            }
            Scheme::Query { name, value } => {
                url.query_pairs_mut().append_pair(name, value.expose());
            }
            Scheme::OAuth2(source) => {
                let token = source.token(client).await?;
                headers.insert(reqwest::header::AUTHORIZATION, token.header);
                return Ok(Applied::Token(token.generation));
            }
        }
        Ok(Applied::Static)
    }

    /// The API answered `401` to a request that carried `applied`. Returns whether sending it
    /// again may help: an OAuth2 token is then dropped, so the next request fetches a new one.
    pub async fn rejected(&self, applied: Applied) -> bool {
        match (&self.scheme, applied) {
            (Scheme::OAuth2(source), Applied::Token(generation)) => {
                source.rejected(generation).await;
                true
            }
            _ => false,
        }
    }

    /// OAuth2 tokens fetched so far; `None` for other schemes.
    pub fn oauth2_fetches(&self) -> Option<u64> {
        match &self.scheme {
            Scheme::OAuth2(source) => Some(source.fetches()),
            Scheme::Header { .. } | Scheme::Query { .. } => None,
        }
    }

    /// Replaces every occurrence of one of the credential's secrets in `body` (a response body
    /// about to be handed to the connector, from a server that echoes what it received) with
    /// `[redacted]`. Returns whether anything was replaced.
    pub fn redact(&self, body: &mut Vec<u8>) -> bool {
        let mut secrets = self.echo.clone();
        if let Scheme::OAuth2(source) = &self.scheme {
            secrets.extend(source.secrets());
        }
        let mut replaced = false;
        for secret in secrets {
            let needle = secret.expose().as_bytes();
            if needle.len() < MIN_ECHO_CHECK_BYTES
                || !body.windows(needle.len()).any(|window| window == needle)
            {
                continue;
            }
            replaced = true;
            let mut out = Vec::with_capacity(body.len());
            let mut rest: &[u8] = body;
            while let Some(at) = rest
                .windows(needle.len())
                .position(|window| window == needle)
            {
                out.extend_from_slice(&rest[..at]);
                out.extend_from_slice(REDACTED.as_bytes());
                rest = &rest[at + needle.len()..];
            }
            out.extend_from_slice(rest);
            *body = out;
        }
        replaced
    }

    /// Whether `bytes` (e.g. a response header value) contains one of the credential's secrets.
    pub fn appears_in(&self, bytes: &[u8]) -> bool {
        if let Scheme::OAuth2(source) = &self.scheme
            && source.appears_in(bytes)
        {
            return true;
        }
        self.echo.iter().any(|secret| {
            let needle = secret.expose().as_bytes();
            bytes.windows(needle.len()).any(|window| window == needle)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    fn hosts(patterns: &[&str]) -> AllowedHosts {
        let patterns: Vec<String> = patterns.iter().map(|p| (*p).to_owned()).collect();
        AllowedHosts::parse(&patterns).unwrap()
    }

    fn auth(text: &str) -> AuthConfig {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn secret_formatting_is_redacted() {
        let secret = Secret::new("hunter2-very-secret");
        assert_eq!(format!("{secret:?}"), "[redacted]");
        assert_eq!(format!("{secret}"), "[redacted]");
        assert_eq!(secret.expose(), "hunter2-very-secret");
        let inline = SecretRef::Literal("hunter2-very-secret".to_owned());
        assert!(!format!("{inline:?}").contains("hunter2"));
        let config = auth("type = \"bearer\"\ntoken = \"hunter2-very-secret\"");
        assert!(!format!("{config:?}").contains("hunter2"));
        let credential = config.resolve(hosts(&["api.example.com"])).unwrap();
        let debug = format!("{credential:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(debug.contains("authorization"), "{debug}");
    }

    #[test]
    fn secret_refs_parse_from_toml() {
        #[derive(Debug, Deserialize)]
        struct T {
            s: SecretRef,
        }
        let t: T = toml::from_str("s = { env = \"TOKEN\" }").unwrap();
        assert!(matches!(t.s, SecretRef::Env { env } if env == "TOKEN"));
        let t: T = toml::from_str("s = { file = \"/run/secret\" }").unwrap();
        assert!(matches!(t.s, SecretRef::File { file } if file == Path::new("/run/secret")));
        let t: T = toml::from_str("s = \"inline\"").unwrap();
        assert!(matches!(t.s, SecretRef::Literal(v) if v == "inline"));
        for bad in [
            "s = { env = \"A\", file = \"B\" }",
            "s = { vault = \"x\" }",
            "s = 3",
        ] {
            let err = toml::from_str::<T>(bad).unwrap_err().to_string();
            assert!(
                err.contains("a secret: `{ env = \"VAR\" }`, `{ file = \"PATH\" }` or a string"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn missing_env_var_says_how_to_fix() {
        let err = SecretRef::Env {
            env: "SLUICE_TEST_SURELY_UNSET_VARIABLE".to_owned(),
        }
        .resolve()
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "environment variable `SLUICE_TEST_SURELY_UNSET_VARIABLE` is not set; set it before \
             starting sluice, or point the secret at a file with `{ file = \"PATH\" }`"
        );
    }

    #[test]
    fn env_var_is_read() {
        // PATH is set in every test environment and never empty.
        let secret = SecretRef::Env {
            env: "PATH".to_owned(),
        }
        .resolve()
        .unwrap();
        assert!(!secret.expose().is_empty());
    }

    #[test]
    fn file_secret_loses_one_trailing_newline() {
        let dir = std::env::temp_dir().join(format!("sluice-secrets-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for (contents, expected) in [
            ("tok\n", "tok"),
            ("tok\r\n", "tok"),
            ("tok\n\n", "tok\n"),
            ("tok", "tok"),
            (" tok ", " tok "),
        ] {
            let path = dir.join("secret");
            std::fs::File::create(&path)
                .unwrap()
                .write_all(contents.as_bytes())
                .unwrap();
            let secret = SecretRef::File { file: path }.resolve().unwrap();
            assert_eq!(secret.expose(), expected, "{contents:?}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn unreadable_file_is_named() {
        let err = SecretRef::File {
            file: PathBuf::from("/nonexistent/sluice/secret"),
        }
        .resolve()
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot read secret file `/nonexistent/sluice/secret` (check that it exists and that \
             sluice may read it)"
        );
        assert!(std::error::Error::source(&err).is_some());
    }

    #[test]
    fn empty_secret_is_refused() {
        let err = SecretRef::Literal(String::new()).resolve().unwrap_err();
        assert_eq!(err.to_string(), "the secret from the config file is empty");
    }

    #[test]
    fn header_injection_in_a_secret_is_refused() {
        let err = auth("type = \"bearer\"\ntoken = \"abc\\r\\nx-evil: 1\"")
            .resolve(hosts(&[]))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "the secret from the config file cannot be sent in an HTTP header: it contains a \
             control character such as a newline"
        );
    }

    #[tokio::test]
    async fn auth_configs_parse_and_apply() {
        let client = reqwest::Client::new();
        let bound = hosts(&["api.example.com"]);
        let url = Url::parse("https://api.example.com/v1").unwrap();

        let bearer = auth("type = \"bearer\"\ntoken = \"tok-123\"")
            .resolve(bound.clone())
            .unwrap();
        let (mut u, mut h) = (url.clone(), HeaderMap::new());
        bearer.apply(&client, &mut u, &mut h).await.unwrap();
        assert_eq!(h["authorization"], "Bearer tok-123");
        assert!(h["authorization"].is_sensitive());
        assert_eq!(u, url);

        let basic = auth("type = \"basic\"\nusername = \"alice\"\npassword = \"open sesame\"")
            .resolve(bound.clone())
            .unwrap();
        let (mut u, mut h) = (url.clone(), HeaderMap::new());
        basic.apply(&client, &mut u, &mut h).await.unwrap();
        assert_eq!(h["authorization"], "Basic YWxpY2U6b3BlbiBzZXNhbWU=");
        assert!(basic.appears_in(b"echo: open sesame"));
        assert!(basic.appears_in(b"YWxpY2U6b3BlbiBzZXNhbWU="));

        let header_key = auth("type = \"api_key\"\nkey = \"k-42-xyz\"\nheader = \"X-Api-Key\"")
            .resolve(bound.clone())
            .unwrap();
        assert_eq!(header_key.header_name().unwrap(), "x-api-key");
        let (mut u, mut h) = (url.clone(), HeaderMap::new());
        header_key.apply(&client, &mut u, &mut h).await.unwrap();
        assert_eq!(h["x-api-key"], "k-42-xyz");

        let query_key = auth("type = \"api_key\"\nkey = \"k-42-xyz\"\nquery = \"api_key\"")
            .resolve(bound)
            .unwrap();
        assert_eq!(query_key.query_name(), Some("api_key"));
        let (mut u, mut h) = (url.clone(), HeaderMap::new());
        query_key.apply(&client, &mut u, &mut h).await.unwrap();
        assert_eq!(u.as_str(), "https://api.example.com/v1?api_key=k-42-xyz");
        assert!(h.is_empty());
        assert!(query_key.appears_in(b"https://x/?api_key=k-42-xyz"));
        let mut body = b"{\"key\":\"k-42-xyz\",\"again\":\"k-42-xyzk-42-xyz\"}".to_vec();
        assert!(query_key.redact(&mut body));
        assert_eq!(
            body,
            b"{\"key\":\"[redacted]\",\"again\":\"[redacted][redacted]\"}".to_vec()
        );
        assert!(!query_key.redact(&mut body));
        assert!(!query_key.appears_in(b"k-42"));
    }

    #[test]
    fn credential_is_bound_to_its_hosts() {
        let credential = auth("type = \"bearer\"\ntoken = \"tok-123\"")
            .resolve(hosts(&["api.example.com"]))
            .unwrap();
        assert!(credential.is_bound_to(&Url::parse("https://api.example.com/x").unwrap()));
        assert!(!credential.is_bound_to(&Url::parse("https://evil.example.com/x").unwrap()));
        assert!(!credential.is_bound_to(&Url::parse("https://api.example.com:8443/").unwrap()));
    }

    #[test]
    fn invalid_auth_tables_are_explained() {
        let err = auth("type = \"api_key\"\nkey = \"k\"")
            .resolve(hosts(&[]))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid [auth] table: `type = \"api_key\"` needs exactly one of `header = \"NAME\"` \
             or `query = \"NAME\"`"
        );
        let err = auth("type = \"api_key\"\nkey = \"k\"\nheader = \"bad header\"")
            .resolve(hosts(&[]))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid [auth] table: `header = \"bad header\"` is not a valid header name"
        );
        let err = toml::from_str::<AuthConfig>("type = \"bearer\"\ntoken = \"t\"\nextra = 1")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `extra`"), "{err}");
        let err = toml::from_str::<AuthConfig>("type = \"kerberos\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown variant `kerberos`"), "{err}");
    }
}
