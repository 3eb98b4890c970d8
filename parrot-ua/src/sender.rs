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

/// Sends datagrams on a thread of its own, in the order they were pushed.
pub struct MediaSender {
    batch: Batch,
    tx: Option<SyncSender<Batch>>,
    free: Receiver<Batch>,
    thread: Option<JoinHandle<()>>,
    dropped: u64,
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
    /// Starts the sending thread, named `name`.
    pub fn new(name: &str) -> io::Result<MediaSender> {
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
        Ok(MediaSender {
            batch: Batch::default(),
            tx: Some(tx),
            free,
            thread: Some(thread),
            dropped: 0,
        })
    }

    /// Queues `data` for `dst` on `socket`; it leaves at the next [`MediaSender::flush`].
    pub fn push(&mut self, socket: &Arc<UdpSocket>, dst: SocketAddr, data: &[u8]) {
        if self.batch.packets.len() >= MAX_BATCH {
            self.dropped += self.batch.packets.len() as u64;
            tracing::debug!(dropped = self.dropped, "media sender behind: batch dropped");
            self.batch.packets.clear();
            self.batch.data.clear();
        }
        self.batch.data.extend_from_slice(data);
        self.batch.packets.push(Packet {
            socket: Arc::clone(socket),
            dst,
            end: self.batch.data.len(),
        });
    }

    /// Hands what was pushed to the sending thread.
    pub fn flush(&mut self) {
        if self.batch.packets.is_empty() {
            return;
        }
        let Some(tx) = &self.tx else { return };
        let next = self.free.try_recv().unwrap_or_default();
        let batch = std::mem::replace(&mut self.batch, next);
        match tx.try_send(batch) {
            Ok(()) => {}
            // The thread is behind: keep filling this batch (bounded by `MAX_BATCH`).
            Err(TrySendError::Full(batch)) | Err(TrySendError::Disconnected(batch)) => {
                let spare = std::mem::replace(&mut self.batch, batch);
                drop(spare);
            }
        }
    }

    /// Packets dropped because the sending thread fell behind.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

impl Drop for MediaSender {
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
        let mut s = MediaSender::new("test-sender").unwrap();
        for round in 0..3u8 {
            for i in 0..10u8 {
                s.push(&tx, dst, &[round, i, i, i]);
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
    fn dropping_the_sender_sends_what_was_pushed() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let tx = Arc::new(UdpSocket::bind("127.0.0.1:0").unwrap());
        let mut s = MediaSender::new("test-sender").unwrap();
        s.push(&tx, rx.local_addr().unwrap(), b"last");
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
        let mut s = MediaSender::new("test-sender").unwrap();
        let mut buf = [0u8; 8];
        for _ in 0..100 {
            s.push(&tx, dst, b"x");
            s.flush();
            rx.recv(&mut buf).unwrap();
        }
        // The thread returns each batch after sending it; the last hand-off took one back.
        std::thread::sleep(Duration::from_millis(50));
        let returned = s.free.try_iter().count();
        assert!(returned >= 1, "no batch came back");
    }
}
