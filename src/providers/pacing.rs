//! Pacing: how fast, and how many at once, each provider is asked, learned from what the
//! provider itself reports instead of a fixed rate of cwa's own.
//!
//! What each provider says about its limits (checked 2026-12-02):
//! - **Telnyx** publishes no fixed rate. Its answers carry `x-ratelimit-limit`,
//!   `x-ratelimit-remaining` and `x-ratelimit-reset` (seconds until the window resets); over
//!   the limit it answers 429 with error code `10011` "Too many requests"
//!   (developers.telnyx.com, api-fundamentals/reliability/rate-limiting). cwa spreads the
//!   remaining requests over the seconds left ([`Gate::observe`]) and waits out the window at 0.
//! - **LiveKit** sends no rate-limit headers; a limit arrives as Twirp `resource_exhausted`,
//!   HTTP 429 (livekit/protocol's twirp error table; docs.livekit.io quotas-and-limits only says
//!   rate limits exist per project). cwa probes: it starts at the configured rate, doubles it
//!   after every window of clean answers, halves it at a 429 and never again goes past the rate
//!   that drew one.
//! - **Twilio** limits concurrent requests, not a rate: over the limit it answers 429 with
//!   error `20429`, and its answers carry `Twilio-Concurrent-Requests`
//!   (twilio.com/docs/api/errors/20429). cwa paces Twilio by requests in flight only: it starts
//!   at the configured concurrency, adds one after every round of clean answers, halves at a
//!   429 and stays below the concurrency that drew one.
//!
//! Whether a refused create may simply be sent again ([`unprocessed_on_429`]) is decided here
//! too, from the same documents.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::StatusCode;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::model::ProviderName;

/// The most requests cwa keeps in flight at Twilio while probing (Twilio publishes no figure;
/// the first 20429 sets the real one for the run).
pub const TWILIO_MAX_CONCURRENCY: usize = 32;
/// The slowest rate a 429 can push a provider to.
const MIN_RPS: f64 = 0.5;

/// Whether the provider documents that a request it answered 429 was not carried out, so a
/// create refused with 429 may be sent again as it is. Twilio does ("An API Request that
/// receives an error 429 response is never processed and is always safe to retry",
/// twilio.com/docs/api/errors/20429). Telnyx's rate-limiting page and LiveKit's docs say no such
/// thing, so a create they refuse is looked up before it is sent again
/// ([`super::post_once`]).
pub fn unprocessed_on_429(provider: ProviderName) -> bool {
    provider == ProviderName::Twilio
}

/// How a provider is paced: by a request rate learned from its answers, or by requests in
/// flight (Twilio).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Rate,
    Concurrency,
}

impl Style {
    pub fn of(provider: ProviderName) -> Self {
        match provider {
            ProviderName::Twilio => Self::Concurrency,
            ProviderName::Telnyx | ProviderName::Livekit => Self::Rate,
        }
    }
}

/// At most `burst` request starts in any `window`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct RateWindow {
    burst: usize,
    window: Duration,
}

impl RateWindow {
    /// `rps` requests per second as whole requests per window: 20/s is 20 per second, 2.5/s
    /// is 2 per 0.8 s, 0.5/s is 1 per 2 s.
    pub(super) fn of(rps: f64) -> Option<Self> {
        if !(rps > 0.0 && rps.is_finite()) {
            return None;
        }
        let burst = (rps.floor() as usize).max(1);
        Some(Self {
            burst,
            window: Duration::from_secs_f64(burst as f64 / rps),
        })
    }
}

/// What the gate knows of the rate: the current one, the highest a 429 allows, and when the
/// provider said to wait until.
#[derive(Debug)]
struct RateState {
    /// Requests per second now; `None` when the run asked for no pacing (rate 0).
    rps: Option<f64>,
    /// No probe goes past this (lowered by each 429).
    ceiling: f64,
    /// Set once the provider reported its own figures: they are followed, not probed.
    informed: bool,
    /// Clean answers since the rate last changed.
    clean: usize,
    /// Start times reserved by the last `burst` requests, oldest first.
    recent: VecDeque<Instant>,
    /// No request starts before this (a 429's wait, or an exhausted window).
    paused_until: Option<Instant>,
}

/// Requests in flight: the limit now, the highest a 429 allows, and how many are out.
#[derive(Debug)]
struct SlotState {
    limit: usize,
    ceiling: usize,
    busy: usize,
    clean: usize,
}

