//! The egress policy: which URLs and addresses a connection may reach.
//!
//! A request passes when its scheme is `http` or `https`, it carries no user info, its host is
//! declared by the connector *and* (when the operator gave a list) allowed by the operator, and
//! the address it reaches is not in a blocked range. IP literals are checked here; names are
//! checked again on the addresses they resolve to, by the resolver ([`super::resolver`]), so a
//! name pointing at `127.0.0.1` is caught as well.
//!
//! Blocked unless `allow_private_networks = true`: loopback, private, link-local, unique-local,
//! shared (CGNAT), unspecified, broadcast, multicast and reserved ranges, including their
//! IPv4-mapped, IPv4-compatible, NAT64 and 6to4 IPv6 spellings. Cloud metadata endpoints are
//! refused even then.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use url::{Host, Url};

use super::allowed_hosts::normalise_domain;
use super::{AllowedHosts, Error, NetworkConfig, display_url};

/// Host names of cloud metadata services. Always refused.
const METADATA_HOSTS: [&str; 5] = [
    "metadata",
    "metadata.google.internal",
    "metadata.goog",
    "instance-data",
    "instance-data.ec2.internal",
];

/// Addresses of cloud metadata and credential services. Always refused: AWS, GCP, Azure, OCI
/// and others (169.254.169.254), AWS ECS task credentials (169.254.170.2), Alibaba Cloud
/// (100.100.100.200), AWS over IPv6 (fd00:ec2::254).
const METADATA_V4: [Ipv4Addr; 3] = [
    Ipv4Addr::new(169, 254, 169, 254),
    Ipv4Addr::new(169, 254, 170, 2),
    Ipv4Addr::new(100, 100, 100, 200),
];
const METADATA_V6: [Ipv6Addr; 1] = [Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)];

/// Why an address is blocked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BlockedClass {
    /// 127.0.0.0/8, ::1.
    Loopback,
    /// 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, IPv6 site-local fec0::/10, local NAT64.
    Private,
    /// 169.254.0.0/16, fe80::/10.
    LinkLocal,
    /// fc00::/7.
    UniqueLocal,
    /// 100.64.0.0/10, carrier-grade NAT.
    Shared,
    /// 0.0.0.0, ::.
    Unspecified,
    /// 255.255.255.255.
    Broadcast,
    /// 224.0.0.0/4, ff00::/8.
    Multicast,
    /// 0.0.0.0/8 ("this network") and 240.0.0.0/4.
    Reserved,
    /// A cloud metadata endpoint; refused even with `allow_private_networks`.
    Metadata,
}

impl fmt::Display for BlockedClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Loopback => "loopback",
            Self::Private => "private",
            Self::LinkLocal => "link-local",
            Self::UniqueLocal => "unique-local",
            Self::Shared => "shared (carrier-grade NAT)",
            Self::Unspecified => "unspecified",
            Self::Broadcast => "broadcast",
            Self::Multicast => "multicast",
            Self::Reserved => "reserved",
            Self::Metadata => "cloud metadata",
        })
    }
}

