//! Bad input over the wire: a catalogue of every class of malformed frame,
//! each sent by a raw TCP client to a real peer, with the outcome the peer
//! defines for it.
//!
//! The rule (see `docs/reliability.md`):
//!
//! - a frame that is **well framed but bad inside** (its length prefix is
//!   sound, so the stream is still in step) gets an error reply when it is a
//!   pull the peer can answer (400 for a body it cannot decode, 404 for an
//!   unknown uri), and is otherwise **dropped** silently; either way the
//!   connection stays usable, which each case proves by pulling `/echo` on it
//!   afterwards;
//! - a frame whose **framing is broken** (a length under the header or over
//!   the limit, a stream that ends inside a frame) or that the peer refuses
//!   to talk past (an unknown packet type, an auth message without auth) gets
//!   its connection **closed** by the server: the client reads EOF.
//!
//! Throughout, a well-behaved jaunt client on its own session keeps pulling
//! `/echo` successfully, and when every bad connection is gone the server is
//! back to that one session.

mod common;

use std::fmt;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use common::{eventually, wait_sessions};
use jaunt_peer::{Addr, Peer, PeerConfig, PullCtx, Router, Session};
use jaunt_socket::{code, Packet, PacketType, Proto, ProtoConfig, RawProto, Status};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The server's frame size limit.
const LIMIT: usize = 64 * 1024;
/// How long a closed connection may take to show EOF.
const CLOSE_WITHIN: Duration = Duration::from_secs(3);
/// How long the 4 GiB frame may take: "at once".
const CLOSE_AT_ONCE: Duration = Duration::from_secs(1);
/// How long to watch for a reply that must not come.
const QUIET: Duration = Duration::from_millis(150);
/// The limit of the whole catalogue (the machine may be busy).
const CATALOGUE_LIMIT: Duration = Duration::from_secs(120);

// ---------------------------------------------------------------------------
// Frames, by hand
// ---------------------------------------------------------------------------

/// The fields of a raw frame's payload (wire format fields 4..14), written
/// with honest lengths unless a case says otherwise.
#[derive(Clone)]
struct Fields {
    seq: Vec<u8>,
    ptype: u8,
    uri: Vec<u8>,
    status: Vec<u8>,
    meta: Vec<u8>,
    codec: u8,
    body: Vec<u8>,
}

impl Fields {
    /// A pull of `uri` with a JSON body.
    fn pull(seq: i32, uri: &str, json_body: &str) -> Self {
        Self {
            seq: base36(seq).into_bytes(),
            ptype: PacketType::Pull.as_u8(),
            uri: uri.as_bytes().to_vec(),
            status: b"code=0".to_vec(),
            meta: Vec::new(),
            codec: b'j',
            body: json_body.as_bytes().to_vec(),
        }
    }

    fn payload(&self) -> Vec<u8> {
        let mut out = vec![u8::try_from(self.seq.len()).unwrap()];
        out.extend_from_slice(&self.seq);
        out.push(self.ptype);
        out.push(u8::try_from(self.uri.len()).unwrap());
        out.extend_from_slice(&self.uri);
        out.extend_from_slice(&u16::try_from(self.status.len()).unwrap().to_be_bytes());
        out.extend_from_slice(&self.status);
        out.extend_from_slice(&u16::try_from(self.meta.len()).unwrap().to_be_bytes());
        out.extend_from_slice(&self.meta);
        out.push(self.codec);
        out.extend_from_slice(&self.body);
        out
    }

    fn frame(&self) -> Vec<u8> {
        frame(&[], &self.payload())
    }
}

fn base36(n: i32) -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut v = n.unsigned_abs();
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(v % 36) as usize]);
        v /= 36;
        if v == 0 {
            break;
        }
    }
    if n < 0 {
        out.push(b'-');
    }
    out.reverse();
    String::from_utf8(out).unwrap()
}

