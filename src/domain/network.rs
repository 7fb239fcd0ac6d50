//! Client networks: the address of a request is cut to its network (IPv4 /24, IPv6 /48, an IPv4-mapped
//! IPv6 address counted as IPv4) before anything else sees it (privacy invariant 1), and forwarding headers
//! are believed only from trusted proxies, and only the one they write (invariant 4).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

/// A client's network: the only form of a client address the rest of Assent ever handles. It also says
/// whether the address was a loopback one (`::1` is cut to `::/48`, which no longer shows it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientNet(IpAddr, bool);

impl ClientNet {
    /// Cuts an address to its network. This is the one place a full address is turned into something
    /// that may be used.
    pub fn from_addr(addr: IpAddr) -> ClientNet {
        let loopback = addr.is_loopback() || addr.to_canonical().is_loopback();
        let addr = match addr {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6(v6),
            },
            v4 => v4,
        };
        ClientNet(
            match addr {
                IpAddr::V4(v4) => {
                    let [a, b, c, _] = v4.octets();
                    IpAddr::V4(Ipv4Addr::new(a, b, c, 0))
                }
                IpAddr::V6(v6) => {
                    let s = v6.segments();
                    IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], 0, 0, 0, 0, 0))
                }
            },
            loopback,
        )
    }

    /// Whether the client is on this machine's loopback interface (who may read `/metrics` by default).
    pub fn is_loopback(&self) -> bool {
        self.1
    }

    /// The network address (host bits zero), used for geolocation and rate limiting.
    pub fn addr(&self) -> IpAddr {
        self.0
    }
}

impl std::fmt::Display for ClientNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            IpAddr::V4(a) => write!(f, "{a}/24"),
            IpAddr::V6(a) => write!(f, "{a}/48"),
        }
    }
}

fn is_trusted(addr: IpAddr, trusted: &[IpNet]) -> bool {
    let addr = match addr {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    };
    trusted.iter().any(|n| n.contains(&addr))
}

/// Parses one element of `X-Forwarded-For` or a `for=` value of `Forwarded` (RFC 7239): a bare address,
/// `"[v6]:port"`, `v4:port`, possibly quoted.
fn parse_node(raw: &str) -> Option<IpAddr> {
    let s = raw.trim().trim_matches('"');
    if let Ok(a) = s.parse::<IpAddr>() {
        return Some(a);
    }
    if let Some(rest) = s.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok();
    }
    if let Some((host, port)) = s.rsplit_once(':')
        && port.chars().all(|c| c.is_ascii_digit())
    {
        return host.parse().ok();
    }
    None
}

fn forwarded_chain(forwarded: &str) -> Vec<Option<IpAddr>> {
    forwarded
        .split(',')
        .map(|element| {
            element.split(';').find_map(|pair| {
                let (k, v) = pair.split_once('=')?;
                k.trim()
                    .eq_ignore_ascii_case("for")
                    .then(|| parse_node(v))?
            })
        })
        .collect()
}

/// The forwarding header that the trusted proxies write (a setting): the only one believed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ForwardedHeader {
    #[default]
    XForwardedFor,
    /// RFC 7239 `Forwarded`.
    Forwarded,
}

impl ForwardedHeader {
    pub fn parse(s: &str) -> Option<ForwardedHeader> {
        match s.trim().to_ascii_lowercase().as_str() {
            "x-forwarded-for" => Some(ForwardedHeader::XForwardedFor),
            "forwarded" => Some(ForwardedHeader::Forwarded),
            _ => None,
        }
    }

    /// The header's name, lower case.
    pub fn name(self) -> &'static str {
        match self {
            ForwardedHeader::XForwardedFor => "x-forwarded-for",
            ForwardedHeader::Forwarded => "forwarded",
        }
    }
}

