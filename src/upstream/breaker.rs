//! The circuit breaker of one upstream client (`super::Inner::guarded` is
//! its only caller).
//!
//! Closed: requests go through and failures in a row are counted. When the
//! count reaches the threshold the breaker opens: for the cooldown every
//! request is refused at once. After the cooldown it is half-open: exactly
//! one request (the probe) goes through while the others are still refused;
//! a healthy probe closes the breaker, a failed one opens it for another
//! cooldown.
//!
//! Only requests bulwark chose itself (`UpstreamRequest::probe`: checkpoint
//! and tile fetches, lookups of records it verifies) are counted, and only
//! they may be the half-open probe. A request whose path or body a client
//! chose says nothing about the upstream's health (a bogus fetch token that
//! makes the upstream drop the connection is that client's failure), so it
//! is not counted; it is still refused while the breaker is open.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug)]
pub(crate) struct Breaker {
    threshold: u32,
    cooldown: Duration,
    state: Mutex<State>,
    rejections: AtomicU64,
}

#[derive(Debug, Default)]
struct State {
    /// Failed requests in a row.
    failures: u32,
    /// Set while open: when the next probe may go.
    open_until: Option<Instant>,
    /// A probe is in flight (half-open).
    probing: bool,
}

/// Why a request was refused, or why the breaker just opened.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Open {
    pub(crate) failures: u32,
    pub(crate) retry_in: Duration,
}

impl Breaker {
    pub(crate) fn new(threshold: u32, cooldown: Duration) -> Self {
        Breaker {
            threshold,
            cooldown,
            state: Mutex::new(State::default()),
            rejections: AtomicU64::new(0),
        }
    }

    /// Lets a request through, or says how long until one may go.
    /// `counted` says whether the request is bulwark's own (see the module
    /// documentation): only such a request's outcome is recorded, and only
    /// such a request may probe a half-open breaker. The permit records the
    /// outcome; dropped unrecorded (the caller went away) it only frees the
    /// probe slot.
    pub(crate) fn admit(&self, counted: bool) -> Result<Permit<'_>, Open> {
        let permit = |probe| Permit {
            breaker: self,
            probe,
            counted,
            recorded: false,
        };
        let Ok(mut state) = self.state.lock() else {
            return Ok(permit(false));
        };
        let Some(until) = state.open_until else {
            return Ok(permit(false));
        };
        let now = Instant::now();
        if counted && now >= until && !state.probing {
            state.probing = true;
            return Ok(permit(true));
        }
        self.rejections.fetch_add(1, Ordering::Relaxed);
        Err(Open {
            failures: state.failures,
            retry_in: until.saturating_duration_since(now),
        })
    }

    /// Records the outcome of an admitted request; returns `Some` when this
    /// outcome opened the breaker.
    fn record(&self, healthy: bool) -> Option<Open> {
        let Ok(mut state) = self.state.lock() else {
            return None;
        };
        if healthy {
            *state = State::default();
            return None;
        }
        state.failures = state.failures.saturating_add(1);
        let was_probe = std::mem::take(&mut state.probing);
        if was_probe || (state.open_until.is_none() && state.failures >= self.threshold) {
            state.open_until = Some(Instant::now() + self.cooldown);
            return Some(Open {
                failures: state.failures,
                retry_in: self.cooldown,
            });
        }
        None
    }

    fn abandon_probe(&self) {
        if let Ok(mut state) = self.state.lock() {
            state.probing = false;
        }
    }

    pub(crate) fn rejections(&self) -> u64 {
        self.rejections.load(Ordering::Relaxed)
    }

    pub(crate) fn is_open(&self) -> bool {
        self.state
            .lock()
            .map(|s| s.open_until.is_some())
            .unwrap_or(false)
    }
}

/// One admitted request.
#[derive(Debug)]
pub(crate) struct Permit<'a> {
    breaker: &'a Breaker,
    probe: bool,
    counted: bool,
    recorded: bool,
}

impl Permit<'_> {
    /// Records the request's outcome if it counts; `Some` if it opened the
    /// breaker.
    pub(crate) fn record(mut self, healthy: bool) -> Option<Open> {
        if !self.counted {
            return None;
        }
        self.recorded = true;
        self.breaker.record(healthy)
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if !self.recorded && self.probe {
            self.breaker.abandon_probe();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_the_threshold_of_failures_in_a_row() {
        let b = Breaker::new(3, Duration::from_secs(3600));
        for _ in 0..2 {
            assert!(b.admit(true).unwrap().record(false).is_none());
        }
        let opened = b
            .admit(true)
            .unwrap()
            .record(false)
            .expect("third failure opens");
        assert_eq!(opened.failures, 3);
        let refused = b.admit(true).unwrap_err();
        assert_eq!(refused.failures, 3);
        assert!(refused.retry_in <= Duration::from_secs(3600));
        assert_eq!(b.rejections(), 1);
        assert!(b.is_open());
    }

    #[test]
    fn requests_a_client_chose_neither_open_nor_probe_it() {
        let b = Breaker::new(2, Duration::ZERO);
        for _ in 0..10 {
            assert!(b.admit(false).unwrap().record(false).is_none());
        }
        assert!(!b.is_open(), "client-chosen failures do not count");
        assert!(b.admit(true).unwrap().record(false).is_none());
        assert!(b.admit(true).unwrap().record(false).is_some());
        // Open (half-open at once, zero cooldown): a client request is
        // refused and may not take the probe slot; bulwark's own may.
        assert!(b.admit(false).is_err());
        let probe = b.admit(true).expect("bulwark's own request probes");
        assert!(probe.record(true).is_none());
        assert!(b.admit(false).is_ok());
    }

    #[test]
    fn a_success_resets_the_count() {
        let b = Breaker::new(2, Duration::from_secs(3600));
        assert!(b.admit(true).unwrap().record(false).is_none());
        assert!(b.admit(true).unwrap().record(true).is_none());
        assert!(b.admit(true).unwrap().record(false).is_none());
        assert!(b.admit(true).is_ok());
        assert!(!b.is_open());
    }

    #[test]
    fn after_the_cooldown_one_probe_goes_and_decides() {
        // A zero cooldown: the breaker is half-open as soon as it opens.
        let b = Breaker::new(1, Duration::ZERO);
        assert!(b.admit(true).unwrap().record(false).is_some());
        let probe = b.admit(true).expect("the probe goes");
        assert!(b.admit(true).is_err(), "only one probe at a time");
        assert!(probe.record(false).is_some(), "a failed probe reopens");
        let probe = b.admit(true).expect("next probe");
        assert!(probe.record(true).is_none());
        assert!(!b.is_open(), "a healthy probe closes");
        let (p1, p2) = (b.admit(true), b.admit(true));
        assert!(p1.is_ok() && p2.is_ok(), "closed: everyone goes");
    }

    #[test]
    fn an_abandoned_probe_frees_the_slot() {
        let b = Breaker::new(1, Duration::ZERO);
        assert!(b.admit(true).unwrap().record(false).is_some());
        drop(b.admit(true).expect("the probe goes"));
        assert!(b.admit(true).is_ok(), "another probe may go");
    }
}