/// A raw frame with an honest length: u32 length (counting itself), filter
/// count, filter ids, payload (already filtered, if there are ids).
fn frame(ids: &[u8], payload: &[u8]) -> Vec<u8> {
    let len = 4 + 1 + ids.len() + payload.len();
    with_len(
        u32::try_from(len).unwrap(),
        &[&[ids.len() as u8], ids, payload].concat(),
    )
}

/// Any length prefix in front of `rest`.
fn with_len(len: u32, rest: &[u8]) -> Vec<u8> {
    [&len.to_be_bytes()[..], rest].concat()
}

/// A frame encoded by jaunt itself (for filtered payloads).
fn encoded(packet: &Packet) -> Vec<u8> {
    let mut wire = BytesMut::new();
    RawProto::default().encode(packet, &mut wire).unwrap();
    wire.to_vec()
}

/// Deterministic noise (xorshift32).
fn noise(seed: u32, n: usize) -> Vec<u8> {
    let mut x = seed;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

// ---------------------------------------------------------------------------
// The catalogue
// ---------------------------------------------------------------------------

/// What the peer does with a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// A reply with this status code (0: served normally), on a connection
    /// that stays usable.
    Reply(i32),
    /// No reply; the connection stays usable.
    Dropped,
    /// The server closes the connection.
    Closed,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Reply(0) => write!(f, "served (reply code=0)"),
            Self::Reply(c) => write!(f, "reply {c}"),
            Self::Dropped => write!(f, "dropped, connection usable"),
            Self::Closed => write!(f, "connection closed"),
        }
    }
}

/// How the bytes go out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum How {
    /// In one write.
    Whole,
    /// Then the client shuts its write half down (the stream ends).
    ThenEof,
    /// One byte per write, with a pause after each.
    Dribble,
}

struct Case {
    name: &'static str,
    bytes: Vec<u8>,
    how: How,
    expect: Outcome,
    /// The seq a reply must echo.
    seq: i32,
    /// The body a code-0 reply must carry.
    reply_body: &'static [u8],
    /// Must close within this (Closed only).
    close_within: Duration,
}

impl Case {
    fn new(name: &'static str, bytes: Vec<u8>, expect: Outcome) -> Self {
        Self {
            name,
            bytes,
            how: How::Whole,
            expect,
            seq: 0,
            reply_body: b"",
            close_within: CLOSE_WITHIN,
        }
    }

    fn how(mut self, how: How) -> Self {
        self.how = how;
        self
    }

    fn seq(mut self, seq: i32) -> Self {
        self.seq = seq;
        self
    }

    fn body(mut self, body: &'static [u8]) -> Self {
        self.reply_body = body;
        self
    }

    fn close_within(mut self, limit: Duration) -> Self {
        self.close_within = limit;
        self
    }
}

