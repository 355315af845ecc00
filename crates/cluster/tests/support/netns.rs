//! A test network of "hosts": one Linux network namespace per host, each joined by a veth
//! pair to a bridge in the root namespace, where the test (the client) runs.
//!
//! ```text
//!   root namespace (the test)        jh-<pid>-<i> (host i)
//!   bridge jbr<pid> 10.213.X.1/24 ── veth jv<pid>h<i> ═ eth0 10.213.X.(10+i)/24, lo up
//! ```
//!
//! - Names carry the test process's id, so concurrent test runs never share a namespace,
//!   and the /24 is one no interface of the machine uses yet.
//! - [`Net::cut`] sets the root side of a host's veth down: the bridge drops everything to
//!   and from the host — no RST, no FIN, no ICMP reaches either side — so open TCP
//!   connections go *silent*, as when a cable is pulled or a switch dies; only heartbeats
//!   can notice. [`Net::restore`] brings it back up.
//! - [`Host::spawn`] runs a process inside a host's namespace (`ip netns exec`); it is
//!   killed with SIGKILL when its [`HostProcess`] is dropped.
//! - On drop (also when the test panics), everything is deleted: namespaces, veths, bridge.
//!   Leftovers of a test process that was itself killed (no drop ran) are deleted by the
//!   next [`Net::new`].
//!
//! Needs root (CI runs as root) and `ip` (Debian package `iproute2`): without them
//! [`Net::new`] returns a clear error.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Prefix of the namespaces this harness creates: `jh-<pid>-<i>`.
const NS_PREFIX: &str = "jh-";

/// A network of hosts in namespaces; see the [module docs](self).
pub struct Net {
    pid: u32,
    bridge: String,
    /// `10.213.X` (no trailing dot).
    subnet: String,
    hosts: Vec<Host>,
}

/// One host of a [`Net`]: a namespace and its address.
#[derive(Debug, Clone)]
pub struct Host {
    /// The namespace's name.
    pub ns: String,
    /// The host's address (no port).
    pub ip: String,
    /// The root side of its veth (the one [`Net::cut`] sets down).
    pub link: String,
}

/// Runs `ip ARGS`, failing with its stderr.
fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run `ip` (Debian package iproute2): {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn ip_output(args: &[&str]) -> Result<String, String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run `ip` (Debian package iproute2): {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn is_root() -> bool {
    // The effective uid, from /proc (no libc dependency): the `Uid:` line is
    // "real effective saved fs".
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|uid| uid == "0"))
        })
        .unwrap_or(false)
}

