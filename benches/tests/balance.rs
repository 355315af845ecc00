//! The `balance` benchmark runs end to end: three servers started and stopped, every kind
//! measured, the ratios printed; a bad flag is refused.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs `balance` with `args`, killed past 60 s; its exit success and stdout.
fn balance(args: &[&str]) -> (bool, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_balance"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start balance");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            let out = std::io::read_to_string(child.stdout.take().unwrap()).unwrap();
            return (status.success(), out);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("balance ran past 60s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn balance_measures_every_kind() {
    let (ok, out) = balance(&["-n", "300", "-c", "4", "--rounds", "1"]);
    assert!(ok, "{out}");
    for line in [
        "cost per call service ÷ direct",
        "cost per call tower p2c ÷ direct",
        "cost per call hand p2c ÷ direct",
    ] {
        assert!(out.contains(line), "no {line:?} in {out}");
    }
    let (ok, out) = balance(&["--only", "tower", "-n", "200", "-c", "2"]);
    assert!(ok, "{out}");
    assert!(out.starts_with("Tower: 200 calls from 2 callers"), "{out}");
}

#[test]
fn balance_refuses_a_bad_flag() {
    let (ok, _) = balance(&["--only", "nobody"]);
    assert!(!ok);
    let (ok, _) = balance(&["-n", "0"]);
    assert!(!ok);
}