fn catalogue() -> Vec<Case> {
    use Outcome::{Closed, Dropped, Reply};
    let echo = |seq: i32| Fields::pull(seq, "/echo", "\"hi\"");
    let mut cases = Vec::new();

    // --- Broken framing: the stream cannot be trusted, the connection closes.
    let good = echo(1).frame();
    cases.push(
        Case::new(
            "truncated frame, then the stream ends",
            good[..good.len() - 3].to_vec(),
            Closed,
        )
        .how(How::ThenEof),
    );
    cases.push(Case::new(
        "length 3: smaller than the 5-byte envelope",
        with_len(3, &[0; 16]),
        Closed,
    ));
    cases.push(Case::new(
        "length 12, no filters: smaller than the 13-byte header",
        with_len(12, &[0; 8]),
        Closed,
    ));
    cases.push(
        Case::new(
            "length 0xFFFFFFFF (4 GiB)",
            with_len(u32::MAX, &[0; 64]),
            Closed,
        )
        .close_within(CLOSE_AT_ONCE),
    );
    cases.push(Case::new(
        "length one byte over the 64 KiB limit",
        with_len(u32::try_from(LIMIT + 1).unwrap(), &[0; 64]),
        Closed,
    ));
    let mut bad_type = echo(2);
    bad_type.ptype = 9;
    cases.push(Case::new(
        "unknown packet type 9 (405)",
        bad_type.frame(),
        Closed,
    ));
    let mut auth = echo(3);
    auth.ptype = PacketType::AuthPull.as_u8();
    auth.uri.clear();
    cases.push(Case::new(
        "AUTH_PULL on a peer without auth",
        auth.frame(),
        Closed,
    ));
    cases.push(Case::new(
        "random garbage (seeded, 512 bytes)",
        noise(0x9E37_79B9, 512),
        Closed,
    ));

    // --- Well framed, bad inside: dropped, the connection goes on.
    cases.push(Case::new(
        "filter count past the frame",
        with_len(
            4 + 1 + 8,
            &[200, b'g', b'g', b'g', b'g', b'g', b'g', b'g', b'g'],
        ),
        Dropped,
    ));
    let seq_len_past = [&[40u8][..], b"1\x01\x05/echo\x00"].concat();
    cases.push(Case::new(
        "seq length past the frame",
        frame(&[], &seq_len_past),
        Dropped,
    ));
    let uri_len_past = [&b"\x011\x01\xc8"[..], b"/echo/and/more"].concat();
    cases.push(Case::new(
        "uri length past the frame",
        frame(&[], &uri_len_past),
        Dropped,
    ));
    let status_len_past = [&b"\x011\x01\x05/echo\x10\x00"[..], b"code=0"].concat();
    cases.push(Case::new(
        "status length past the frame",
        frame(&[], &status_len_past),
        Dropped,
    ));
    let meta_len_past = [&b"\x011\x01\x05/echo\x00\x06code=0\x02\x00"[..], b"a=1"].concat();
    cases.push(Case::new(
        "meta length past the frame",
        frame(&[], &meta_len_past),
        Dropped,
    ));
    let no_codec = b"\x011\x01\x05/echo\x00\x06code=0\x00\x00".to_vec();
    cases.push(Case::new(
        "frame ends before the body codec",
        frame(&[], &no_codec),
        Dropped,
    ));
    let mut bad_seq = echo(4);
    bad_seq.seq = b"1_".to_vec();
    cases.push(Case::new(
        "seq not base-36 (\"1_\")",
        bad_seq.frame(),
        Dropped,
    ));
    let mut big_seq = echo(5);
    big_seq.seq = b"zik0zk".to_vec(); // i32::MAX + 1
    cases.push(Case::new(
        "seq out of i32 range (\"zik0zk\")",
        big_seq.frame(),
        Dropped,
    ));
    let mut bad_uri = echo(6);
    bad_uri.uri = b"/echo\xff".to_vec();
    cases.push(Case::new("uri not UTF-8", bad_uri.frame(), Dropped));
    let mut bad_status = echo(7);
    bad_status.status = b"code=1&msg=%G0".to_vec();
    cases.push(Case::new(
        "invalid percent-encoding in the status",
        bad_status.frame(),
        Dropped,
    ));
    let mut bad_code = echo(8);
    bad_code.status = b"code=zero".to_vec();
    cases.push(Case::new(
        "status code not an integer",
        bad_code.frame(),
        Dropped,
    ));
    let mut bad_meta = echo(9);
    bad_meta.meta = b"a=%zz".to_vec();
    cases.push(Case::new(
        "invalid percent-encoding in the meta",
        bad_meta.frame(),
        Dropped,
    ));
    cases.push(Case::new(
        "unknown filter id 'z'",
        frame(b"z", &echo(10).payload()),
        Dropped,
    ));
    cases.push(Case::new(
        "corrupt gzip",
        frame(b"g", b"\x1f\x8b\x08\x00this is not deflate data"),
        Dropped,
    ));
    let mut bad_sum = echo(11).payload();
    bad_sum.extend_from_slice(&[0xAB; 16]);
    cases.push(Case::new(
        "failed md5 checksum",
        frame(b"m", &bad_sum),
        Dropped,
    ));
    cases.push(Case::new(
        "random garbage inside an honest envelope (seeded)",
        frame(&[], &noise(0x1234_5678, 300)),
        Dropped,
    ));
    let mut reply = echo(999);
    reply.ptype = PacketType::Reply.as_u8();
    reply.uri.clear();
    cases.push(Case::new(
        "unsolicited REPLY (seq 999, nobody waits)",
        reply.frame(),
        Dropped,
    ));
    let mut push = echo(12);
    push.ptype = PacketType::Push.as_u8();
    push.uri = b"/no/such/push".to_vec();
    cases.push(Case::new(
        "PUSH to an unknown uri (a push has no reply)",
        push.frame(),
        Dropped,
    ));

    // --- Sound frames the handler layer refuses: an error reply.
    cases.push(
        Case::new(
            "body that does not decode (a string to /sum)",
            Fields::pull(13, "/sum", "\"not a list\"").frame(),
            Reply(code::BAD_MESSAGE),
        )
        .seq(13),
    );
    let mut unknown_codec = Fields::pull(14, "/echo", "\"hi\"");
    unknown_codec.codec = 200;
    cases.push(
        Case::new(
            "unknown body codec id 200 with a body",
            unknown_codec.frame(),
            Reply(code::BAD_MESSAGE),
        )
        .seq(14),
    );
    let mut no_codec_body = Fields::pull(15, "/echo", "\"hi\"");
    no_codec_body.codec = 0;
    cases.push(
        Case::new(
            "non-empty body with codec 0",
            no_codec_body.frame(),
            Reply(code::BAD_MESSAGE),
        )
        .seq(15),
    );
    cases.push(
        Case::new(
            "unknown uri",
            Fields::pull(16, "/no/such/uri", "1").frame(),
            Reply(code::NOT_FOUND),
        )
        .seq(16),
    );

    // --- Unusual but valid: served.
    let mut lenient = Fields::pull(17, "/echo", "\"lenient\"");
    lenient.status.clear();
    lenient.seq = b"00H".to_vec(); // 17, upper case with leading zeros
    cases.push(
        Case::new(
            "empty status, non-canonical seq \"00H\"",
            lenient.frame(),
            Reply(0),
        )
        .seq(17)
        .body(b"\"lenient\""),
    );
    let mut filtered = Packet::new(PacketType::Pull, 18, "/echo");
    filtered.body_codec = b'j';
    filtered.body = bytes::Bytes::from_static(b"\"through m and g\"");
    filtered.xfer = vec![b'm', b'g'];
    cases.push(
        Case::new("pull through md5 + gzip", encoded(&filtered), Reply(0))
            .seq(18)
            .body(b"\"through m and g\""),
    );
    cases.push(
        Case::new(
            "a frame dribbled one byte at a time",
            Fields::pull(19, "/echo", "\"slowly\"").frame(),
            Reply(0),
        )
        .how(How::Dribble)
        .seq(19)
        .body(b"\"slowly\""),
    );
    cases
}

