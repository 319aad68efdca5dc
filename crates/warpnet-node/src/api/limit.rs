//! Load protection for the API: caps on open connections, in all and per client, and a
//! per-client request rate (a token bucket). Each is answered 429 with `Retry-After`, so one
//! client's flood costs other clients neither connections nor requests.
//!
//! A client is an IP address (an IPv6 client by its /64, the block one host usually holds).
//! Behind a proxy every client is the proxy: raise the limits there, or let the proxy limit.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use crate::error::ApiError;
use crate::files::NodeFile;

/// Defaults of the `api_*` keys of `node.toml`.
pub const CONNECTIONS_MAX_DEFAULT: usize = 1024;
pub const CLIENT_CONNECTIONS_MAX_DEFAULT: usize = 256;
pub const CLIENT_REQUESTS_PER_SECOND_DEFAULT: u32 = 1000;
pub const CLIENT_BURST_DEFAULT: u32 = 2000;

/// Most clients whose request rates are remembered; past it, idle clients are forgotten first.
const CLIENTS_MAX: usize = 65_536;

/// The API's limits, from `node.toml`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub connections_max: usize,
    pub client_connections_max: usize,
    pub client_requests_per_second: u32,
    pub client_burst: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            connections_max: CONNECTIONS_MAX_DEFAULT,
            client_connections_max: CLIENT_CONNECTIONS_MAX_DEFAULT,
            client_requests_per_second: CLIENT_REQUESTS_PER_SECOND_DEFAULT,
            client_burst: CLIENT_BURST_DEFAULT,
        }
    }
}

impl Limits {
    /// The limits `node.toml` sets (zeros are refused when the file is loaded).
    pub fn of(node: &NodeFile) -> Self {
        let d = Self::default();
        Self {
            connections_max: node.api_connections_max.unwrap_or(d.connections_max).max(1),
            client_connections_max: node
                .api_client_connections_max
                .unwrap_or(d.client_connections_max)
                .max(1),
            client_requests_per_second: node
                .api_client_requests_per_second
                .unwrap_or(d.client_requests_per_second)
                .max(1),
            client_burst: node.api_client_burst.unwrap_or(d.client_burst).max(1),
        }
    }
}

/// Who a request comes from, for the limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ClientKey(IpAddr);

impl ClientKey {
    pub fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(_) => Self(ip),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self(IpAddr::V4(v4)),
                None => {
                    let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                    Self(IpAddr::V6(prefix.into()))
                }
            },
        }
    }
}

/// The maps below stay consistent whatever panics (each change is one step), so a poisoned
/// lock is taken over rather than failing every later request.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Open connections, in all and per client.
pub struct Gate {
    limits: Limits,
    open: Mutex<(usize, HashMap<ClientKey, usize>)>,
}

/// An admitted connection; dropping it frees its place.
pub struct Permit {
    gate: Arc<Gate>,
    client: ClientKey,
}

impl Gate {
    pub fn new(limits: &Limits) -> Self {
        Self { limits: *limits, open: Mutex::default() }
    }

    /// Admits a connection from `client`, or says which cap it is over.
    pub fn admit(self: &Arc<Self>, client: ClientKey) -> Result<Permit, ApiError> {
        let mut open = lock(&self.open);
        let mine = open.1.get(&client).copied().unwrap_or(0);
        if mine >= self.limits.client_connections_max {
            let scope = " from this client";
            return Err(ApiError::TooManyConnections { scope, retry_after_s: 1 });
        }
        if open.0 >= self.limits.connections_max {
            return Err(ApiError::TooManyConnections { scope: "", retry_after_s: 1 });
        }
        open.0 += 1;
        open.1.insert(client, mine + 1);
        Ok(Permit { gate: self.clone(), client })
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut open = lock(&self.gate.open);
        open.0 = open.0.saturating_sub(1);
        if let Some(n) = open.1.get_mut(&self.client) {
            *n -= 1;
            if *n == 0 {
                open.1.remove(&self.client);
            }
        }
    }
}

/// A client's tokens: one per request, refilled at the rate up to the burst.
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Requests per client over time.
pub struct RateLimiter {
    limits: Limits,
    buckets: Mutex<HashMap<ClientKey, Bucket>>,
}

impl RateLimiter {
    pub fn new(limits: &Limits) -> Self {
        Self { limits: *limits, buckets: Mutex::default() }
    }

