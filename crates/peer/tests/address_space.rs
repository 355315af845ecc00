//! Under an address-space limit (`ulimit -v`, a container's memory limit)
//! the server must not abort: 300 connections that each send only the
//! header of a frame announcing 16 MiB cost what they sent, not 4.7 GiB of
//! reserved buffers (the decoder used to reserve the announced length, and
//! the allocation failure aborted the process after ~131 connections).
//!
//! The server runs in a child process (this test binary run again, with
//! `JAUNT_AS_CHILD` set), whose address space is limited to what it uses at
//! start plus 1 GiB; the parent attacks it through loopback and then checks
//! that it is alive and serving.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use jaunt_peer::{Peer, PeerConfig, PullCtx, Router};
use jaunt_socket::Status;

const CHILD: &str = "JAUNT_AS_CHILD";

/// The child: limit the address space, serve, print the address, and stop
/// when stdin closes.
fn serve_in_child() {
    use nix::sys::resource::{setrlimit, Resource};
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let vm_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmSize:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // After the runtime's threads exist: they are what the process needs.
    let limit = (vm_kib + 512 * 1024) * 1024 + (1 << 30);
    setrlimit(Resource::RLIMIT_AS, limit, limit).unwrap();
    runtime.block_on(async {
        let mut router = Router::new();
        router
            .pull("/ping", |_: PullCtx| async { Ok::<_, Status>("pong") })
            .unwrap();
        let config = PeerConfig::builder()
            // The attack is 300 connections; the check one more.
            .max_sessions(1000)
            .build();
        let server = Peer::builder(router).config(config).build().unwrap();
        let addr = server.listen("127.0.0.1:0").await.unwrap();
        println!("LISTENING {addr}");
        std::io::stdout().flush().unwrap();
        tokio::task::spawn_blocking(|| {
            let mut line = String::new();
            let _ = std::io::stdin().read_line(&mut line);
        })
        .await
        .unwrap();
        server.close().await;
    });
}

#[test]
fn headers_announcing_16_mib_do_not_exhaust_a_limited_address_space() {
    if std::env::var_os(CHILD).is_some() {
        serve_in_child();
        return;
    }
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "headers_announcing_16_mib_do_not_exhaust_a_limited_address_space",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = lines
        .by_ref()
        .map_while(Result::ok)
        // (The test harness may have written "test … " on the same line.)
        .find_map(|line| line.split("LISTENING ").nth(1).map(str::to_owned))
        .expect("the child listens");
    let addr: std::net::SocketAddr = addr.parse().unwrap();

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let outcome = runtime.block_on(async {
        use tokio::io::AsyncWriteExt;
        let mut conns = Vec::new();
        for _ in 0..300 {
            let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
            let mut header = (16u32 * 1024 * 1024 - 1).to_be_bytes().to_vec();
            header.push(0);
            conn.write_all(&header).await.unwrap();
            conns.push(conn);
        }
        // Let the server read every header.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let client = Peer::new(Router::new());
        let pinged = tokio::time::timeout(Duration::from_secs(5), async {
            let session = client.dial(addr).await?;
            session.pull("/ping", &()).await?.decode::<String>()
        })
        .await;
        client.close().await;
        drop(conns);
        pinged
    });
    drop(child.stdin.take());
    let exited = child.wait().unwrap();
    let pong = outcome
        .expect("the server answers within 5 s")
        .expect("the server is alive after the attack");
    assert_eq!(pong, "pong");
    assert!(exited.success(), "the server process failed: {exited}");
}
