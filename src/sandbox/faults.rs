//! Fault injection: what can go wrong between cwa and a provider, reproducibly.
//!
//! A [`FaultConfig`] comes from the start options, from `DIR/faults.json` (read at start, so the
//! embedded `cwa --sandbox` can be faulted too) and from `POST /sandbox/faults` at runtime. It
//! never applies to `/sandbox/*` control routes. Decisions draw from one seeded RNG, so a run
//! with the same seed and the same requests fails the same way.
//!
//! Per request, in this order:
//! 1. `latency_ms` is waited before anything else;
//! 2. `rate_limit` (requests per second, per provider, in one-second windows): above it the
//!    answer is 429 with `Retry-After` (Telnyx adds `x-ratelimit-*` and code 10011, Twilio code
//!    20429, LiveKit Twirp `resource_exhausted`); nothing is committed;
//! 3. `error_rate`: that share of requests is answered 500 or 503 (alternating by the RNG),
//!    nothing committed;
//! 4. the first matching [`FaultRule`] (method + path prefix, with a `count` of remaining uses
//!    and/or a `probability`):
//!    * `lost_response`: the request is handled, its write committed and persisted, then the
//!      connection is dropped with no answer at all;
//!    * `hang`: nothing is committed and nothing is answered for `seconds`, then the
//!      connection is dropped (to trip client timeouts);
//!    * `malformed`: the request is handled and committed, and the answer is a 200 whose body
//!      is the real body cut in half (truncated JSON or protobuf);
//!    * `error`: the answer is `status` (default 500) in the provider's error shape, nothing
//!      committed.

use std::collections::BTreeMap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// Everything that can be faulted, as set at start or through `/sandbox/faults`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultConfig {
    /// Added to every provider request, in milliseconds.
    #[serde(default)]
    pub latency_ms: u64,
    /// Share of provider requests answered 500/503 (0.0 to 1.0).
    #[serde(default)]
    pub error_rate: f64,
    /// Requests per second per provider above which the answer is 429.
    #[serde(default)]
    pub rate_limit: Option<f64>,
    /// Seed of the RNG behind every probabilistic decision.
    #[serde(default)]
    pub seed: u64,
    #[serde(default)]
    pub rules: Vec<FaultRule>,
}

/// One targeted fault.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRule {
    pub kind: FaultKind,
    /// `POST`, `PATCH`, … (any method when absent).
    #[serde(default)]
    pub method: Option<String>,
    /// Matches requests whose path starts with this (`/v2/number_orders`).
    #[serde(default)]
    pub path_prefix: String,
    /// How many more requests this rule fires on (unlimited when absent).
    #[serde(default)]
    pub count: Option<u32>,
    /// Chance that a matching request is faulted (always when absent).
    #[serde(default)]
    pub probability: Option<f64>,
    /// For `hang`: how long to stay silent (default 30).
    #[serde(default)]
    pub seconds: Option<u64>,
    /// For `error`: the HTTP status (default 500).
    #[serde(default)]
    pub status: Option<u16>,
}

/// What a [`FaultRule`] does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    LostResponse,
    Hang,
    Malformed,
    Error,
}

/// The fate of one provider request.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Pass,
    /// Answer with this 5xx, commit nothing.
    Error(u16),
    /// Answer 429; the fields feed `Retry-After` and Telnyx's `x-ratelimit-*` headers.
    RateLimited {
        limit: u64,
        reset_secs: u64,
    },
    /// Commit, then drop the connection without answering.
    LostResponse,
    /// Commit nothing, stay silent this long, then drop the connection.
    Hang(u64),
    /// Commit, then answer 200 with half the body.
    Malformed,
}

/// The live fault state: configuration, RNG and rate-limit windows.
#[derive(Debug)]
pub struct Faults {
    config: FaultConfig,
    rng: StdRng,
    windows: BTreeMap<String, (u64, u64)>,
}

impl Faults {
    pub fn new(config: FaultConfig) -> Self {
        let rng = StdRng::seed_from_u64(config.seed);
        Self {
            config,
            rng,
            windows: BTreeMap::new(),
        }
    }

    pub fn config(&self) -> &FaultConfig {
        &self.config
    }

    /// Replaces the configuration and reseeds the RNG.
    pub fn set(&mut self, config: FaultConfig) {
        *self = Self::new(config);
    }

    pub fn latency_ms(&self) -> u64 {
        self.config.latency_ms
    }

    /// The rate-limit figures Telnyx reports on ordinary answers, when a limit is set.
    pub fn rate_headers(&self, provider: &str, now_ms: u64) -> Option<(u64, u64, u64)> {
        let limit = self.config.rate_limit?.max(1.0).floor() as u64;
        let second = now_ms / 1000;
        let used = match self.windows.get(provider) {
            Some((window, used)) if *window == second => *used,
            _ => 0,
        };
        Some((limit, limit.saturating_sub(used), 1))
    }

