//! `PacketCodec` through real sockets with tokio-util's `Framed`: many packets
//! of mixed sizes arrive whole and in order; an oversized frame and a peer
//! that hangs up mid-frame are reported as the right errors.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::{SinkExt, StreamExt};
use jaunt_socket::{
    JsonProto, Packet, PacketCodec, PacketType, PbProto, Proto, ProtoConfig, ProtoError, RawProto,
    DEFAULT_MAX_FRAME_LEN,
};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::Framed;

/// Every test finishes well within this, or fails.
const DEADLINE: Duration = Duration::from_secs(60);

const MIB: usize = 1 << 20;

async fn within<T>(test: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(DEADLINE, test)
        .await
        .expect("test timed out")
}

/// A connected pair of TCP streams on the loopback interface.
async fn tcp_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (client, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
    let client = client.unwrap();
    let (server, _) = accepted.unwrap();
    client.set_nodelay(true).unwrap();
    (client, server)
}

/// Deterministic bytes: incompressible (xorshift) or highly compressible.
fn body_bytes(len: usize, seed: u32, compressible: bool) -> Bytes {
    if compressible {
        let line = format!("line {seed} of a compressible body; ");
        return Bytes::from(line.bytes().cycle().take(len).collect::<Vec<u8>>());
    }
    let mut x = seed.wrapping_mul(0x9e37_79b9) | 1;
    Bytes::from(
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect::<Vec<u8>>(),
    )
}

/// The `i`th packet of the bulk test: sizes from empty to 1 MiB, every third
/// one gzip-filtered, some with meta and error statuses.
fn bulk_packet(i: usize) -> Packet {
    let seq = i32::try_from(i).unwrap() + 1;
    let ptype = match i % 3 {
        0 => PacketType::Pull,
        1 => PacketType::Push,
        _ => PacketType::Reply,
    };
    let uri = if ptype == PacketType::Reply {
        String::new()
    } else {
        format!("/bulk/item?i={i}")
    };
    let mut p = Packet::new(ptype, seq, uri);
    p.body_codec = b's';
    let len = match i % 125 {
        0 => MIB,             // 8 bodies of 1 MiB
        1 => 64 * 1024 + i,   // a few larger than the socket buffers
        _ => (i * 37) % 5000, // mostly small, some empty
    };
    p.body = body_bytes(len, u32::try_from(i).unwrap(), i.is_multiple_of(2));
    if i.is_multiple_of(3) {
        p.xfer = b"g".to_vec();
    }
    if i.is_multiple_of(5) {
        p.meta.add("X-Index", i.to_string());
        p.meta.add("note", "a & b = c");
    }
    if i.is_multiple_of(7) {
        p.status = jaunt_socket::Status::not_found(format!("no item {i}"));
    }
    p
}

/// Sends `count` bulk packets from `a` and receives them on `b`, checking
/// each one and that the stream then ends cleanly.
async fn send_and_receive<A, B>(a: A, b: B, proto: Arc<dyn Proto>, count: usize)
where
    A: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    B: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut sender = Framed::new(a, PacketCodec::from_arc(proto.clone()));
    let mut receiver = Framed::new(b, PacketCodec::from_arc(proto));
    let send = tokio::spawn(async move {
        for i in 0..count {
            sender.feed(bulk_packet(i)).await.unwrap();
            if i % 16 == 0 {
                SinkExt::<Packet>::flush(&mut sender).await.unwrap();
            }
        }
        SinkExt::<Packet>::close(&mut sender).await.unwrap();
    });
    let mut received = 0;
    while let Some(got) = receiver.next().await {
        let got = got.unwrap_or_else(|e| panic!("packet {received}: {e}"));
        let want = bulk_packet(received);
        assert_eq!(got.seq, want.seq, "packets arrive in order");
        assert_eq!(got, want, "packet {received}");
        received += 1;
    }
    assert_eq!(
        received, count,
        "every packet arrives, then the stream ends"
    );
    send.await.unwrap();
}

#[tokio::test]
async fn tcp_carries_1000_raw_packets_in_order() {
    within(async {
        let (a, b) = tcp_pair().await;
        send_and_receive(a, b, Arc::new(RawProto::default()), 1000).await;
    })
    .await;
}

