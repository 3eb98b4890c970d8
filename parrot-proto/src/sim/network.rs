//! The in-memory network and virtual clock.

use crate::endpoint::SplitMix64;
use crate::{Endpoint, Event, Transport};
use bytes::Bytes;
use rand_core::RngCore;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// A predicate that drops the datagrams it returns `true` for.
type DropFilter = Box<dyn FnMut(&[u8]) -> bool>;

/// Impairments of every link.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinkConfig {
    /// Probability a datagram is lost, 0.0-1.0.
    pub loss: f64,
    /// Probability a datagram is delivered twice.
    pub duplicate: f64,
    /// Minimum one-way delay.
    pub min_delay: Duration,
    /// Maximum one-way delay; delays are uniform in between, so datagrams reorder.
    pub max_delay: Duration,
}

impl Default for LinkConfig {
    fn default() -> Self {
        LinkConfig {
            loss: 0.0,
            duplicate: 0.0,
            min_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(10),
        }
    }
}

/// An endpoint's index in the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NodeId(pub usize);

struct Node {
    addr: SocketAddr,
    endpoint: Endpoint,
    events: Vec<Event>,
}

/// Endpoints, links and a virtual clock.
pub struct Network {
    now: Instant,
    rng: SplitMix64,
    link: LinkConfig,
    nodes: Vec<Node>,
    by_addr: HashMap<SocketAddr, Vec<usize>>,
    in_flight: BinaryHeap<Reverse<(Instant, u64, usize)>>,
    packets: HashMap<u64, (SocketAddr, SocketAddr, Bytes)>,
    seq: u64,
    delivered: u64,
    dropped: u64,
    filter: Option<DropFilter>,
}

impl std::fmt::Debug for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Network")
            .field("nodes", &self.nodes.len())
            .field("in_flight", &self.in_flight.len())
            .finish()
    }
}

impl Network {
    /// A network starting at `start` whose impairments are drawn from `seed`.
    pub fn new(start: Instant, seed: u64, link: LinkConfig) -> Self {
        Network {
            now: start,
            rng: SplitMix64(seed ^ 0x5EED_0000_0000_0001),
            link,
            nodes: Vec::new(),
            by_addr: HashMap::new(),
            in_flight: BinaryHeap::new(),
            packets: HashMap::new(),
            seq: 0,
            delivered: 0,
            dropped: 0,
            filter: None,
        }
    }

    /// Installs a filter that drops every datagram for which it returns `true` (to lose "the
    /// first 200" or "every ACK" on purpose), on top of the random impairments.
    pub fn set_filter(&mut self, filter: impl FnMut(&[u8]) -> bool + 'static) {
        self.filter = Some(Box::new(filter));
    }

    /// Adds an endpoint reachable at `addr` (UDP).
    pub fn add(&mut self, addr: SocketAddr, endpoint: Endpoint) -> NodeId {
        self.nodes.push(Node {
            addr,
            endpoint,
            events: Vec::new(),
        });
        let i = self.nodes.len() - 1;
        self.by_addr.entry(addr).or_default().push(i);
        NodeId(i)
    }

    /// Makes datagrams sent to `addr` reach `node` as well (a forking proxy in one line: an
    /// INVITE sent to `addr` reaches every node listed for it).
    pub fn fork(&mut self, addr: SocketAddr, node: NodeId) {
        self.by_addr.entry(addr).or_default().push(node.0);
    }

    /// The virtual time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Replaces the link impairments (e.g. to heal the network).
    pub fn set_link(&mut self, link: LinkConfig) {
        self.link = link;
    }

    /// An endpoint, for commands.
    pub fn endpoint(&mut self, node: NodeId) -> &mut Endpoint {
        &mut self.nodes[node.0].endpoint
    }

    /// An endpoint, read-only.
    pub fn endpoint_ref(&self, node: NodeId) -> &Endpoint {
        &self.nodes[node.0].endpoint
    }

    /// The events a node has produced so far (drained from the endpoint).
    pub fn events(&self, node: NodeId) -> &[Event] {
        &self.nodes[node.0].events
    }

