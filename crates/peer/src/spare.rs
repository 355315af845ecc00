//! Per-thread spare buffers for reading and encoding frames.
//!
//! A frame split off a `BytesMut` shares its allocation. Once every frame cut
//! from it has been dropped (a reply written, a request served), the buffer
//! is the allocation's only owner again and `BytesMut::reserve` takes the
//! allocation back instead of asking the allocator for a new one. Keeping a
//! few such buffers per worker thread (not per session) lets a busy
//! connection read and encode frames without touching the allocator, while an
//! idle session still holds no buffer at all.
//!
//! A buffer whose frames are still alive (a handler kept its request) costs
//! nothing extra: its next `reserve` allocates as it would have without the
//! spare, and the old allocation goes when its last frame does. Frames that
//! wait in a write queue are copied out first (`link.rs`), so a slow reader
//! never keeps a thread's encode buffers alive.

use std::cell::RefCell;

use bytes::{Bytes, BytesMut};

/// Read buffers kept per thread: enough for the readers of one thread that
/// are between a wake-up and their next wait at the same time.
const MAX_SPARE_READ: usize = 16;
/// A buffer grown beyond this (for one large frame) is not kept: the spares
/// of a thread stay under `MAX_SPARE_READ` × this, plus one encode buffer.
const MAX_SPARE_CAPACITY: usize = 64 * 1024;
/// The encode buffer is refilled to this size when it runs low.
const ENCODE_CHUNK: usize = 16 * 1024;
/// Below this much free room, the encode buffer is refilled before encoding.
const MIN_ENCODE_ROOM: usize = 2 * 1024;

thread_local! {
    static READ: RefCell<Vec<BytesMut>> = const { RefCell::new(Vec::new()) };
    static ENCODE: RefCell<BytesMut> = RefCell::new(BytesMut::new());
}

/// A read buffer: a spare one of this thread, or an empty new one (which
/// allocates on first `reserve`).
pub(crate) fn take_read_buffer() -> BytesMut {
    READ.with(|spare| spare.borrow_mut().pop())
        .unwrap_or_default()
}

/// Gives an emptied read buffer back to this thread's spares (or lets it go
/// when there are enough).
pub(crate) fn give_back_read_buffer(buf: BytesMut) {
    if buf.capacity() == 0 || buf.capacity() > MAX_SPARE_CAPACITY || !buf.is_empty() {
        return;
    }
    READ.with(|spare| {
        let mut spare = spare.borrow_mut();
        if spare.len() < MAX_SPARE_READ {
            spare.push(buf);
        }
    });
}

/// Runs `write` on this thread's encode buffer and returns what it appended
/// as one frame. On error nothing is kept (`write` must leave the buffer as
/// it found it, as [`jaunt_socket::Proto::encode`] does).
pub(crate) fn encode_frame<E>(
    write: impl FnOnce(&mut BytesMut) -> Result<(), E>,
) -> Result<Bytes, E> {
    ENCODE.with(|spare| match spare.try_borrow_mut() {
        Ok(mut buf) => {
            if buf.capacity() - buf.len() < MIN_ENCODE_ROOM {
                buf.reserve(ENCODE_CHUNK);
            }
            write(&mut buf)?;
            let frame = buf.split().freeze();
            if buf.capacity() > MAX_SPARE_CAPACITY {
                // Grown for a large frame: not kept for the thread's life.
                *buf = BytesMut::new();
            }
            Ok(frame)
        }
        // Only if `write` itself encodes a frame: it gets a buffer of its own.
        Err(_) => {
            let mut buf = BytesMut::new();
            write(&mut buf)?;
            Ok(buf.freeze())
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_is_exactly_what_was_written_and_the_allocation_comes_back() {
        let first = encode_frame::<()>(|buf| {
            buf.extend_from_slice(b"one frame");
            Ok(())
        })
        .unwrap();
        assert_eq!(&first[..], b"one frame");
        let first_ptr = first.as_ptr();
        drop(first);
        // Fill the buffer until it has to be refilled: with the first frame
        // gone, the refill reuses the same allocation.
        let mut reused = false;
        for _ in 0..64 {
            let frame = encode_frame::<()>(|buf| {
                buf.extend_from_slice(&[7; 1000]);
                Ok(())
            })
            .unwrap();
            assert_eq!(frame.len(), 1000);
            reused |= frame.as_ptr() == first_ptr;
        }
        assert!(reused, "the encode buffer's allocation was not reused");
    }

    #[test]
    fn a_failed_write_keeps_nothing() {
        let failed = encode_frame(|buf| {
            let before = buf.len();
            buf.extend_from_slice(b"half");
            buf.truncate(before);
            Err("bad field")
        });
        assert_eq!(failed, Err("bad field"));
        let next = encode_frame::<()>(|buf| {
            buf.extend_from_slice(b"next");
            Ok(())
        })
        .unwrap();
        assert_eq!(&next[..], b"next");
    }

    #[test]
    fn frames_still_alive_are_never_overwritten() {
        let kept: Vec<Bytes> = (0u8..50)
            .map(|i| {
                encode_frame::<()>(|buf| {
                    buf.extend_from_slice(&[i; 700]);
                    Ok(())
                })
                .unwrap()
            })
            .collect();
        for (i, frame) in kept.iter().enumerate() {
            assert!(frame.iter().all(|&b| usize::from(b) == i));
        }
    }

    #[test]
    fn a_buffer_grown_for_a_large_frame_is_not_kept() {
        // A frame that reserved room for 1 MiB (as a framing does before
        // writing a large body) but wrote little: the room left is large.
        let frame = encode_frame::<()>(|buf| {
            buf.reserve(1 << 20);
            buf.extend_from_slice(b"small after all");
            Ok(())
        })
        .unwrap();
        assert_eq!(&frame[..], b"small after all");
        ENCODE.with(|spare| assert!(spare.borrow().capacity() <= MAX_SPARE_CAPACITY));

        give_back_read_buffer(BytesMut::with_capacity(1 << 20));
        assert!(take_read_buffer().capacity() <= MAX_SPARE_CAPACITY);
    }

    #[test]
    fn read_buffers_are_kept_only_when_empty_and_allocated() {
        give_back_read_buffer(BytesMut::new());
        let mut partial = BytesMut::with_capacity(64);
        partial.extend_from_slice(b"half a frame");
        give_back_read_buffer(partial);
        let taken = take_read_buffer();
        assert_eq!(taken.capacity(), 0, "neither buffer should have been kept");

        give_back_read_buffer(BytesMut::with_capacity(4096));
        let taken = take_read_buffer();
        assert!(taken.capacity() >= 4096 && taken.is_empty());
    }
}
