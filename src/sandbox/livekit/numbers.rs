//! `livekit.PhoneNumberService`: LiveKit's own US numbers (issue 20), emulated over the
//! project's [`super::LivekitState::phone_numbers`].
//!
//! The protos (livekit/protocol `livekit_phone_number.proto` at the commit of
//! `tests/contracts/livekit.json`) say what each call carries; what they leave open is
//! documented here as the sandbox's assumption:
//!
//! | Method | Behaviour |
//! |---|---|
//! | `SearchPhoneNumbers` | `country_code` required; `US` only (others: no items); `area_code` filter; `limit` (default 50); the inventory is synthetic, `+1{area}55501{00..99}` for each of [`INVENTORY_AREA_CODES`] (or the asked area code), minus every number any project holds or held |
//! | `PurchasePhoneNumber` | all or nothing: every number must be in the inventory, else `failed_precondition` and nothing bought; `sip_dispatch_rule_id`, when set, must name a rule (`not_found`); assigns `PN_…`; no client reference (the request has none) |
//! | `ListPhoneNumbers` | every status unless `statuses` filters (released numbers stay listed as `RELEASED`: an assumption); `sip_dispatch_rule_id` keeps numbers that carry that rule; `limit` (default 50) with `page_token` (the last id of the previous page) |
//! | `GetPhoneNumber` | by `id` or `phone_number`; `not_found` |
//! | `UpdatePhoneNumber` | by `id` or `phone_number`; `sip_dispatch_rule_id` replaces the number's rules (`""` detaches) |
//! | `ReleasePhoneNumbers` | by `ids` and/or `phone_numbers`, all or nothing; a released or unknown number is `not_found` |
//!
//! Statuses follow the extract's protos (protocol 1.50.4): `ACTIVE` with a dispatch rule,
//! `OFFLINE` with none ("not associated with any dispatch rule"), `RELEASED` after release;
//! `PENDING` (provisioning) is never reached: purchases complete at once. In protocol 1.52.1
//! (vendored by `livekit-protocol` 0.8.2) `OFFLINE` means "provider is unreachable" and a
//! number with no rule is `inbound_status: DETACHED` instead; the sandbox does not send the
//! newer fields (the extract does not declare them). A deleted dispatch rule is dropped from
//! every number that carried it ([`LivekitState::forget_rule`]).

use std::collections::BTreeSet;

use livekit_protocol as proto;

use super::wire::TwirpError;
use super::{ids, Effect, LivekitState, Outcome, RULE_NOT_FOUND};

/// The prefix of a LiveKit phone number id (an assumption: LiveKit's ids are `PN_` + base57).
pub const NUMBER_PREFIX: &str = "PN_";
/// The area codes a search without one draws its inventory from.
pub const INVENTORY_AREA_CODES: [&str; 3] = ["415", "510", "212"];
/// The numbers each area code offers (`+1{area}55501{00..}`).
const PER_AREA_CODE: u32 = 100;
const DEFAULT_LIMIT: usize = 50;
const NUMBER_NOT_FOUND: &str = "phone number not found";

/// Every method of `livekit.PhoneNumberService`; others are `bad_route`.
pub const METHODS: &[&str] = &[
    "SearchPhoneNumbers",
    "PurchasePhoneNumber",
    "ListPhoneNumbers",
    "GetPhoneNumber",
    "UpdatePhoneNumber",
    "ReleasePhoneNumbers",
];

fn status(rules: &[String]) -> i32 {
    if rules.is_empty() {
        proto::PhoneNumberStatus::Offline as i32
    } else {
        proto::PhoneNumberStatus::Active as i32
    }
}

/// `+1AAANXXXXXX` -> `AAA` for a NANP number, else `None`.
fn area_code(e164: &str) -> Option<&str> {
    let digits = e164.strip_prefix("+1")?;
    (digits.len() == 10 && digits.bytes().all(|b| b.is_ascii_digit())).then(|| &digits[..3])
}

/// Whether `e164` is one of the synthetic inventory's numbers (`+1{area}55501{00..99}`).
fn in_inventory(e164: &str) -> bool {
    area_code(e164).is_some_and(|_| {
        let line = &e164[5..];
        line.starts_with("55501") && line[5..].parse::<u32>().is_ok_and(|n| n < PER_AREA_CODE)
    })
}

fn with_rules(mut n: proto::PhoneNumber, rules: Vec<String>) -> proto::PhoneNumber {
    n.status = status(&rules);
    #[allow(deprecated)]
    {
        n.sip_dispatch_rule_id = rules.first().cloned().unwrap_or_default();
    }
    n.sip_dispatch_rule_ids = rules;
    n
}

impl LivekitState {
    /// Numbers any project holds or held (never offered again by the synthetic inventory).
    fn taken_numbers(&self) -> BTreeSet<&str> {
        self.phone_numbers
            .0
            .values()
            .map(|n| n.e164_format.as_str())
            .chain(self.numbers_taken_elsewhere.iter().map(String::as_str))
            .collect()
    }

