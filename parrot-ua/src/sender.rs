//! Media datagrams sent from threads of their own, each at its due time.
//!
//! Sending a datagram is most of what a media packet costs: the agent builds an RTP packet in
//! a microsecond or two, the kernel's send path takes several more (on loopback it also runs
//! the receiver's side and any capture). A [`MediaSender`] moves that second part to other
//! cores, and lets the agent write packets ahead of time
//! ([`AgentConfig::media_lookahead`](crate::AgentConfig::media_lookahead)): each
//! [`push`](MediaSender::push)ed packet carries its due time, and the threads hold it until
//! then. A loop that is held up (a burst of signalling, its core taken away for a few
//! milliseconds) leaves the threads enough to send meanwhile.
//!
//! The threads share one queue of batches in due order: whichever thread is free takes the
//! next batch that is due, so one thread held up does not hold up the packets it would have
//! sent. A batch is up to [`HANDOFF`] packets due at the same time; each packet holds its
//! socket, so a call's last packets still go out after its sockets are given back. Batches
//! come back to be refilled: once the buffers have grown to the load, nothing is allocated per
//! packet.

use std::collections::VecDeque;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Instant;

/// A batch goes to the threads once it holds this many packets, without waiting for the end
/// of the flush: a busy millisecond is shared between the threads.
const HANDOFF: usize = 16;

/// Packets queued and not yet sent, at most; past that a batch is dropped (the threads have
/// fallen that far behind: a full socket buffer would drop them too).
const MAX_QUEUED: usize = 65_536;

/// Sends datagrams on threads of their own, each when it is due.
pub struct MediaSender {
    shared: Arc<Shared>,
    /// The batch being filled.
    batch: Batch,
    threads: Vec<JoinHandle<()>>,
    dropped: u64,
}

struct Shared {
    queue: Mutex<Queue>,
    /// Signalled when a batch is queued ahead of every other, and when the sender closes.
    ready: Condvar,
}

#[derive(Default)]
struct Queue {
    /// In due order.
    batches: VecDeque<Batch>,
    /// Packets in `batches`.
    packets: usize,
    /// Sent batches, emptied, for the agent to refill.
    free: Vec<Batch>,
    closed: bool,
}

struct Batch {
    due: Instant,
    data: Vec<u8>,
    packets: Vec<Packet>,
}

/// `data[previous end..end]`, to `dst` from `socket`.
struct Packet {
    socket: Arc<UdpSocket>,
    dst: SocketAddr,
    end: usize,
}

impl Batch {
    fn new() -> Batch {
        Batch {
            due: Instant::now(),
            data: Vec::new(),
            packets: Vec::new(),
        }
    }

    fn clear(&mut self) {
        self.data.clear();
        self.packets.clear();
    }

