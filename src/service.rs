//! Talking to the service manager (systemd, `Type=notify`): readiness,
//! the watchdog and a status line. Outside systemd every call does nothing.
//!
//! The watchdog is fed from the pipeline's output thread (a
//! [`Heartbeat`]), so a hung capture, model or display stops the pings and
//! systemd restarts Pleura after `WatchdogSec=`.

use crate::pipeline::Heartbeat;
use sd_notify::NotifyState;
use std::time::{Duration, Instant};

/// Pings when systemd asks for no watchdog (only the status line is sent).
const DEFAULT_PING: Duration = Duration::from_secs(5);

/// Tells systemd the program is up, with a status line.
pub fn ready(status: &str) {
    if let Err(e) = sd_notify::notify(&[NotifyState::Ready, NotifyState::Status(status)]) {
        log::warn!("cannot notify systemd: {e}");
    }
}

/// Feeds systemd's watchdog from the pipeline, at half the watchdog period.
pub struct Watchdog {
    every: Duration,
    last: Option<Instant>,
    status: String,
}

impl Watchdog {
    /// A watchdog for the period systemd set (`WATCHDOG_USEC`), if any.
    pub fn new() -> Self {
        let every = sd_notify::watchdog_enabled().map_or(DEFAULT_PING, |period| period / 2);
        Self {
            every,
            last: None,
            status: String::with_capacity(64),
        }
    }
}

impl Default for Watchdog {
    fn default() -> Self {
        Self::new()
    }
}

impl Heartbeat for Watchdog {
    fn beat(&mut self, recorded: u64) {
        if self.last.is_some_and(|last| last.elapsed() < self.every) {
            return;
        }
        self.last = Some(Instant::now());
        self.status.clear();
        use std::fmt::Write;
        let _ = write!(self.status, "{recorded} frames scored");
        let state = [NotifyState::Watchdog, NotifyState::Status(&self.status)];
        if let Err(e) = sd_notify::notify(&state) {
            log::warn!("cannot notify systemd's watchdog: {e}");
        }
    }
}
