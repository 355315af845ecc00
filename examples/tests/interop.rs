//! Runs the `interop` program as separate processes: `serve` on a free
//! port, then `check` against it, with and without gzip; and `selftest`.
//! Every child is killed when its test ends, and every wait is bounded.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const INTEROP: &str = env!("CARGO_BIN_EXE_interop");

/// How long a server may take to print its address.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a `check` or `selftest` run may take.
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// A child process that is killed when dropped.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `interop serve --addr 127.0.0.1:0 [--gzip]` and returns it with
/// the address it printed.
fn start_server(gzip: bool) -> (KillOnDrop, String) {
    start_server_with(if gzip { &["--gzip"] } else { &[] })
}

/// Starts `interop serve --addr 127.0.0.1:0 EXTRA...` and returns it with
/// the address it printed.
fn start_server_with(extra: &[&str]) -> (KillOnDrop, String) {
    let mut command = Command::new(INTEROP);
    command.args(["serve", "--addr", "127.0.0.1:0"]).args(extra);
    let mut server = KillOnDrop(
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start interop serve"),
    );
    let stdout = server.0.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx
        .recv_timeout(START_TIMEOUT)
        .expect("interop serve printed nothing in time");
    let addr = line
        .trim_end()
        .strip_prefix("LISTENING ")
        .unwrap_or_else(|| panic!("expected `LISTENING host:port`, got {line:?}"))
        .to_owned();
    (server, addr)
}

/// Runs `interop ARGS` to completion (killing it after [`RUN_TIMEOUT`]) and
/// returns its exit status and standard output.
fn run(args: &[&str]) -> (ExitStatus, String) {
    let mut child = KillOnDrop(
        Command::new(INTEROP)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start interop"),
    );
    let read_all = |mut from: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut out = String::new();
            let _ = from.read_to_string(&mut out);
            out
        })
    };
    let stdout = read_all(Box::new(child.0.stdout.take().expect("piped stdout")));
    let stderr = read_all(Box::new(child.0.stderr.take().expect("piped stderr")));
    let deadline = Instant::now() + RUN_TIMEOUT;
    let status = loop {
        if let Some(status) = child.0.try_wait().expect("wait for interop") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "interop {args:?} did not finish within {RUN_TIMEOUT:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = stdout.join().expect("stdout reader");
    let err = stderr.join().expect("stderr reader");
    // Shown when the test fails.
    println!("interop {} ({status}):\n{out}{err}", args.join(" "));
    (status, out)
}

fn assert_all_ok(status: ExitStatus, out: &str) {
    assert!(status.success(), "exit status {status}, output:\n{out}");
    assert!(!out.contains("FAIL"), "output:\n{out}");
    assert!(out.contains("checks ok"), "output:\n{out}");
}

#[test]
fn check_against_serve() {
    let (_server, addr) = start_server(false);
    let (status, out) = run(&["check", "--addr", &addr]);
    assert_all_ok(status, &out);
    assert!(out.contains("ok   notice/hello"), "output:\n{out}");
}

#[test]
fn check_against_serve_with_gzip() {
    let (_server, addr) = start_server(true);
    let (status, out) = run(&["check", "--addr", &addr, "--gzip"]);
    assert_all_ok(status, &out);
}

#[test]
fn check_notices_replies_without_gzip() {
    // A server that gzips every reply, checked by a client that expects the
    // replies to mirror its (unfiltered) pulls: the filter checks fail.
    let (_server, addr) = start_server(true);
    let (status, out) = run(&["check", "--addr", &addr]);
    assert!(!status.success(), "output:\n{out}");
    assert!(out.contains("FAIL math/add"), "output:\n{out}");
    assert!(out.contains("checks FAILED"), "output:\n{out}");
}

#[test]
fn check_fails_when_nobody_listens() {
    // Find a port nobody listens on: bind one, then free it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let (status, out) = run(&["check", "--addr", &format!("127.0.0.1:{port}")]);
    assert!(!status.success(), "output:\n{out}");
    assert!(out.contains("FAIL dial"), "output:\n{out}");
}

#[test]
fn selftest() {
    let (status, out) = run(&["selftest"]);
    assert_all_ok(status, &out);
    let (status, out) = run(&["selftest", "--gzip"]);
    assert_all_ok(status, &out);
}

#[test]
fn bad_arguments_are_refused() {
    let (status, _) = run(&["serve"]);
    assert_eq!(status.code(), Some(2));
    let (status, _) = run(&["check", "--addr"]);
    assert_eq!(status.code(), Some(2));
    let (status, _) = run(&["frobnicate"]);
    assert_eq!(status.code(), Some(2));
}

