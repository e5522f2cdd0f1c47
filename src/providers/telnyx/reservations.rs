//! Number reservations (`POST /number_reservations`, `GET /number_reservations`): `cwa add
//! --reserve` holds the number a pastor is shown until apply buys it (issue 23). Shapes from
//! spec3.yml of github:team-telnyx/openapi 12de4dd: CreateNumberReservationRequest
//! (`phone_numbers[].phone_number`, `customer_reference`), NumberReservation (`status`
//! pending/success/failure, `errors`), ReservedPhoneNumber (`expired_at`); the search's
//! `filter[reservable]` ("only numbers that can be reserved") and
//! `filter[exclude_held_numbers]` (leave out numbers already on hold for this account, so two
//! adds never hold the same number).

use serde::Deserialize;

use super::{auto_search_query, pick_ending, pick_first, AvailableNumber, TelnyxProvider};
use crate::model::E164;
use crate::providers::http::Call;
use crate::providers::{ProviderError, Reservation};

#[derive(Debug, Deserialize)]
struct NumberReservation {
    #[serde(default)]
    id: String,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    errors: Option<String>,
    #[serde(default)]
    phone_numbers: Vec<ReservedNumber>,
}

#[derive(Debug, Deserialize)]
struct ReservedNumber {
    #[serde(default)]
    phone_number: String,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    expired_at: Option<String>,
    #[serde(default)]
    errors: Option<String>,
}

/// The search of reservable numbers in an area code, none already on hold for this account.
fn reservable_query(country: &str, area_code: &str, ending: Option<&str>) -> Vec<(String, String)> {
    let mut q = auto_search_query(country, area_code, ending);
    q.push(("filter[reservable]".into(), "true".into()));
    q.push(("filter[exclude_held_numbers]".into(), "true".into()));
    q
}

impl TelnyxProvider {
    /// Picks a reservable number as an `"auto"` order would (friendly endings first) and holds
    /// it; a hold Telnyx answers with anything but `success` is an error naming its reason.
    /// An unexpired hold already made under `reference` in this area code (by a run killed
    /// before it wrote lines.toml) is returned instead: a retry never holds a second number.
    pub(super) async fn reserve_number(
        &self,
        country: &str,
        area_code: &str,
        endings: &[String],
        reference: &str,
    ) -> Result<Reservation, ProviderError> {
        let object = format!("reservation in area code {area_code}");
        if let Some(earlier) = self.held_under(reference, area_code).await? {
            return Ok(earlier);
        }
        let mut chosen = None;
        for ending in endings.iter().map(Some).chain([None]) {
            let query = reservable_query(country, area_code, ending.map(String::as_str));
            let found: Vec<AvailableNumber> = self.search_available(&query, &object).await?;
            let found: Vec<AvailableNumber> = found.into_iter().filter(|n| n.reservable).collect();
            chosen = match ending {
                Some(e) => pick_ending(&found, area_code, e),
                None => pick_first(&found, area_code),
            };
            if chosen.is_some() {
                break;
            }
        }
        let number = chosen.ok_or_else(|| {
            super::unavailable(
                &object,
                &format!("no reservable number is available in {country} area code {area_code}"),
            )
        })?;
        let body = serde_json::json!({
            "phone_numbers": [{"phone_number": number.as_str()}],
            "customer_reference": reference,
        });
        let held: NumberReservation = self
            .write(
                reqwest::Method::POST,
                "/number_reservations",
                body,
                &object,
                &[number.as_str()],
            )
            .await?;
        held_as(held, &number, &object)
    }

    /// The latest unexpired successful hold under `reference` of a number in `area_code`.
    async fn held_under(
        &self,
        reference: &str,
        area_code: &str,
    ) -> Result<Option<Reservation>, ProviderError> {
        let url = self.url(
            "/number_reservations",
            &[
                ("filter[customer_reference]", reference),
                ("filter[status]", "success"),
                ("page[size]", "250"),
            ],
        );
        let page: super::wire::Page<NumberReservation> = self
            .http
            .json(Call::get(url, "list number_reservations", reference))
            .await?;
        let now = chrono::Utc::now();
        Ok(page
            .data
            .into_iter()
            .filter_map(|r| {
                let number = r
                    .phone_numbers
                    .iter()
                    .filter_map(|n| E164::normalize(&n.phone_number).ok())
                    .find(|n| n.area_code() == Some(area_code))?;
                held_as(r, &number, reference).ok()
            })
            .filter(|held| unexpired(&held.expires_at, now))
            .max_by(|a, b| a.expires_at.cmp(&b.expires_at)))
    }

    /// This account's reservations of `number`, newest first (one page of 250: a number is
    /// held a handful of times at most).
    pub(super) async fn reservations_holding(
        &self,
        number: &E164,
    ) -> Result<Vec<Reservation>, ProviderError> {
        let url = self.url(
            "/number_reservations",
            &[
                ("filter[phone_numbers.phone_number]", number.as_str()),
                ("page[size]", "250"),
            ],
        );
        let page: super::wire::Page<NumberReservation> = self
            .http
            .json(Call::get(url, "list number_reservations", number.as_str()))
            .await?;
        Ok(page
            .data
            .into_iter()
            .filter_map(|r| held_as(r, number, number.as_str()).ok())
            .collect())
    }
}

/// Whether a hold's `expired_at` (RFC 3339) is still ahead; an unreadable time counts as
/// expired, so cwa holds a fresh number rather than trust a hold it cannot date.
fn unexpired(expires_at: &str, now: chrono::DateTime<chrono::Utc>) -> bool {
    chrono::DateTime::parse_from_rfc3339(expires_at).is_ok_and(|t| t > now)
}

/// The hold of `number` in a reservation, when Telnyx says it succeeded.
fn held_as(
    r: NumberReservation,
    number: &E164,
    object: &str,
) -> Result<Reservation, ProviderError> {
    let line = r
        .phone_numbers
        .iter()
        .find(|n| E164::normalize(&n.phone_number).ok().as_ref() == Some(number));
    let ok = r.status.as_deref() == Some("success")
        && line.is_some_and(|l| l.status.as_deref() == Some("success"));
    match (ok, line.and_then(|l| l.expired_at.clone())) {
        (true, Some(expires_at)) => Ok(Reservation {
            id: r.id,
            number: number.clone(),
            expires_at,
        }),
        _ => {
            let why = line
                .and_then(|l| l.errors.clone())
                .or(r.errors)
                .unwrap_or_else(|| format!("status {}", r.status.unwrap_or_default()));
            Err(super::unavailable(
                object,
                &format!("Telnyx did not reserve {number}: {why}"),
            ))
        }
    }
}
