//! Indexes of server transactions by a key they hold: their matching key (RFC 3261 §17.2.3)
//! and their merged-request key (§8.2.2.2).
//!
//! A busy server keeps hundreds of thousands of transactions here: every answered one lingers
//! for 32 s (Timer J, Timer L). Keyed by the keys themselves (80 bytes each), the table's
//! entries were 88 bytes, and each time it doubled it moved and rehashed all of them: past
//! 400,000 entries that held the loop for a few hundred milliseconds, long enough for the SIP
//! socket to overflow. Here the table holds only the key's 64-bit hash and the transaction's
//! id (16 bytes, rehashed without reading a key); the key itself stays with its transaction,
//! and every hit is verified against it. Two keys with one hash (rare) keep the second in a
//! small table keyed by the key itself. The merged-request keys (Call-ID, From tag, CSeq) are
//! kept the same way: rehashing their text as the table grew was the next stall.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher};

use crate::transaction::ServerKey;

/// Server transaction ids by the hash of their [`ServerKey`].
pub(crate) type ServerIndex = HashIndex<ServerKey>;

/// How many entries an index holds before it grows at once to the most it is expected to hold.
const EARLY_RESERVE_AT: usize = 50_000;

/// The most entries an index reserves room for ahead of time.
const MAX_RESERVE: usize = 1 << 22;

/// Transaction ids by the hash of a key `K` each transaction keeps.
pub(crate) struct HashIndex<K> {
    hasher: foldhash::fast::FixedState,
    by_hash: HashMap<u64, u64, KeyIsHash>,
    /// The most entries expected (the caps on transactions): reached [`EARLY_RESERVE_AT`], the
    /// table makes room for them in one step. Doubling on its own, it would rehash 230,000 and
    /// 460,000 entries at once on the way to a busy server's 500,000 lingering transactions;
    /// this way the one rehash is of 50,000.
    expected: usize,
    /// Keys whose hash another key held when they came: compared in full.
    collided: HashMap<K, u64, foldhash::fast::FixedState>,
    /// Tests: every key gets the same hash.
    #[cfg(test)]
    one_hash: bool,
}

impl<K: Hash + Eq + Clone> HashIndex<K> {
    /// An empty index hashing with `seed`.
    pub(crate) fn new(seed: u64, collided_seed: u64) -> HashIndex<K> {
        HashIndex {
            hasher: foldhash::fast::FixedState::with_seed(seed),
            by_hash: HashMap::with_hasher(KeyIsHash),
            expected: 0,
            collided: HashMap::with_hasher(foldhash::fast::FixedState::with_seed(collided_seed)),
            #[cfg(test)]
            one_hash: false,
        }
    }

    /// Makes room for `n` entries in one step once it holds [`EARLY_RESERVE_AT`].
    pub(crate) fn expecting(mut self, n: usize) -> Self {
        self.expected = n.min(MAX_RESERVE);
        self
    }

    fn hash(&self, key: &K) -> u64 {
        #[cfg(test)]
        if self.one_hash {
            return 0;
        }
        self.hasher.hash_one(key)
    }

    /// The hash of `key` that [`HashIndex::get_hashed`] and [`HashIndex::insert_hashed`] take:
    /// a lookup followed by an insertion of the same key hashes it once.
    pub(crate) fn hash_of(&self, key: &K) -> u64 {
        self.hash(key)
    }

    /// The transaction `key` matches. `key_of` gives the key of a transaction by its id.
    pub(crate) fn get<'k>(&self, key: &K, key_of: impl Fn(u64) -> Option<&'k K>) -> Option<u64>
    where
        K: 'k,
    {
        self.get_hashed(self.hash(key), key, key_of)
    }

    /// [`HashIndex::get`] with the key's hash from [`HashIndex::hash_of`].
    pub(crate) fn get_hashed<'k>(
        &self,
        h: u64,
        key: &K,
        key_of: impl Fn(u64) -> Option<&'k K>,
    ) -> Option<u64>
    where
        K: 'k,
    {
        if let Some(&id) = self.by_hash.get(&h) {
            if key_of(id) == Some(key) {
                return Some(id);
            }
        }
        if self.collided.is_empty() {
            return None;
        }
        self.collided.get(key).copied()
    }

    /// Indexes transaction `id` under `key`, in place of any transaction the same key held.
    /// Returns the key's hash, for [`HashIndex::replace_hashed`] and
    /// [`HashIndex::remove_hashed`].
    pub(crate) fn insert<'k>(
        &mut self,
        key: &K,
        id: u64,
        key_of: impl Fn(u64) -> Option<&'k K>,
    ) -> u64
    where
        K: 'k,
    {
        self.insert_hashed(self.hash(key), key, id, key_of)
    }

    /// [`HashIndex::insert`] with the key's hash from [`HashIndex::hash_of`].
    pub(crate) fn insert_hashed<'k>(
        &mut self,
        h: u64,
        key: &K,
        id: u64,
        key_of: impl Fn(u64) -> Option<&'k K>,
    ) -> u64
    where
        K: 'k,
    {
        match self.by_hash.get_mut(&h) {
            None => {
                if self.by_hash.len() == EARLY_RESERVE_AT {
                    self.by_hash
                        .reserve(self.expected.saturating_sub(EARLY_RESERVE_AT));
                }
                self.by_hash.insert(h, id);
            }
            Some(held) => match key_of(*held) {
                Some(k) if k != key => {
                    self.collided.insert(key.clone(), id);
                }
                // The same key (a newer transaction takes its place) or a transaction gone.
                _ => *held = id,
            },
        }
        h
    }

    /// Removes transaction `id`, indexed under `key` (nothing if another took its place).
    pub(crate) fn remove(&mut self, key: &K, id: u64) {
        self.remove_hashed(self.hash(key), key, id);
    }

    /// [`HashIndex::remove`] with the key's hash from [`HashIndex::insert`].
    pub(crate) fn remove_hashed(&mut self, h: u64, key: &K, id: u64) {
        if self.by_hash.get(&h) == Some(&id) {
            self.by_hash.remove(&h);
        } else if self.collided.get(key) == Some(&id) {
            self.collided.remove(key);
        }
    }

    /// Names `new` in place of `old` under `key`, if `old` still holds it.
    pub(crate) fn replace(&mut self, key: &K, old: u64, new: u64) {
        self.replace_hashed(self.hash(key), key, old, new);
    }

    /// [`HashIndex::replace`] with the key's hash from [`HashIndex::insert`].
    pub(crate) fn replace_hashed(&mut self, h: u64, key: &K, old: u64, new: u64) {
        if let Some(held) = self.by_hash.get_mut(&h) {
            if *held == old {
                *held = new;
                return;
            }
        }
        if !self.collided.is_empty() {
            if let Some(held) = self.collided.get_mut(key) {
                if *held == old {
                    *held = new;
                }
            }
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.by_hash.is_empty() && self.collided.is_empty()
    }
}