/// Classifies an address; `None` means a public address.
pub fn classify(ip: IpAddr) -> Option<BlockedClass> {
    match ip {
        IpAddr::V4(ip) => classify_v4(ip),
        IpAddr::V6(ip) => classify_v6(ip),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<BlockedClass> {
    let [a, b, ..] = ip.octets();
    Some(if METADATA_V4.contains(&ip) {
        BlockedClass::Metadata
    } else if ip.is_unspecified() {
        BlockedClass::Unspecified
    } else if ip.is_loopback() {
        BlockedClass::Loopback
    } else if ip.is_private() {
        BlockedClass::Private
    } else if ip.is_link_local() {
        BlockedClass::LinkLocal
    } else if a == 100 && (b & 0xc0) == 64 {
        BlockedClass::Shared
    } else if ip.is_broadcast() {
        BlockedClass::Broadcast
    } else if ip.is_multicast() {
        BlockedClass::Multicast
    } else if a == 0 || a >= 240 {
        BlockedClass::Reserved
    } else {
        return None;
    })
}

fn classify_v6(ip: Ipv6Addr) -> Option<BlockedClass> {
    let seg = ip.segments();
    let embedded_v4 = |hi: u16, lo: u16| {
        let [a, b] = hi.to_be_bytes();
        let [c, d] = lo.to_be_bytes();
        Ipv4Addr::new(a, b, c, d)
    };
    if METADATA_V6.contains(&ip) {
        Some(BlockedClass::Metadata)
    } else if ip.is_unspecified() {
        Some(BlockedClass::Unspecified)
    } else if ip.is_loopback() {
        Some(BlockedClass::Loopback)
    } else if let Some(v4) = ip.to_ipv4_mapped() {
        // ::ffff:a.b.c.d
        classify_v4(v4)
    } else if seg[..6] == [0; 6] {
        // ::a.b.c.d, the deprecated IPv4-compatible form.
        classify_v4(embedded_v4(seg[6], seg[7]))
    } else if seg[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        // 64:ff9b::/96, NAT64: reaches the embedded IPv4 address through a gateway.
        classify_v4(embedded_v4(seg[6], seg[7]))
    } else if seg[0] == 0x64 && seg[1] == 0xff9b && seg[2] == 1 {
        // 64:ff9b:1::/48, local-use NAT64 (RFC 8215).
        Some(BlockedClass::Private)
    } else if seg[0] == 0x2002 {
        // 2002::/16, 6to4: the next 32 bits are an IPv4 address.
        classify_v4(embedded_v4(seg[1], seg[2]))
    } else if (seg[0] & 0xfe00) == 0xfc00 {
        Some(BlockedClass::UniqueLocal)
    } else if (seg[0] & 0xffc0) == 0xfe80 {
        Some(BlockedClass::LinkLocal)
    } else if (seg[0] & 0xffc0) == 0xfec0 {
        Some(BlockedClass::Private)
    } else if (seg[0] & 0xff00) == 0xff00 {
        Some(BlockedClass::Multicast)
    } else {
        None
    }
}

/// Whether `name` is the host name of a cloud metadata service.
pub fn is_metadata_host(name: &str) -> bool {
    let name = normalise_domain(name);
    METADATA_HOSTS.contains(&name.as_str())
}

/// Why the egress policy refused a request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Denial {
    /// The scheme is neither `http` nor `https`.
    Scheme {
        /// The scheme.
        scheme: String,
    },
    /// The URL carries `user:password@`.
    UserInfo,
    /// The URL has no host.
    NoHost,
    /// The connector did not declare the host.
    NotDeclared {
        /// `host[:port]`.
        host: String,
        /// What the connector declares.
        declared: AllowedHosts,
    },
    /// The operator's `[network] allowed_hosts` does not allow the host.
    NotAllowedByOperator {
        /// `host[:port]`.
        host: String,
        /// What the operator allows.
        allowed: AllowedHosts,
    },
    /// The host is an IP literal in a blocked range.
    BlockedAddress {
        /// `host[:port]`.
        host: String,
        /// The range.
        class: BlockedClass,
    },
    /// The host name is a cloud metadata service.
    Metadata {
        /// The name.
        host: String,
    },
    /// Every address the name resolves to is blocked.
    ResolvedToBlocked {
        /// The name.
        host: String,
        /// The addresses and why each is blocked.
        addresses: Vec<(IpAddr, BlockedClass)>,
    },
    /// A redirect from `https` to `http`.
    Downgrade {
        /// The redirect target, without its query.
        location: String,
    },
}

const ALLOW_PRIVATE_FIX: &str = "set `allow_private_networks = true` in [network] to allow it";

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Scheme { scheme } => {
                write!(
                    f,
                    "scheme `{scheme}` is not allowed; only `http` and `https` are"
                )
            }
            Self::UserInfo => f.write_str(
                "user info (`user:password@`) in the URL is not allowed; the host applies \
                 credentials from [auth]",
            ),
            Self::NoHost => f.write_str("the URL has no host"),
            Self::NotDeclared { host, declared } => write!(
                f,
                "host `{host}` is not among the hosts the connector declares {declared}; a \
                 connector may only reach hosts it declares"
            ),
            Self::NotAllowedByOperator { host, allowed } => write!(
                f,
                "host `{host}` is not in the allowed hosts {allowed}; add it to `allowed_hosts` \
                 in [network] if the connector should reach it"
            ),
            Self::BlockedAddress {
                host,
                class: BlockedClass::Metadata,
            }
            | Self::Metadata { host } => write!(
                f,
                "host `{host}` is a cloud metadata endpoint, which is always refused"
            ),
            Self::BlockedAddress { host, class } => write!(
                f,
                "host `{host}` is a {class} address, which is blocked; {ALLOW_PRIVATE_FIX}"
            ),
            Self::ResolvedToBlocked { host, addresses } => {
                write!(f, "host `{host}` resolves only to blocked addresses (")?;
                for (i, (ip, class)) in addresses.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{ip} {class}")?;
                }
                if addresses.iter().all(|(_, c)| *c == BlockedClass::Metadata) {
                    f.write_str("); cloud metadata endpoints are always refused")
                } else {
                    write!(f, "); {ALLOW_PRIVATE_FIX}")
                }
            }
            Self::Downgrade { location } => write!(
                f,
                "the redirect to `{location}` would downgrade https to plain http"
            ),
        }
    }
}

