//! How a client sends: where, with which key, in what batches, how it retries, what it does when
//! its queue is full, and whom it tells when a write is lost.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::SdkError;

/// Called with every write the client could not deliver (after its retries) or could not queue.
pub type ErrorCallback = Arc<dyn Fn(&SdkError) + Send + Sync>;

#[derive(Clone)]
pub struct Config {
    /// troupe's base URL, e.g. `https://analytics.example.com`.
    pub host: String,
    /// The project's ingestion key (`tri_…`, write-only).
    pub key: String,
    /// Writes per request; a batch is sent as soon as it is full.
    pub batch_size: usize,
    /// Writes waiting longer than this are sent even when the batch is not full.
    pub flush_interval: Duration,
    /// Request bodies larger than this many bytes are gzipped.
    pub gzip_above: usize,
    /// Attempts per batch after the first, on network errors, 5xx and 429.
    pub max_retries: u32,
    /// The first retry waits about this long; each next one twice as long (with jitter), at most
    /// [`Config::backoff_max`]. A `Retry-After` from troupe takes precedence.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// Writes waiting to be sent at most. When full, a new write is refused with
    /// [`SdkError::QueueFull`] (and reported to [`Config::on_error`]): the writes already queued
    /// are kept, so what a caller was told is queued is not silently replaced.
    pub queue_capacity: usize,
    /// One request's time limit.
    pub timeout: Duration,
    /// Whether [`crate::Client::install_panic_hook`] reports panics (a switch for environments
    /// that must not send them).
    pub capture_panics: bool,
    pub on_error: Option<ErrorCallback>,
}

impl Config {
    pub fn new(host: impl Into<String>, key: impl Into<String>) -> Config {
        Config {
            host: host.into().trim_end_matches('/').to_string(),
            key: key.into(),
            batch_size: 100,
            flush_interval: Duration::from_secs(1),
            gzip_above: 8 * 1024,
            max_retries: 8,
            backoff_base: Duration::from_millis(200),
            backoff_max: Duration::from_secs(30),
            queue_capacity: 10_000,
            timeout: Duration::from_secs(10),
            capture_panics: true,
            on_error: None,
        }
    }

    pub fn batch_size(mut self, writes: usize) -> Self {
        self.batch_size = writes.max(1);
        self
    }

    pub fn flush_interval(mut self, every: Duration) -> Self {
        self.flush_interval = every.max(Duration::from_millis(1));
        self
    }

    pub fn gzip_above(mut self, bytes: usize) -> Self {
        self.gzip_above = bytes;
        self
    }

    pub fn retries(mut self, max_retries: u32, base: Duration, max: Duration) -> Self {
        self.max_retries = max_retries;
        self.backoff_base = base;
        self.backoff_max = max.max(base);
        self
    }

    pub fn queue_capacity(mut self, writes: usize) -> Self {
        self.queue_capacity = writes.max(1);
        self
    }

    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn capture_panics(mut self, on: bool) -> Self {
        self.capture_panics = on;
        self
    }

    pub fn on_error(mut self, callback: impl Fn(&SdkError) + Send + Sync + 'static) -> Self {
        self.on_error = Some(Arc::new(callback));
        self
    }

    pub(crate) fn report(&self, error: &SdkError) {
        tracing::warn!(%error, "troupe-sdk");
        if let Some(callback) = &self.on_error {
            callback(error);
        }
    }

    /// How long to wait before retry number `attempt` (1-based): exponential, with jitter.
    pub(crate) fn backoff(&self, attempt: u32) -> Duration {
        let exp = self.backoff_base.saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)));
        let capped = exp.min(self.backoff_max);
        capped.mul_f64(rand::Rng::gen_range(&mut rand::thread_rng(), 0.5..=1.0))
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("host", &self.host)
            .field("batch_size", &self.batch_size)
            .field("flush_interval", &self.flush_interval)
            .field("gzip_above", &self.gzip_above)
            .field("max_retries", &self.max_retries)
            .field("queue_capacity", &self.queue_capacity)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_within_its_bounds() {
        let c = Config::new("http://x/", "k").retries(5, Duration::from_millis(100), Duration::from_secs(1));
        assert_eq!(c.host, "http://x");
        for (attempt, full) in [(1, 100), (2, 200), (3, 400), (4, 800), (5, 1000), (9, 1000)] {
            let wait = c.backoff(attempt).as_millis() as u64;
            assert!(wait >= full / 2 && wait <= full, "attempt {attempt}: {wait} ms of {full}");
        }
    }
}