    fn fresh_number_id(&self) -> String {
        loop {
            let id = ids::random(NUMBER_PREFIX);
            if !self.phone_numbers.0.contains_key(&id) {
                return id;
            }
        }
    }

    /// The held (not released) number that `id` or `phone_number` names.
    fn held_number_id(&self, id: Option<&str>, phone_number: Option<&str>) -> Option<String> {
        let released = proto::PhoneNumberStatus::Released as i32;
        self.phone_numbers
            .0
            .values()
            .find(|n| {
                n.status != released
                    && (id.is_some_and(|id| !id.is_empty() && id == n.id)
                        || phone_number.is_some_and(|p| !p.is_empty() && p == n.e164_format))
            })
            .map(|n| n.id.clone())
    }

    fn require_rule(&self, rule: &str) -> Result<(), TwirpError> {
        if self.dispatch_rules.0.contains_key(rule) {
            Ok(())
        } else {
            Err(TwirpError::not_found(RULE_NOT_FOUND))
        }
    }

    /// Drops a deleted dispatch rule from every number that carried it.
    pub(super) fn forget_rule(&mut self, rule: &str) {
        for n in self.phone_numbers.0.values_mut() {
            if n.sip_dispatch_rule_ids.iter().any(|r| r == rule) {
                let rules = n
                    .sip_dispatch_rule_ids
                    .iter()
                    .filter(|r| *r != rule)
                    .cloned()
                    .collect();
                *n = with_rules(std::mem::take(n), rules);
            }
        }
    }