/// The per-provider pacing of one client: a concurrency limit and a request rate, both moved
/// by what the provider answers ([`Gate::observe`]). The rate is kept over a sliding window
/// (at most `burst` requests start in any `window`), so the handful of independent list calls
/// a refresh opens with go out at once.
#[derive(Debug)]
pub struct Gate {
    style: Style,
    slots: Mutex<SlotState>,
    freed: Notify,
    rate: Mutex<RateState>,
}

/// One request slot, given back when dropped.
#[derive(Debug)]
pub struct Permit<'a> {
    gate: &'a Gate,
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        lock(&self.gate.slots).busy -= 1;
        self.gate.freed.notify_one();
    }
}

/// What one attempt brought back, for the gate to learn from.
#[derive(Debug, Clone, Copy)]
pub enum Seen<'a> {
    /// An answer with its status and headers.
    Answer(StatusCode, &'a HeaderMap),
    /// A 429 from a client that cannot see headers (the LiveKit SDK's calls).
    Refused,
    /// Any other answer seen through the SDK.
    Answered,
    /// No answer at all (nothing to learn).
    Lost,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Gate {
    /// A gate for `provider`, starting at `concurrency` requests in flight and `rps` requests
    /// per second (0: no rate pacing at all). Twilio is paced by concurrency only.
    pub fn new(provider: ProviderName, concurrency: usize, rps: f64) -> Self {
        Self::with_style(Style::of(provider), concurrency, rps)
    }

    fn with_style(style: Style, concurrency: usize, rps: f64) -> Self {
        let start = concurrency.max(1);
        let ceiling = match style {
            Style::Concurrency => TWILIO_MAX_CONCURRENCY.max(start),
            Style::Rate => start,
        };
        let rps = match style {
            Style::Rate => Some(rps).filter(|r| *r > 0.0 && r.is_finite()),
            Style::Concurrency => None,
        };
        Self {
            style,
            slots: Mutex::new(SlotState {
                limit: start,
                ceiling,
                busy: 0,
                clean: 0,
            }),
            freed: Notify::new(),
            rate: Mutex::new(RateState {
                rps,
                ceiling: f64::INFINITY,
                informed: false,
                clean: 0,
                recent: VecDeque::new(),
                paused_until: None,
            }),
        }
    }

    /// The requests per second the gate allows now (`None`: not paced by rate).
    pub fn rate(&self) -> Option<f64> {
        lock(&self.rate).rps
    }

    /// The requests the gate lets be in flight at once now.
    pub fn concurrency(&self) -> usize {
        lock(&self.slots).limit
    }

    /// Waits for a free slot and for the rate to allow one more start; the permit is held for
    /// one attempt.
    pub async fn enter(&self) -> Permit<'_> {
        let permit = self.slot().await;
        if let Some(start) = self.reserve(Instant::now()) {
            tokio::time::sleep_until(start).await;
        }
        permit
    }

    async fn slot(&self) -> Permit<'_> {
        loop {
            let freed = self.freed.notified();
            {
                let mut s = lock(&self.slots);
                if s.busy < s.limit {
                    s.busy += 1;
                    return Permit { gate: self };
                }
            }
            freed.await;
        }
    }

    /// The earliest start at or after `now` that keeps every window within the rate and
    /// after any pause; slots are reserved in order, so they never decrease.
    fn reserve(&self, now: Instant) -> Option<Instant> {
        let mut r = lock(&self.rate);
        let earliest = r.paused_until.map_or(now, |p| p.max(now));
        let Some(window) = r.rps.and_then(RateWindow::of) else {
            return (earliest > now).then_some(earliest);
        };
        let slot = match r.recent.len().checked_sub(window.burst) {
            Some(i) => earliest.max(r.recent[i] + window.window),
            None => earliest,
        };
        r.recent.push_back(slot);
        while r.recent.len() > window.burst {
            r.recent.pop_front();
        }
        Some(slot)
    }

    /// Learns from one attempt's answer: a provider's own figures are followed, a 429 slows
    /// the provider down for every caller (and pauses it for `wait` when the provider said
    /// how long), clean answers let the pace grow back.
    pub fn observe(&self, seen: Seen<'_>, wait: Option<Duration>) {
        let refused = match seen {
            Seen::Answer(status, _) => status == StatusCode::TOO_MANY_REQUESTS,
            Seen::Refused => true,
            Seen::Answered => false,
            Seen::Lost => return,
        };
        let headers = match seen {
            Seen::Answer(_, h) => Some(h),
            _ => None,
        };
        match self.style {
            Style::Rate => self.observe_rate(refused, headers, wait),
            Style::Concurrency => self.observe_slots(refused, headers),
        }
    }

    fn observe_rate(&self, refused: bool, headers: Option<&HeaderMap>, wait: Option<Duration>) {
        let now = Instant::now();
        let mut r = lock(&self.rate);
        let Some(rps) = r.rps else { return };
        let reported = headers.and_then(RateReport::read);
        if let Some(report) = reported {
            r.informed = true;
            if report.remaining == 0 || refused {
                r.paused_until = Some(now + report.reset.min(MAX_PAUSE));
            }
            let follow = report.rps().min(r.ceiling).max(MIN_RPS);
            r.rps = Some(if refused {
                follow.min(rps / 2.0)
            } else {
                follow
            });
            return;
        }
        if refused {
            r.ceiling = rps;
            r.rps = Some((rps / 2.0).max(MIN_RPS));
            r.clean = 0;
            if let Some(w) = wait {
                r.paused_until = Some(now + w.min(MAX_PAUSE));
            }
            return;
        }
        if r.informed {
            return;
        }
        r.clean += 1;
        if r.clean as f64 >= rps.max(1.0) {
            r.clean = 0;
            let grown = if r.ceiling.is_finite() {
                rps * 1.1
            } else {
                rps * 2.0
            };
            r.rps = Some(grown.min(r.ceiling).max(rps));
        }
    }

    fn observe_slots(&self, refused: bool, headers: Option<&HeaderMap>) {
        let mut grew = false;
        {
            let mut s = lock(&self.slots);
            if refused {
                let seen = headers
                    .and_then(|h| header_number(h, "twilio-concurrent-requests"))
                    .map(|c| c as usize);
                let drew = seen.unwrap_or(s.limit).min(s.limit);
                s.ceiling = drew.saturating_sub(1).max(1);
                s.limit = (s.limit / 2).clamp(1, s.ceiling);
                s.clean = 0;
            } else {
                s.clean += 1;
                if s.clean >= s.limit && s.limit < s.ceiling {
                    s.clean = 0;
                    s.limit += 1;
                    grew = true;
                }
            }
        }
        if grew {
            self.freed.notify_one();
        }
    }
}

