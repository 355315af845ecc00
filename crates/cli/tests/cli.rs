//! The `jaunt` binary against servers these tests start, through real sockets: each test
//! runs the built binary (assert_cmd) and checks what it prints, what it exits with, and
//! what the server saw.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use assert_cmd::cargo::CommandCargoExt;
use jaunt::prelude::*;
use jaunt_plugins::auth::Checker;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use serde_json::{json, Value};

/// What the test server saw.
#[derive(Default)]
struct Seen {
    pulls: AtomicU64,
    heartbeats: AtomicU64,
    pushes: Mutex<Vec<(String, Vec<u8>)>>,
    last_meta: Mutex<String>,
    last_xfer: Mutex<Vec<u8>>,
}

/// A server on loopback (or a Unix socket), its runtime, and what it saw.
struct Server {
    runtime: tokio::runtime::Runtime,
    peer: Peer,
    addr: String,
    seen: Arc<Seen>,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let peer = self.peer.clone();
        self.runtime.block_on(peer.close());
    }
}

fn routes(seen: &Arc<Seen>) -> Router {
    let mut router = Router::new();
    let s = seen.clone();
    router
        .pull("/math/add", move |ctx: PullCtx, args: Vec<i64>| {
            let s = s.clone();
            async move {
                s.pulls.fetch_add(1, Ordering::Relaxed);
                let meta = ctx.meta();
                *s.last_meta.lock().unwrap() = format!(
                    "tenant={:?} x={:?}",
                    meta.get_str("tenant"),
                    meta.get_str("x")
                );
                *s.last_xfer.lock().unwrap() = ctx.xfer().to_vec();
                Ok::<_, Status>(args.iter().sum::<i64>())
            }
        })
        .unwrap();
    router
        .pull("/echo", |ctx: PullCtx| async move {
            ctx.set_reply_codec(ctx.body_codec());
            Ok::<_, Status>(ctx.raw_body())
        })
        .unwrap();
    router
        .pull("/user", |_: PullCtx| async move {
            Ok::<_, Status>(json!({"name": "ada", "langs": ["rust", "go"]}))
        })
        .unwrap();
    router
        .pull("/slow", |_: PullCtx| async move {
            tokio::time::sleep(Duration::from_secs(3)).await;
            Ok::<_, Status>(1)
        })
        .unwrap();
    router
        .pull("/broken", |_: PullCtx| async move {
            Err::<i64, _>(Status::new(503, "unavailable"))
        })
        .unwrap();
    let s = seen.clone();
    router
        .unknown_push(move |ctx: PushCtx| {
            let s = s.clone();
            async move {
                let body = ctx.raw_body().bytes.to_vec();
                s.pushes.lock().unwrap().push((ctx.uri().to_owned(), body));
            }
        })
        .unwrap();
    let s = seen.clone();
    router
        .pull("/heartbeat", move |_: PullCtx| {
            let s = s.clone();
            async move {
                s.heartbeats.fetch_add(1, Ordering::Relaxed);
                Ok::<Option<()>, Status>(None)
            }
        })
        .unwrap();
    router
}

/// Starts a server: plain TCP, with `plugin` if given.
fn server_with(plugin: Option<Checker>) -> Server {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let seen = Arc::new(Seen::default());
    let mut builder = Peer::builder(routes(&seen));
    if let Some(plugin) = plugin {
        builder = builder.plugin(plugin);
    }
    let peer = builder.build().unwrap();
    let addr = runtime
        .block_on(peer.listen("127.0.0.1:0"))
        .unwrap()
        .to_string();
    Server {
        runtime,
        peer,
        addr,
        seen,
        _dir: tempfile::tempdir().unwrap(),
    }
}

fn server() -> Server {
    server_with(None)
}

fn jaunt() -> Command {
    let mut cmd = Command::cargo_bin("jaunt").unwrap();
    cmd.stdin(Stdio::null());
    cmd
}

/// Runs `jaunt ARGS`, bounded in time; returns (exit code, stdout, stderr).
fn run(args: &[&str]) -> (i32, String, String) {
    run_cmd(jaunt().args(args))
}

