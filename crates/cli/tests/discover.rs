//! `jaunt discover` against a real etcd (feature `etcd`): the set once, another prefix,
//! `--watch` printing changes, and etcd unreachable (exit 4, the address named).

#![cfg(feature = "etcd")]

#[path = "../../cluster/tests/support/etcd.rs"]
mod etcd_support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use assert_cmd::cargo::CommandCargoExt;
use etcd_support::{free_port, TestEtcd};
use jaunt_cluster::registry::{EtcdConfig, EtcdRegistry};
use jaunt_cluster::Instance;
use serde_json::Value;

fn jaunt() -> Command {
    Command::cargo_bin("jaunt").unwrap()
}

/// A child process killed when the test ends, failed or not.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn ids(line: &Value) -> Vec<String> {
    line["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discover_prints_the_registered_instances_and_with_watch_their_changes() {
    let etcd = TestEtcd::start();
    let registry = EtcdRegistry::new(EtcdConfig::new([etcd.url()])).unwrap();
    let _a = registry
        .register(Instance::new("a", "kv", "127.0.0.1:9001"))
        .await
        .unwrap();
    let b = registry
        .register(Instance::new("b", "kv", "127.0.0.1:9002"))
        .await
        .unwrap();

    let out = jaunt()
        .args(["discover", "kv", "--etcd", &etcd.url()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let line: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(line["service"], "kv");
    assert_eq!(ids(&line), ["a", "b"]);
    assert_eq!(line["instances"][1]["addrs"][0], "127.0.0.1:9002");

    let out = jaunt()
        .args([
            "discover",
            "kv",
            "--etcd",
            &etcd.url(),
            "--prefix",
            "/elsewhere",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let line: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(ids(&line).is_empty());

    let mut watching = Killed(
        jaunt()
            .args(["discover", "kv", "--etcd", &etcd.url(), "--watch"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stdout = watching.0.stdout.take().unwrap();
    let (lines_tx, lines_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if lines_tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    let next = || -> Value {
        let line = lines_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("a line from --watch");
        serde_json::from_str(&line).unwrap()
    };
    assert_eq!(ids(&next()), ["a", "b"]);
    b.deregister().await;
    assert_eq!(ids(&next()), ["a"]);
    let _c = registry
        .register(Instance::new("c", "kv", "127.0.0.1:9003"))
        .await
        .unwrap();
    assert_eq!(ids(&next()), ["a", "c"]);
    drop(watching);
}

#[test]
fn discover_with_etcd_unreachable_exits_4_naming_the_address() {
    let url = format!("http://127.0.0.1:{}", free_port());
    let out = jaunt()
        .args(["discover", "kv", "--etcd", &url, "--connect-timeout", "1s"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&url), "{stderr}");
}
