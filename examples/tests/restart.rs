//! Graceful restart across processes: a client pulling in a loop across the
//! restart sees no failed pull, and both the old and the new process answer.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use jaunt::prelude::*;

/// Kills the process on drop, so a failing test leaves nothing behind.
struct Killer(Vec<u32>);

impl Drop for Killer {
    fn drop(&mut self) {
        for pid in &self.0 {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .stderr(Stdio::null())
                .status();
        }
    }
}

fn signal(pid: u32, sig: &str) {
    let status = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill {sig} {pid}");
}

/// Reads `LISTENING <addr> pid <pid>` lines from the servers' shared stdout.
fn listening(lines: &mut impl Iterator<Item = std::io::Result<String>>) -> (String, u32) {
    for line in lines {
        let line = line.expect("stdout readable");
        let words: Vec<&str> = line.split_whitespace().collect();
        if let ["LISTENING", addr, "pid", pid] = words[..] {
            return (addr.to_owned(), pid.parse().expect("pid"));
        }
    }
    panic!("the server ended without printing LISTENING");
}

fn wait_exit(child: &mut Child, limit: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if child.try_wait().expect("try_wait").is_some() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn a_client_pulling_across_a_restart_sees_no_failure() {
    let mut old = Command::new(env!("CARGO_BIN_EXE_restart"))
        .args(["--addr", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("server starts");
    let mut killer = Killer(vec![old.id()]);
    let mut lines = BufReader::new(old.stdout.take().expect("piped")).lines();
    let (addr, old_pid) = listening(&mut lines);
    assert_eq!(old_pid, old.id());

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (answers, failures) = runtime.block_on(async {
        let client = Peer::new(Router::new());
        let mut answers: Vec<(u32, u64)> = Vec::new();
        let mut failures: Vec<String> = Vec::new();
        let started = Instant::now();
        let mut restarted_at: Option<Instant> = None;
        let mut n = 0_u64;
        // Pull in a loop, a fresh connection each time, for a while before
        // and after the restart.
        while started.elapsed() < Duration::from_secs(15) {
            if restarted_at.is_none() && started.elapsed() > Duration::from_millis(500) {
                signal(old_pid, "-USR2");
                restarted_at = Some(Instant::now());
            }
            n += 1;
            let pulled = async {
                let session = client.dial(addr.as_str()).await?;
                let reply = session
                    .pull_with(
                        "/who",
                        &n,
                        PullOptions::new().timeout(Duration::from_secs(5)),
                    )
                    .await;
                session.close();
                reply?.decode::<(u32, u64)>()
            };
            match pulled.await {
                Ok(answer) => answers.push(answer),
                Err(status) => failures.push(format!("pull {n}: {status}")),
            }
            let new_seen = answers
                .iter()
                .rev()
                .take(50)
                .all(|(pid, _)| *pid != old_pid);
            if restarted_at.is_some_and(|t| t.elapsed() > Duration::from_secs(1)) && new_seen {
                break;
            }
        }
        client.close().await;
        (answers, failures)
    });

    // The new process announced itself during the loop: learn its pid first,
    // so that it is killed even if an assertion below fails.
    let (_, new_pid) = listening(&mut lines);
    killer.0.push(new_pid);
    assert!(failures.is_empty(), "failed pulls: {failures:?}");
    assert!(answers.iter().all(|(_, n)| *n > 0));
    assert_ne!(new_pid, old_pid);
    assert!(
        answers.iter().any(|(pid, _)| *pid == old_pid),
        "the old process answered"
    );
    assert!(
        answers.iter().any(|(pid, _)| *pid == new_pid),
        "the new process answered"
    );
    assert!(
        wait_exit(&mut old, Duration::from_secs(15)),
        "the old process drained and exited"
    );
    signal(new_pid, "-TERM");
    println!(
        "{} pulls across the restart, none failed ({} by the old process, {} by the new)",
        answers.len(),
        answers.iter().filter(|(p, _)| *p == old_pid).count(),
        answers.iter().filter(|(p, _)| *p == new_pid).count()
    );
}
