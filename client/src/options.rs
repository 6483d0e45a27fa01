//! Timeouts, deadlines and retry pacing.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::RngExt;
use rand::rngs::ChaCha8Rng;

/// How patient a client is, and how it paces its retries.
///
/// The split between `request_timeout` and `overall_deadline` is what lets a
/// test harness tell outcomes apart: each attempt is abandoned after
/// `request_timeout` and retried elsewhere with the same session, and the
/// whole call gives up at `overall_deadline` with an error saying whether the
/// operation may have taken effect ([`crate::ClerkError::is_definite`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClerkOptions {
    /// How long one attempt waits for its reply before trying again
    /// (elsewhere). Should exceed the server's own commit deadline, so that
    /// a slow commit is reported by the server rather than guessed at here.
    pub request_timeout: Duration,
    /// Give up on a call after this long; `None` retries until it succeeds or
    /// fails definitely, as the classic lab clerk does.
    pub overall_deadline: Option<Duration>,
    /// How long dialing plus the handshake may take.
    pub connect_timeout: Duration,
    /// After a failed dial, calls to that server fail at once for this long
    /// instead of each waiting out its own dial (a paused or dead server
    /// would otherwise stall every client in turn).
    pub reconnect_interval: Duration,
    /// First pause between retries once the cluster looks busy.
    pub backoff_initial: Duration,
    /// Longest pause between retries; pauses double up to it, with jitter.
    pub backoff_max: Duration,
    /// Seed for client ids and retry jitter. `None` derives one from the
    /// clock and the process id: client ids must be unique within a cluster
    /// (the servers deduplicate writes by them), so a fixed seed must never
    /// be reused against the same cluster's data.
    pub seed: Option<u64>,
}

impl Default for ClerkOptions {
    fn default() -> Self {
        ClerkOptions {
            request_timeout: Duration::from_secs(2),
            overall_deadline: None,
            connect_timeout: Duration::from_secs(1),
            reconnect_interval: Duration::from_millis(50),
            backoff_initial: Duration::from_millis(10),
            backoff_max: Duration::from_millis(250),
            seed: None,
        }
    }
}

impl ClerkOptions {
    /// The seed to use: the configured one, or one from the clock and pid.
    pub(crate) fn effective_seed(&self) -> u64 {
        self.seed.unwrap_or_else(|| {
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0);
            nanos ^ (u64::from(std::process::id()) << 32)
        })
    }
}

/// Capped exponential backoff with jitter: each pause is drawn from
/// `[base/2, base]`, and `base` doubles up to the cap. The jitter keeps many
/// clients that failed together from retrying together.
pub(crate) struct Backoff {
    base: Duration,
    max: Duration,
}

impl Backoff {
    pub(crate) fn new(options: &ClerkOptions) -> Backoff {
        Backoff {
            base: options.backoff_initial,
            max: options.backoff_max.max(options.backoff_initial),
        }
    }

    /// The next pause; grows the base for the one after.
    pub(crate) fn next_pause(&mut self, rng: &mut ChaCha8Rng) -> Duration {
        let base = self.base;
        self.base = (self.base * 2).min(self.max);
        let half = base / 2;
        let jitter_nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
        half + Duration::from_nanos(rng.random_range(0..=jitter_nanos))
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_and_stays_within_jitter_bounds() {
        let options = ClerkOptions {
            backoff_initial: Duration::from_millis(10),
            backoff_max: Duration::from_millis(80),
            ..ClerkOptions::default()
        };
        let mut backoff = Backoff::new(&options);
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let bases = [10, 20, 40, 80, 80, 80];
        for base in bases {
            let pause = backoff.next_pause(&mut rng);
            let base = Duration::from_millis(base);
            assert!(
                pause >= base / 2 && pause <= base,
                "{pause:?} outside [{:?}, {base:?}]",
                base / 2
            );
        }
    }

    #[test]
    fn same_seed_gives_the_same_pauses() {
        let options = ClerkOptions::default();
        let draw = || {
            let mut backoff = Backoff::new(&options);
            let mut rng = ChaCha8Rng::seed_from_u64(42);
            (0..8)
                .map(|_| backoff.next_pause(&mut rng))
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(), draw());
    }
}