fn run_cmd(cmd: &mut Command) -> (i32, String, String) {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_bounded(child, Duration::from_secs(30));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn wait_bounded(mut child: std::process::Child, limit: Duration) -> std::process::Output {
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            child.kill().unwrap();
            panic!("jaunt did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn call_prints_the_reply_and_sends_meta_and_gzip() {
    let s = server();
    let (code, out, err) = run(&["call", &s.addr, "/math/add", "--data", "[1,2,3]"]);
    assert_eq!((code, out.as_str()), (0, "6\n"), "{err}");

    let (code, out, _) = run(&["call", &s.addr, "/user"]);
    assert_eq!(code, 0);
    assert_eq!(
        out,
        "{\n  \"langs\": [\n    \"rust\",\n    \"go\"\n  ],\n  \"name\": \"ada\"\n}\n"
    );

    let (code, _, err) = run(&[
        "call",
        &s.addr,
        "/math/add",
        "--data",
        "[1]",
        "--meta",
        "tenant=a b",
        "-m",
        "x=1",
        "--gzip",
        "-v",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        *s.seen.last_meta.lock().unwrap(),
        r#"tenant=Some("a b") x=Some("1")"#
    );
    assert_eq!(*s.seen.last_xfer.lock().unwrap(), b"g");
    assert!(err.contains("codec: json"), "{err}");
}

#[test]
fn the_body_comes_from_a_file_or_stdin_with_any_codec() {
    let s = server();
    let file = s._dir.path().join("body.json");
    std::fs::write(&file, "[40, 2]").unwrap();
    let at_file = format!("@{}", file.display());
    let (code, out, err) = run(&["call", &s.addr, "/math/add", "--data", &at_file]);
    assert_eq!((code, out.as_str()), (0, "42\n"), "{err}");

    let mut cmd = jaunt();
    cmd.args(["call", &s.addr, "/math/add"])
        .stdin(Stdio::piped());
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"[5, 5]").unwrap();
    let out = wait_bounded(child, Duration::from_secs(30));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "10\n");

    // A plain body goes as it is, and comes back with its codec.
    let (code, out, err) = run(&[
        "call", &s.addr, "/echo", "--data", "héllo", "--codec", "plain",
    ]);
    assert_eq!((code, out.as_str()), (0, "héllo\n"), "{err}");
}

#[test]
fn failures_exit_with_the_documented_codes_and_send_nothing_bad() {
    let s = server();
    let (code, _, err) = run(&["call", &s.addr, "/nope"]);
    assert_eq!(code, 8, "{err}");
    assert!(err.contains("404"), "{err}");

    let (code, _, err) = run(&["call", &s.addr, "/broken"]);
    assert_eq!(code, 10, "{err}");
    assert!(err.contains("503"), "{err}");

    let (code, _, err) = run(&["call", &s.addr, "/slow", "--timeout", "200ms"]);
    assert_eq!(code, 7, "{err}");

    // Bad JSON is refused before anything is sent.
    let (code, _, err) = run(&["call", &s.addr, "/math/add", "--data", "[1,"]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("not valid JSON"), "{err}");
    let (code, _, err) = run(&["call", &s.addr, "/math/add", "--data", "@/no/such/file"]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("/no/such/file"), "{err}");
    assert_eq!(s.seen.pulls.load(Ordering::Relaxed), 0);

    // Nobody listens there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap().to_string();
    drop(closed);
    let (code, _, err) = run(&["call", &addr, "/x"]);
    assert_eq!(code, 4, "{err}");
}

#[test]
fn bad_command_lines_get_clear_messages() {
    let (code, _, err) = run(&["call"]);
    assert_eq!(code, 2);
    assert!(err.contains("<ADDR>"), "{err}");
    let (code, _, err) = run(&["call", "127.0.0.1:1", "/x", "--bogus"]);
    assert_eq!(code, 2);
    assert!(err.contains("--bogus"), "{err}");
    let (code, _, err) = run(&["bench", "127.0.0.1:1", "/x", "-c", "0"]);
    assert_eq!(code, 2);
    assert!(err.contains("at least 1"), "{err}");
    let (code, _, err) = run(&["call", "127.0.0.1:1", "/x", "--timeout", "soon"]);
    assert_eq!(code, 2);
    assert!(err.contains("--timeout"), "{err}");
    let (code, _, err) = run(&["call", "127.0.0.1:1", "/x", "--ca", "ca.pem"]);
    assert_eq!(code, 2);
    assert!(err.contains("--tls"), "{err}");
    let (code, _, err) = run(&["call", "not-an-address", "/x"]);
    assert_eq!(code, 4, "{err}");
}

#[test]
fn push_reaches_the_server() {
    let s = server();
    let (code, _, err) = run(&["push", &s.addr, "/news/today", "--data", "\"sunny\""]);
    assert_eq!(code, 0, "{err}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while s.seen.pushes.lock().unwrap().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let pushes = s.seen.pushes.lock().unwrap().clone();
    assert_eq!(
        pushes,
        vec![("/news/today".to_owned(), b"\"sunny\"".to_vec())]
    );
}

#[test]
fn listen_prints_the_pushes_under_its_prefix_as_json_lines() {
    let s = server();
    let mut child = jaunt()
        .args(["listen", &s.addr, "--prefix", "/news"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the listener's session is there, then push to it.
    let deadline = Instant::now() + Duration::from_secs(10);
    while s.peer.session_count() == 0 {
        assert!(Instant::now() < deadline, "the listener never connected");
        std::thread::sleep(Duration::from_millis(10));
    }
    let session = s.peer.sessions().pop().unwrap();
    s.runtime.block_on(async {
        session.push("/other", &"hidden").await.unwrap();
        session.push("/news/a", &json!({"n": 1})).await.unwrap();
        session
            .push_with("/news/b", &"two", PullOptions::new().meta("k", "v"))
            .await
            .unwrap();
    });
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    let second: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(
        first,
        json!({"uri": "/news/a", "codec": "json", "meta": {}, "body": {"n": 1}})
    );
    assert_eq!(second["uri"], "/news/b");
    assert_eq!(second["meta"], json!({"k": "v"}));
    assert_eq!(second["body"], "two");
    // The server going away ends the listener (exit 6: the connection was lost).
    s.runtime.block_on(s.peer.close());
    let out = wait_bounded(child, Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(6));
}

#[test]
fn bench_reports_every_call_closed_and_open_loop() {
    let s = server();
    let (code, out, err) = run(&[
        "bench",
        &s.addr,
        "/math/add",
        "--data",
        "[1,2]",
        "-n",
        "300",
        "-c",
        "4",
        "--conns",
        "2",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let report: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(report["ok"], 300);
    assert_eq!(report["errors"], 0);
    assert_eq!(report["conns"], 2);
    assert_eq!(s.seen.pulls.load(Ordering::Relaxed), 300);
    assert!(report["p99_ms"].as_f64().unwrap() > 0.0);
    assert_eq!(report["histogram"].as_array().unwrap().len(), 10);

    // Open loop: 100 calls/s for 1 s is about 100 calls, whatever the server could do.
    let (code, out, err) = run(&[
        "bench",
        &s.addr,
        "/math/add",
        "--data",
        "[1]",
        "-d",
        "1s",
        "--rate",
        "100",
        "-c",
        "4",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let report: Value = serde_json::from_str(out.trim()).unwrap();
    let ok = report["ok"].as_u64().unwrap();
    assert!((95..=101).contains(&ok), "{ok} calls at 100/s for 1 s");
    assert_eq!(report["rate"], 100.0);

    // The text report, and failures counted by status.
    let (code, out, _) = run(&["bench", &s.addr, "/nope", "-n", "20", "-c", "2"]);
    assert_eq!(code, 1);
    assert!(out.contains("[20] 404"), "{out}");
    assert!(out.contains("Latency distribution"), "{out}");
}

#[test]
fn auth_tokens_are_checked_by_the_server() {
    let s = server_with(Some(Checker::expect("s3cret")));
    let (code, out, err) = run(&[
        "call",
        &s.addr,
        "/math/add",
        "--data",
        "[2]",
        "--auth",
        "s3cret",
    ]);
    assert_eq!((code, out.as_str()), (0, "2\n"), "{err}");

    let (code, _, err) = run(&[
        "call",
        &s.addr,
        "/math/add",
        "--data",
        "[2]",
        "--auth",
        "guess",
    ]);
    assert_eq!(code, 5, "{err}");
    assert!(err.contains("refused the credentials"), "{err}");

    // Without credentials, the server closes the session instead of serving it.
    let (code, _, err) = run(&["call", &s.addr, "/math/add", "--data", "[2]"]);
    assert_ne!(code, 0, "{err}");
    assert_eq!(s.seen.pulls.load(Ordering::Relaxed), 1);

    let (code, _, err) = run(&[
        "bench",
        &s.addr,
        "/math/add",
        "--data",
        "[1]",
        "-n",
        "50",
        "--auth",
        "s3cret",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn heartbeats_go_out_while_listening() {
    let s = server();
    let mut child = jaunt()
        .args(["listen", &s.addr, "--heartbeat", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while s.seen.heartbeats.load(Ordering::Relaxed) < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(s.seen.heartbeats.load(Ordering::Relaxed) >= 2);
}

#[test]
fn unix_sockets_work_like_tcp() {
    let s = server();
    let path = s._dir.path().join("jaunt.sock");
    let unix = format!("unix:{}", path.display());
    s.runtime.block_on(s.peer.listen(unix.as_str())).unwrap();
    let (code, out, err) = run(&["call", &unix, "/math/add", "--data", "[3,4]"]);
    assert_eq!((code, out.as_str()), (0, "7\n"), "{err}");
}

/// A CA and a server certificate for localhost / 127.0.0.1, as PEM files in `dir`.
fn certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "test ca");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let mut leaf = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    leaf.use_authority_key_identifier_extension = true;
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let leaf_key = KeyPair::generate().unwrap();
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer).unwrap();
    let paths = (
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server.key"),
    );
    std::fs::write(&paths.0, ca_cert.pem()).unwrap();
    std::fs::write(&paths.1, leaf_cert.pem()).unwrap();
    std::fs::write(&paths.2, leaf_key.serialize_pem()).unwrap();
    paths
}

#[test]
fn tls_with_a_ca_from_the_flags_or_a_config_file() {
    let s = server();
    let (ca, cert, key) = certificates(s._dir.path());
    let config = jaunt::tls::server_config_from_pem(&cert, &key, None).unwrap();
    let addr = s
        .runtime
        .block_on(s.peer.listen_tls("127.0.0.1:0", config))
        .unwrap()
        .to_string();
    let ca_arg = ca.display().to_string();
    let (code, out, err) = run(&[
        "call",
        &addr,
        "/math/add",
        "--data",
        "[1,1]",
        "--tls",
        "--ca",
        &ca_arg,
    ]);
    assert_eq!((code, out.as_str()), (0, "2\n"), "{err}");
    let port = addr.rsplit_once(':').unwrap().1;
    let by_name = format!("localhost:{port}");
    let (code, out, err) = run(&[
        "call",
        &by_name,
        "/math/add",
        "--data",
        "[1,2]",
        "--tls",
        "--ca",
        &ca_arg,
    ]);
    assert_eq!((code, out.as_str()), (0, "3\n"), "{err}");
    let (code, _, err) = run(&[
        "call",
        &addr,
        "/math/add",
        "--tls",
        "--ca",
        &ca_arg,
        "--server-name",
        "other.example",
    ]);
    assert_eq!(code, 4, "{err}");
    // Not signed by a CA the system trusts.
    let (code, _, err) = run(&["call", &addr, "/math/add", "--data", "[1]", "--tls"]);
    assert_eq!(code, 4, "{err}");
    // Plain TCP to a TLS listener fails too.
    let (code, _, _) = run(&[
        "call",
        &addr,
        "/math/add",
        "--data",
        "[1]",
        "--timeout",
        "1s",
    ]);
    assert_ne!(code, 0);

    // The same CA from a PeerConfig file (TOML), and a JSON one with a bad field.
    let toml_file = s._dir.path().join("client.toml");
    std::fs::write(
        &toml_file,
        format!("dial_timeout = \"2s\"\n[tls]\nca = {:?}\n", ca_arg),
    )
    .unwrap();
    let toml_arg = toml_file.display().to_string();
    let (code, out, err) = run(&[
        "call",
        &addr,
        "/math/add",
        "--data",
        "[5]",
        "--config",
        &toml_arg,
    ]);
    assert_eq!((code, out.as_str()), (0, "5\n"), "{err}");
    let json_file = s._dir.path().join("client.json");
    std::fs::write(&json_file, r#"{"no_such_setting": 1}"#).unwrap();
    let json_arg = json_file.display().to_string();
    let (code, _, err) = run(&["call", &addr, "/math/add", "--config", &json_arg]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("no_such_setting"), "{err}");
}
