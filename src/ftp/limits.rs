//! Limits applied at login: the brute-force lockout and the cap on sessions per user.
//!
//! - Lockout: login attempts are counted per (identity, client IP), the identity being whose password is tried
//!   (`Credentials::identity`: one for every spelling, project and case of a Keystone user). Attempts of a pair
//!   take turns, so parallel sessions cannot outrun the count. After `max_failures`, each less than `lockout`
//!   after the previous, the pair is locked for `lockout`: every attempt
//!   then fails at once with the same `530` as a wrong password, without reaching the auth service (libunftp's
//!   own policy still asks Keystone, which may lock the real account). Other users from that address, and the same
//!   user from other addresses, are not affected.
//! - Sessions per user: a login over the cap is refused (`530`); the slot is freed when the session ends.
//!
//! Memory is bounded: entries older than the lockout are swept once the table grows.
//! Not here: limits on connections (`server.rs`), which apply before any login.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Table size from which stale entries are swept on insert.
const SWEEP_FROM: usize = 10_000;

#[derive(Debug)]
struct Failures {
    count: u32,
    last: Instant,
    locked_until: Option<Instant>,
}

/// A pair's turn to attempt a login: held by the attempt that runs.
type Turn = Arc<tokio::sync::Mutex<()>>;

/// Failed logins per (login, client IP).
#[derive(Debug)]
pub struct Lockout {
    max_failures: u32,
    lockout: Duration,
    table: Mutex<HashMap<(String, IpAddr), Failures>>,
    /// Whose attempt runs now, per pair (see [`Lockout::one_at_a_time`]).
    turns: Mutex<HashMap<(String, IpAddr), Turn>>,
}

impl Lockout {
    /// Locks a pair after `max_failures` (0: never) for `lockout`.
    pub fn new(max_failures: u32, lockout: Duration) -> Self {
        Self {
            max_failures,
            lockout,
            table: Mutex::new(HashMap::new()),
            turns: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `login` from `ip` is locked now.
    pub fn is_locked(&self, login: &str, ip: IpAddr) -> bool {
        let table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        table
            .get(&(login.to_owned(), ip))
            .and_then(|f| f.locked_until)
            .is_some_and(|until| Instant::now() < until)
    }

    /// Waits for the pair's turn: one login attempt of `login` from `ip` at a time, so that sessions trying in
    /// parallel cannot outrun the count (each sees the failures of those before it). Legitimate parallel logins
    /// (a client opening several connections) pass one after the other, the first one's token serving the others
    /// at once. Hold the guard until the attempt is counted and answered.
    pub async fn one_at_a_time(&self, login: &str, ip: IpAddr) -> tokio::sync::OwnedMutexGuard<()> {
        let turn = {
            let mut turns = self.turns.lock().unwrap_or_else(|p| p.into_inner());
            if turns.len() >= SWEEP_FROM {
                turns.retain(|_, t| Arc::strong_count(t) > 1);
            }
            Arc::clone(turns.entry((login.to_owned(), ip)).or_default())
        };
        turn.lock_owned().await
    }

    /// Counts a failed login; returns true when this failure locked the pair.
    pub fn failed(&self, login: &str, ip: IpAddr) -> bool {
        if self.max_failures == 0 {
            return false;
        }
        let now = Instant::now();
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        if table.len() >= SWEEP_FROM {
            let lockout = self.lockout;
            // A lock ends `lockout` after the failure that set it, which is that entry's last: recent entries are
            // exactly the ones still counting or still locked.
            table.retain(|_, f| now.duration_since(f.last) < lockout);
        }
        let f = table.entry((login.to_owned(), ip)).or_insert(Failures {
            count: 0,
            last: now,
            locked_until: None,
        });
        if now.duration_since(f.last) >= self.lockout {
            f.count = 0;
        }
        f.count += 1;
        f.last = now;
        if f.count >= self.max_failures {
            f.locked_until = Some(now + self.lockout);
            f.count = 0;
            return true;
        }
        false
    }

    /// A successful login clears the pair's failures.
    pub fn succeeded(&self, login: &str, ip: IpAddr) {
        self.table
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&(login.to_owned(), ip));
    }
}

/// Sessions per login name.
#[derive(Debug, Clone)]
pub struct UserSessions {
    max: u32,
    counts: Arc<Mutex<HashMap<String, u32>>>,
}

/// One session's place under the cap; freed on drop.
#[derive(Debug)]
pub struct SessionSlot {
    login: String,
    counts: Arc<Mutex<HashMap<String, u32>>>,
}

impl Drop for SessionSlot {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = counts.get_mut(&self.login) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.login);
            }
        }
    }
}