    fn send(&self) {
        let mut start = 0;
        for p in &self.packets {
            // Non-blocking sockets: a datagram the socket has no room for is dropped, as the
            // network may (RTP tolerates loss, RTCP comes again).
            let _ = p.socket.send_to(&self.data[start..p.end], p.dst);
            start = p.end;
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // A sending thread holds no invariant across a panic: go on with the queue.
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl MediaSender {
    /// Starts `threads` sending threads (at least one), named `name`.
    pub fn new(name: &str, threads: usize) -> io::Result<MediaSender> {
        MediaSender::with_priority(name, threads, None)
    }

    /// [`MediaSender::new`], the threads at real-time priority `realtime` (`SCHED_FIFO`;
    /// where that is refused, a warning and normal priority).
    pub fn with_priority(
        name: &str,
        threads: usize,
        realtime: Option<u8>,
    ) -> io::Result<MediaSender> {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            ready: Condvar::new(),
        });
        let threads = (0..threads.max(1))
            .map(|i| {
                let shared = Arc::clone(&shared);
                std::thread::Builder::new()
                    .name(format!("{name}-{i}"))
                    .spawn(move || {
                        #[cfg(unix)]
                        if let Some(p) = realtime {
                            crate::realtime::enter(p, "media sending thread");
                        }
                        #[cfg(not(unix))]
                        let _ = realtime;
                        send_when_due(&shared)
                    })
            })
            .collect::<io::Result<Vec<_>>>()?;
        Ok(MediaSender {
            shared,
            batch: Batch::new(),
            threads,
            dropped: 0,
        })
    }

    /// Queues `data` for `dst` from `socket`, to leave at `due` (at once if that has passed;
    /// the queue is handed over at the next [`MediaSender::flush`] at the latest).
    pub fn push(&mut self, socket: &Arc<UdpSocket>, dst: SocketAddr, data: &[u8], due: Instant) {
        if !self.batch.packets.is_empty()
            && (self.batch.due != due || self.batch.packets.len() >= HANDOFF)
        {
            self.hand_over();
        }
        if self.batch.packets.is_empty() {
            self.batch.due = due;
        }
        self.batch.data.extend_from_slice(data);
        self.batch.packets.push(Packet {
            socket: Arc::clone(socket),
            dst,
            end: self.batch.data.len(),
        });
    }

    /// Hands what was pushed to the sending threads.
    pub fn flush(&mut self) {
        if !self.batch.packets.is_empty() {
            self.hand_over();
        }
    }

    /// Packets dropped because the sending threads fell behind.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    fn hand_over(&mut self) {
        let mut q = self.shared.lock();
        let next = q.free.pop().unwrap_or_else(Batch::new);
        let mut batch = std::mem::replace(&mut self.batch, next);
        let n = batch.packets.len();
        if q.packets + n > MAX_QUEUED {
            drop(q);
            self.dropped += n as u64;
            tracing::debug!(
                dropped = self.dropped,
                "media sender behind: packets dropped"
            );
            batch.clear();
            self.shared.lock().free.push(batch);
            return;
        }
        // After every batch due no later (the queue is in due order: a binary search, since
        // a flush's first packets, due at once, land in front of many written ahead).
        let at = q.batches.partition_point(|b| b.due <= batch.due);
        q.batches.insert(at, batch);
        q.packets += n;
        drop(q);
        if at == 0 {
            // Sooner than any thread is waiting for.
            self.shared.ready.notify_one();
        }
    }
}

/// A sending thread: takes the next batch once it is due, sends it, gives it back; ends when
/// the sender is dropped and everything queued has gone.
fn send_when_due(shared: &Shared) {
    let mut q = shared.lock();
    loop {
        let now = Instant::now();
        let wait = match q.batches.front() {
            None if q.closed => return,
            None => None,
            Some(b) if b.due <= now => {
                let Some(mut batch) = q.batches.pop_front() else {
                    continue;
                };
                q.packets -= batch.packets.len();
                if q.batches.front().is_some_and(|b| b.due <= now) {
                    // More is due: another thread can take it while this one sends.
                    shared.ready.notify_one();
                }
                drop(q);
                batch.send();
                batch.clear();
                q = shared.lock();
                q.free.push(batch);
                continue;
            }
            Some(b) => Some(b.due - now),
        };
        q = match wait {
            Some(d) => {
                shared
                    .ready
                    .wait_timeout(q, d)
                    .unwrap_or_else(|e| e.into_inner())
                    .0
            }
            None => shared.ready.wait(q).unwrap_or_else(|e| e.into_inner()),
        };
    }
}

