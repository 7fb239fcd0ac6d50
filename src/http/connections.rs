//! A cap on the connections one client network holds open at once, so that a few hosts opening many slow
//! connections (headers or a body never finished) cannot take every file descriptor of the server. Each
//! accepted connection takes a slot for its network; past the cap the connection is shut at once. Trusted
//! proxies, which carry everyone's traffic, are not capped.

use std::any::Any;
use std::collections::HashMap;
use std::net::{IpAddr, Shutdown};
use std::sync::{Arc, Mutex};

use actix_web::dev::Extensions;
use ipnet::IpNet;

use crate::domain::network::{ClientNet, is_trusted_peer};

/// Connections one client network may hold open at once; browsers open about six per host, so this
/// leaves room for a large office behind one address.
pub const PER_NETWORK: usize = 256;

pub struct ConnectionLimiter {
    per_network: usize,
    trusted: Vec<IpNet>,
    open: Mutex<HashMap<ClientNet, usize>>,
}

/// A connection's place under the cap, given back when the connection closes.
struct Slot {
    limiter: Arc<ConnectionLimiter>,
    net: ClientNet,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.limiter.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.net) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.net);
            }
        }
    }
}

impl ConnectionLimiter {
    pub fn new(per_network: usize, trusted: Vec<IpNet>) -> Arc<ConnectionLimiter> {
        Arc::new(ConnectionLimiter {
            per_network,
            trusted,
            open: Mutex::new(HashMap::new()),
        })
    }

    fn admit(self: &Arc<Self>, peer: IpAddr) -> Result<Option<Slot>, ()> {
        if is_trusted_peer(peer, &self.trusted) {
            return Ok(None);
        }
        let net = ClientNet::from_addr(peer);
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(net).or_insert(0);
        if *n >= self.per_network {
            return Err(());
        }
        *n += 1;
        Ok(Some(Slot {
            limiter: self.clone(),
            net,
        }))
    }

    /// The callback for `HttpServer::on_connect`: the slot lives in the connection's extensions and is
    /// dropped with the connection; a connection over the cap is shut down before a byte is read.
    pub fn on_connect(
        self: &Arc<Self>,
    ) -> impl Fn(&dyn Any, &mut Extensions) + Send + Sync + 'static {
        let limiter = self.clone();
        move |io, extensions| {
            let Some(stream) = io.downcast_ref::<actix_web::rt::net::TcpStream>() else {
                return;
            };
            let Ok(peer) = stream.peer_addr() else {
                return;
            };
            match limiter.admit(peer.ip()) {
                Ok(Some(slot)) => {
                    extensions.insert(slot);
                }
                Ok(None) => {}
                Err(()) => {
                    let _ = socket2::SockRef::from(stream).shutdown(Shutdown::Both);
                }
            }
        }
    }

    /// Open connections of the network of `peer`.
    pub fn open_of(&self, peer: IpAddr) -> usize {
        let open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.get(&ClientNet::from_addr(peer)).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_capped_per_network_and_given_back() {
        let limiter = ConnectionLimiter::new(2, vec!["10.0.0.0/8".parse().unwrap()]);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.77".parse().unwrap();
        let first = limiter.admit(a).unwrap();
        let second = limiter.admit(b).unwrap();
        assert!(limiter.admit(a).is_err(), "a third from the same /24");
        assert!(limiter.admit("198.51.100.1".parse().unwrap()).is_ok());
        assert!(
            (0..10).all(|_| limiter.admit("10.1.2.3".parse().unwrap()).is_ok()),
            "trusted proxies are not capped"
        );
        drop(first);
        assert_eq!(limiter.open_of(a), 1);
        assert!(limiter.admit(a).is_ok());
        drop(second);
    }
}