/// What a connection may reach: the connector-declared hosts, narrowed by the operator's list if
/// there is one, minus blocked address ranges.
#[derive(Debug, Clone)]
pub struct EgressPolicy {
    declared: AllowedHosts,
    operator: Option<AllowedHosts>,
    allow_private_networks: bool,
}

impl EgressPolicy {
    /// A policy allowing the hosts in both `declared` and `operator` (`None`: no narrowing;
    /// an empty list: nothing). Private and loopback networks stay blocked unless
    /// `allow_private_networks`; metadata endpoints are blocked regardless.
    pub fn new(
        declared: AllowedHosts,
        operator: Option<AllowedHosts>,
        allow_private_networks: bool,
    ) -> Self {
        Self {
            declared,
            operator,
            allow_private_networks,
        }
    }

    /// A policy from the connector's declared hosts and the connection file's `[network]` table.
    pub fn from_config(declared: AllowedHosts, network: &NetworkConfig) -> Result<Self, Error> {
        let operator = network
            .allowed_hosts
            .as_deref()
            .map(AllowedHosts::parse)
            .transpose()?;
        Ok(Self::new(
            declared,
            operator,
            network.allow_private_networks,
        ))
    }

    /// The hosts the connector declares.
    pub fn declared(&self) -> &AllowedHosts {
        &self.declared
    }

    /// Whether private networks are allowed.
    pub fn allow_private_networks(&self) -> bool {
        self.allow_private_networks
    }

    /// Checks a URL before it is sent (and every redirect target).
    pub fn check_url(&self, url: &Url) -> Result<(), Error> {
        self.denial(url).map_or(Ok(()), |reason| {
            Err(Error::Denied {
                url: display_url(url),
                reason,
            })
        })
    }