/// The client's network for a request that came from `peer`, given the value of the configured forwarding
/// header (`kind`). Only when the peer is a trusted proxy is the header read: its chain is walked from the
/// right and the first address that is not itself a trusted proxy is the client (invariant 4). The other
/// header, which a client can send through the proxy untouched, is never looked at. Malformed values fall
/// back to the last address believed.
pub fn client_net(
    peer: IpAddr,
    header: Option<&str>,
    kind: ForwardedHeader,
    trusted: &[IpNet],
) -> ClientNet {
    if !is_trusted(peer, trusted) {
        return ClientNet::from_addr(peer);
    }
    let chain: Vec<Option<IpAddr>> = match header.filter(|h| !h.trim().is_empty()) {
        None => Vec::new(),
        Some(h) => match kind {
            ForwardedHeader::Forwarded => forwarded_chain(h),
            ForwardedHeader::XForwardedFor => h.split(',').map(parse_node).collect(),
        },
    };
    let mut client = peer;
    for hop in chain.iter().rev() {
        match hop {
            Some(a) => {
                client = *a;
                if !is_trusted(*a, trusted) {
                    break;
                }
            }
            // An unparseable hop (e.g. "unknown" or an obfuscated identifier) ends what can be believed.
            None => break,
        }
    }
    ClientNet::from_addr(client)
}

/// Whether `peer` is one of the trusted proxies.
pub fn is_trusted_peer(peer: IpAddr, trusted: &[IpNet]) -> bool {
    is_trusted(peer, trusted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn cuts_to_network() {
        assert_eq!(
            ClientNet::from_addr(ip("203.0.113.77")).addr(),
            ip("203.0.113.0")
        );
        assert_eq!(
            ClientNet::from_addr(ip("2001:db8:1234:5678::9")).addr(),
            ip("2001:db8:1234::")
        );
        assert_eq!(
            ClientNet::from_addr(ip("::ffff:198.51.100.23")).addr(),
            ip("198.51.100.0")
        );
        assert_eq!(
            ClientNet::from_addr(ip("203.0.113.77")).to_string(),
            "203.0.113.0/24"
        );
    }

    #[test]
    fn loopback_survives_the_cut() {
        for a in ["127.0.0.1", "::1", "::ffff:127.0.0.1"] {
            assert!(ClientNet::from_addr(ip(a)).is_loopback(), "{a}");
        }
        for a in ["::", "10.0.0.1", "::2", "192.0.2.1"] {
            assert!(!ClientNet::from_addr(ip(a)).is_loopback(), "{a}");
        }
        let trusted: Vec<IpNet> = vec!["127.0.0.1/32".parse().unwrap()];
        let via_proxy =
            |h| client_net(ip("127.0.0.1"), h, ForwardedHeader::XForwardedFor, &trusted);
        assert!(via_proxy(None).is_loopback(), "the proxy itself");
        assert!(
            !via_proxy(Some("203.0.113.9")).is_loopback(),
            "a client behind it"
        );
    }

    #[test]
    fn headers_ignored_from_untrusted_peer() {
        for kind in [ForwardedHeader::Forwarded, ForwardedHeader::XForwardedFor] {
            let n = client_net(ip("198.51.100.9"), Some("for=1.2.3.4"), kind, &[]);
            assert_eq!(n.addr(), ip("198.51.100.0"));
        }
    }

    #[test]
    fn trusted_proxy_chain() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let xff = ForwardedHeader::XForwardedFor;
        let n = client_net(
            ip("10.0.0.2"),
            Some("9.9.9.9, 1.2.3.4, 10.0.0.7"),
            xff,
            &trusted,
        );
        assert_eq!(n.addr(), ip("1.2.3.0"), "the right-most untrusted hop");
        let n = client_net(
            ip("10.0.0.2"),
            Some("for=\"[2001:db8:aa:bb::1]:4711\";proto=https"),
            ForwardedHeader::Forwarded,
            &trusted,
        );
        assert_eq!(n.addr(), ip("2001:db8:aa::"));
        let n = client_net(
            ip("10.0.0.2"),
            Some("for=unknown"),
            ForwardedHeader::Forwarded,
            &trusted,
        );
        assert_eq!(n.addr(), ip("10.0.0.0"));
        let n = client_net(ip("::ffff:10.0.0.2"), Some("1.2.3.4:5555"), xff, &trusted);
        assert_eq!(n.addr(), ip("1.2.3.0"));
    }

    #[test]
    fn header_names() {
        assert_eq!(
            ForwardedHeader::parse("X-Forwarded-For"),
            Some(ForwardedHeader::XForwardedFor)
        );
        assert_eq!(
            ForwardedHeader::parse("forwarded"),
            Some(ForwardedHeader::Forwarded)
        );
        assert_eq!(ForwardedHeader::parse("X-Real-IP"), None);
    }
}
