//! What the metrics tests share: bounded waits, reading one sample of a
//! Prometheus text, and checking a text with promtool.

#![allow(dead_code)] // each test file uses its own part

use std::process::{Command, Stdio};
use std::time::Duration;

/// Runs `f`, failing the test if it takes over 20 s.
pub async fn within<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(20), f)
        .await
        .expect("test took over 20 s")
}

/// Polls `cond` every 5 ms for up to 5 s.
pub async fn eventually(mut cond: impl FnMut() -> bool) -> bool {
    for _ in 0..1000 {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    cond()
}

/// The value of the one sample whose line starts with `series` (name and
/// labels as rendered), 0 if there is none.
pub fn sample(text: &str, series: &str) -> f64 {
    let found: Vec<f64> = text
        .lines()
        .filter_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .collect();
    assert!(found.len() <= 1, "{series} twice in\n{text}");
    found.first().copied().unwrap_or(0.0)
}

/// Runs `promtool check metrics` on `text`; panics with its output if it
/// complains, and names the package if promtool is missing.
pub fn promtool_check(text: &str) {
    let mut child = match Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) => panic!(
            "promtool is needed to check the scraped text ({e}): \
             install Debian's `prometheus` package (apt-get install -y prometheus)"
        ),
    };
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}\n{}{}\n--- text:\n{text}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
