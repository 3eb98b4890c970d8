//! Media datagrams sent from a thread of their own.
//!
//! Sending a datagram is most of what a media packet costs: the agent builds an RTP packet in
//! a microsecond or two, the kernel's send path takes several more (on loopback it also runs
//! the receiver's side and any capture). A [`MediaSender`] moves that second part to another
//! core: the adapter [`push`](MediaSender::push)es each packet as the driver hands it over,
//! and at the end of every [`Driver::flush`](crate::Driver::flush) the batch goes to the
//! sending thread in one hand-off. Batches come back to be refilled, so once the buffers have
//! grown to the load nothing is allocated per packet.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;

/// Batches handed over and not yet sent, at most; past that the agent keeps filling the one
/// it holds.
const IN_FLIGHT: usize = 64;

/// Packets one batch may hold before its oldest are dropped (the sending thread has fallen
/// that far behind: a full socket buffer would drop them too).
const MAX_BATCH: usize = 16_384;

/// Sends datagrams on threads of their own: each `key`'s datagrams on one thread, in the
/// order they were pushed.
pub struct MediaSender {
    lanes: Vec<Lane>,
    dropped: u64,
}

/// One sending thread and the batch being filled for it.
struct Lane {
    batch: Batch,
    tx: Option<SyncSender<Batch>>,
    free: Receiver<Batch>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Default)]
struct Batch {
    data: Vec<u8>,
    packets: Vec<Packet>,
}

struct Packet {
    socket: Arc<UdpSocket>,
    dst: SocketAddr,
    end: usize,
}

impl MediaSender {
    /// Starts `threads` sending threads (at least one), named `name`.
    pub fn new(name: &str, threads: usize) -> io::Result<MediaSender> {
        let lanes = (0..threads.max(1))
            .map(|i| Lane::start(&format!("{name}-{i}")))
            .collect::<io::Result<Vec<_>>>()?;
        Ok(MediaSender { lanes, dropped: 0 })
    }

    /// Queues `data` for `dst` on `socket`; it leaves at the next [`MediaSender::flush`], on
    /// the thread that sends everything pushed with the same `key` (a call: its packets stay
    /// in order).
    pub fn push(&mut self, key: u64, socket: &Arc<UdpSocket>, dst: SocketAddr, data: &[u8]) {
        let n = self.lanes.len() as u64;
        let lane = &mut self.lanes[(key % n) as usize];
        let batch = &mut lane.batch;
        if batch.packets.len() >= MAX_BATCH {
            self.dropped += batch.packets.len() as u64;
            tracing::debug!(dropped = self.dropped, "media sender behind: batch dropped");
            batch.packets.clear();
            batch.data.clear();
        }
        batch.data.extend_from_slice(data);
        batch.packets.push(Packet {
            socket: Arc::clone(socket),
            dst,
            end: batch.data.len(),
        });
    }

    /// Hands what was pushed to the sending threads.
    pub fn flush(&mut self) {
        for lane in &mut self.lanes {
            lane.flush();
        }
    }

    /// Packets dropped because a sending thread fell behind.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

impl Lane {
    fn start(name: &str) -> io::Result<Lane> {
        let (tx, rx) = mpsc::sync_channel::<Batch>(IN_FLIGHT);
        let (free_tx, free) = mpsc::channel::<Batch>();
        let thread = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                for mut batch in rx {
                    let mut start = 0;
                    for p in batch.packets.drain(..) {
                        // Non-blocking sockets: a datagram the socket has no room for is
                        // dropped, as the network may (RTP tolerates loss, RTCP comes again).
                        let _ = p.socket.send_to(&batch.data[start..p.end], p.dst);
                        start = p.end;
                    }
                    batch.data.clear();
                    if free_tx.send(batch).is_err() {
                        break;
                    }
                }
            })?;
        Ok(Lane {
            batch: Batch::default(),
            tx: Some(tx),
            free,
            thread: Some(thread),
        })
    }

    fn flush(&mut self) {
        if self.batch.packets.is_empty() {
            return;
        }
        let Some(tx) = &self.tx else { return };
        let next = self.free.try_recv().unwrap_or_default();
        let batch = std::mem::replace(&mut self.batch, next);
        if let Err(TrySendError::Full(batch) | TrySendError::Disconnected(batch)) =
            tx.try_send(batch)
        {
            // The thread is behind: keep filling this batch (bounded by `MAX_BATCH`).
            self.batch = batch;
        }
    }
}

impl Drop for Lane {
    /// Sends what was queued, then stops the thread.
    fn drop(&mut self) {
        self.flush();
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn packets_arrive_in_order_with_their_bytes() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let tx = Arc::new(UdpSocket::bind("127.0.0.1:0").unwrap());
        let dst = rx.local_addr().unwrap();
        let mut s = MediaSender::new("test-sender", 1).unwrap();
        for round in 0..3u8 {
            for i in 0..10u8 {
                s.push(0, &tx, dst, &[round, i, i, i]);
            }
            s.flush();
        }
        let mut buf = [0u8; 16];
        for round in 0..3u8 {
            for i in 0..10u8 {
                let n = rx.recv(&mut buf).unwrap();
                assert_eq!(&buf[..n], &[round, i, i, i]);
            }
        }
        assert_eq!(s.dropped(), 0);
    }

    #[test]
    fn each_keys_packets_stay_in_order_across_threads() {
        let rx: Vec<UdpSocket> = (0..3)
            .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
            .collect();
        let tx = Arc::new(UdpSocket::bind("127.0.0.1:0").unwrap());
        let mut s = MediaSender::new("test-sender", 2).unwrap();
        for i in 0..50u8 {
            for (key, r) in rx.iter().enumerate() {
                s.push(key as u64, &tx, r.local_addr().unwrap(), &[key as u8, i]);
            }
            s.flush();
        }
        let mut buf = [0u8; 4];
        for (key, r) in rx.iter().enumerate() {
            r.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            for i in 0..50u8 {
                let n = r.recv(&mut buf).unwrap();
                assert_eq!(&buf[..n], &[key as u8, i]);
            }
        }
    }

    #[test]
    fn dropping_the_sender_sends_what_was_pushed() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let tx = Arc::new(UdpSocket::bind("127.0.0.1:0").unwrap());
        let mut s = MediaSender::new("test-sender", 1).unwrap();
        s.push(0, &tx, rx.local_addr().unwrap(), b"last");
        drop(s);
        let mut buf = [0u8; 8];
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"last");
    }

    #[test]
    fn sent_batches_come_back_to_be_refilled() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let tx = Arc::new(UdpSocket::bind("127.0.0.1:0").unwrap());
        let dst = rx.local_addr().unwrap();
        let mut s = MediaSender::new("test-sender", 1).unwrap();
        let mut buf = [0u8; 8];
        for _ in 0..100 {
            s.push(0, &tx, dst, b"x");
            s.flush();
            rx.recv(&mut buf).unwrap();
        }
        // The thread returns each batch after sending it; the last hand-off took one back.
        std::thread::sleep(Duration::from_millis(50));
        let returned = s.lanes[0].free.try_iter().count();
        assert!(returned >= 1, "no batch came back");
    }
}
