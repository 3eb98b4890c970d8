//! Media datagrams sent from threads of their own.
//!
//! Sending a datagram is most of what a media packet costs: the agent builds an RTP packet in
//! a microsecond or two, the kernel's send path takes several more (on loopback it also runs
//! the receiver's side and any capture). A [`MediaSender`] moves that second part to other
//! cores. A call's socket pair is [`attach`](MediaSender::attach)ed once, by its RTP port; the
//! driver then [`push`](MediaSender::push)es each packet with that port, and each thread
//! gets its batch at the end of every [`Driver::flush`](crate::Driver::flush), or as soon as
//! it holds [`HANDOFF`] packets.
//! The sockets live in the sending thread's own table, so a packet costs the agent no
//! reference count and no look at the socket. Batches come back to be refilled: once the
//! buffers have grown to the load, nothing is allocated per packet.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;

/// Batches handed over and not yet sent, at most; past that the agent keeps filling the one
/// it holds.
const IN_FLIGHT: usize = 64;

/// A lane's batch goes to its thread once it holds this many packets, without waiting for
/// the end of the flush: the thread starts sending while the agent is still writing the
/// rest of a busy millisecond.
const HANDOFF: usize = 32;

/// Attach entries a batch without packets may hold before it is handed over anyway.
const MAX_CONTROL: usize = 64;

/// Packets one batch may hold before they are dropped (the sending thread has fallen that
/// far behind: a full socket buffer would drop them too).
const MAX_BATCH: usize = 16_384;

/// Sends datagrams on threads of their own: everything for one port pair on one thread, in
/// the order it was pushed.
pub struct MediaSender {
    lanes: Vec<Lane>,
    dropped: u64,
}

/// One sending thread and the batch being filled for it.
struct Lane {
    batch: Batch,
    /// The batch holds a detach.
    urgent: bool,
    tx: Option<SyncSender<Batch>>,
    free: Receiver<Batch>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Default)]
struct Batch {
    data: Vec<u8>,
    entries: Vec<Entry>,
    packets: usize,
}

enum Entry {
    /// `data[previous end..end]` to `dst` from the socket on `port`.
    Packet {
        port: u16,
        dst: SocketAddr,
        end: usize,
    },
    /// From now on `port` and `port + 1` are these sockets.
    Attach {
        port: u16,
        sockets: [Arc<UdpSocket>; 2],
    },
    /// `port` and `port + 1` are closed.
    Detach { port: u16 },
}

impl MediaSender {
    /// Starts `threads` sending threads (at least one), named `name`.
    pub fn new(name: &str, threads: usize) -> io::Result<MediaSender> {
        let lanes = (0..threads.max(1))
            .map(|i| Lane::start(&format!("{name}-{i}")))
            .collect::<io::Result<Vec<_>>>()?;
        Ok(MediaSender { lanes, dropped: 0 })
    }

    fn lane(&mut self, port: u16) -> &mut Lane {
        let n = self.lanes.len();
        &mut self.lanes[usize::from(port / 2) % n]
    }

    /// Hands a call's RTP socket (bound on the even `port`) and RTCP socket (`port + 1`) to
    /// the thread that sends from them.
    pub fn attach(&mut self, port: u16, rtp: &Arc<UdpSocket>, rtcp: &Arc<UdpSocket>) {
        let sockets = [Arc::clone(rtp), Arc::clone(rtcp)];
        self.lane(port)
            .batch
            .entries
            .push(Entry::Attach { port, sockets });
    }

    /// Lets go of the sockets attached on `port` (after sending what was pushed for them).
    pub fn detach(&mut self, port: u16) {
        let lane = self.lane(port);
        lane.batch.entries.push(Entry::Detach { port });
        // Handed over at this flush: the sockets close, and the port can be bound again.
        lane.urgent = true;
    }