    fn denial(&self, url: &Url) -> Option<Denial> {
        if !matches!(url.scheme(), "http" | "https") {
            return Some(Denial::Scheme {
                scheme: url.scheme().to_owned(),
            });
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Some(Denial::UserInfo);
        }
        let Some(host) = url.host() else {
            return Some(Denial::NoHost);
        };
        let shown = display_host(url);
        let ip = match host {
            Host::Domain(name) if is_metadata_host(name) => {
                return Some(Denial::Metadata { host: shown });
            }
            Host::Domain(_) => None,
            Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
            Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
        };
        let class = ip.and_then(classify);
        if class == Some(BlockedClass::Metadata) {
            return Some(Denial::Metadata { host: shown });
        }
        if !self.declared.allows(url) {
            return Some(Denial::NotDeclared {
                host: shown,
                declared: self.declared.clone(),
            });
        }
        if let Some(allowed) = &self.operator
            && !allowed.allows(url)
        {
            return Some(Denial::NotAllowedByOperator {
                host: shown,
                allowed: allowed.clone(),
            });
        }
        match class {
            Some(class) if !self.allow_private_networks => {
                Some(Denial::BlockedAddress { host: shown, class })
            }
            _ => None,
        }
    }

    /// Whether an address a name resolved to may be dialled.
    pub fn address_allowed(&self, ip: IpAddr) -> Result<(), BlockedClass> {
        address_allowed(ip, self.allow_private_networks)
    }
}

pub(crate) fn address_allowed(
    ip: IpAddr,
    allow_private_networks: bool,
) -> Result<(), BlockedClass> {
    match classify(ip) {
        None => Ok(()),
        Some(BlockedClass::Metadata) => Err(BlockedClass::Metadata),
        Some(_) if allow_private_networks => Ok(()),
        Some(class) => Err(class),
    }
}