/// Telnyx's figures on an answer: how many requests are left and how long until the window
/// resets.
#[derive(Debug, Clone, Copy, PartialEq)]
struct RateReport {
    remaining: u64,
    reset: Duration,
}

impl RateReport {
    fn read(headers: &HeaderMap) -> Option<Self> {
        let remaining = header_number(headers, "x-ratelimit-remaining")?;
        let reset = header_number(headers, "x-ratelimit-reset")?;
        header_number(headers, "x-ratelimit-limit")?;
        Some(Self {
            remaining: remaining as u64,
            reset: super::http::reported_wait(reset),
        })
    }

    /// The remaining requests spread over the time left in the window.
    fn rps(&self) -> f64 {
        let secs = self.reset.as_secs_f64().max(0.001);
        self.remaining as f64 / secs
    }
}

/// The longest a provider's report pauses every request to it: a window resets within a minute,
/// and a reset reported further away (a broken or hostile server) must not stall the run.
pub const MAX_PAUSE: Duration = Duration::from_secs(60);

fn header_number(headers: &HeaderMap, name: &str) -> Option<f64> {
    headers
        .get(name)?
        .to_str()
        .ok()?
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn telnyx_headers(limit: u64, remaining: u64, reset: u64) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("x-ratelimit-limit", limit),
            ("x-ratelimit-remaining", remaining),
            ("x-ratelimit-reset", reset),
        ] {
            h.insert(k, HeaderValue::from_str(&v.to_string()).unwrap());
        }
        h
    }

    #[test]
    fn rate_windows_hold_whole_requests() {
        let w = |rps: f64| RateWindow::of(rps).map(|r| (r.burst, r.window.as_millis()));
        assert_eq!(w(20.0), Some((20, 1000)));
        assert_eq!(w(2.5), Some((2, 800)));
        assert_eq!(w(0.5), Some((1, 2000)));
        assert_eq!(w(0.0), None);
        assert_eq!(w(f64::INFINITY), None);
    }

    #[tokio::test]
    async fn a_burst_goes_at_once_and_no_window_exceeds_the_rate() {
        let gate = Gate::new(ProviderName::Telnyx, 8, 3.0);
        let t0 = Instant::now();
        let slots: Vec<Duration> = (0..7).map(|_| gate.reserve(t0).unwrap() - t0).collect();
        let s = Duration::from_secs;
        assert_eq!(slots, [s(0), s(0), s(0), s(1), s(1), s(1), s(2)]);
        let later = gate.reserve(t0 + s(10)).unwrap() - t0;
        assert_eq!(later, s(10), "an idle gate lets a request through at once");
    }

    /// Telnyx's own figures set the pace: the remaining requests over the seconds left, and
    /// a pause until the reset when none are left.
    #[test]
    fn telnyx_figures_are_followed() {
        let gate = Gate::new(ProviderName::Telnyx, 8, 20.0);
        gate.observe(
            Seen::Answer(StatusCode::OK, &telnyx_headers(100, 50, 10)),
            None,
        );
        assert_eq!(gate.rate(), Some(5.0));
        gate.observe(
            Seen::Answer(StatusCode::OK, &telnyx_headers(100, 0, 3)),
            None,
        );
        let paused = lock(&gate.rate).paused_until.unwrap() - Instant::now();
        assert!(paused > Duration::from_secs(2) && paused <= Duration::from_secs(3));
        assert_eq!(gate.rate(), Some(MIN_RPS));
    }

    /// A reset too far away to believe (a broken or hostile server) pauses no longer than the
    /// longest reported wait cwa honours, and does not overflow the clock.
    #[test]
    fn a_reset_beyond_belief_pauses_no_longer_than_the_cap() {
        let gate = Gate::new(ProviderName::Telnyx, 8, 20.0);
        let mut headers = telnyx_headers(100, 0, 1);
        headers.insert("x-ratelimit-reset", HeaderValue::from_static("1e300"));
        gate.observe(Seen::Answer(StatusCode::OK, &headers), None);
        let paused = lock(&gate.rate).paused_until.unwrap() - Instant::now();
        assert!(
            paused <= super::super::http::MAX_REPORTED_WAIT,
            "{paused:?}"
        );
    }

    /// Without figures (LiveKit) the rate doubles after each clean window, halves at a 429,
    /// and never again passes the rate that drew the 429.
    #[test]
    fn livekit_is_probed_and_backs_off() {
        let gate = Gate::new(ProviderName::Livekit, 4, 10.0);
        for _ in 0..10 {
            gate.observe(Seen::Answered, None);
        }
        assert_eq!(gate.rate(), Some(20.0));
        gate.observe(Seen::Refused, None);
        assert_eq!(gate.rate(), Some(10.0));
        for _ in 0..200 {
            gate.observe(Seen::Answered, None);
        }
        let rate = gate.rate().unwrap();
        assert!(rate > 10.0 && rate <= 20.0, "{rate}");
    }

    /// Twilio is paced by requests in flight: one more after each clean round, half at a
    /// 20429, and below the concurrency the 429 reported.
    #[test]
    fn twilio_concurrency_follows_its_429s() {
        let gate = Gate::new(ProviderName::Twilio, 4, 20.0);
        assert_eq!(gate.rate(), None, "Twilio limits concurrency, not a rate");
        let ok = HeaderMap::new();
        for _ in 0..4 {
            gate.observe(Seen::Answer(StatusCode::OK, &ok), None);
        }
        assert_eq!(gate.concurrency(), 5);
        let mut refused = HeaderMap::new();
        refused.insert("twilio-concurrent-requests", HeaderValue::from_static("4"));
        gate.observe(Seen::Answer(StatusCode::TOO_MANY_REQUESTS, &refused), None);
        assert_eq!(gate.concurrency(), 2);
        for _ in 0..100 {
            gate.observe(Seen::Answer(StatusCode::OK, &ok), None);
        }
        assert_eq!(
            gate.concurrency(),
            3,
            "never again at the 4 that drew the 429"
        );
    }

    #[tokio::test]
    async fn slots_are_given_back() {
        let gate = Gate::new(ProviderName::Livekit, 1, 0.0);
        let first = gate.enter().await;
        let waiting = tokio::time::timeout(Duration::from_millis(50), gate.enter()).await;
        assert!(
            waiting.is_err(),
            "the second waits while the only slot is out"
        );
        drop(first);
        let second = tokio::time::timeout(Duration::from_millis(500), gate.enter()).await;
        assert!(second.is_ok());
    }
}