    /// Takes a token for a request from `client`, or says when one will be there.
    pub fn check(&self, client: ClientKey) -> Result<(), ApiError> {
        self.check_at(client, Instant::now())
    }

    fn check_at(&self, client: ClientKey, now: Instant) -> Result<(), ApiError> {
        let rate = f64::from(self.limits.client_requests_per_second);
        let burst = f64::from(self.limits.client_burst);
        let mut buckets = lock(&self.buckets);
        if buckets.len() >= CLIENTS_MAX && !buckets.contains_key(&client) {
            // Forget the clients whose buckets have refilled: they are as if new.
            buckets.retain(|_, b| b.tokens + now.duration_since(b.at).as_secs_f64() * rate < burst);
            if buckets.len() >= CLIENTS_MAX {
                buckets.clear();
            }
        }
        let b = buckets.entry(client).or_insert(Bucket { tokens: burst, at: now });
        b.tokens = (b.tokens + now.duration_since(b.at).as_secs_f64() * rate).min(burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            return Ok(());
        }
        let wait_s = (1.0 - b.tokens) / rate;
        Err(ApiError::RateLimited {
            rate_per_second: self.limits.client_requests_per_second,
            burst: self.limits.client_burst,
            retry_after_s: (wait_s.ceil() as u64).max(1),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn limits(connections: usize, per_client: usize, rate: u32, burst: u32) -> Limits {
        Limits {
            connections_max: connections,
            client_connections_max: per_client,
            client_requests_per_second: rate,
            client_burst: burst,
        }
    }

    fn client(s: &str) -> ClientKey {
        ClientKey::of(s.parse().expect("an IP address"))
    }

    /// One client's burst is spent, then it gets 429 with a Retry-After; another client is
    /// untouched; tokens come back at the rate.
    #[test]
    fn a_client_over_its_rate_is_limited_and_others_are_not() {
        let r = RateLimiter::new(&limits(10, 10, 10, 5));
        let (a, b) = (client("10.0.0.1"), client("10.0.0.2"));
        let t0 = Instant::now();
        for _ in 0..5 {
            r.check_at(a, t0).expect("within the burst");
        }
        let e = r.check_at(a, t0).expect_err("burst spent");
        assert_eq!((e.status(), e.code(), e.retry_after_s()), (429, "rate_limited", Some(1)));
        r.check_at(b, t0).expect("another client has its own bucket");
        // 10 per second: one token after 100 ms, not before.
        assert!(r.check_at(a, t0 + Duration::from_millis(50)).is_err());
        r.check_at(a, t0 + Duration::from_millis(150)).expect("refilled");
    }

    /// Retry-After says when the next token comes, in whole seconds.
    #[test]
    fn retry_after_counts_until_the_next_token() {
        let r = RateLimiter::new(&limits(10, 10, 1, 1));
        let (a, t0) = (client("10.0.0.1"), Instant::now());
        r.check_at(a, t0).expect("first");
        let e = r.check_at(a, t0 + Duration::from_millis(100)).expect_err("limited");
        assert_eq!(e.retry_after_s(), Some(1));
    }

    /// The per-client connection cap keeps one client from taking every connection.
    #[test]
    fn connection_caps_hold_in_all_and_per_client() {
        let gate = Arc::new(Gate::new(&limits(3, 2, 10, 10)));
        let (a, b, c) = (client("10.0.0.1"), client("10.0.0.2"), client("10.0.0.3"));
        let a1 = gate.admit(a).expect("a 1");
        let _a2 = gate.admit(a).expect("a 2");
        let e = gate.admit(a).err().expect("a's cap");
        assert_eq!((e.status(), e.code()), (429, "too_many_connections"));
        let _b1 = gate.admit(b).expect("b has its own share");
        assert!(gate.admit(c).is_err(), "the total cap");
        drop(a1);
        gate.admit(c).expect("a closed connection frees its place");
    }

    /// IPv6 clients count by /64; IPv4-mapped addresses as their IPv4 address.
    #[test]
    fn ipv6_clients_count_by_their_64_prefix() {
        assert_eq!(client("2001:db8::1"), client("2001:db8::ffff:1"));
        assert_ne!(client("2001:db8::1"), client("2001:db8:0:1::1"));
        assert_eq!(client("::ffff:10.0.0.1"), client("10.0.0.1"));
    }
}