/// Whether the test process `pid` is gone.
fn is_gone(pid: &str) -> bool {
    !pid.is_empty()
        && pid.bytes().all(|b| b.is_ascii_digit())
        && !std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// Deletes what a test process that no longer runs left behind (it was killed before its
/// `Net` was dropped): its namespaces, its bridge and the root ends of its veths.
fn delete_leftovers() {
    if let Ok(list) = ip_output(&["netns", "list"]) {
        for line in list.lines() {
            let Some(name) = line.split_whitespace().next() else {
                continue;
            };
            let Some(pid) = name
                .strip_prefix(NS_PREFIX)
                .and_then(|rest| rest.split('-').next())
            else {
                continue;
            };
            if is_gone(pid) {
                let _ = ip(&["netns", "del", name]);
            }
        }
    }
    // `ip -o link` lines: "206: jv26288h0@if205: <...> ...".
    if let Ok(links) = ip_output(&["-o", "link", "show"]) {
        for line in links.lines() {
            let Some(name) = line
                .split(": ")
                .nth(1)
                .and_then(|name| name.split('@').next())
            else {
                continue;
            };
            let pid = name.strip_prefix("jbr").or_else(|| {
                name.strip_prefix("jv")
                    .and_then(|rest| rest.split(['h', 'n']).next())
            });
            if pid.is_some_and(is_gone) {
                let _ = ip(&["link", "del", name]);
            }
        }
    }
}

/// A /24 of 10.213.0.0/16 that no interface of the machine uses.
fn free_subnet(pid: u32) -> Result<String, String> {
    let used = ip_output(&["-4", "-o", "addr", "show"])?;
    let start = pid % 250;
    (0..250)
        .map(|i| format!("10.213.{}", (start + i) % 250 + 1))
        .find(|subnet| !used.contains(&format!("{subnet}.")))
        .ok_or_else(|| "no free /24 in 10.213.0.0/16".to_owned())
}

impl Net {
    /// A bridge and `hosts` namespaces joined to it, each with its address and `lo` up.
    pub fn new(hosts: usize) -> Result<Net, String> {
        if !is_root() {
            return Err(
                "the many-hosts test creates network namespaces: it must run as root \
                 (CI does); run `sudo -E cargo test -p jaunt-cluster --test hosts`"
                    .to_owned(),
            );
        }
        ip(&["-V"])?;
        delete_leftovers();
        let pid = std::process::id();
        let mut net = Net {
            pid,
            bridge: format!("jbr{pid}"),
            subnet: free_subnet(pid)?,
            hosts: Vec::new(),
        };
        // From here on, a failure drops `net`, which deletes what was made.
        let bridge = net.bridge.clone();
        ip(&[
            "link",
            "add",
            &bridge,
            "type",
            "bridge",
            "forward_delay",
            "0",
        ])?;
        ip(&[
            "addr",
            "add",
            &format!("{}.1/24", net.subnet),
            "dev",
            &bridge,
        ])?;
        ip(&["link", "set", &bridge, "up"])?;
        for i in 0..hosts {
            let host = Host {
                ns: format!("{NS_PREFIX}{pid}-{i}"),
                ip: format!("{}.{}", net.subnet, 10 + i),
                link: format!("jv{pid}h{i}"),
            };
            ip(&["netns", "add", &host.ns])?;
            net.hosts.push(host.clone());
            let inner = format!("jv{pid}n{i}");
            ip(&[
                "link", "add", &host.link, "type", "veth", "peer", "name", &inner,
            ])?;
            ip(&["link", "set", &inner, "netns", &host.ns])?;
            ip(&["link", "set", &host.link, "master", &bridge])?;
            ip(&["link", "set", &host.link, "up"])?;
            let in_ns = |args: &[&str]| {
                let mut all = vec!["netns", "exec", &host.ns, "ip"];
                all.extend_from_slice(args);
                ip(&all)
            };
            in_ns(&["link", "set", "lo", "up"])?;
            in_ns(&["link", "set", &inner, "name", "eth0"])?;
            in_ns(&["addr", "add", &format!("{}/24", host.ip), "dev", "eth0"])?;
            in_ns(&["link", "set", "eth0", "up"])?;
            // The root namespace (where an etcd for the hosts would listen, on the
            // bridge's address) is the way out.
            in_ns(&[
                "route",
                "add",
                "default",
                "via",
                &format!("{}.1", net.subnet),
            ])?;
        }
        Ok(net)
    }

    /// The hosts.
    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }

    /// The root namespace's address on the bridge (reachable from every host).
    #[allow(dead_code)]
    pub fn gateway(&self) -> String {
        format!("{}.1", self.subnet)
    }

    /// Cuts host `i` off: the root side of its link goes down, and its TCP connections go
    /// silent (nothing is sent to either end).
    pub fn cut(&self, i: usize) -> Result<(), String> {
        ip(&["link", "set", &self.hosts[i].link, "down"])
    }

    /// Reconnects host `i`.
    pub fn restore(&self, i: usize) -> Result<(), String> {
        ip(&["link", "set", &self.hosts[i].link, "up"])
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        // Deleting a namespace deletes the veth end inside it, and with it the pair.
        for host in &self.hosts {
            if let Err(e) = ip(&["netns", "del", &host.ns]) {
                eprintln!("netns cleanup: {e}");
            }
            let _ = ip(&["link", "del", &host.link]);
        }
        if let Err(e) = ip(&["link", "del", &self.bridge]) {
            eprintln!("netns cleanup (pid {}): {e}", self.pid);
        }
    }
}

/// A process running in a host's namespace; SIGKILLed when dropped.
pub struct HostProcess {
    child: Child,
    /// Kept open: the process may exit when it reads end-of-file (its test is gone).
    _stdin: Option<ChildStdin>,
    /// Its stdout lines after the first.
    #[allow(dead_code)]
    pub lines: mpsc::Receiver<String>,
}

impl Host {
    /// Runs `exe` with `env` inside this host's namespace and waits (at most `ready_within`)
    /// for the first line it prints, returned with the process.
    pub fn spawn(
        &self,
        exe: &std::path::Path,
        env: &[(&str, String)],
        ready_within: Duration,
    ) -> Result<(HostProcess, String), String> {
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", &self.ns])
            .arg(exe)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command
            .spawn()
            .map_err(|e| format!("cannot start a process in {}: {e}", self.ns))?;
        let stdout = child.stdout.take().expect("piped");
        let stdin = child.stdin.take();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut process = HostProcess {
            child,
            _stdin: stdin,
            lines,
        };
        match process.lines.recv_timeout(ready_within) {
            Ok(first) => Ok((process, first)),
            Err(_) => {
                let status = process.child.try_wait().ok().flatten();
                process.kill();
                Err(format!(
                    "the process in {} printed nothing within {ready_within:?} (exit: {status:?})",
                    self.ns
                ))
            }
        }
    }
}

impl HostProcess {
    /// SIGKILL, and reap it. (`ip netns exec` execs the program: the child is the
    /// program itself.)
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The process id.
    #[allow(dead_code)]
    pub fn id(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for HostProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
