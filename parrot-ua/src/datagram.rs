//! [`DatagramBuf`]: received SIP datagrams copied into shared chunks instead of a buffer each.

use bytes::{Bytes, BytesMut};

/// Where an adapter copies each SIP datagram it receives (out of its socket's receive buffer)
/// to hand it to the agent as [`Bytes`].
///
/// `Bytes::copy_from_slice` costs two allocations per datagram: its buffer, and the shared
/// header made the first time the endpoint keeps a slice of the message (every message, as
/// it is parsed). Here datagrams are copied one after another into a chunk of
/// [`DatagramBuf::CHUNK`] bytes shared by reference count: one allocation (and its header)
/// per chunk, some thirty SIP messages, and slices of a message cost nothing more.
///
/// A chunk is freed when the last message in it is: a message kept long (a proxied INVITE
/// waiting for its answer) keeps its whole chunk, at most [`DatagramBuf::CHUNK`] bytes.
/// Datagrams larger than a quarter of a chunk get a buffer of their own.
#[derive(Debug, Default)]
pub struct DatagramBuf {
    chunk: BytesMut,
}

impl DatagramBuf {
    /// The size of one chunk.
    pub const CHUNK: usize = 16 * 1024;

    /// An empty buffer (the first datagram allocates its chunk).
    pub fn new() -> Self {
        DatagramBuf::default()
    }

    /// `data`, copied into the current chunk (or a new one when it does not fit).
    pub fn copy(&mut self, data: &[u8]) -> Bytes {
        if data.len() > Self::CHUNK / 4 {
            return Bytes::copy_from_slice(data);
        }
        if self.chunk.capacity() - self.chunk.len() < data.len() {
            self.chunk = BytesMut::with_capacity(Self::CHUNK);
        }
        self.chunk.extend_from_slice(data);
        self.chunk.split().freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_datagram_comes_back_as_it_was_copied_in() {
        let mut buf = DatagramBuf::new();
        let mut kept = Vec::new();
        for i in 0..200usize {
            let data: Vec<u8> = (0..(i * 37) % 900 + 1).map(|j| (i + j) as u8).collect();
            kept.push((buf.copy(&data), data));
        }
        let big = vec![7u8; DatagramBuf::CHUNK];
        kept.push((buf.copy(&big), big));
        for (b, data) in &kept {
            assert_eq!(&b[..], &data[..]);
            assert_eq!(&b.slice(1..)[..], &data[1..]);
        }
    }

    #[test]
    fn messages_share_a_chunk_until_it_is_full() {
        let mut buf = DatagramBuf::new();
        let a = buf.copy(&[1; 500]);
        let b = buf.copy(&[2; 500]);
        // Adjacent in one allocation.
        assert_eq!(a.as_ptr().wrapping_add(500), b.as_ptr());
        let fill = DatagramBuf::CHUNK / 4;
        let mut last = b;
        for _ in 0..8 {
            last = buf.copy(&vec![3; fill]);
        }
        assert_eq!(&last[..], &vec![3; fill][..]);
        assert_eq!(&a[..], &[1; 500][..]);
    }
}