/// What jaunt's own decoder (with the server's limit) says about the bytes:
/// the error class, for the printed table.
fn decoder_verdict(bytes: &[u8]) -> String {
    let proto = RawProto::new(ProtoConfig::default().with_max_frame_len(LIMIT));
    let mut buf = BytesMut::from(bytes);
    match proto.decode(&mut buf) {
        Ok(Some(p)) => format!("decodes ({:?} {:?})", p.ptype, p.uri),
        Ok(None) => "incomplete".to_owned(),
        Err(e) if e.is_stream_intact() => format!("content error: {e}"),
        Err(e) => format!("stream error: {e}"),
    }
}

// ---------------------------------------------------------------------------
// Talking to the server
// ---------------------------------------------------------------------------

enum Read {
    Frame(Box<Packet>),
    Eof,
    Timeout,
}

/// Reads one frame (or EOF / a reset, or nothing within `limit`).
async fn read_frame(conn: &mut TcpStream, buf: &mut BytesMut, limit: Duration) -> Read {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(p) = RawProto::default()
            .decode(buf)
            .expect("the server writes well-formed frames")
        {
            return Read::Frame(Box::new(p));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, conn.read_buf(buf)).await {
            Err(_) => return Read::Timeout,
            Ok(Ok(0) | Err(_)) => return Read::Eof,
            Ok(Ok(_)) => {}
        }
    }
}

