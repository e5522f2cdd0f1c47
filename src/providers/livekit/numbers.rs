//! LiveKit's own numbers (`livekit.PhoneNumberService`, issue 20): the calls a
//! `livekit_number` needs, on the same Twirp path as cwa's own SIP calls.
//!
//! `livekit-api` 0.10 has no client for this service, but `livekit-protocol` 0.8.2 ships its
//! types (`PurchasePhoneNumberRequest`, `PhoneNumber`, …), so the calls are protobuf bodies
//! through the shared HTTP layer, signed with the same 10-minute `sip.admin` token
//! (LiveKit's Phone Numbers API page: "token-with-sip-admin").
//!
//! A purchase is irreversible and `PurchasePhoneNumberRequest` carries no client reference,
//! so the line's dispatch rule is made first and the purchase names it
//! (`sip_dispatch_rule_id`); an answer lost after LiveKit bought the number is found again with
//! `ListPhoneNumbers` filtered to that rule ([`super::post_once`]), never bought twice.
//!
//! Statuses: `RELEASED` is gone; every other status (`ACTIVE`, `PENDING`, `OFFLINE`,
//! unspecified) is a number the project still holds and pays for. `OFFLINE` changed meaning
//! between protocol versions ("no dispatch rule" in 1.50.4, "provider unreachable" in 1.52.1:
//! `tests/contracts/README.md`), so cwa reads the rule list, never the status, to tell
//! whether a number routes.

use livekit_protocol as proto;

use super::{LivekitProvider, ProviderError, P};
use crate::providers::post_once;

const SERVICE: &str = "livekit.PhoneNumberService";
/// Items per `ListPhoneNumbers` page cwa asks for.
const NUMBER_PAGE_LIMIT: i32 = 100;

/// One LiveKit number the project holds, as cwa reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldNumber {
    /// `PN_…`.
    pub id: String,
    /// E.164.
    pub number: String,
    /// The dispatch rules it is attached to (`sip_dispatch_rule_ids`, or the deprecated
    /// single `sip_dispatch_rule_id` from a server that sends only that).
    pub rule_ids: Vec<String>,
    /// The status name (`PHONE_NUMBER_STATUS_ACTIVE`, …), for display only.
    pub status: String,
}

impl HeldNumber {
    /// `None` for a released number (no longer held).
    #[allow(deprecated)]
    fn from_wire(n: proto::PhoneNumber) -> Option<Self> {
        let status = proto::PhoneNumberStatus::try_from(n.status)
            .unwrap_or(proto::PhoneNumberStatus::Unspecified);
        if status == proto::PhoneNumberStatus::Released {
            return None;
        }
        let rule_ids = if n.sip_dispatch_rule_ids.is_empty() && !n.sip_dispatch_rule_id.is_empty() {
            vec![n.sip_dispatch_rule_id]
        } else {
            n.sip_dispatch_rule_ids
        };
        Some(Self {
            id: n.id,
            number: n.e164_format,
            rule_ids,
            status: status.as_str_name().to_string(),
        })
    }
}

/// What to buy: a fixed number, or the first one LiveKit offers in an area code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wanted {
    Fixed(String),
    AreaCode(String),
}

impl LivekitProvider {
    /// One `livekit.PhoneNumberService` call (protobuf). `write` names the number a write
    /// addresses (checked against the protected ids by the write guard); purchases are never
    /// repeated by the retry loop (their recovery is [`Self::purchase_number`]'s look-up).
    async fn numbers_call<Req: prost::Message, Resp: prost::Message + Default>(
        &self,
        method: &str,
        req: &Req,
        object: &str,
        write: Option<&str>,
    ) -> Result<Resp, ProviderError> {
        let purchase = method == "PurchasePhoneNumber";
        self.twirp_call(SERVICE, method, req, object, write, purchase)
            .await
    }

    /// Every number the project holds (released ones left out), every page.
    pub async fn list_numbers(&self) -> Result<Vec<HeldNumber>, ProviderError> {
        self.list_numbers_where(None).await
    }

    /// The held numbers attached to `rule_id`: how a lost purchase is found again.
    pub async fn numbers_for_rule(&self, rule_id: &str) -> Result<Vec<HeldNumber>, ProviderError> {
        self.list_numbers_where(Some(rule_id)).await
    }