    /// Queues `data` for `dst` from the RTP socket attached on `port` (the RTCP one when
    /// `rtcp`); it leaves at the next [`MediaSender::flush`].
    pub fn push(&mut self, port: u16, rtcp: bool, dst: SocketAddr, data: &[u8]) {
        let batch = &mut self.lane(port).batch;
        if batch.packets >= MAX_BATCH {
            let n = batch.packets as u64;
            batch.entries.retain(|e| !matches!(e, Entry::Packet { .. }));
            batch.data.clear();
            batch.packets = 0;
            self.dropped += n;
            tracing::debug!(
                dropped = self.dropped,
                "media sender behind: packets dropped"
            );
            return self.push(port, rtcp, dst, data);
        }
        batch.data.extend_from_slice(data);
        batch.packets += 1;
        batch.entries.push(Entry::Packet {
            port: port + u16::from(rtcp),
            dst,
            end: batch.data.len(),
        });
        if batch.packets % HANDOFF == 0 {
            self.lane(port).flush(false);
        }
    }

    /// Hands what was pushed to the sending threads.
    pub fn flush(&mut self) {
        for lane in &mut self.lanes {
            lane.flush(false);
        }
    }

    /// Packets dropped because a sending thread fell behind.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

/// A sending thread's sockets, by local port.
#[derive(Default)]
struct Sockets(Vec<Option<Arc<UdpSocket>>>);

impl Sockets {
    fn set(&mut self, port: u16, socket: Option<Arc<UdpSocket>>) {
        let i = usize::from(port);
        if self.0.len() <= i {
            self.0.resize(i + 1, None);
        }
        self.0[i] = socket;
    }

    fn get(&self, port: u16) -> Option<&UdpSocket> {
        self.0.get(usize::from(port))?.as_deref()
    }
}

/// The sending thread: runs each batch in order, then returns it.
fn send_batches(batches: Receiver<Batch>, free: mpsc::Sender<Batch>) {
    let mut sockets = Sockets::default();
    for mut batch in batches {
        let mut start = 0;
        for e in batch.entries.drain(..) {
            match e {
                Entry::Packet { port, dst, end } => {
                    if let Some(s) = sockets.get(port) {
                        // Non-blocking sockets: a datagram the socket has no room for is
                        // dropped, as the network may (RTP tolerates loss, RTCP comes again).
                        let _ = s.send_to(&batch.data[start..end], dst);
                    }
                    start = end;
                }
                Entry::Attach {
                    port,
                    sockets: [rtp, rtcp],
                } => {
                    sockets.set(port, Some(rtp));
                    sockets.set(port.wrapping_add(1), Some(rtcp));
                }
                Entry::Detach { port } => {
                    sockets.set(port, None);
                    sockets.set(port.wrapping_add(1), None);
                }
            }
        }
        batch.data.clear();
        batch.packets = 0;
        if free.send(batch).is_err() {
            break;
        }
    }
}

impl Lane {
    fn start(name: &str) -> io::Result<Lane> {
        let (tx, rx) = mpsc::sync_channel::<Batch>(IN_FLIGHT);
        let (free_tx, free) = mpsc::channel::<Batch>();
        let thread = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || send_batches(rx, free_tx))?;
        Ok(Lane {
            batch: Batch::default(),
            urgent: false,
            tx: Some(tx),
            free,
            thread: Some(thread),
        })
    }

    /// Hands the batch over when it holds packets or a detach (attaching alone rides along
    /// with the next packets, so calls set up on parked sockets cost the thread no wake-up),
    /// or when `force`d.
    fn flush(&mut self, force: bool) {
        let pending = self.batch.entries.len();
        let wanted = force || self.urgent || self.batch.packets > 0 || pending >= MAX_CONTROL;
        if pending == 0 || !wanted {
            return;
        }
        let Some(tx) = &self.tx else { return };
        let next = self.free.try_recv().unwrap_or_default();
        let batch = std::mem::replace(&mut self.batch, next);
        match tx.try_send(batch) {
            Ok(()) => self.urgent = false,
            // The thread is behind: keep filling this batch (bounded by `MAX_BATCH`).
            Err(TrySendError::Full(batch) | TrySendError::Disconnected(batch)) => {
                self.batch = batch
            }
        }
    }
}

