//! A real etcd for the tests: `etcd` (Debian package `etcd-server`) on free loopback ports
//! with a temporary data directory, killed (and the directory removed) on drop. It can be
//! stopped and started again on the same ports and data directory. [`TestEtcd::start_on`]
//! also serves clients on another local address (the many-hosts test's bridge, which its
//! network namespaces reach).

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running (or stopped) etcd of one test.
pub struct TestEtcd {
    /// An address clients are also served on, besides 127.0.0.1 (see `start_on`).
    extra_ip: Option<String>,
    client_port: u16,
    peer_port: u16,
    data_dir: PathBuf,
    child: Option<Child>,
}

/// A loopback port nothing listens on at the moment.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind a loopback port")
        .local_addr()
        .expect("its address")
        .port()
}

impl TestEtcd {
    /// Starts etcd and waits until it is healthy (panics with what to install when `etcd`
    /// is missing).
    pub fn start() -> TestEtcd {
        TestEtcd::launch(None)
    }

    /// Starts etcd serving clients on `ip` (a local address: the many-hosts test's bridge)
    /// as well as on 127.0.0.1, on the same port, and waits until it is healthy.
    pub fn start_on(ip: &str) -> TestEtcd {
        TestEtcd::launch(Some(ip.to_owned()))
    }

    fn launch(extra_ip: Option<String>) -> TestEtcd {
        let unique = format!(
            "jaunt-etcd-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        );
        let data_dir = std::env::temp_dir().join(unique);
        let mut etcd = TestEtcd {
            extra_ip,
            client_port: free_port(),
            peer_port: free_port(),
            data_dir,
            child: None,
        };
        etcd.resume();
        etcd
    }

    /// The client URL (`http://127.0.0.1:P`).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    /// The client URL on the address given to [`start_on`](Self::start_on)
    /// (`http://IP:P`), or the loopback one when etcd was started with [`start`](Self::start).
    pub fn url_on_ip(&self) -> String {
        match &self.extra_ip {
            Some(ip) => format!("http://{ip}:{}", self.client_port),
            None => self.url(),
        }
    }

    /// Stops etcd (SIGKILL: nothing is flushed but what etcd already synced); the ports and
    /// data directory stay for [`resume`](Self::resume).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts etcd again on the same ports and data directory and waits until it is healthy.
    pub fn resume(&mut self) {
        assert!(self.child.is_none(), "etcd is already running");
        let client = self.url();
        let listen = match &self.extra_ip {
            Some(_) => format!("{client},{}", self.url_on_ip()),
            None => client.clone(),
        };
        let advertise = self.url_on_ip();
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let spawned = Command::new("etcd")
            .arg("--name")
            .arg("default")
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--listen-client-urls")
            .arg(&listen)
            .arg("--advertise-client-urls")
            .arg(&advertise)
            .arg("--listen-peer-urls")
            .arg(&peer)
            .arg("--initial-advertise-peer-urls")
            .arg(&peer)
            .arg("--initial-cluster")
            .arg(format!("default={peer}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match spawned {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
                "`etcd` is not installed: these tests run a real etcd; install the Debian \
                 package `etcd-server` (apt-get install -y etcd-server) or run ./test.sh"
            ),
            Err(e) => panic!("cannot start etcd: {e}"),
        };
        self.child = Some(child);
        self.wait_healthy(Duration::from_secs(20));
    }

    fn wait_healthy(&mut self, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            if self.healthy() {
                return;
            }
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("etcd exited at start-up: {status}");
                }
            }
            assert!(
                Instant::now() < deadline,
                "etcd not healthy within {within:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether `GET /health` says `"health":"true"`.
    fn healthy(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.client_port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
        let request = format!(
            "GET /health HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
            self.client_port
        );
        if stream.write_all(request.as_bytes()).is_err() {
            return false;
        }
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        answer.contains("\"health\":\"true\"")
    }
}

impl Drop for TestEtcd {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}