impl Drop for MediaSender {
    /// Sends what was queued (each packet when it is due), then stops the threads.
    fn drop(&mut self) {
        self.flush();
        self.shared.lock().closed = true;
        self.shared.ready.notify_all();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn receiver() -> UdpSocket {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        rx
    }

    fn socket() -> Arc<UdpSocket> {
        Arc::new(UdpSocket::bind("127.0.0.1:0").unwrap())
    }

    #[test]
    fn packets_due_together_leave_in_order_from_their_sockets() {
        let rx = receiver();
        let dst = rx.local_addr().unwrap();
        let (rtp, rtcp) = (socket(), socket());
        let mut s = MediaSender::new("test-sender", 1).unwrap();
        let now = Instant::now();
        for round in 0..3u8 {
            for i in 0..10u8 {
                let from = if i == 9 { &rtcp } else { &rtp };
                s.push(from, dst, &[round, i], now);
            }
            s.flush();
        }
        let mut buf = [0u8; 4];
        for round in 0..3u8 {
            for i in 0..10u8 {
                let (n, from) = rx.recv_from(&mut buf).unwrap();
                assert_eq!(&buf[..n], &[round, i]);
                let sock = if i == 9 { &rtcp } else { &rtp };
                assert_eq!(from, sock.local_addr().unwrap());
            }
        }
        assert_eq!(s.dropped(), 0);
    }

    #[test]
    fn a_packet_is_held_until_it_is_due() {
        let rx = receiver();
        let tx = socket();
        let mut s = MediaSender::new("test-sender", 2).unwrap();
        let pushed = Instant::now();
        s.push(
            &tx,
            rx.local_addr().unwrap(),
            b"later",
            pushed + Duration::from_millis(60),
        );
        s.flush();
        let mut buf = [0u8; 8];
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"later");
        assert!(
            pushed.elapsed() >= Duration::from_millis(60),
            "sent before it was due"
        );
    }

    #[test]
    fn a_packet_due_sooner_overtakes_those_queued_for_later() {
        let rx = receiver();
        let dst = rx.local_addr().unwrap();
        let tx = socket();
        let mut s = MediaSender::new("test-sender", 2).unwrap();
        let now = Instant::now();
        s.push(&tx, dst, b"second", now + Duration::from_millis(300));
        s.flush();
        s.push(&tx, dst, b"first", now);
        s.flush();
        let mut buf = [0u8; 8];
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"first");
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"second");
    }

    #[test]
    fn every_packet_arrives_once_across_threads() {
        let rx: Vec<UdpSocket> = (0..3).map(|_| receiver()).collect();
        let tx: Vec<_> = (0..3).map(|_| socket()).collect();
        let mut s = MediaSender::new("test-sender", 2).unwrap();
        let start = Instant::now();
        for i in 0..50u8 {
            let due = start + Duration::from_millis(u64::from(i % 5));
            for (k, r) in rx.iter().enumerate() {
                s.push(&tx[k], r.local_addr().unwrap(), &[k as u8, i], due);
            }
            s.flush();
        }
        let mut buf = [0u8; 4];
        for (k, r) in rx.iter().enumerate() {
            let mut seen: Vec<u8> = (0..50)
                .map(|_| {
                    let n = r.recv(&mut buf).unwrap();
                    assert_eq!(n, 2);
                    assert_eq!(buf[0], k as u8);
                    buf[1]
                })
                .collect();
            seen.sort_unstable();
            assert_eq!(seen, (0..50).collect::<Vec<u8>>());
        }
    }

    #[test]
    fn dropping_the_sender_sends_what_was_pushed_and_lets_the_sockets_go() {
        let rx = receiver();
        let tx = socket();
        let mut s = MediaSender::new("test-sender", 1).unwrap();
        s.push(&tx, rx.local_addr().unwrap(), b"last", Instant::now());
        drop(s);
        let mut buf = [0u8; 8];
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"last");
        assert_eq!(Arc::strong_count(&tx), 1);
    }

    #[test]
    fn sent_batches_come_back_to_be_refilled() {
        let rx = receiver();
        let dst = rx.local_addr().unwrap();
        let tx = socket();
        let mut s = MediaSender::new("test-sender", 1).unwrap();
        let mut buf = [0u8; 8];
        for _ in 0..100 {
            s.push(&tx, dst, b"x", Instant::now());
            s.flush();
            rx.recv(&mut buf).unwrap();
        }
        // The thread gives each batch back once it has sent it.
        for _ in 0..100 {
            if !s.shared.lock().free.is_empty() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("no batch came back");
    }
}
