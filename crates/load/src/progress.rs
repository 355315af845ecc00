//! The progress bar of a run (indicatif, on stderr; drawn only when stderr is a terminal).

use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::task::JoinHandle;

use crate::plan::Stop;

/// A progress bar updated from the run's call counter ten times a second.
pub(crate) struct Progress {
    bar: ProgressBar,
    ticker: JoinHandle<()>,
}

impl Progress {
    /// Starts showing the run's progress: calls done out of the count, or time out of the
    /// duration.
    pub(crate) fn start(
        stop: Stop,
        done: Arc<dyn Fn() -> u64 + Send + Sync>,
        start: Instant,
    ) -> Progress {
        let (len, template) = match stop {
            Stop::Count(n) => (n, "{bar:40} {pos}/{len} calls, {msg}, eta {eta}"),
            Stop::Duration(d) => (
                u64::try_from(d.as_millis()).unwrap_or(u64::MAX),
                "{bar:40} {elapsed}/{msg}",
            ),
        };
        let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style);
        }
        let ticker_bar = bar.clone();
        let ticker = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            loop {
                tick.tick().await;
                let calls = done();
                let secs = start.elapsed().as_secs_f64().max(1e-9);
                let rate = calls as f64 / secs;
                match stop {
                    Stop::Count(_) => {
                        ticker_bar.set_position(calls);
                        ticker_bar.set_message(format!("{rate:.0} calls/s"));
                    }
                    Stop::Duration(d) => {
                        let ms = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
                        ticker_bar.set_position(ms);
                        ticker_bar.set_message(format!(
                            "{}s, {calls} calls, {rate:.0} calls/s",
                            d.as_secs()
                        ));
                    }
                }
            }
        });
        Progress { bar, ticker }
    }

    /// Stops the updates and clears the bar.
    pub(crate) async fn finish(self) {
        self.ticker.abort();
        let _ = self.ticker.await;
        self.bar.finish_and_clear();
    }
}