/// The table's keys are hashes already: used as they are.
#[derive(Clone, Copy, Default)]
pub(crate) struct KeyIsHash;

impl BuildHasher for KeyIsHash {
    type Hasher = HashValue;
    fn build_hasher(&self) -> HashValue {
        HashValue(0)
    }
}

pub(crate) struct HashValue(u64);

impl Hasher for HashValue {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only `u64` keys are hashed here; mix anything else in rather than panic.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Message;
    use std::collections::HashMap as Map;

    fn key(branch: &str) -> ServerKey {
        let raw = format!(
            "OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h:5060;branch={branch}\r\n\
             From: <sip:x@y>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n\
             Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        );
        let msg = Message::parse(raw.into_bytes()).expect("a request");
        ServerKey::server(&msg).expect("a key")
    }

    #[test]
    fn keys_are_found_removed_and_replaced_by_their_transaction() {
        let mut keys: Map<u64, ServerKey> = Map::new();
        let mut ix = ServerIndex::new(1, 2);
        for i in 0..200u64 {
            let k = key(&format!("z9hG4bK{i}"));
            ix.insert(&k, i, |id| keys.get(&id));
            keys.insert(i, k);
        }
        for i in 0..200u64 {
            assert_eq!(ix.get(&keys[&i], |id| keys.get(&id)), Some(i));
        }
        assert_eq!(ix.get(&key("z9hG4bKnone"), |id| keys.get(&id)), None);
        // A newer transaction with the same key takes its place; the old one's removal
        // leaves it.
        let k7 = keys[&7].clone();
        ix.insert(&k7, 1000, |id| keys.get(&id));
        keys.insert(1000, k7.clone());
        ix.remove(&k7, 7);
        assert_eq!(ix.get(&k7, |id| keys.get(&id)), Some(1000));
        for i in (0..200u64).chain([1000]) {
            if let Some(k) = keys.get(&i) {
                ix.remove(k, i);
            }
        }
        assert!(ix.is_empty());
    }

    #[test]
    fn keys_that_share_a_hash_are_told_apart() {
        let keys: Map<u64, ServerKey> = (0..5u64)
            .map(|i| (i, key(&format!("z9hG4bK{i}"))))
            .collect();
        let mut ix = ServerIndex::new(3, 4);
        ix.one_hash = true;
        for i in 0..5u64 {
            ix.insert(&keys[&i], i, |id| keys.get(&id));
        }
        assert_eq!(ix.collided.len(), 4, "the first holds the hash");
        for i in 0..5u64 {
            assert_eq!(ix.get(&keys[&i], |id| keys.get(&id)), Some(i));
        }
        assert_eq!(ix.get(&key("z9hG4bKnone"), |id| keys.get(&id)), None);
        // The holder of the hash goes first: the others are still found.
        ix.remove(&keys[&0], 0);
        for i in 1..5u64 {
            assert_eq!(ix.get(&keys[&i], |id| keys.get(&id)), Some(i));
        }
        for i in 1..5u64 {
            ix.remove(&keys[&i], i);
        }
        assert!(ix.is_empty());
    }

    #[test]
    fn an_index_makes_room_for_what_it_expects_in_one_step_once_it_is_large() {
        let mut idx: HashIndex<u64> = HashIndex::new(1, 2).expecting(300_000);
        let keys: Vec<u64> = (0..EARLY_RESERVE_AT as u64 + 1).collect();
        let key_of = |id: u64| keys.get(id as usize);
        for &k in &keys[..EARLY_RESERVE_AT] {
            idx.insert(&k, k, key_of);
        }
        assert!(idx.by_hash.capacity() < 300_000);
        idx.insert(&keys[EARLY_RESERVE_AT], EARLY_RESERVE_AT as u64, key_of);
        assert!(idx.by_hash.capacity() >= 300_000);
        assert_eq!(idx.get(&7, key_of), Some(7));
    }
}
