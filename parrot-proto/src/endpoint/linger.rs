//! Lingering server transactions, held in the deadline queues that time them.
//!
//! Every transaction of one [`Linger`] kind lingers as long from when it got there (Timer J,
//! L or I), so each kind's queue is in deadline order as it is filled: the queue is the store.
//! An entry is named by its kind and a sequence number that only grows, so finding it is
//! arithmetic (the sequence number minus the queue's first) instead of a lookup in a table of
//! hundreds of thousands of entries, which stalled a busy server each time it doubled. The
//! queue grows by fixed blocks, never moving what it holds; blocks emptied at the front are
//! kept for the back. Entries that end before their deadline (transport error, the
//! `max_lingering` cap) leave an empty slot. An entry whose deadline comes before one queued
//! earlier (a reliable transport's zero Timer J or I among unreliable ones, or a clock that
//! went back) is also put in a small heap that ends it on time.

use super::{Linger, LingeringTx};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::time::Instant;

/// Slots per block.
const BLOCK: usize = 1024;

/// Blocks emptied at the front kept for the back.
const SPARE_BLOCKS: usize = 2;

/// Set in the handle of a lingering transaction, never in a transaction id.
const FLAG: u64 = 1 << 63;
const KIND_SHIFT: u32 = 61;
const SEQ_MASK: u64 = (1 << KIND_SHIFT) - 1;

/// The handle of lingering entry `seq` of queue `kind`, in the indexes in place of its id.
pub(crate) fn handle(kind: Linger, seq: u64) -> u64 {
    handle_of(kind as usize, seq)
}

/// The handle of entry `seq` of the queue at index `kind`.
pub(crate) fn handle_of(kind: usize, seq: u64) -> u64 {
    FLAG | (kind as u64) << KIND_SHIFT | seq
}

/// The queue and sequence number of a lingering handle; `None` for a transaction id.
pub(crate) fn unhandle(h: u64) -> Option<(usize, u64)> {
    if h & FLAG == 0 {
        return None;
    }
    Some((((h >> KIND_SHIFT) & 3) as usize, h & SEQ_MASK))
}

type Block = Box<[Option<LingeringTx>]>;

/// The lingering transactions of one kind, in the order they started lingering.
#[derive(Default)]
pub(crate) struct LingerQueue {
    blocks: VecDeque<Block>,
    /// The sequence number of the first slot of `blocks[0]`.
    base: u64,
    /// The oldest entry still held (every slot before it is empty).
    head: u64,
    /// The sequence number of the next entry.
    tail: u64,
    len: usize,
    /// The latest deadline queued so far.
    latest: Option<Instant>,
    /// Entries due before one queued ahead of them, by deadline (some may be gone already).
    early: BinaryHeap<Reverse<(Instant, u64)>>,
    spare: Vec<Block>,
}

impl LingerQueue {
    /// Entries held.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The sequence number the next [`LingerQueue::push`] gives.
    pub(crate) fn next_seq(&self) -> u64 {
        self.tail
    }

    fn slot(&self, seq: u64) -> &Option<LingeringTx> {
        let off = (seq - self.base) as usize;
        &self.blocks[off / BLOCK][off % BLOCK]
    }

    fn slot_mut(&mut self, seq: u64) -> &mut Option<LingeringTx> {
        let off = (seq - self.base) as usize;
        &mut self.blocks[off / BLOCK][off % BLOCK]
    }

    /// Queues `tx` as entry [`LingerQueue::next_seq`].
    #[inline]
    pub(crate) fn push(&mut self, tx: LingeringTx) -> u64 {
        let seq = self.tail;
        if (seq - self.base) as usize == self.blocks.len() * BLOCK {
            let block = self.spare.pop().unwrap_or_else(|| {
                std::iter::repeat_with(|| None)
                    .take(BLOCK)
                    .collect::<Vec<_>>()
                    .into_boxed_slice()
            });
            self.blocks.push_back(block);
        }
        let at = tx.deadline;
        match self.latest {
            Some(latest) if at < latest => self.early.push(Reverse((at, seq))),
            _ => self.latest = Some(at),
        }
        *self.slot_mut(seq) = Some(tx);
        self.tail += 1;
        self.len += 1;
        seq
    }

    /// Entry `seq`, if it is still held.
    pub(crate) fn get(&self, seq: u64) -> Option<&LingeringTx> {
        if seq < self.head || seq >= self.tail {
            return None;
        }
        self.slot(seq).as_ref()
    }