impl Drop for Lane {
    /// Sends what was queued, then stops the thread.
    fn drop(&mut self) {
        self.flush(true);
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

    fn receiver() -> UdpSocket {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        rx
    }

    fn pair() -> [Arc<UdpSocket>; 2] {
        [(); 2].map(|()| Arc::new(UdpSocket::bind("127.0.0.1:0").unwrap()))
    }

    #[test]
    fn packets_leave_in_order_from_the_attached_sockets() {
        let rx = receiver();
        let dst = rx.local_addr().unwrap();
        let [rtp, rtcp] = pair();
        let mut s = MediaSender::new("test-sender", 1).unwrap();
        s.attach(1000, &rtp, &rtcp);
        for round in 0..3u8 {
            for i in 0..10u8 {
                s.push(1000, i == 9, dst, &[round, i]);
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
    fn each_ports_packets_stay_in_order_across_threads() {
        let rx: Vec<UdpSocket> = (0..3).map(|_| receiver()).collect();
        let pairs: Vec<_> = (0..3).map(|_| pair()).collect();
        let mut s = MediaSender::new("test-sender", 2).unwrap();
        for (k, [rtp, rtcp]) in pairs.iter().enumerate() {
            s.attach(2000 + 2 * k as u16, rtp, rtcp);
        }
        for i in 0..50u8 {
            for (k, r) in rx.iter().enumerate() {
                s.push(
                    2000 + 2 * k as u16,
                    false,
                    r.local_addr().unwrap(),
                    &[k as u8, i],
                );
            }
            s.flush();
        }
        let mut buf = [0u8; 4];
        for (k, r) in rx.iter().enumerate() {
            for i in 0..50u8 {
                let n = r.recv(&mut buf).unwrap();
                assert_eq!(&buf[..n], &[k as u8, i]);
            }
        }
    }

    #[test]
    fn dropping_the_sender_sends_what_was_pushed() {
        let rx = receiver();
        let [rtp, rtcp] = pair();
        let mut s = MediaSender::new("test-sender", 1).unwrap();
        s.attach(3000, &rtp, &rtcp);
        s.push(3000, false, rx.local_addr().unwrap(), b"last");
        drop(s);
        let mut buf = [0u8; 8];
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"last");
    }

    #[test]
    fn a_detached_port_sends_nothing_and_lets_its_sockets_go() {
        let rx = receiver();
        let dst = rx.local_addr().unwrap();
        let [rtp, rtcp] = pair();
        let mut s = MediaSender::new("test-sender", 1).unwrap();
        s.attach(4000, &rtp, &rtcp);
        s.push(4000, false, dst, b"before");
        s.detach(4000);
        s.push(4000, false, dst, b"after");
        drop(s);
        let mut buf = [0u8; 8];
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"before");
        rx.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        assert!(rx.recv(&mut buf).is_err(), "sent after detach");
        assert_eq!(Arc::strong_count(&rtp), 1);
        assert_eq!(Arc::strong_count(&rtcp), 1);
    }

    #[test]
    fn a_detach_alone_is_handed_over_and_closes_the_sockets() {
        let [rtp, rtcp] = pair();
        let mut s = MediaSender::new("test-sender", 1).unwrap();
        s.attach(6000, &rtp, &rtcp);
        s.flush();
        // An attach alone waits for packets to ride along with.
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(
            Arc::strong_count(&rtp),
            2,
            "the attach is still queued here"
        );
        s.detach(6000);
        s.flush();
        for _ in 0..100 {
            if Arc::strong_count(&rtp) == 1 && Arc::strong_count(&rtcp) == 1 {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("the sending thread still holds the detached sockets");
    }

    #[test]
    fn sent_batches_come_back_to_be_refilled() {
        let rx = receiver();
        let dst = rx.local_addr().unwrap();
        let [rtp, rtcp] = pair();
        let mut s = MediaSender::new("test-sender", 1).unwrap();
        s.attach(5000, &rtp, &rtcp);
        let mut buf = [0u8; 8];
        for _ in 0..100 {
            s.push(5000, false, dst, b"x");
            s.flush();
            rx.recv(&mut buf).unwrap();
        }
        // The thread returns each batch once it has sent it.
        std::thread::sleep(Duration::from_millis(50));
        assert!(
            s.lanes[0].free.try_iter().count() >= 1,
            "no batch came back"
        );
    }
}