async fn send(conn: &mut TcpStream, case: &Case) {
    match case.how {
        How::Whole => conn.write_all(&case.bytes).await.unwrap(),
        How::ThenEof => {
            conn.write_all(&case.bytes).await.unwrap();
            conn.shutdown().await.unwrap();
        }
        How::Dribble => {
            for b in &case.bytes {
                conn.write_all(std::slice::from_ref(b)).await.unwrap();
                tokio::time::sleep(Duration::from_millis(3)).await;
            }
        }
    }
}

/// Proves `conn` is still served: a valid pull of `/echo` gets its reply,
/// and it is the first frame to come back.
async fn echo_on(conn: &mut TcpStream, buf: &mut BytesMut, seq: i32, name: &str) {
    let text = format!("\"after: {}\"", name.replace('"', "'"));
    conn.write_all(&Fields::pull(seq, "/echo", &text).frame())
        .await
        .unwrap();
    match read_frame(conn, buf, CLOSE_WITHIN).await {
        Read::Frame(p) => {
            assert_eq!(
                (p.ptype, p.seq),
                (PacketType::Reply, seq),
                "{name}: the first frame back is not the echo reply: {p:?}"
            );
            assert!(p.status.is_ok(), "{name}: echo failed: {}", p.status);
            assert_eq!(p.body, text.as_bytes(), "{name}");
        }
        Read::Eof => panic!("{name}: the connection was closed, it should stay usable"),
        Read::Timeout => panic!("{name}: no echo reply on a connection that should be usable"),
    }
}

/// The well-behaved client's check, after every case.
async fn good_client_pulls(good: &Session, name: &str) {
    let text = format!("good client after: {name}");
    let back: String = good
        .pull("/echo", &text)
        .await
        .unwrap_or_else(|e| panic!("{name}: the good client's pull failed: {e}"))
        .decode()
        .unwrap();
    assert_eq!(back, text);
}

