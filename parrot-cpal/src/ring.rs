//! The bounded buffer between a device's callback thread and the call's media task.
//!
//! A wait-free single-producer single-consumer ring ([`rtrb`]) of mono `f32` samples at the
//! device's rate: the callback never locks, never allocates and never waits for the media task
//! (and the reverse). A full ring drops the newest samples (an overrun), an empty one plays
//! silence (an underrun); both are counted in [`crate::AudioStats`].

pub use rtrb::{Consumer, Producer};

/// A ring holding `capacity` samples.
#[must_use]
pub fn ring(capacity: usize) -> (Producer<f32>, Consumer<f32>) {
    rtrb::RingBuffer::new(capacity.max(1))
}

/// Writes as much of `samples` as fits; returns how many did not fit.
pub fn push_slice(p: &mut Producer<f32>, samples: &[f32]) -> usize {
    let n = p.slots().min(samples.len());
    if n > 0 {
        if let Ok(mut chunk) = p.write_chunk(n) {
            let (a, b) = chunk.as_mut_slices();
            let split = a.len();
            a.copy_from_slice(&samples[..split]);
            b.copy_from_slice(&samples[split..n]);
            chunk.commit_all();
        }
    }
    samples.len() - n
}

/// Hands every buffered sample, oldest first, to `f`; returns how many.
pub fn drain(c: &mut Consumer<f32>, mut f: impl FnMut(&[f32])) -> usize {
    let n = c.slots();
    if n == 0 {
        return 0;
    }
    if let Ok(chunk) = c.read_chunk(n) {
        let (a, b) = chunk.as_slices();
        f(a);
        if !b.is_empty() {
            f(b);
        }
        chunk.commit_all();
    }
    n
}

/// Samples buffered in the ring, seen from the producer.
#[must_use]
pub fn fill(p: &Producer<f32>) -> usize {
    p.buffer().capacity() - p.slots()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_around_and_counts_what_does_not_fit() {
        let (mut p, mut c) = ring(100);
        let mut got = Vec::new();
        for round in 0..10 {
            let block: Vec<f32> = (0..70).map(|i| (round * 70 + i) as f32).collect();
            assert_eq!(push_slice(&mut p, &block), 0);
            assert_eq!(fill(&p), 70);
            drain(&mut c, |s| got.extend_from_slice(s));
            assert_eq!(fill(&p), 0);
        }
        let want: Vec<f32> = (0..700).map(|i| i as f32).collect();
        assert_eq!(got, want);
        let block = [1.0f32; 130];
        assert_eq!(push_slice(&mut p, &block), 30, "overrun: 30 dropped");
        assert_eq!(fill(&p), 100);
        assert_eq!(push_slice(&mut p, &block), 130);
    }

    #[test]
    fn a_thread_on_each_side_sees_every_sample_in_order() {
        let (mut p, mut c) = ring(64);
        let t = std::thread::spawn(move || {
            let mut sent = 0u32;
            while sent < 100_000 {
                let block: Vec<f32> = (sent..sent + 17).map(|i| i as f32).collect();
                let rest = push_slice(&mut p, &block);
                sent += 17 - rest as u32;
                if rest > 0 {
                    // Retry the part that did not fit (a real callback would count it).
                    std::thread::yield_now();
                    let mut left = &block[17 - rest..];
                    while !left.is_empty() {
                        let r = push_slice(&mut p, left);
                        sent += (left.len() - r) as u32;
                        left = &left[left.len() - r..];
                    }
                }
            }
        });
        let mut next = 0.0f32;
        while next < 100_000.0 {
            drain(&mut c, |s| {
                for v in s {
                    assert_eq!(*v, next);
                    next += 1.0;
                }
            });
        }
        t.join().unwrap();
    }
}