    pub(super) fn search_numbers(
        &mut self,
        req: proto::SearchPhoneNumbersRequest,
    ) -> Outcome<proto::SearchPhoneNumbersResponse> {
        if req.country_code.is_empty() {
            return Err(TwirpError::invalid_argument("country_code is required"));
        }
        let limit = req
            .limit
            .filter(|l| *l > 0)
            .map_or(DEFAULT_LIMIT, |l| l as usize);
        let mut items = Vec::new();
        if req.country_code.eq_ignore_ascii_case("US") {
            let areas: Vec<&str> = match req.area_code.as_deref() {
                Some(a) if !a.is_empty() => vec![a],
                _ => INVENTORY_AREA_CODES.to_vec(),
            };
            let taken = self.taken_numbers();
            'areas: for area in areas {
                if area.len() != 3 || !area.bytes().all(|b| b.is_ascii_digit()) {
                    continue;
                }
                for line in 0..PER_AREA_CODE {
                    let e164 = format!("+1{area}55501{line:02}");
                    if taken.contains(e164.as_str()) {
                        continue;
                    }
                    if items.len() == limit {
                        break 'areas;
                    }
                    items.push(proto::PhoneNumber {
                        e164_format: e164,
                        country_code: "US".into(),
                        area_code: area.into(),
                        number_type: proto::PhoneNumberType::Local as i32,
                        capabilities: vec!["voice".into()],
                        ..Default::default()
                    });
                }
            }
        }
        Ok((
            proto::SearchPhoneNumbersResponse {
                items,
                next_page_token: None,
            },
            Effect::read(None),
        ))
    }

    pub(super) fn purchase_numbers(
        &mut self,
        req: proto::PurchasePhoneNumberRequest,
    ) -> Outcome<proto::PurchasePhoneNumberResponse> {
        if req.phone_numbers.is_empty() {
            return Err(TwirpError::invalid_argument(
                "at least one phone number is required",
            ));
        }
        let rules: Vec<String> = req
            .sip_dispatch_rule_id
            .filter(|r| !r.is_empty())
            .into_iter()
            .collect();
        if let Some(rule) = rules.first() {
            self.require_rule(rule)?;
        }
        let taken = self.taken_numbers();
        let mut seen = BTreeSet::new();
        for number in &req.phone_numbers {
            if !in_inventory(number) || taken.contains(number.as_str()) || !seen.insert(number) {
                return Err(TwirpError::new(
                    "failed_precondition",
                    format!("phone number {number} is not available for purchase"),
                ));
            }
        }
        let mut bought = Vec::new();
        for number in &req.phone_numbers {
            let id = self.fresh_number_id();
            let n = with_rules(
                proto::PhoneNumber {
                    id: id.clone(),
                    e164_format: number.clone(),
                    country_code: "US".into(),
                    area_code: area_code(number).unwrap_or_default().into(),
                    number_type: proto::PhoneNumberType::Local as i32,
                    capabilities: vec!["voice".into()],
                    ..Default::default()
                },
                rules.clone(),
            );
            self.phone_numbers.0.insert(id, n.clone());
            bought.push(n);
        }
        let first = bought[0].id.clone();
        Ok((
            proto::PurchasePhoneNumberResponse {
                phone_numbers: bought,
            },
            Effect::wrote(first),
        ))
    }

    pub(super) fn list_numbers(
        &mut self,
        req: proto::ListPhoneNumbersRequest,
    ) -> Outcome<proto::ListPhoneNumbersResponse> {
        let rule = req
            .sip_dispatch_rule_id
            .as_deref()
            .filter(|r| !r.is_empty());
        let after = req
            .page_token
            .as_ref()
            .map(|t| t.token.as_str())
            .unwrap_or("");
        let limit = req
            .limit
            .filter(|l| *l > 0)
            .map_or(DEFAULT_LIMIT, |l| l as usize);
        let matching: Vec<&proto::PhoneNumber> = self
            .phone_numbers
            .0
            .values()
            .filter(|n| req.statuses.is_empty() || req.statuses.contains(&n.status))
            .filter(|n| rule.is_none_or(|r| n.sip_dispatch_rule_ids.iter().any(|x| x == r)))
            .collect();
        let offline = proto::PhoneNumberStatus::Offline as i32;
        let total_count = matching.len() as i32;
        let offline_count = matching.iter().filter(|n| n.status == offline).count() as i32;
        let rest: Vec<&proto::PhoneNumber> = matching
            .into_iter()
            .filter(|n| after.is_empty() || n.id.as_str() > after)
            .collect();
        let items: Vec<proto::PhoneNumber> =
            rest.iter().take(limit).map(|n| (*n).clone()).collect();
        let next_page_token = (rest.len() > limit).then(|| proto::TokenPagination {
            token: items.last().map(|n| n.id.clone()).unwrap_or_default(),
        });
        Ok((
            proto::ListPhoneNumbersResponse {
                items,
                next_page_token,
                total_count,
                offline_count,
            },
            Effect::read(None),
        ))
    }

    pub(super) fn get_number(
        &mut self,
        req: proto::GetPhoneNumberRequest,
    ) -> Outcome<proto::GetPhoneNumberResponse> {
        let id = req.id.as_deref().filter(|s| !s.is_empty());
        let number = req.phone_number.as_deref().filter(|s| !s.is_empty());
        if id.is_none() && number.is_none() {
            return Err(TwirpError::invalid_argument(
                "either id or phone_number is required",
            ));
        }
        let found = self
            .phone_numbers
            .0
            .values()
            .find(|n| id.is_some_and(|i| i == n.id) || number.is_some_and(|p| p == n.e164_format))
            .cloned()
            .ok_or_else(|| TwirpError::not_found(NUMBER_NOT_FOUND))?;
        let found_id = found.id.clone();
        Ok((
            proto::GetPhoneNumberResponse {
                phone_number: Some(found),
            },
            Effect::read(Some(found_id)),
        ))
    }

    pub(super) fn update_number(
        &mut self,
        req: proto::UpdatePhoneNumberRequest,
    ) -> Outcome<proto::UpdatePhoneNumberResponse> {
        if req.id.as_deref().unwrap_or("").is_empty()
            && req.phone_number.as_deref().unwrap_or("").is_empty()
        {
            return Err(TwirpError::invalid_argument(
                "either id or phone_number is required",
            ));
        }
        let id = self
            .held_number_id(req.id.as_deref(), req.phone_number.as_deref())
            .ok_or_else(|| TwirpError::not_found(NUMBER_NOT_FOUND))?;
        let mut n = self.phone_numbers.0[&id].clone();
        if let Some(rule) = req.sip_dispatch_rule_id {
            let rules: Vec<String> = (!rule.is_empty()).then_some(rule).into_iter().collect();
            if let Some(rule) = rules.first() {
                self.require_rule(rule)?;
            }
            n = with_rules(n, rules);
        }
        self.phone_numbers.0.insert(id.clone(), n.clone());
        Ok((
            proto::UpdatePhoneNumberResponse {
                phone_number: Some(n),
            },
            Effect::wrote(id),
        ))
    }

    pub(super) fn release_numbers(
        &mut self,
        req: proto::ReleasePhoneNumbersRequest,
    ) -> Outcome<proto::ReleasePhoneNumbersResponse> {
        if req.ids.is_empty() && req.phone_numbers.is_empty() {
            return Err(TwirpError::invalid_argument(
                "either ids or phone_numbers is required",
            ));
        }
        let mut targets = BTreeSet::new();
        let by_id = req.ids.iter().map(|i| self.held_number_id(Some(i), None));
        let by_number = req
            .phone_numbers
            .iter()
            .map(|p| self.held_number_id(None, Some(p)));
        for found in by_id.chain(by_number) {
            targets.insert(found.ok_or_else(|| TwirpError::not_found(NUMBER_NOT_FOUND))?);
        }
        for id in &targets {
            if let Some(n) = self.phone_numbers.0.get_mut(id) {
                *n = with_rules(std::mem::take(n), Vec::new());
                n.status = proto::PhoneNumberStatus::Released as i32;
            }
        }
        let first = targets.into_iter().next().unwrap_or_default();
        Ok((proto::ReleasePhoneNumbersResponse {}, Effect::wrote(first)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_inventory_is_the_synthetic_block_of_each_area_code() {
        assert!(in_inventory("+14155550100"));
        assert!(in_inventory("+12125550199"));
        assert!(!in_inventory("+14155550200"));
        assert!(!in_inventory("+441234555010"));
        assert_eq!(area_code("+14155550100"), Some("415"));
    }
}