/// The peak virtual memory of this process (Linux), in KiB.
fn vm_peak_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmPeak:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Runs one case on a fresh connection; returns what happened (for the
/// table) after asserting it is the defined outcome.
async fn run_case(server: &Peer, sa: std::net::SocketAddr, case: &Case, n: i32) -> String {
    let name = case.name;
    let mut conn = TcpStream::connect(sa).await.unwrap();
    conn.set_nodelay(true).unwrap();
    wait_sessions(server, 2).await;
    let mut buf = BytesMut::new();
    let peak_before = vm_peak_kib();
    let start = Instant::now();
    send(&mut conn, case).await;
    let observed = match case.expect {
        Outcome::Closed => {
            match read_frame(&mut conn, &mut buf, case.close_within).await {
                Read::Eof => {}
                Read::Frame(p) => panic!("{name}: expected a close, got a frame {p:?}"),
                Read::Timeout => panic!(
                    "{name}: the server did not close the connection within {:?}",
                    case.close_within
                ),
            }
            let took = start.elapsed();
            // Closed by the server, not by us: we still hold our end.
            assert!(
                eventually(CLOSE_WITHIN, || server.session_count() == 1).await,
                "{name}: the server still counts the session"
            );
            if let (Some(before), Some(after)) = (peak_before, vm_peak_kib()) {
                // A reservation for the announced frame would show here.
                assert!(
                    after.saturating_sub(before) < 1024 * 1024,
                    "{name}: peak virtual memory grew by {} KiB",
                    after - before
                );
            }
            format!("closed after {} ms", took.as_millis())
        }
        Outcome::Dropped => {
            echo_on(&mut conn, &mut buf, 5000 + n, name).await;
            // And nothing else comes: no reply for the dropped frame.
            match read_frame(&mut conn, &mut buf, QUIET).await {
                Read::Timeout => {}
                Read::Frame(p) => panic!("{name}: a frame for a dropped frame: {p:?}"),
                Read::Eof => panic!("{name}: closed after a dropped frame"),
            }
            "no reply; echo on the same connection ok".to_owned()
        }
        Outcome::Reply(want) => {
            let p = match read_frame(&mut conn, &mut buf, CLOSE_WITHIN).await {
                Read::Frame(p) => p,
                Read::Eof => panic!("{name}: closed, expected reply {want}"),
                Read::Timeout => panic!("{name}: no reply, expected {want}"),
            };
            assert_eq!(
                (p.ptype, p.seq),
                (PacketType::Reply, case.seq),
                "{name}: {p:?}"
            );
            assert_eq!(p.status.code(), want, "{name}: {}", p.status);
            if want == 0 {
                assert_eq!(p.body, case.reply_body, "{name}");
            } else {
                assert_eq!(
                    p.status.msg(),
                    code::text(want).unwrap(),
                    "{name}: standard message"
                );
                assert_eq!(
                    (p.body_codec, p.body.len()),
                    (0, 0),
                    "{name}: error reply body"
                );
            }
            echo_on(&mut conn, &mut buf, 5000 + n, name).await;
            if want == 0 {
                format!("reply code=0, body {}", String::from_utf8_lossy(&p.body))
            } else {
                format!("reply {} ({})", p.status.code(), status_text(&p.status))
            }
        }
    };
    if case.expect != Outcome::Closed {
        assert_eq!(
            server.session_count(),
            2,
            "{name}: the connection is still served"
        );
        drop(conn);
        wait_sessions(server, 1).await;
    }
    observed
}

fn status_text(st: &Status) -> String {
    match st.cause() {
        Some(c) if !c.is_empty() => format!("{}: {c}", st.msg()),
        _ => st.msg().to_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_over_the_wire_catalogue() {
    let run = async {
        let mut routes = Router::new();
        routes
            .pull("/echo", |_: PullCtx, text: String| async move {
                Ok::<_, Status>(text)
            })
            .unwrap();
        routes
            .pull("/sum", |_: PullCtx, nums: Vec<i64>| async move {
                Ok::<_, Status>(nums.iter().sum::<i64>())
            })
            .unwrap();
        let server = Peer::builder(routes)
            .config(PeerConfig::builder().max_frame_len(LIMIT).build())
            .build()
            .unwrap();
        let addr = server.listen("127.0.0.1:0").await.unwrap();
        let Addr::Tcp(sa) = addr else {
            unreachable!("a TCP listener")
        };

        let client = Peer::new(Router::new());
        let good = client.dial(&addr).await.unwrap();
        wait_sessions(&server, 1).await;
        good_client_pulls(&good, "start").await;

        let cases = catalogue();
        let mut rows = Vec::new();
        for (n, case) in cases.iter().enumerate() {
            let observed = run_case(&server, sa, case, i32::try_from(n).unwrap()).await;
            good_client_pulls(&good, case.name).await;
            rows.push((case, observed));
        }

        println!("\n| # | class | defined outcome | decoder says | observed |");
        println!("|---|---|---|---|---|");
        for (n, (case, observed)) in rows.iter().enumerate() {
            println!(
                "| {} | {} | {} | {} | {} |",
                n + 1,
                case.name,
                case.expect,
                decoder_verdict(&case.bytes),
                observed
            );
        }

        // Every bad connection is gone; the good client is still there.
        wait_sessions(&server, 1).await;
        assert!(!good.is_closed());
        good_client_pulls(&good, "the end").await;
        client.close().await;
        server.close().await;
    };
    tokio::time::timeout(CATALOGUE_LIMIT, run)
        .await
        .expect("the catalogue did not finish in time");
}