    /// Decides what happens to one request of `provider` at `now_ms` (milliseconds since the
    /// epoch), consuming rule counts and RNG draws.
    pub fn decide(&mut self, provider: &str, method: &str, path: &str, now_ms: u64) -> Decision {
        if let Some(decision) = self.rate_limit(provider, now_ms) {
            return decision;
        }
        if self.config.error_rate > 0.0
            && self.rng.random_bool(self.config.error_rate.clamp(0.0, 1.0))
        {
            let status = if self.rng.random_bool(0.5) { 500 } else { 503 };
            return Decision::Error(status);
        }
        self.rule_decision(method, path)
    }

    fn rate_limit(&mut self, provider: &str, now_ms: u64) -> Option<Decision> {
        let limit = self.config.rate_limit?.max(1.0).floor() as u64;
        let second = now_ms / 1000;
        let window = self
            .windows
            .entry(provider.to_string())
            .or_insert((second, 0));
        if window.0 != second {
            *window = (second, 0);
        }
        if window.1 >= limit {
            let reset_secs = 1 + (second * 1000 + 999).saturating_sub(now_ms) / 1000;
            return Some(Decision::RateLimited { limit, reset_secs });
        }
        window.1 += 1;
        None
    }

    fn rule_decision(&mut self, method: &str, path: &str) -> Decision {
        let rng = &mut self.rng;
        for rule in &mut self.config.rules {
            let method_matches = rule
                .method
                .as_deref()
                .is_none_or(|m| m.eq_ignore_ascii_case(method));
            if !method_matches || !path.starts_with(&rule.path_prefix) || rule.count == Some(0) {
                continue;
            }
            if let Some(p) = rule.probability {
                if !rng.random_bool(p.clamp(0.0, 1.0)) {
                    continue;
                }
            }
            if let Some(count) = rule.count.as_mut() {
                *count -= 1;
            }
            return match rule.kind {
                FaultKind::LostResponse => Decision::LostResponse,
                FaultKind::Hang => Decision::Hang(rule.seconds.unwrap_or(30)),
                FaultKind::Malformed => Decision::Malformed,
                FaultKind::Error => Decision::Error(rule.status.unwrap_or(500)),
            };
        }
        Decision::Pass
    }
}

/// Cuts a body in half, so it can no longer be parsed.
pub fn truncate_body(body: &[u8]) -> Vec<u8> {
    let keep = if body.len() <= 1 { 0 } else { body.len() / 2 };
    let mut out = body[..keep].to_vec();
    if out.is_empty() {
        out.extend_from_slice(b"{\"data\":");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(kind: FaultKind, count: Option<u32>) -> FaultRule {
        FaultRule {
            kind,
            method: Some("POST".into()),
            path_prefix: "/v2/number_orders".into(),
            count,
            probability: None,
            seconds: None,
            status: None,
        }
    }

    #[test]
    fn counted_rules_fire_exactly_count_times() {
        let mut faults = Faults::new(FaultConfig {
            rules: vec![rule(FaultKind::LostResponse, Some(2))],
            ..FaultConfig::default()
        });
        let decide = |f: &mut Faults, m: &str, p: &str| f.decide("telnyx", m, p, 0);
        assert_eq!(
            decide(&mut faults, "GET", "/v2/number_orders"),
            Decision::Pass
        );
        assert_eq!(
            decide(&mut faults, "POST", "/v2/phone_numbers"),
            Decision::Pass
        );
        assert_eq!(
            decide(&mut faults, "POST", "/v2/number_orders"),
            Decision::LostResponse
        );
        assert_eq!(
            decide(&mut faults, "POST", "/v2/number_orders"),
            Decision::LostResponse
        );
        assert_eq!(
            decide(&mut faults, "POST", "/v2/number_orders"),
            Decision::Pass
        );
    }

    #[test]
    fn same_seed_same_errors() {
        let config = FaultConfig {
            error_rate: 0.5,
            seed: 7,
            ..FaultConfig::default()
        };
        let run = |config: &FaultConfig| {
            let mut f = Faults::new(config.clone());
            (0..50)
                .map(|i| f.decide("twilio", "GET", "/v1/Trunks", i))
                .collect::<Vec<_>>()
        };
        let first = run(&config);
        assert_eq!(first, run(&config));
        let errors = first
            .iter()
            .filter(|d| matches!(d, Decision::Error(_)))
            .count();
        assert!(errors > 5 && errors < 45, "{errors}");
    }

    #[test]
    fn rate_limit_counts_per_provider_and_window() {
        let mut f = Faults::new(FaultConfig {
            rate_limit: Some(2.0),
            ..FaultConfig::default()
        });
        assert_eq!(f.decide("telnyx", "GET", "/v2/x", 1_000), Decision::Pass);
        assert_eq!(f.decide("telnyx", "GET", "/v2/x", 1_100), Decision::Pass);
        assert!(matches!(
            f.decide("telnyx", "GET", "/v2/x", 1_200),
            Decision::RateLimited { limit: 2, .. }
        ));
        assert_eq!(f.decide("twilio", "GET", "/v1/x", 1_300), Decision::Pass);
        assert_eq!(f.decide("telnyx", "GET", "/v2/x", 2_000), Decision::Pass);
    }

    #[test]
    fn truncated_bodies_do_not_parse() {
        let body = br#"{"data":{"id":"1"}}"#;
        assert!(serde_json::from_slice::<serde_json::Value>(&truncate_body(body)).is_err());
    }
}
