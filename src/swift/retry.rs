//! When a Swift request is tried again, and how long to wait first.
//!
//! Retried: answers of kind `Unavailable` (408, 429, 5xx other than 507) and transport failures, but only for
//! requests the caller marked idempotent (GET, HEAD, listings, DELETE, PUT with an in-memory body). A streamed
//! upload body is consumed by its first attempt and is never retried here: its caller decides.
//! Not here: re-authentication on 401, which `client.rs` does once per request whatever this policy says.

use std::time::Duration;

/// How often and how patiently idempotent requests are retried.
///
/// The defaults (3 retries, 100 ms doubling to at most 2 s, full jitter) keep a failing Swift from holding an FTP
/// command for more than a few seconds before the user gets a `451`, while riding out a proxy restart.
#[derive(Debug, Clone)]
pub struct RetryConfig {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// The ceiling of the first wait; it doubles per retry.
    pub initial_backoff: Duration,
    /// No wait is longer than this.
    pub max_backoff: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            max_retries: 3,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
        }
    }
}

impl RetryConfig {
    /// The wait before retry number `retry` (0-based): a uniformly random duration up to the exponential
    /// ceiling ("full jitter"), so that many sessions hitting one failing proxy do not retry in lockstep.
    /// `unit` is a random number in `[0, 1)`; taking it as an argument keeps this deterministic in tests.
    pub fn backoff(&self, retry: u32, unit: f64) -> Duration {
        let ceiling = self
            .initial_backoff
            .saturating_mul(2u32.saturating_pow(retry))
            .min(self.max_backoff);
        ceiling.mul_f64(unit.clamp(0.0, 1.0))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let cfg = RetryConfig::default();
        assert_eq!(cfg.backoff(0, 1.0), Duration::from_millis(100));
        assert_eq!(cfg.backoff(1, 1.0), Duration::from_millis(200));
        assert_eq!(cfg.backoff(3, 1.0), Duration::from_millis(800));
        assert_eq!(cfg.backoff(10, 1.0), Duration::from_secs(2));
        assert_eq!(cfg.backoff(40, 1.0), Duration::from_secs(2));
        assert_eq!(cfg.backoff(2, 0.5), Duration::from_millis(200));
        assert_eq!(cfg.backoff(2, 0.0), Duration::ZERO);
    }
}