#[cfg(unix)]
#[tokio::test]
async fn unix_socket_carries_1000_raw_packets_in_order() {
    within(async {
        let (a, b) = tokio::net::UnixStream::pair().unwrap();
        send_and_receive(a, b, Arc::new(RawProto::default()), 1000).await;
    })
    .await;
}

#[cfg(unix)]
#[tokio::test]
async fn unix_socket_carries_json_and_pb_packets_in_order() {
    within(async {
        for proto in [
            Arc::new(JsonProto::default()) as Arc<dyn Proto>,
            Arc::new(PbProto::default()),
        ] {
            let (a, b) = tokio::net::UnixStream::pair().unwrap();
            send_and_receive(a, b, proto, 260).await;
        }
    })
    .await;
}

#[tokio::test]
async fn both_directions_at_once_over_tcp() {
    within(async {
        let (a, b) = tcp_pair().await;
        let proto: Arc<dyn Proto> = Arc::new(RawProto::default());
        let (a_sink, mut a_stream) = Framed::new(a, PacketCodec::from_arc(proto.clone())).split();
        let (b_sink, mut b_stream) = Framed::new(b, PacketCodec::from_arc(proto)).split();
        async fn pump<S>(mut sink: S, n: usize)
        where
            S: futures_util::Sink<Packet, Error = ProtoError> + Unpin,
        {
            for i in 0..n {
                sink.feed(bulk_packet(i)).await.unwrap();
            }
            sink.close().await.unwrap();
        }
        let a_send = tokio::spawn(pump(a_sink, 300));
        let b_send = tokio::spawn(pump(b_sink, 300));
        let a_recv = tokio::spawn(async move {
            let mut n = 0;
            while let Some(p) = a_stream.next().await {
                assert_eq!(p.unwrap(), bulk_packet(n));
                n += 1;
            }
            n
        });
        let mut n = 0;
        while let Some(p) = b_stream.next().await {
            assert_eq!(p.unwrap(), bulk_packet(n));
            n += 1;
        }
        assert_eq!(n, 300);
        assert_eq!(a_recv.await.unwrap(), 300);
        a_send.await.unwrap();
        b_send.await.unwrap();
    })
    .await;
}

/// Reads from `stream` with `proto` until the first error, which it returns;
/// packets read before it are returned too.
async fn read_until_error<S>(stream: S, proto: Arc<dyn Proto>) -> (Vec<Packet>, Option<ProtoError>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut framed = Framed::new(stream, PacketCodec::from_arc(proto));
    let mut packets = Vec::new();
    while let Some(item) = framed.next().await {
        match item {
            Ok(p) => packets.push(p),
            Err(e) => return (packets, Some(e)),
        }
    }
    (packets, None)
}

#[tokio::test]
async fn oversized_frame_over_tcp_is_frame_too_large() {
    within(async {
        // A frame announcing 4 GiB: refused from its first four bytes.
        let (mut a, b) = tcp_pair().await;
        let ok = {
            let mut buf = BytesMut::new();
            RawProto::default()
                .encode(&Packet::new(PacketType::Push, 1, "/before"), &mut buf)
                .unwrap();
            buf
        };
        a.write_all(&ok).await.unwrap();
        a.write_all(&[0xff, 0xff, 0xff, 0xff, 0, 1, b'1', 3])
            .await
            .unwrap();
        // Keep the writer open: the error must not depend on the close.
        let (packets, err) = read_until_error(b, Arc::new(RawProto::default())).await;
        assert_eq!(
            packets.len(),
            1,
            "the frame before the bad one is delivered"
        );
        assert_eq!(packets[0].uri, "/before");
        match err {
            Some(ProtoError::FrameTooLarge {
                len: 0xffff_ffff,
                limit: DEFAULT_MAX_FRAME_LEN,
            }) => {}
            other => panic!("expected FrameTooLarge, got {other:?}"),
        }
        drop(a);
    })
    .await;
}

