//! The DNS resolver of the HTTP client: resolves with tokio and drops blocked addresses, so the
//! address actually dialled is the one that was checked (no DNS-rebinding window between a check
//! and the connection).
//!
//! reqwest does not call the resolver for IP literals; [`super::EgressPolicy::check_url`] checks
//! those.

use std::net::SocketAddr;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use super::policy::{BlockedClass, Denial, address_allowed, is_metadata_host};

/// Resolves names and keeps only addresses the policy allows.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PolicyResolver {
    pub(crate) allow_private_networks: bool,
}

/// A resolution refused by the policy. The transport finds it in reqwest's error chain and
/// reports it as [`super::Error::Denied`].
#[derive(Debug, thiserror::Error)]
#[error("{denial}")]
pub(crate) struct ResolveDenied {
    pub(crate) denial: Denial,
}

impl Resolve for PolicyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private_networks = self.allow_private_networks;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            if is_metadata_host(&host) {
                return Err(Box::new(ResolveDenied {
                    denial: Denial::Metadata { host },
                }) as _);
            }
            let resolved = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let (allowed, blocked) = filter(resolved, allow_private_networks);
            if allowed.is_empty() && !blocked.is_empty() {
                tracing::debug!(host = %host, "Resolved addresses are all blocked.");
                return Err(Box::new(ResolveDenied {
                    denial: Denial::ResolvedToBlocked {
                        host,
                        addresses: blocked,
                    },
                }) as _);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// Splits resolved addresses into the allowed ones and the blocked ones with their class.
fn filter(
    resolved: impl IntoIterator<Item = SocketAddr>,
    allow_private_networks: bool,
) -> (Vec<SocketAddr>, Vec<(std::net::IpAddr, BlockedClass)>) {
    let mut allowed = Vec::new();
    let mut blocked = Vec::new();
    for addr in resolved {
        match address_allowed(addr.ip(), allow_private_networks) {
            Ok(()) => allowed.push(addr),
            Err(class) => blocked.push((addr.ip(), class)),
        }
    }
    (allowed, blocked)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr as _;

    fn addrs(list: &[&str]) -> Vec<SocketAddr> {
        list.iter()
            .map(|a| SocketAddr::new(a.parse().unwrap(), 0))
            .collect()
    }

    #[test]
    fn filter_drops_blocked_addresses() {
        let (allowed, blocked) = filter(addrs(&["93.184.216.34", "10.0.0.1", "::1"]), false);
        assert_eq!(allowed, addrs(&["93.184.216.34"]));
        assert_eq!(
            blocked,
            vec![
                ("10.0.0.1".parse().unwrap(), BlockedClass::Private),
                ("::1".parse().unwrap(), BlockedClass::Loopback)
            ]
        );
        let (allowed, blocked) = filter(addrs(&["10.0.0.1", "169.254.169.254"]), true);
        assert_eq!(allowed, addrs(&["10.0.0.1"]));
        assert_eq!(
            blocked,
            vec![("169.254.169.254".parse().unwrap(), BlockedClass::Metadata)]
        );
    }

    #[tokio::test]
    async fn localhost_is_refused_unless_private_networks_are_allowed() {
        let resolver = PolicyResolver {
            allow_private_networks: false,
        };
        let err = match resolver.resolve(Name::from_str("localhost").unwrap()).await {
            Ok(_) => panic!("localhost resolved"),
            Err(err) => err,
        };
        let denied = err.downcast_ref::<ResolveDenied>().unwrap();
        assert!(
            matches!(&denied.denial, Denial::ResolvedToBlocked { host, .. } if host == "localhost")
        );

        let resolver = PolicyResolver {
            allow_private_networks: true,
        };
        let addrs: Vec<_> = resolver
            .resolve(Name::from_str("localhost").unwrap())
            .await
            .unwrap()
            .collect();
        assert!(addrs.iter().all(|a| a.ip().is_loopback()), "{addrs:?}");
    }

    #[tokio::test]
    async fn metadata_names_are_never_resolved() {
        let resolver = PolicyResolver {
            allow_private_networks: true,
        };
        let err = match resolver
            .resolve(Name::from_str("metadata.google.internal").unwrap())
            .await
        {
            Ok(_) => panic!("metadata resolved"),
            Err(err) => err,
        };
        assert_eq!(
            err.to_string(),
            "host `metadata.google.internal` is a cloud metadata endpoint, which is always refused"
        );
    }
}
