//! The endpoint's timer queue (see [`super::Endpoint::handle_timeout`]): one entry per
//! deadline an entity queued, 32 bytes each. An entry names its entity by kind and number; a
//! client transaction, keyed by its branch (§17.1.3), is named by a slot of [`ClientSlots`] so
//! the entry does not carry the branch.
//!
//! Most deadlines are "now plus a constant" (T1 for a 2xx retransmission, §13.3.1.4; 64*T1
//! for Timers B, F and H), so the entries of one constant arrive in deadline order. They are
//! kept in a few first-in first-out lanes, each in deadline order: a push appends to the lane
//! whose last deadline is the latest one not after it, and a pop takes the earliest lane
//! front. Pushing and popping cost a handful of comparisons instead of the log2(n) moves of a
//! heap that holds the thousands of entries of a busy server (one 2xx retransmission deadline
//! per answered call, most of them stale after the ACK). An entry that fits no lane goes to a
//! binary heap beside them; the order out is the same either way.

use super::{DialogId, RegistrationId};
use crate::transaction::ClientKey;
use std::collections::{BinaryHeap, VecDeque};
use std::time::Instant;

/// What a timer-heap entry points at, resolved (see [`super::Endpoint::handle_timeout`]).
#[derive(Debug, Clone)]
pub(crate) enum TimerRef {
    Server(u64),
    Client(ClientKey),
    Call(DialogId),
    Registration(RegistrationId),
}

/// The kind of entity an entry names, kept in the low two bits of its sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimerKind {
    /// A server transaction, by id.
    Server = 0,
    /// A client transaction, by its [`ClientSlots`] handle.
    Client = 1,
    /// A call, by [`DialogId`].
    Call = 2,
    /// A registration, by [`RegistrationId`].
    Registration = 3,
}

/// One deadline in the heap. Entries are pushed whenever an entity's deadline may have changed
/// and are checked against the entity when they come due, so stale ones are skipped:
/// `poll_timeout` is O(1) and `handle_timeout` touches only what is due.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TimerEntry {
    pub(crate) at: Instant,
    /// The push order (ties between equal deadlines go first-pushed first) shifted left by
    /// two, the [`TimerKind`] in the low bits.
    tagged_seq: u64,
    id: u64,
}

impl TimerEntry {
    pub(crate) fn kind(&self) -> TimerKind {
        match self.tagged_seq & 3 {
            0 => TimerKind::Server,
            1 => TimerKind::Client,
            2 => TimerKind::Call,
            _ => TimerKind::Registration,
        }
    }

    pub(crate) fn id(&self) -> u64 {
        self.id
    }
}

impl PartialEq for TimerEntry {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.tagged_seq) == (o.at, o.tagged_seq)
    }
}
impl Eq for TimerEntry {}
impl PartialOrd for TimerEntry {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for TimerEntry {
    #[inline]
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        // Reversed: the std heap is a max-heap and the earliest deadline must come first.
        // Sequence numbers are unique, so the kind bits never decide.
        (o.at, o.tagged_seq).cmp(&(self.at, self.tagged_seq))
    }
}

/// Lanes of entries in deadline order (see the module documentation): enough for the
/// distinct constant delays a server queues at once.
const LANES: usize = 4;

/// The deadlines of the endpoint's entities, earliest first.
#[derive(Debug, Default)]
pub(crate) struct TimerHeap {
    /// Each in (deadline, push order) order.
    lanes: [VecDeque<TimerEntry>; LANES],
    /// The entries that fit no lane.
    heap: BinaryHeap<TimerEntry>,
    seq: u64,
}

impl TimerHeap {
    /// Queues deadline `at` for entity `id` of `kind`.
    pub(crate) fn push(&mut self, at: Instant, kind: TimerKind, id: u64) {
        self.seq += 1;
        let e = TimerEntry {
            at,
            tagged_seq: (self.seq << 2) | kind as u64,
            id,
        };
        // The lane whose last deadline is the latest not after `at` (an entry pushed later
        // with the same deadline still comes out after it), else an empty lane.
        let mut fit: Option<(usize, Instant)> = None;
        let mut empty = None;
        for (i, lane) in self.lanes.iter().enumerate() {
            match lane.back() {
                Some(b) if b.at <= at && fit.is_none_or(|(_, f)| b.at > f) => {
                    fit = Some((i, b.at));
                }
                None if empty.is_none() => empty = Some(i),
                _ => {}
            }
        }
        match fit.map(|(i, _)| i).or(empty) {
            Some(i) => self.lanes[i].push_back(e),
            None => self.heap.push(e),
        }
    }