    async fn list_numbers_where(
        &self,
        rule_id: Option<&str>,
    ) -> Result<Vec<HeldNumber>, ProviderError> {
        let object = rule_id.map_or_else(
            || "phone numbers".to_string(),
            |r| format!("numbers of {r}"),
        );
        let mut held = Vec::new();
        let mut token: Option<String> = None;
        // A server that ignores the page token would loop forever: stop on a repeated one.
        let mut seen = std::collections::BTreeSet::new();
        loop {
            let req = proto::ListPhoneNumbersRequest {
                limit: Some(NUMBER_PAGE_LIMIT),
                statuses: Vec::new(),
                page_token: token.clone().map(|token| proto::TokenPagination { token }),
                sip_dispatch_rule_id: rule_id.map(str::to_string),
            };
            let page: proto::ListPhoneNumbersResponse = self
                .numbers_call("ListPhoneNumbers", &req, &object, None)
                .await?;
            held.extend(page.items.into_iter().filter_map(HeldNumber::from_wire));
            match page.next_page_token.map(|t| t.token) {
                Some(t) if !t.is_empty() && seen.insert(t.clone()) => token = Some(t),
                _ => break,
            }
        }
        // A server that ignores the rule filter must not make another rule's number ours.
        if let Some(rule) = rule_id {
            held.retain(|n| n.rule_ids.iter().any(|r| r == rule));
        }
        Ok(held)
    }

    /// The numbers LiveKit offers in `area_code` (US), at most `limit`.
    pub async fn search_numbers(
        &self,
        area_code: &str,
        limit: i32,
    ) -> Result<Vec<String>, ProviderError> {
        let req = proto::SearchPhoneNumbersRequest {
            country_code: "US".into(),
            area_code: Some(area_code.to_string()),
            limit: Some(limit),
            page_token: None,
        };
        let found: proto::SearchPhoneNumbersResponse = self
            .numbers_call(
                "SearchPhoneNumbers",
                &req,
                &format!("area code {area_code}"),
                None,
            )
            .await?;
        Ok(found.items.into_iter().map(|n| n.e164_format).collect())
    }

    /// Buys one number attached to `rule_id` (made before, so the purchase can be found
    /// again): a number the rule already holds is the earlier purchase, returned as is; an
    /// auto number is the first one search offers in the area code. A lost answer is looked up
    /// by the rule before anything is sent again.
    pub async fn purchase_number(
        &self,
        wanted: &Wanted,
        rule_id: &str,
    ) -> Result<HeldNumber, ProviderError> {
        let find = || async move {
            let held = self.numbers_for_rule(rule_id).await?;
            Ok(held.into_iter().find(|n| match wanted {
                Wanted::Fixed(number) => &n.number == number,
                Wanted::AreaCode(area) => n.number.get(2..5) == Some(area.as_str()),
            }))
        };
        if let Some(earlier) = find().await? {
            return Ok(earlier);
        }
        let number = match wanted {
            Wanted::Fixed(number) => number.clone(),
            Wanted::AreaCode(area) => self
                .search_numbers(area, 1)
                .await?
                .into_iter()
                .next()
                .ok_or_else(|| ProviderError::Api {
                    provider: P,
                    operation: "SearchPhoneNumbers".into(),
                    object: format!("area code {area}"),
                    status: 404,
                    code: "not_found".into(),
                    detail: format!("LiveKit offers no number in area code {area}"),
                })?,
        };
        let req = proto::PurchasePhoneNumberRequest {
            phone_numbers: vec![number.clone()],
            sip_dispatch_rule_id: Some(rule_id.to_string()),
        };
        let object = number.clone();
        let post = || async {
            let bought: proto::PurchasePhoneNumberResponse = self
                .numbers_call("PurchasePhoneNumber", &req, &object, Some(""))
                .await?;
            bought
                .phone_numbers
                .into_iter()
                .find_map(HeldNumber::from_wire)
                .ok_or_else(|| ProviderError::Decode {
                    provider: P,
                    operation: "PurchasePhoneNumber".into(),
                    object: object.clone(),
                    detail: "the answer holds no purchased number".into(),
                })
        };
        post_once(self.twirp.backoff(), post, find).await
    }

    /// Attaches a held number to `rule_id` (or detaches it with `""`).
    pub async fn attach_number(
        &self,
        id: &str,
        rule_id: &str,
    ) -> Result<HeldNumber, ProviderError> {
        let req = proto::UpdatePhoneNumberRequest {
            id: Some(id.to_string()),
            phone_number: None,
            sip_dispatch_rule_id: Some(rule_id.to_string()),
            ..Default::default()
        };
        let updated: proto::UpdatePhoneNumberResponse = self
            .numbers_call("UpdatePhoneNumber", &req, id, Some(id))
            .await?;
        updated
            .phone_number
            .and_then(HeldNumber::from_wire)
            .ok_or_else(|| super::gone(id, id))
    }

    /// Releases a held number: irreversible; the planner calls it only with
    /// `--release-numbers`. The write guard refuses a protected id. An already released
    /// number is done.
    pub async fn release_number(&self, id: &str) -> Result<(), ProviderError> {
        let req = proto::ReleasePhoneNumbersRequest {
            ids: vec![id.to_string()],
            phone_numbers: Vec::new(),
        };
        match self
            .numbers_call::<_, proto::ReleasePhoneNumbersResponse>(
                "ReleasePhoneNumbers",
                &req,
                id,
                Some(id),
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e),
        }
    }
}