impl UserSessions {
    /// At most `max` sessions per login (0: no limit).
    pub fn new(max: u32) -> Self {
        Self {
            max,
            counts: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// A slot for one more session of `login`, or `None` at the cap.
    pub fn acquire(&self, login: &str) -> Option<SessionSlot> {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let n = counts.entry(login.to_owned()).or_insert(0);
        if self.max > 0 && *n >= self.max {
            return None;
        }
        *n += 1;
        Some(SessionSlot {
            login: login.to_owned(),
            counts: Arc::clone(&self.counts),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2));

    #[test]
    fn a_pair_locks_after_its_failures_and_unlocks_after_the_lockout() {
        let l = Lockout::new(3, Duration::from_millis(200));
        assert!(!l.failed("u", A));
        assert!(!l.failed("u", A));
        assert!(!l.is_locked("u", A));
        assert!(l.failed("u", A));
        assert!(l.is_locked("u", A));
        assert!(!l.is_locked("u", B));
        assert!(!l.is_locked("v", A));
        std::thread::sleep(Duration::from_millis(250));
        assert!(!l.is_locked("u", A));
    }

    #[test]
    fn success_clears_and_zero_never_locks() {
        let l = Lockout::new(2, Duration::from_secs(60));
        l.failed("u", A);
        l.succeeded("u", A);
        assert!(!l.failed("u", A));
        let never = Lockout::new(0, Duration::from_secs(60));
        for _ in 0..10 {
            never.failed("u", A);
        }
        assert!(!never.is_locked("u", A));
    }

    #[tokio::test]
    async fn attempts_of_one_pair_take_turns_and_other_pairs_do_not_wait() {
        let l = Arc::new(Lockout::new(5, Duration::from_secs(60)));
        let first = l.one_at_a_time("u", A).await;
        let waiting = {
            let l = Arc::clone(&l);
            tokio::spawn(async move { l.one_at_a_time("u", A).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            !waiting.is_finished(),
            "a second attempt ran beside the first"
        );
        // Another user, or the same user from elsewhere, goes at once.
        let _other = l.one_at_a_time("v", A).await;
        let _elsewhere = l.one_at_a_time("u", B).await;
        drop(first);
        let _second = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .unwrap()
            .unwrap();
    }

    /// The turn table is swept once it holds `SWEEP_FROM` pairs: finished attempts' turns go (memory stays
    /// bounded), the turn of an attempt still running stays (or a second attempt of that pair would not wait).
    #[tokio::test]
    async fn a_large_turn_table_forgets_finished_attempts_and_keeps_running_ones() {
        let l = Arc::new(Lockout::new(5, Duration::from_secs(60)));
        let running = l.one_at_a_time("running", A).await;
        for i in 0..SWEEP_FROM {
            drop(l.one_at_a_time(&format!("u{i}"), A).await);
        }
        let kept = l.turns.lock().unwrap().len();
        assert!(kept <= 2, "{kept} turns kept after the sweep");
        let waiting = {
            let l = Arc::clone(&l);
            tokio::spawn(async move { l.one_at_a_time("running", A).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            !waiting.is_finished(),
            "the sweep dropped the turn of a running attempt"
        );
        drop(running);
        let _next = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .unwrap()
            .unwrap();
    }

    /// The failure table is swept once it holds `SWEEP_FROM` pairs: failures older than the lockout go, recent
    /// ones stay counted (or a sweep would hand an attacker a fresh budget).
    #[test]
    fn a_large_failure_table_forgets_old_failures_and_keeps_recent_ones() {
        let l = Lockout::new(3, Duration::from_millis(300));
        for i in 0..SWEEP_FROM - 2 {
            l.failed(&format!("old{i}"), A);
        }
        std::thread::sleep(Duration::from_millis(350));
        assert!(!l.failed("victim", A));
        assert!(!l.failed("victim", A));
        assert!(!l.failed("other", A));
        // The table is full now: this failure sweeps it first.
        assert!(l.failed("victim", A), "the sweep forgot recent failures");
        assert!(l.is_locked("victim", A));
        let kept = l.table.lock().unwrap().len();
        assert!(kept <= 2, "{kept} entries kept after the sweep");
    }

    #[test]
    fn sessions_per_user_are_capped_and_freed() {
        let s = UserSessions::new(2);
        let a = s.acquire("u").unwrap();
        let _b = s.acquire("u").unwrap();
        assert!(s.acquire("u").is_none());
        assert!(s.acquire("v").is_some());
        drop(a);
        assert!(s.acquire("u").is_some());
        let unlimited = UserSessions::new(0);
        let all: Vec<_> = (0..100).map(|_| unlimited.acquire("u").unwrap()).collect();
        assert_eq!(all.len(), 100);
    }
}