    /// The earliest entry: `Some(lane)`, or `None` for the heap's top; with it.
    fn earliest(&self) -> Option<(Option<usize>, &TimerEntry)> {
        let mut best: Option<(Option<usize>, &TimerEntry)> = self.heap.peek().map(|e| (None, e));
        for (i, lane) in self.lanes.iter().enumerate() {
            if let Some(f) = lane.front() {
                // `Ord` is reversed (for the std max-heap): greater is earlier.
                if best.is_none_or(|(_, b)| f > b) {
                    best = Some((Some(i), f));
                }
            }
        }
        best
    }

    /// The earliest queued deadline.
    pub(crate) fn next_at(&self) -> Option<Instant> {
        self.earliest().map(|(_, e)| e.at)
    }

    /// Takes the earliest entry if it is due at `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<TimerEntry> {
        let (at, lane) = self.earliest().map(|(l, e)| (e.at, l))?;
        if at > now {
            return None;
        }
        match lane {
            Some(i) => self.lanes[i].pop_front(),
            None => self.heap.pop(),
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.heap.len() + self.lanes.iter().map(VecDeque::len).sum::<usize>()
    }
}

/// The keys of live client transactions by slot, so a heap entry names one with a number
/// (slot in the low 32 bits, the slot's generation in the high 32). A freed slot's generation
/// moves on, so an entry left behind by an ended transaction finds nothing even after the slot
/// is reused.
#[derive(Debug, Default)]
pub(crate) struct ClientSlots {
    slots: Vec<(u32, Option<ClientKey>)>,
    free: Vec<u32>,
}

impl ClientSlots {
    /// A slot for `key`; its handle.
    pub(crate) fn insert(&mut self, key: ClientKey) -> u64 {
        match self.free.pop() {
            Some(i) => {
                let s = &mut self.slots[i as usize];
                s.1 = Some(key);
                (u64::from(s.0) << 32) | u64::from(i)
            }
            None => {
                let i = self.slots.len() as u32;
                self.slots.push((0, Some(key)));
                u64::from(i)
            }
        }
    }

    fn split(handle: u64) -> (usize, u32) {
        ((handle & 0xFFFF_FFFF) as usize, (handle >> 32) as u32)
    }

    /// The key in slot `handle`, unless the slot was freed since.
    pub(crate) fn get(&self, handle: u64) -> Option<&ClientKey> {
        let (i, generation) = Self::split(handle);
        match self.slots.get(i) {
            Some((g, Some(k))) if *g == generation => Some(k),
            _ => None,
        }
    }

    /// Frees slot `handle` (nothing if it was already freed).
    pub(crate) fn remove(&mut self, handle: u64) {
        let (i, generation) = Self::split(handle);
        if let Some(s) = self.slots.get_mut(i) {
            if s.0 == generation && s.1.is_some() {
                s.1 = None;
                s.0 = s.0.wrapping_add(1);
                self.free.push(i as u32);
            }
        }
    }