    /// Drops entry `seq` where it is, leaving its slot empty; whether it was held.
    pub(crate) fn remove(&mut self, seq: u64) -> bool {
        if seq < self.head || seq >= self.tail {
            return false;
        }
        let slot = self.slot_mut(seq);
        if slot.is_none() {
            return false;
        }
        *slot = None;
        self.len -= 1;
        if seq == self.head {
            self.advance();
        }
        true
    }

    /// Moves `head` past empty slots, handing emptied blocks back.
    fn advance(&mut self) {
        while self.head < self.tail && self.slot(self.head).is_none() {
            self.head += 1;
            if self.head - self.base == BLOCK as u64 {
                if let Some(b) = self.blocks.pop_front() {
                    if self.spare.len() < SPARE_BLOCKS {
                        self.spare.push(b);
                    }
                }
                self.base += BLOCK as u64;
            }
        }
        if self.head == self.tail {
            // Empty: the next entry starts the order again.
            self.latest = None;
            self.early.clear();
        }
    }

    /// The deadline of the oldest entry, the earliest one unless `early` holds one.
    fn front(&self) -> Option<(Instant, u64)> {
        self.get(self.head).map(|t| (t.deadline, self.head))
    }

    /// The earliest deadline (an early entry already gone may make it early: harmless).
    pub(crate) fn next_at(&self) -> Option<Instant> {
        let early = self.early.peek().map(|Reverse((at, _))| *at);
        match (self.front().map(|(at, _)| at), early) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The entry with the earliest deadline, and that deadline.
    #[inline]
    pub(crate) fn earliest(&mut self) -> Option<(Instant, u64)> {
        if self.early.is_empty() {
            return self.front();
        }
        while let Some(&Reverse((at, seq))) = self.early.peek() {
            if self.get(seq).is_some() {
                return match self.front() {
                    Some(f) if f.0 <= at => Some(f),
                    _ => Some((at, seq)),
                };
            }
            self.early.pop();
        }
        self.front()
    }

    /// Every entry held, with its sequence number.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u64, &LingeringTx)> + '_ {
        (self.head..self.tail).filter_map(move |seq| self.slot(seq).as_ref().map(|t| (seq, t)))
    }
}

/// A set of transaction ids, a bit each over the span from the lowest to the highest: the
/// ids of lingering transactions, for [`crate::Endpoint::respond`] (ids are given in order and
/// a transaction lingers for a bounded time, so the span stays a few hundred KiB).
#[derive(Default)]
pub(crate) struct IdSet {
    /// The id of bit 0 of `words[0]`.
    base: u64,
    words: VecDeque<u64>,
}

impl IdSet {
    pub(crate) fn insert(&mut self, id: u64) {
        if self.words.is_empty() {
            self.base = id & !63;
        }
        while id < self.base {
            self.words.push_front(0);
            self.base -= 64;
        }
        let i = ((id - self.base) / 64) as usize;
        while i >= self.words.len() {
            self.words.push_back(0);
        }
        self.words[i] |= 1 << (id % 64);
    }

    pub(crate) fn remove(&mut self, id: u64) {
        if id < self.base {
            return;
        }
        let i = ((id - self.base) / 64) as usize;
        let Some(w) = self.words.get_mut(i) else {
            return;
        };
        *w &= !(1 << (id % 64));
        // Emptied words at the back stay (the next ids fill them).
        if i == 0 {
            while self.words.front() == Some(&0) {
                self.words.pop_front();
                self.base += 64;
            }
        }
    }

