//! Provider limits, enforced and reported the way each provider describes its own, so cwa's
//! pacing ([`crate::providers::pacing`]) meets in the sandbox what it meets in production:
//!
//! | provider | limit | on every answer | over the limit |
//! |---|---|---|---|
//! | Telnyx | `requests` per `seconds` window | `x-ratelimit-limit`, `x-ratelimit-remaining`, `x-ratelimit-reset` (seconds until the window resets) | 429, errors code `10011`, the same headers |
//! | LiveKit | `requests` per `seconds` window | nothing | 429, Twirp `resource_exhausted` |
//! | Twilio | requests in flight at once | `Twilio-Concurrent-Requests` | 429, code `20429` |
//!
//! A refused request is not carried out (nothing is committed), as Twilio documents for its
//! 429s. Per run, from [`LIMITS_ENV`] (`CWA_SANDBOX_LIMITS=telnyx=100/1s,livekit=1000/60s,twilio=8`)
//! or [`crate::sandbox::SandboxOptions::limits`]; none by default. Unlike the `rate_limit`
//! fault (the same answer for every provider), these are the providers' own kinds of limit.

use std::collections::HashMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// The variable a run sets its limits with.
pub const LIMITS_ENV: &str = "CWA_SANDBOX_LIMITS";

/// At most `requests` in each `seconds`-long window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Window {
    pub requests: u64,
    pub seconds: f64,
}

/// The limits of one run; a provider without one is unlimited.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LimitConfig {
    #[serde(default)]
    pub telnyx: Option<Window>,
    #[serde(default)]
    pub livekit: Option<Window>,
    /// Requests Twilio serves at once.
    #[serde(default)]
    pub twilio_concurrency: Option<u32>,
}

impl LimitConfig {
    /// `telnyx=100/1s,livekit=1000/60s,twilio=8` (any subset, any order).
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut config = Self::default();
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, value) = part
                .split_once('=')
                .ok_or_else(|| format!("`{part}`: expected provider=limit"))?;
            match name.trim() {
                "telnyx" => config.telnyx = Some(window(value)?),
                "livekit" => config.livekit = Some(window(value)?),
                "twilio" => {
                    let n: u32 = value.trim().parse().map_err(|_| {
                        format!("`{part}`: Twilio's limit is requests in flight, a whole number")
                    })?;
                    config.twilio_concurrency = Some(n.max(1));
                }
                other => return Err(format!("`{other}`: not telnyx, livekit or twilio")),
            }
        }
        Ok(config)
    }

    /// The limits [`LIMITS_ENV`] asks for (none when unset).
    pub fn from_env() -> Result<Self, String> {
        match std::env::var(LIMITS_ENV) {
            Ok(spec) => Self::parse(&spec).map_err(|e| format!("{LIMITS_ENV}: {e}")),
            Err(_) => Ok(Self::default()),
        }
    }
}

/// `100/1s`, `1000/60s`, `5/2.5s` (the `s` is optional).
fn window(value: &str) -> Result<Window, String> {
    let (requests, seconds) = value
        .trim()
        .split_once('/')
        .ok_or_else(|| format!("`{value}`: expected requests/seconds, as 100/1s"))?;
    let requests: u64 = requests
        .trim()
        .parse()
        .map_err(|_| format!("`{value}`: the request count is not a whole number"))?;
    let seconds: f64 = seconds
        .trim()
        .trim_end_matches('s')
        .parse()
        .map_err(|_| format!("`{value}`: the window is not a number of seconds"))?;
    if requests == 0 || !(seconds > 0.0 && seconds.is_finite()) {
        return Err(format!("`{value}`: both figures must be above zero"));
    }
    Ok(Window { requests, seconds })
}

/// Why a request was refused, with what the provider reports alongside.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Refusal {
    Telnyx { limit: u64, reset_secs: u64 },
    Livekit,
    Twilio { concurrent: u32 },
}

/// The live state of a run's limits: the current window of each rate-limited provider and
/// Twilio's requests in flight.
#[derive(Debug, Default)]
pub struct Limits {
    config: LimitConfig,
    /// Per provider: the window's index and the requests it has admitted.
    windows: Mutex<HashMap<&'static str, (u64, u64)>>,
    twilio_in_flight: Mutex<u32>,
}

