//! The side-by-side benchmarks' servers (`typed`, `balance`, `balanced`): the benchmark binary
//! starts itself again as a child process (`BIN serve`), which prints one `LISTENING addr` line
//! per server it runs, so the server never shares the measuring process's runtime or cores'
//! scheduling with the callers; and [`calls_per_second`], the rate of one closed-loop round.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use crate::load::{self, Caller, LoadPlan, Stop};

/// Server processes started by [`ChildServer::start`]; killed and reaped when dropped.
#[derive(Debug)]
pub struct ChildServer {
    child: Child,
    /// The addresses the child announced, in order.
    pub addrs: Vec<String>,
}

impl ChildServer {
    /// Runs this executable with the argument `serve` and waits for `count` `LISTENING addr`
    /// lines on its stdout. A child that says anything else, or exits first, is killed and the
    /// error says what it printed.
    pub fn start(count: usize) -> Result<Self, String> {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let mut child = Command::new(exe)
            .arg("serve")
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start the server: {e}"))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        // From here on, dropping `server` kills the child.
        let mut server = Self {
            child,
            addrs: Vec::with_capacity(count),
        };
        let mut lines = BufReader::new(stdout).lines();
        while server.addrs.len() < count {
            let line = lines
                .next()
                .ok_or("the server exited before it listened")?
                .map_err(|e| e.to_string())?;
            let addr = line
                .trim()
                .strip_prefix("LISTENING ")
                .ok_or(format!("the server said {line:?}"))?;
            server.addrs.push(addr.to_owned());
        }
        Ok(server)
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Makes `n` calls in a closed loop on `callers` and returns their rate (calls per second),
/// or the first error if any call failed.
pub async fn calls_per_second<C: Caller>(n: u64, callers: Vec<C>) -> Result<f64, String> {
    let outcome = load::run(&LoadPlan::new(Stop::Count(n)), callers).await;
    if outcome.errors > 0 {
        return Err(format!(
            "{} errors, first: {:?}",
            outcome.errors, outcome.first_error
        ));
    }
    #[allow(clippy::cast_precision_loss)] // a rate
    Ok(outcome.ok as f64 / outcome.elapsed.as_secs_f64())
}