    pub(crate) fn contains(&self, id: u64) -> bool {
        id >= self.base
            && self
                .words
                .get(((id - self.base) / 64) as usize)
                .is_some_and(|w| w & (1 << (id % 64)) != 0)
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.words.capacity() * 8
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::Peer;
    use crate::transaction::ServerKey;
    use crate::Transport;
    use std::time::Duration;

    fn tx(id: u64, deadline: Instant) -> LingeringTx {
        let msg = crate::Message::parse(
            format!(
                "OPTIONS sip:b@h SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK{id}\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
            )
            .into_bytes(),
        )
        .unwrap();
        LingeringTx {
            key: ServerKey::server(&msg).unwrap(),
            key_hash: 0,
            id,
            deadline,
            last: None,
            peer: Peer {
                addr: "10.0.0.1:5060".parse().unwrap(),
                transport: Transport::Udp,
                conn: None,
            },
            kind: Linger::NonInvite,
            to_tag: Box::default(),
            dialog: None,
            merge_key: None,
        }
    }

    /// Ends every entry due at `now`, returning their ids in order.
    fn expire(q: &mut LingerQueue, now: Instant) -> Vec<u64> {
        let mut ended = Vec::new();
        while let Some((at, seq)) = q.earliest() {
            if at > now {
                break;
            }
            ended.push(q.get(seq).unwrap().id);
            assert!(q.remove(seq));
        }
        ended
    }

    #[test]
    fn entries_are_found_by_sequence_number_across_blocks_as_the_front_advances() {
        let t0 = Instant::now();
        let mut q = LingerQueue::default();
        let n = 3 * BLOCK as u64 + 5;
        for i in 0..n {
            assert_eq!(q.push(tx(i, t0 + Duration::from_millis(i))), i);
        }
        let ended = expire(&mut q, t0 + Duration::from_millis(2 * BLOCK as u64 + 1));
        assert_eq!(ended, (0..2 * BLOCK as u64 + 2).collect::<Vec<_>>());
        assert_eq!(q.blocks.len(), 2, "emptied blocks left the queue");
        assert_eq!(q.spare.len(), 2);
        assert!(q.get(5).is_none());
        for seq in 2 * BLOCK as u64 + 2..n {
            assert_eq!(q.get(seq).map(|t| t.id), Some(seq));
        }
        // New entries take the spare blocks.
        for i in n..n + 2 * BLOCK as u64 {
            assert_eq!(q.push(tx(i, t0 + Duration::from_secs(60))), i);
        }
        assert!(q.spare.is_empty());
        assert_eq!(q.get(n + 7).map(|t| t.id), Some(n + 7));
    }

    #[test]
    fn an_entry_taken_early_leaves_an_empty_slot_skipped_at_the_front() {
        let t0 = Instant::now();
        let mut q = LingerQueue::default();
        for i in 0..4 {
            q.push(tx(i, t0 + Duration::from_secs(i)));
        }
        assert!(q.remove(1));
        assert!(!q.remove(1), "removed once");
        assert!(q.get(1).is_none());
        assert!(q.remove(0));
        assert_eq!(q.head, 2, "the front moved past both");
        assert_eq!(q.len(), 2);
        assert_eq!(q.next_at(), Some(t0 + Duration::from_secs(2)));
        assert_eq!(expire(&mut q, t0 + Duration::from_secs(9)), vec![2, 3]);
        assert_eq!(q.next_at(), None);
    }

    #[test]
    fn an_entry_due_before_one_queued_ahead_of_it_ends_at_its_own_deadline() {
        // A reliable transport's zero Timer J among 32 s ones.
        let t0 = Instant::now();
        let mut q = LingerQueue::default();
        q.push(tx(0, t0 + Duration::from_secs(32)));
        q.push(tx(1, t0 + Duration::from_millis(10)));
        q.push(tx(2, t0 + Duration::from_secs(33)));
        q.push(tx(3, t0 + Duration::from_millis(20)));
        assert_eq!(q.next_at(), Some(t0 + Duration::from_millis(10)));
        assert_eq!(expire(&mut q, t0 + Duration::from_millis(20)), vec![1, 3]);
        assert_eq!(q.next_at(), Some(t0 + Duration::from_secs(32)));
        assert_eq!(expire(&mut q, t0 + Duration::from_secs(32)), vec![0]);
        assert_eq!(expire(&mut q, t0 + Duration::from_secs(40)), vec![2]);
        assert_eq!(q.len(), 0);
    }

    #[test]
    fn handles_name_a_queue_and_an_entry_and_never_an_id() {
        let h = handle(Linger::InviteConfirmed, 12345);
        assert_eq!(unhandle(h), Some((Linger::InviteConfirmed as usize, 12345)));
        assert_eq!(handle_of(2, 12345), h);
        assert_eq!(unhandle(12345), None);
    }

    #[test]
    fn the_id_set_holds_ids_inserted_in_any_order() {
        let mut s = IdSet::default();
        for id in [500, 70, 1000, 71] {
            s.insert(id);
        }
        assert!(s.contains(70) && s.contains(71) && s.contains(500) && s.contains(1000));
        assert!(!s.contains(69) && !s.contains(72) && !s.contains(2000));
        s.remove(70);
        s.remove(71);
        assert!(!s.contains(70));
        assert!(s.contains(500));
        s.insert(3);
        assert!(s.contains(3) && s.contains(1000));
        for id in [3, 500, 1000] {
            s.remove(id);
        }
        assert!(s.words.is_empty());
    }
}