    /// Whether no slot is in use.
    pub(crate) fn is_empty(&self) -> bool {
        self.free.len() == self.slots.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Method;
    use std::time::Duration;

    fn drain(h: &mut TimerHeap, now: Instant) -> Vec<(TimerKind, u64)> {
        std::iter::from_fn(|| h.pop_due(now))
            .map(|e| (e.kind(), e.id()))
            .collect()
    }

    #[test]
    fn timer_entries_are_32_bytes() {
        assert_eq!(std::mem::size_of::<TimerEntry>(), 32);
    }

    #[test]
    fn timer_heap_pops_earliest_first_and_equal_deadlines_in_push_order() {
        let t0 = Instant::now();
        let mut h = TimerHeap::default();
        h.push(t0 + Duration::from_secs(3), TimerKind::Call, 7);
        h.push(t0 + Duration::from_secs(1), TimerKind::Registration, 9);
        h.push(t0 + Duration::from_secs(2), TimerKind::Client, 1);
        h.push(t0 + Duration::from_secs(2), TimerKind::Server, 5);
        h.push(t0 + Duration::from_secs(2), TimerKind::Client, 3);
        assert_eq!(h.next_at(), Some(t0 + Duration::from_secs(1)));
        assert_eq!(
            drain(&mut h, t0 + Duration::from_secs(3)),
            vec![
                (TimerKind::Registration, 9),
                (TimerKind::Client, 1),
                (TimerKind::Server, 5),
                (TimerKind::Client, 3),
                (TimerKind::Call, 7),
            ]
        );
        assert_eq!(h.next_at(), None);
    }

    #[test]
    fn more_delay_classes_than_lanes_overflow_to_the_heap_in_order() {
        let t0 = Instant::now();
        let mut h = TimerHeap::default();
        // Six constant delays pushed in turn, the clock moving on: six ordered runs, two of
        // them in the heap.
        let mut want = Vec::new();
        for step in 0..20u64 {
            for d in 0..6u64 {
                let at = t0 + Duration::from_millis(step * 10 + d * 1000);
                h.push(at, TimerKind::Call, step * 6 + d);
                want.push((at, step * 6 + d));
            }
        }
        assert!(!h.heap.is_empty());
        want.sort();
        let got: Vec<_> = std::iter::from_fn(|| h.pop_due(t0 + Duration::from_secs(60)))
            .map(|e| (e.at, e.id()))
            .collect();
        assert_eq!(got, want);
    }

    proptest::proptest! {
        /// The lanes and the heap give out entries in exactly the order one binary heap would:
        /// by deadline, equal deadlines first-pushed first.
        #[test]
        fn timer_queue_pops_in_the_same_order_as_one_heap(
            ops in proptest::collection::vec((0u8..4, 0u64..3000, 0u64..50), 0..300)
        ) {
            let t0 = Instant::now();
            let mut h = TimerHeap::default();
            let mut reference = BinaryHeap::new();
            let mut now = t0;
            let mut seq = 0u64;
            for (op, delay_ms, advance_ms) in ops {
                if op < 3 {
                    // A few constant delays and some arbitrary ones.
                    let d = match op { 0 => 500, 1 => 32_000, _ => delay_ms };
                    let at = now + Duration::from_millis(d);
                    h.push(at, TimerKind::Server, seq);
                    reference.push(std::cmp::Reverse((at, seq)));
                    seq += 1;
                } else {
                    now += Duration::from_millis(advance_ms * 100);
                    loop {
                        let want = match reference.peek() {
                            Some(std::cmp::Reverse((at, id))) if *at <= now => Some((*at, *id)),
                            _ => None,
                        };
                        let got = h.pop_due(now).map(|e| (e.at, e.id()));
                        proptest::prop_assert_eq!(got, want);
                        if want.is_none() {
                            break;
                        }
                        reference.pop();
                    }
                }
                proptest::prop_assert_eq!(
                    h.next_at(),
                    reference.peek().map(|std::cmp::Reverse((at, _))| *at)
                );
            }
        }
    }

    #[test]
    fn timer_heap_pops_nothing_before_its_deadline() {
        let t0 = Instant::now();
        let mut h = TimerHeap::default();
        h.push(t0 + Duration::from_millis(500), TimerKind::Server, u64::MAX);
        assert!(h.pop_due(t0).is_none());
        assert!(h.pop_due(t0 + Duration::from_millis(499)).is_none());
        assert_eq!(h.len(), 1);
        let e = h.pop_due(t0 + Duration::from_millis(500)).unwrap();
        assert_eq!((e.kind(), e.id()), (TimerKind::Server, u64::MAX));
        assert_eq!(h.len(), 0);
    }

    #[test]
    fn client_slot_handles_go_stale_when_freed_even_after_reuse() {
        let mut s = ClientSlots::default();
        let a = s.insert(ClientKey::new("z9hG4bKa", Method::Invite));
        let b = s.insert(ClientKey::new("z9hG4bKb", Method::Bye));
        assert!(s.get(a).is_some_and(|k| k.branch() == b"z9hG4bKa"));
        s.remove(a);
        assert!(s.get(a).is_none());
        // The freed slot is reused under a new generation: the old handle still finds nothing.
        let c = s.insert(ClientKey::new("z9hG4bKc", Method::Invite));
        assert_eq!(c & 0xFFFF_FFFF, a & 0xFFFF_FFFF);
        assert_ne!(c, a);
        assert!(s.get(a).is_none());
        assert!(s.get(c).is_some_and(|k| k.branch() == b"z9hG4bKc"));
        // Freeing a stale handle leaves the slot's new owner alone.
        s.remove(a);
        assert!(s.get(c).is_some());
        assert!(!s.is_empty());
        s.remove(b);
        s.remove(c);
        assert!(s.is_empty());
        assert!(s.get(b).is_none());
    }
}
