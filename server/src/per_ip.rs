//! Caps per client address, so that one client cannot take every slot.
//!
//! IPv6 addresses are counted by their /64 network: one machine commonly holds a whole /64,
//! so counting single addresses would cap nothing.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex, PoisonError};

/// How many slots each client address holds, for one kind of slot.
#[derive(Debug)]
pub struct PerIp {
    limit: usize,
    /// Only addresses holding at least one slot: as many entries as there are connections.
    held: Mutex<HashMap<IpAddr, usize>>,
}

/// One slot held by a client address, given back when dropped.
#[derive(Debug)]
pub struct IpSlot {
    owner: Arc<PerIp>,
    client: IpAddr,
}

impl PerIp {
    /// At most `limit` slots for each client address.
    pub fn new(limit: usize) -> Arc<PerIp> {
        Arc::new(PerIp {
            limit,
            held: Mutex::new(HashMap::new()),
        })
    }

    /// A slot for `addr`, or `None` when that client already holds the limit.
    pub fn try_acquire(self: &Arc<Self>, addr: IpAddr) -> Option<IpSlot> {
        let client = client_of(addr);
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        let count = held.entry(client).or_insert(0);
        if *count >= self.limit {
            if *count == 0 {
                held.remove(&client);
            }
            return None;
        }
        *count += 1;
        Some(IpSlot {
            owner: self.clone(),
            client,
        })
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut held = self
            .owner
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = held.get_mut(&self.client) {
            *count -= 1;
            if *count == 0 {
                held.remove(&self.client);
            }
        }
    }
}

/// Who a connection counts against: an IPv4 address (also when it arrives IPv4-mapped), or
/// an IPv6 address's /64 network.
fn client_of(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let network = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(Ipv6Addr::from(network))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn each_address_gets_its_own_limit_and_slots_come_back() {
        let caps = PerIp::new(2);
        let a1 = caps.try_acquire(ip("10.0.0.1"));
        let a2 = caps.try_acquire(ip("10.0.0.1"));
        assert!(a1.is_some() && a2.is_some());
        assert!(caps.try_acquire(ip("10.0.0.1")).is_none());
        assert!(caps.try_acquire(ip("10.0.0.2")).is_some());
        drop(a1);
        assert!(caps.try_acquire(ip("10.0.0.1")).is_some());
        drop(a2);
        assert!(
            caps.held
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .is_empty()
        );
    }

    #[test]
    fn an_ipv6_network_counts_as_one_client_and_mapped_ipv4_as_its_address() {
        let caps = PerIp::new(1);
        let _first = caps.try_acquire(ip("2001:db8:1:2::1"));
        assert!(caps.try_acquire(ip("2001:db8:1:2:ffff::9")).is_none());
        assert!(caps.try_acquire(ip("2001:db8:1:3::1")).is_some());
        let _v4 = caps.try_acquire(ip("192.0.2.7"));
        assert!(caps.try_acquire(ip("::ffff:192.0.2.7")).is_none());
    }

    #[test]
    fn a_limit_of_zero_admits_no_one_and_keeps_no_entry() {
        let caps = PerIp::new(0);
        assert!(caps.try_acquire(ip("10.0.0.1")).is_none());
        assert!(
            caps.held
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .is_empty()
        );
    }
}