    /// Takes the events a node has produced so far.
    pub fn take_events(&mut self, node: NodeId) -> Vec<Event> {
        std::mem::take(&mut self.nodes[node.0].events)
    }

    /// Datagrams delivered and dropped so far.
    pub fn stats(&self) -> (u64, u64) {
        (self.delivered, self.dropped)
    }

    fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }

    fn delay(&mut self) -> Duration {
        let span = self.link.max_delay.saturating_sub(self.link.min_delay);
        let ns = span.as_nanos() as u64;
        let extra = if ns == 0 {
            0
        } else {
            self.rng.next_u64() % (ns + 1)
        };
        self.link.min_delay + Duration::from_nanos(extra)
    }

    /// Drains every endpoint's outputs onto the network (the drain rule).
    pub fn drain(&mut self) {
        for i in 0..self.nodes.len() {
            while let Some(e) = self.nodes[i].endpoint.poll_event() {
                self.nodes[i].events.push(e);
            }
            while let Some(t) = self.nodes[i].endpoint.poll_transmit() {
                let src = self.nodes[i].addr;
                let filtered = self.filter.as_mut().is_some_and(|f| f(&t.payload));
                let copies = if filtered || self.chance(self.link.loss) {
                    self.dropped += 1;
                    0
                } else if self.chance(self.link.duplicate) {
                    2
                } else {
                    1
                };
                for _ in 0..copies {
                    let at = self.now + self.delay();
                    self.seq += 1;
                    self.packets
                        .insert(self.seq, (src, t.dst, t.payload.clone()));
                    self.in_flight.push(Reverse((at, self.seq, i)));
                }
            }
        }
    }

    /// The earliest thing that will happen: a delivery or an endpoint deadline.
    pub fn next_wakeup(&self) -> Option<Instant> {
        let p = self.in_flight.peek().map(|Reverse((at, _, _))| *at);
        let t = self
            .nodes
            .iter()
            .filter_map(|n| n.endpoint.poll_timeout())
            .min();
        [p, t].into_iter().flatten().min()
    }

    /// Advances to the next wake-up and processes everything due then. Returns `false` when
    /// nothing is left to happen.
    pub fn step(&mut self) -> bool {
        self.drain();
        let Some(at) = self.next_wakeup() else {
            return false;
        };
        self.now = self.now.max(at);
        while let Some(Reverse((at, seq, _))) = self.in_flight.peek().copied() {
            if at > self.now {
                break;
            }
            self.in_flight.pop();
            let Some((src, dst, payload)) = self.packets.remove(&seq) else {
                continue;
            };
            let targets = self.by_addr.get(&dst).cloned().unwrap_or_default();
            for i in targets {
                self.delivered += 1;
                let local = self.nodes[i].addr;
                self.nodes[i].endpoint.handle_datagram(
                    self.now,
                    local,
                    src,
                    Transport::Udp,
                    payload.clone(),
                );
            }
            self.drain();
        }
        for n in &mut self.nodes {
            if n.endpoint.poll_timeout().is_some_and(|t| t <= self.now) {
                n.endpoint.handle_timeout(self.now);
            }
        }
        self.drain();
        true
    }

    /// Runs until `deadline` (virtual) or until nothing is left to happen.
    pub fn run_until(&mut self, deadline: Instant) {
        loop {
            self.drain();
            match self.next_wakeup() {
                Some(at) if at <= deadline => {
                    self.step();
                }
                _ => {
                    self.now = self.now.max(deadline);
                    return;
                }
            }
        }
    }

    /// Runs until no packet is in flight and no endpoint has a deadline, or `limit` of
    /// virtual time passed. Returns whether it went idle.
    pub fn run_until_idle(&mut self, limit: Duration) -> bool {
        let end = self.now + limit;
        loop {
            self.drain();
            match self.next_wakeup() {
                None => return true,
                Some(at) if at > end => return false,
                Some(_) => {
                    self.step();
                }
            }
        }
    }

    /// Whether every endpoint's tables are empty.
    pub fn all_idle(&self) -> bool {
        self.nodes.iter().all(|n| n.endpoint.is_idle())
    }
}
