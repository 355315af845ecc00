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
    let mut command = Command::new(INTEROP);
    command.args(["serve", "--addr", "127.0.0.1:0"]);
    if gzip {
        command.arg("--gzip");
    }
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