#[tokio::test]
async fn frame_over_the_readers_limit_is_frame_too_large() {
    within(async {
        // The sender allows 16 MiB, the reader only 1 MiB: a real 2 MiB frame
        // is refused by its length prefix, before it is buffered.
        let (a, b) = tcp_pair().await;
        let mut sender = Framed::new(a, PacketCodec::new(RawProto::default()));
        let mut big = Packet::new(PacketType::Push, 1, "/big");
        big.body = body_bytes(2 * MIB, 1, false);
        let send = tokio::spawn(async move {
            // The reader may hang up before all of it is written.
            let _ = sender.send(big).await;
            sender
        });
        let small = RawProto::new(ProtoConfig::default().with_max_frame_len(MIB));
        let (packets, err) = read_until_error(b, Arc::new(small)).await;
        assert!(packets.is_empty());
        match err {
            Some(ProtoError::FrameTooLarge { len, limit: MIB }) => assert!(len > 2 * MIB as u64),
            other => panic!("expected FrameTooLarge, got {other:?}"),
        }
        drop(send.await.unwrap());
    })
    .await;
}

#[cfg(unix)]
#[tokio::test]
async fn oversized_json_frame_over_unix_socket_is_frame_too_large() {
    within(async {
        let (mut a, b) = tokio::net::UnixStream::pair().unwrap();
        // 16 MiB announced; with the prefix that is 4 bytes over the limit.
        let announced = u32::try_from(DEFAULT_MAX_FRAME_LEN).unwrap();
        a.write_all(&announced.to_be_bytes()).await.unwrap();
        let (packets, err) = read_until_error(b, Arc::new(JsonProto::default())).await;
        assert!(packets.is_empty());
        match err {
            Some(ProtoError::FrameTooLarge {
                len,
                limit: DEFAULT_MAX_FRAME_LEN,
            }) => {
                assert_eq!(len, DEFAULT_MAX_FRAME_LEN as u64 + 4);
            }
            other => panic!("expected FrameTooLarge, got {other:?}"),
        }
    })
    .await;
}

fn encoded(proto: &dyn Proto, p: &Packet) -> Vec<u8> {
    let mut buf = BytesMut::new();
    proto.encode(p, &mut buf).unwrap();
    buf.to_vec()
}

#[tokio::test]
async fn peer_closing_mid_frame_over_tcp_is_truncated() {
    within(async {
        let proto = RawProto::default();
        let first = encoded(&proto, &bulk_packet(3));
        let mut big = bulk_packet(0);
        big.xfer.clear();
        let second = encoded(&proto, &big);
        let (half, second_len) = (second.len() / 2, second.len());

        let (mut a, b) = tcp_pair().await;
        let writer = tokio::spawn(async move {
            a.write_all(&first).await.unwrap();
            a.write_all(&second[..half]).await.unwrap();
            a.shutdown().await.unwrap();
        });
        let (packets, err) = read_until_error(b, Arc::new(proto)).await;
        writer.await.unwrap();
        assert_eq!(
            packets,
            vec![bulk_packet(3)],
            "the whole frame before is delivered"
        );
        match err {
            Some(ProtoError::Truncated { have, need }) => {
                assert_eq!((have, need), (half, second_len));
            }
            other => panic!("expected Truncated, got {other:?}"),
        }
    })
    .await;
}

#[cfg(unix)]
#[tokio::test]
async fn peer_closing_mid_frame_over_unix_socket_is_truncated() {
    within(async {
        for proto in [
            Arc::new(RawProto::default()) as Arc<dyn Proto>,
            Arc::new(JsonProto::default()),
            Arc::new(PbProto::default()),
        ] {
            let frame = encoded(&*proto, &bulk_packet(10));
            // Inside the length prefix, just after it, and one byte short.
            for cut in [2, 4, 5, frame.len() - 1] {
                let (mut a, b) = tokio::net::UnixStream::pair().unwrap();
                a.write_all(&frame[..cut]).await.unwrap();
                drop(a);
                let (packets, err) = read_until_error(b, proto.clone()).await;
                assert!(packets.is_empty());
                let need = if cut < 4 { 4 } else { frame.len() };
                match err {
                    Some(ProtoError::Truncated { have, need: n }) if have == cut && n == need => {}
                    other => panic!(
                        "{} cut at {cut}: expected Truncated, got {other:?}",
                        proto.name()
                    ),
                }
            }
            // A close between frames is a clean end.
            let (mut a, b) = tokio::net::UnixStream::pair().unwrap();
            a.write_all(&frame).await.unwrap();
            drop(a);
            let (packets, err) = read_until_error(b, proto.clone()).await;
            assert_eq!(packets, vec![bulk_packet(10)]);
            assert!(err.is_none(), "{err:?}");
        }
    })
    .await;
}