/// `host` or `host:port` when the URL names a port.
pub(crate) fn display_host(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(patterns: &[&str]) -> AllowedHosts {
        let patterns: Vec<String> = patterns.iter().map(|p| (*p).to_owned()).collect();
        AllowedHosts::parse(&patterns).unwrap()
    }

    fn check(policy: &EgressPolicy, url: &str) -> Result<(), String> {
        policy
            .check_url(&Url::parse(url).unwrap())
            .map_err(|e| e.to_string())
    }

    /// A policy whose declared list allows any port on every host used below, so that only the
    /// address checks decide.
    fn open_policy(allow_private: bool) -> EgressPolicy {
        let all = [
            "127.0.0.1:*",
            "127.1.2.3:*",
            "10.0.0.1:*",
            "172.16.0.1:*",
            "172.31.255.255:*",
            "192.168.1.1:*",
            "169.254.1.1:*",
            "169.254.169.254:*",
            "169.254.170.2:*",
            "100.64.0.1:*",
            "100.127.255.254:*",
            "100.100.100.200:*",
            "0.0.0.0:*",
            "0.1.2.3:*",
            "255.255.255.255:*",
            "224.0.0.1:*",
            "240.0.0.1:*",
            "[::1]:*",
            "[::]:*",
            "[fe80::1]:*",
            "[fc00::1]:*",
            "[fd12:3456::1]:*",
            "[fec0::1]:*",
            "[ff02::1]:*",
            "[::ffff:127.0.0.1]:*",
            "[::ffff:10.0.0.1]:*",
            "[::ffff:169.254.169.254]:*",
            "[::127.0.0.1]:*",
            "[64:ff9b::7f00:1]:*",
            "[64:ff9b:1::1]:*",
            "[2002:7f00:1::]:*",
            "[fd00:ec2::254]:*",
            "93.184.216.34:*",
            "[2606:4700::1]:*",
            "100.63.255.255:*",
            "100.128.0.1:*",
            "[2002:5db8:d822::1]:*",
        ];
        EgressPolicy::new(hosts(&all), None, allow_private)
    }

    #[test]
    fn every_blocked_class_is_refused_and_named() {
        let policy = open_policy(false);
        let cases = [
            ("http://127.0.0.1/", "loopback"),
            ("http://127.1.2.3/", "loopback"),
            ("http://10.0.0.1/", "private"),
            ("http://172.16.0.1/", "private"),
            ("http://172.31.255.255/", "private"),
            ("http://192.168.1.1/", "private"),
            ("http://169.254.1.1/", "link-local"),
            ("http://100.64.0.1/", "shared (carrier-grade NAT)"),
            ("http://100.127.255.254/", "shared (carrier-grade NAT)"),
            ("http://0.0.0.0/", "unspecified"),
            ("http://0.1.2.3/", "reserved"),
            ("http://255.255.255.255/", "broadcast"),
            ("http://224.0.0.1/", "multicast"),
            ("http://240.0.0.1/", "reserved"),
            ("http://[::1]/", "loopback"),
            ("http://[::]/", "unspecified"),
            ("http://[fe80::1]/", "link-local"),
            ("http://[fc00::1]/", "unique-local"),
            ("http://[fd12:3456::1]/", "unique-local"),
            ("http://[fec0::1]/", "private"),
            ("http://[ff02::1]/", "multicast"),
            ("http://[::ffff:127.0.0.1]/", "loopback"),
            ("http://[::ffff:10.0.0.1]/", "private"),
            ("http://[::127.0.0.1]/", "loopback"),
            ("http://[64:ff9b::7f00:1]/", "loopback"),
            ("http://[64:ff9b:1::1]/", "private"),
            ("http://[2002:7f00:1::]/", "loopback"),
        ];
        for (url, class) in cases {
            let err = check(&policy, url).unwrap_err();
            let parsed = Url::parse(url).unwrap();
            let (shown, host) = (display_url(&parsed), parsed.host_str().unwrap());
            assert_eq!(
                err,
                format!(
                    "request to `{shown}` denied: host `{host}` is a {class} address, which is \
                     blocked; set `allow_private_networks = true` in [network] to allow it"
                ),
                "{url}"
            );
            // The operator can lift it.
            assert_eq!(check(&open_policy(true), url), Ok(()), "{url}");
        }
    }

    #[test]
    fn alternate_ipv4_spellings_are_normalised_by_url_parsing() {
        let policy = EgressPolicy::new(hosts(&["127.0.0.1"]), None, false);
        for url in [
            "http://2130706433/",
            "http://0x7f.1/",
            "http://0177.0.0.1/",
            "http://127.1/",
            "http://0x7f000001/",
        ] {
            let err = check(&policy, url).unwrap_err();
            assert!(
                err.ends_with(
                    "denied: host `127.0.0.1` is a loopback address, which is blocked; set \
                     `allow_private_networks = true` in [network] to allow it"
                ),
                "{url}: {err}"
            );
        }
        let v6 = EgressPolicy::new(hosts(&["[::ffff:127.0.0.1]"]), None, false);
        let err = check(&v6, "http://[::ffff:127.0.0.1]/").unwrap_err();
        assert_eq!(
            err,
            "request to `http://[::ffff:7f00:1]/` denied: host `[::ffff:7f00:1]` is a loopback \
             address, which is blocked; set `allow_private_networks = true` in [network] to \
             allow it"
        );
    }

    #[test]
    fn metadata_is_refused_even_when_private_networks_are_allowed() {
        let policy = open_policy(true);
        for url in [
            "http://169.254.169.254/latest/meta-data/",
            "http://169.254.170.2/",
            "http://100.100.100.200/",
            "http://[fd00:ec2::254]/",
            "http://[::ffff:169.254.169.254]/",
            "http://[::ffff:a9fe:a9fe]/",
        ] {
            let err = check(&policy, url).unwrap_err();
            assert!(
                err.ends_with("is a cloud metadata endpoint, which is always refused"),
                "{url}: {err}"
            );
        }
        let named = EgressPolicy::new(
            hosts(&["metadata.google.internal", "metadata", "*.internal"]),
            None,
            true,
        );
        for url in [
            "http://metadata.google.internal/computeMetadata/v1/",
            "http://METADATA.google.internal./",
            "http://metadata/",
        ] {
            let err = check(&named, url).unwrap_err();
            assert!(
                err.ends_with("is a cloud metadata endpoint, which is always refused"),
                "{url}: {err}"
            );
        }
    }

    #[test]
    fn public_addresses_pass() {
        let policy = open_policy(false);
        for url in [
            "http://93.184.216.34/",
            "http://[2606:4700::1]/",
            "http://100.63.255.255/",
            "http://100.128.0.1/",
            "http://[2002:5db8:d822::1]/",
        ] {
            assert_eq!(check(&policy, url), Ok(()), "{url}");
        }
    }

    #[test]
    fn scheme_and_user_info_are_refused() {
        let policy = EgressPolicy::new(hosts(&["api.example.com:*"]), None, false);
        assert_eq!(
            check(&policy, "ftp://api.example.com/file"),
            Err(
                "request to `ftp://api.example.com/file` denied: scheme `ftp` is not allowed; \
                 only `http` and `https` are"
                    .to_owned()
            )
        );
        assert_eq!(
            check(&policy, "https://user:pw@api.example.com/"),
            Err(
                "request to `https://api.example.com/` denied: user info (`user:password@`) in \
                 the URL is not allowed; the host applies credentials from [auth]"
                    .to_owned()
            )
        );
    }

    #[test]
    fn declared_and_operator_lists_both_apply() {
        let declared = hosts(&["api.example.com", "uploads.example.com"]);
        let policy = EgressPolicy::new(declared.clone(), Some(hosts(&["api.example.com"])), false);
        assert_eq!(
            check(&policy, "https://api.example.com/v1?secret=1"),
            Ok(())
        );
        assert_eq!(
            check(&policy, "https://other.example.com/v1?secret=1"),
            Err(
                "request to `https://other.example.com/v1` denied: host `other.example.com` is \
                 not among the hosts the connector declares [api.example.com, \
                 uploads.example.com]; a connector may only reach hosts it declares"
                    .to_owned()
            )
        );
        assert_eq!(
            check(&policy, "https://uploads.example.com/"),
            Err(
                "request to `https://uploads.example.com/` denied: host `uploads.example.com` \
                 is not in the allowed hosts [api.example.com]; add it to `allowed_hosts` in \
                 [network] if the connector should reach it"
                    .to_owned()
            )
        );
        assert_eq!(
            check(&policy, "https://api.example.com:8443/"),
            Err("request to `https://api.example.com:8443/` denied: host \
                 `api.example.com:8443` is not among the hosts the connector declares \
                 [api.example.com, uploads.example.com]; a connector may only reach hosts it \
                 declares"
                .to_owned())
        );
        // An explicit empty operator list allows nothing.
        let closed = EgressPolicy::new(declared, Some(AllowedHosts::none()), false);
        assert!(check(&closed, "https://api.example.com/").is_err());
    }

    #[test]
    fn from_config_parses_the_operator_list() {
        let network: NetworkConfig =
            toml::from_str("allowed_hosts = [\"api.example.com\"]\nallow_private_networks = true")
                .unwrap();
        let policy = EgressPolicy::from_config(hosts(&["api.example.com"]), &network).unwrap();
        assert!(policy.allow_private_networks());
        let network: NetworkConfig = toml::from_str("allowed_hosts = [\"a/b\"]").unwrap();
        let err = EgressPolicy::from_config(hosts(&[]), &network).unwrap_err();
        assert!(matches!(err, Error::InvalidAllowedHost { .. }));
        let err = toml::from_str::<NetworkConfig>("allow_private = true").unwrap_err();
        assert!(
            err.to_string().contains("unknown field `allow_private`"),
            "{err}"
        );
    }

    #[test]
    fn resolved_denial_text() {
        let denial = Denial::ResolvedToBlocked {
            host: "localhost".to_owned(),
            addresses: vec![
                ("127.0.0.1".parse().unwrap(), BlockedClass::Loopback),
                ("::1".parse().unwrap(), BlockedClass::Loopback),
            ],
        };
        assert_eq!(
            denial.to_string(),
            "host `localhost` resolves only to blocked addresses (127.0.0.1 loopback, ::1 \
             loopback); set `allow_private_networks = true` in [network] to allow it"
        );
    }
}