#[test]
fn serve_stops_on_sigterm() {
    let (mut server, addr) = start_server(false);
    // It serves until then.
    let (status, out) = run(&["check", "--addr", &addr]);
    assert_all_ok(status, &out);
    let killed = Command::new("kill")
        .args(["-TERM", &server.0.id().to_string()])
        .status()
        .expect("run kill");
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = server.0.try_wait().expect("wait for interop serve") {
            break status;
        }
        assert!(Instant::now() < deadline, "interop serve ignored SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "exit status {status} after SIGTERM");
}

#[test]
fn check_with_auth_accepted() {
    let (_server, addr) = start_server_with(&["--auth", "s3cret"]);
    let (status, out) = run(&["check", "--addr", &addr, "--auth", "s3cret"]);
    assert_all_ok(status, &out);
    assert!(out.contains("ok   auth handshake"), "output:\n{out}");
    // The hello arrives, after the handshake (a hello pushed before the
    // AUTH_REPLY would have failed the client's handshake).
    assert!(out.contains("ok   notice/hello"), "output:\n{out}");
    // With gzip too: the replies mirror the pulls' filter.
    let (status, out) = run(&["check", "--addr", &addr, "--auth", "s3cret", "--gzip"]);
    assert_all_ok(status, &out);
}

#[test]
fn check_with_auth_refused() {
    let (_server, addr) = start_server_with(&["--auth", "s3cret"]);
    // Expected refusal: passes.
    let (status, out) = run(&[
        "check",
        "--addr",
        &addr,
        "--auth",
        "guess",
        "--expect-auth-fail",
    ]);
    assert_all_ok(status, &out);
    assert!(out.contains("ok   auth refused"), "output:\n{out}");
    // The same token without --expect-auth-fail: fails, saying why.
    let (status, out) = run(&["check", "--addr", &addr, "--auth", "guess"]);
    assert_eq!(status.code(), Some(1), "output:\n{out}");
    assert!(
        out.contains("FAIL auth handshake: the server refused the token")
            && out.contains("401 Unauthorized"),
        "output:\n{out}"
    );
    // --expect-auth-fail with the right token: fails.
    let (status, out) = run(&[
        "check",
        "--addr",
        &addr,
        "--auth",
        "s3cret",
        "--expect-auth-fail",
    ]);
    assert!(!status.success(), "output:\n{out}");
    assert!(
        out.contains("FAIL auth refused (as expected): the server accepted the token"),
        "output:\n{out}"
    );
    // No token at all: the server drops the session, every check fails.
    let (status, out) = run(&["check", "--addr", &addr]);
    assert!(!status.success(), "output:\n{out}");
    assert!(out.contains("FAIL math/add"), "output:\n{out}");
    assert!(
        out.contains("if it requires auth, pass --auth"),
        "output:\n{out}"
    );
    // --expect-auth-fail needs --auth.
    let (status, _) = run(&["check", "--addr", &addr, "--expect-auth-fail"]);
    assert_eq!(status.code(), Some(2));
}

#[test]
fn expect_auth_fail_against_a_server_without_auth_fails() {
    // A server without auth drops a session whose first frame is an
    // AUTH_PULL: that is no 401 refusal.
    let (_server, addr) = start_server(false);
    let (status, out) = run(&[
        "check",
        "--addr",
        &addr,
        "--auth",
        "guess",
        "--expect-auth-fail",
    ]);
    assert!(!status.success(), "output:\n{out}");
    assert!(out.contains("FAIL auth refused"), "output:\n{out}");
}

#[test]
fn check_with_heartbeat_survives_idle_time() {
    let (_server, addr) = start_server_with(&["--heartbeat", "1", "--auth", "t"]);
    let (status, out) = run(&["check", "--addr", &addr, "--heartbeat", "1", "--auth", "t"]);
    assert_all_ok(status, &out);
    assert!(
        out.contains("ok   heartbeat every 1s keeps the session open"),
        "output:\n{out}"
    );
}

#[test]
fn selftest_with_auth_and_heartbeat() {
    let (status, out) = run(&["selftest", "--auth", "t", "--heartbeat", "1", "--gzip"]);
    assert_all_ok(status, &out);
    assert!(out.contains("ok   auth handshake"), "output:\n{out}");
    assert!(out.contains("ok   heartbeat"), "output:\n{out}");
}

/// One raw erpc frame (no filters) as Go erpc writes it.
fn raw_frame(
    mtype: u8,
    seq: &str,
    uri: &str,
    status: &str,
    meta: &str,
    codec: u8,
    body: &[u8],
) -> Vec<u8> {
    let mut payload = vec![0u8]; // no transfer filter
    payload.push(u8::try_from(seq.len()).unwrap());
    payload.extend_from_slice(seq.as_bytes());
    payload.push(mtype);
    payload.push(u8::try_from(uri.len()).unwrap());
    payload.extend_from_slice(uri.as_bytes());
    payload.extend_from_slice(&u16::try_from(status.len()).unwrap().to_be_bytes());
    payload.extend_from_slice(status.as_bytes());
    payload.extend_from_slice(&u16::try_from(meta.len()).unwrap().to_be_bytes());
    payload.extend_from_slice(meta.as_bytes());
    payload.push(codec);
    payload.extend_from_slice(body);
    let mut frame = u32::try_from(payload.len() + 4)
        .unwrap()
        .to_be_bytes()
        .to_vec();
    frame.extend_from_slice(&payload);
    frame
}

/// The fields of a raw frame without filters: (type, seq, uri, status,
/// meta, codec, body).
type RawFields = (u8, String, String, String, String, u8, Vec<u8>);

/// Reads one raw frame; `None` at EOF.
fn read_raw_frame(stream: &mut std::net::TcpStream) -> Option<RawFields> {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).ok()?;
    let mut frame = vec![0u8; usize::try_from(u32::from_be_bytes(len)).unwrap() - 4];
    stream.read_exact(&mut frame).expect("a whole frame");
    let mut at = 0;
    let mut take = |n: usize| {
        let part = frame[at..at + n].to_vec();
        at += n;
        part
    };
    let filters = take(1)[0];
    assert_eq!(filters, 0, "no filter expected");
    let n = usize::from(take(1)[0]);
    let seq = String::from_utf8(take(n)).unwrap();
    let mtype = take(1)[0];
    let n = usize::from(take(1)[0]);
    let uri = String::from_utf8(take(n)).unwrap();
    let n = take(2);
    let status = String::from_utf8(take(usize::from(u16::from_be_bytes([n[0], n[1]])))).unwrap();
    let n = take(2);
    let meta = String::from_utf8(take(usize::from(u16::from_be_bytes([n[0], n[1]])))).unwrap();
    let codec = take(1)[0];
    let body = frame[at..].to_vec();
    Some((mtype, seq, uri, status, meta, codec, body))
}