/// An admitted request: the headers its answer carries, and (for Twilio) its place among the
/// requests in flight, given back when dropped.
#[derive(Debug)]
pub struct Ticket<'a> {
    limits: &'a Limits,
    in_flight: bool,
    pub headers: Vec<(String, String)>,
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        if self.in_flight {
            let mut n = lock(&self.limits.twilio_in_flight);
            *n = n.saturating_sub(1);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Limits {
    pub fn new(config: LimitConfig) -> Self {
        Self {
            config,
            ..Self::default()
        }
    }

    pub fn config(&self) -> &LimitConfig {
        &self.config
    }

    /// Admits one request to `provider` (`telnyx`, `livekit`, `twilio`) at `now_ms`, or says
    /// why not.
    pub fn admit(&self, provider: &str, now_ms: u64) -> Result<Ticket<'_>, Refusal> {
        let mut ticket = Ticket {
            limits: self,
            in_flight: false,
            headers: Vec::new(),
        };
        match provider {
            "telnyx" => {
                let Some(w) = self.config.telnyx else {
                    return Ok(ticket);
                };
                let (admitted, remaining, reset_secs) = self.count("telnyx", w, now_ms);
                if !admitted {
                    return Err(Refusal::Telnyx {
                        limit: w.requests,
                        reset_secs,
                    });
                }
                ticket.headers = telnyx_headers(w.requests, remaining, reset_secs);
            }
            "livekit" => {
                if let Some(w) = self.config.livekit {
                    if !self.count("livekit", w, now_ms).0 {
                        return Err(Refusal::Livekit);
                    }
                }
            }
            "twilio" => {
                let Some(cap) = self.config.twilio_concurrency else {
                    return Ok(ticket);
                };
                let mut n = lock(&self.twilio_in_flight);
                if *n >= cap {
                    return Err(Refusal::Twilio { concurrent: *n + 1 });
                }
                *n += 1;
                ticket.in_flight = true;
                ticket.headers = vec![("twilio-concurrent-requests".into(), n.to_string())];
            }
            _ => {}
        }
        Ok(ticket)
    }

    /// Counts one request in the provider's current window: whether it fits, how many are
    /// left after it, and the whole seconds until the window resets (at least 1).
    fn count(&self, provider: &'static str, w: Window, now_ms: u64) -> (bool, u64, u64) {
        let span = (w.seconds * 1000.0).max(1.0) as u64;
        let index = now_ms / span;
        let reset_ms = (index + 1) * span - now_ms;
        let reset_secs = reset_ms.div_ceil(1000).max(1);
        let mut windows = lock(&self.windows);
        let entry = windows.entry(provider).or_insert((index, 0));
        if entry.0 != index {
            *entry = (index, 0);
        }
        if entry.1 >= w.requests {
            return (false, 0, reset_secs);
        }
        entry.1 += 1;
        (true, w.requests - entry.1, reset_secs)
    }
}

/// Telnyx's three rate-limit headers.
pub fn telnyx_headers(limit: u64, remaining: u64, reset_secs: u64) -> Vec<(String, String)> {
    vec![
        ("x-ratelimit-limit".into(), limit.to_string()),
        ("x-ratelimit-remaining".into(), remaining.to_string()),
        ("x-ratelimit-reset".into(), reset_secs.to_string()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_parse_per_provider() {
        let c = LimitConfig::parse("telnyx=100/1s, livekit=1000/60s,twilio=8").unwrap();
        assert_eq!(
            c.telnyx,
            Some(Window {
                requests: 100,
                seconds: 1.0
            })
        );
        assert_eq!(c.livekit.unwrap().seconds, 60.0);
        assert_eq!(c.twilio_concurrency, Some(8));
        assert!(
            LimitConfig::parse("twilio=5/1s").is_err(),
            "Twilio has no rate"
        );
        assert!(LimitConfig::parse("telnyx=0/1s").is_err());
        assert!(LimitConfig::parse("plivo=1/1s").is_err());
        assert_eq!(LimitConfig::parse("").unwrap(), LimitConfig::default());
    }

    #[test]
    fn telnyx_windows_count_and_report() {
        let limits = Limits::new(LimitConfig::parse("telnyx=2/1s").unwrap());
        let first = limits.admit("telnyx", 10_000).unwrap();
        assert!(first
            .headers
            .contains(&("x-ratelimit-remaining".into(), "1".into())));
        limits.admit("telnyx", 10_100).unwrap();
        assert_eq!(
            limits.admit("telnyx", 10_900).unwrap_err(),
            Refusal::Telnyx {
                limit: 2,
                reset_secs: 1
            }
        );
        assert!(limits.admit("telnyx", 11_000).is_ok(), "a new window");
        assert!(limits.admit("livekit", 0).is_ok(), "no LiveKit limit set");
    }

    #[test]
    fn twilio_counts_requests_in_flight() {
        let limits = Limits::new(LimitConfig::parse("twilio=2").unwrap());
        let a = limits.admit("twilio", 0).unwrap();
        let _b = limits.admit("twilio", 0).unwrap();
        assert_eq!(
            limits.admit("twilio", 0).unwrap_err(),
            Refusal::Twilio { concurrent: 3 }
        );
        drop(a);
        let c = limits.admit("twilio", 0).unwrap();
        assert_eq!(
            c.headers,
            vec![("twilio-concurrent-requests".to_string(), "2".to_string())]
        );
    }
}