/// Connects a raw socket, sends one Go-format heartbeat pull (`hb_=1`),
/// checks its reply, then stays silent: returns how long after the reply
/// the server closed the connection (`None`: not within `wait`).
fn silent_session_lifetime(addr: &str, wait: Duration) -> Option<Duration> {
    use std::io::Write;
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(wait)).unwrap();
    let ping = raw_frame(1, "1", "/heartbeat", "code=0", "hb_=1", b'j', b"");
    stream.write_all(&ping).expect("write the heartbeat");
    // The hello push, then the reply (in either order).
    let replied = loop {
        let (mtype, seq, uri, status, _meta, codec, body) =
            read_raw_frame(&mut stream).expect("a frame before EOF");
        match mtype {
            3 => assert_eq!(uri, "/notice/hello"),
            2 => {
                assert_eq!((seq.as_str(), uri.as_str()), ("1", ""));
                assert_eq!(status, "code=0");
                assert_eq!((codec, body.as_slice()), (b'j', &b"null"[..]));
                break Instant::now();
            }
            other => panic!("unexpected message type {other}"),
        }
    };
    // Silence: the next read ends at EOF when the server closes.
    let mut rest = Vec::new();
    match stream.read_to_end(&mut rest) {
        Ok(_) => Some(replied.elapsed()),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            None
        }
        Err(e) => {
            // A reset is a close too.
            assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}");
            Some(replied.elapsed())
        }
    }
}

#[test]
fn heartbeat_is_answered_and_a_silent_session_is_closed_after_twice_the_rate() {
    let (_server, addr) = start_server_with(&["--heartbeat", "1"]);
    let lifetime = silent_session_lifetime(&addr, Duration::from_secs(10))
        .expect("the silent session was not closed within 10 s");
    assert!(
        lifetime >= Duration::from_millis(1900) && lifetime < Duration::from_millis(3500),
        "closed after {lifetime:?}, expected about 2 s"
    );

    // With SECS = 2, a session that announces no rate at all and stays
    // silent from the start is closed after about 4 s.
    let (_server, addr) = start_server_with(&["--heartbeat", "2"]);
    let mut stream = std::net::TcpStream::connect(&addr).expect("connect");
    let connected = Instant::now();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest);
    let lifetime = connected.elapsed();
    assert!(
        lifetime >= Duration::from_millis(3900) && lifetime < Duration::from_millis(6000),
        "closed after {lifetime:?}, expected about 4 s"
    );
}

#[test]
fn without_the_flag_only_an_announced_rate_closes_a_silent_session() {
    let (_server, addr) = start_server(false);
    // The heartbeat is still answered (Go-compatible routes), and announcing
    // hb_=1 gets the session closed after about 2 s, as a Go server does.
    let lifetime = silent_session_lifetime(&addr, Duration::from_secs(10));
    let lifetime = lifetime.expect("closed after the announced rate");
    assert!(lifetime < Duration::from_millis(3500), "{lifetime:?}");
    // A session that announced nothing is not watched.
    let mut stream = std::net::TcpStream::connect(&addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(4)))
        .unwrap();
    let mut rest = Vec::new();
    let err = stream
        .read_to_end(&mut rest)
        .expect_err("still open after 4 s");
    assert!(
        matches!(
            err.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
        "{err}"
    );
}
