//! The Telnyx v2 client: numbers (search, order, bind, release), FQDN and credential
//! connections, FQDN records, outbound voice profiles and TeXML applications.
//!
//! Why not the `telnyx` crate: on crates.io it is 0.1.0, a single release by a community
//! author rather than Telnyx, with a large generated surface and its own transport, so cwa
//! could not put its hard lock, retries, rate limit and lost-answer recovery under it. The
//! dozen endpoints cwa uses are written here with reqwest + serde instead ([`wire`]).
//!
//! Telnyx quirks this module encodes (see `shared/reference/telnyx.md` and the runbooks):
//! - connection settings live in nested `inbound` / `outbound` objects, and a flat
//!   `outbound_voice_profile_id` is silently ignored; every connection update is GET, modify
//!   the nested objects, PATCH the complete objects;
//! - `inbound.default_primary_fqdn_id` is what makes an FQDN record receive calls;
//! - the number order's line id is not the `/phone_numbers` id: the number is looked up by
//!   `filter[phone_number]` with digits only;
//! - orders carry `customer_reference`, so a lost answer is found again instead of buying
//!   twice; releasing a number is `DELETE /phone_numbers/{id}`.

mod reservations;
mod wire;

use std::time::Duration;

use async_trait::async_trait;
use futures::{StreamExt, TryStreamExt};
use reqwest::{Method, Url};
use serde::de::DeserializeOwned;
use serde_json::{json, Map, Value};

use super::common::{gone_is_done, live_id, not_mine, undecodable, MAX_PAGES};
use super::http::{self, Auth, Body, Call, HttpClient, WriteGuard};
use super::{post_once, ClientOptions, Env, Provider, ProviderError, WriteRequest};
use crate::model::canonical;
use crate::model::{
    fingerprint, CredentialConnectionSpec, FqdnConnectionSpec, FqdnSpec, Kind, LiveObject,
    NumberSpec, OutboundVoiceProfileSpec, ProviderName, Ref, SecretRef, Spec, TelnyxNumberSpec,
    TexmlApplicationSpec, E164,
};
use wire::{
    AvailableNumber, Connection, EmergencyAddress, Fqdn, NumberOrder, One, Page, PhoneNumber,
    TexmlApp, VoiceProfile,
};

const P: ProviderName = ProviderName::Telnyx;
const API_KEY_ENV: &str = "TELNYX_API_KEY";
/// The credentials a Telnyx client cannot start without.
pub const REQUIRED_ENV: &[&str] = &[API_KEY_ENV];
/// The largest page Telnyx serves.
pub const PAGE_SIZE: u32 = 250;

/// How many pages a list has, from its first answer's `meta`: `total_pages`, once it agrees
/// with the answer's own `total_results` (no more pages than those results fill) and stays
/// within [`MAX_PAGES`]. An answer that claims more is an error, never read page by page.
fn pages_to_read(path: &str, meta: &wire::PageMeta) -> Result<Option<u64>, ProviderError> {
    let Some(total) = meta.total_pages else {
        return Ok(None);
    };
    let filled = meta
        .total_results
        .map(|results| results.div_ceil(u64::from(PAGE_SIZE)).max(1));
    if filled.is_some_and(|filled| total > filled) {
        return Err(undecodable(
            crate::model::ProviderName::Telnyx,
            &format!("list {path}"),
            "page 1",
            format!(
                "meta.total_pages is {total}, but meta.total_results ({}) fills {} page(s) of {PAGE_SIZE}",
                meta.total_results.unwrap_or_default(),
                filled.unwrap_or_default()
            ),
        ));
    }
    if total > MAX_PAGES {
        return Err(too_many_pages(path, total));
    }
    Ok(Some(total))
}

fn too_many_pages(path: &str, pages: u64) -> ProviderError {
    undecodable(
        crate::model::ProviderName::Telnyx,
        &format!("list {path}"),
        &format!("page {pages}"),
        format!("more than {MAX_PAGES} pages of {PAGE_SIZE}; cwa reads no further"),
    )
}
pub const DEFAULT_BASE_URL: &str = "https://api.telnyx.com/v2";

/// The collection path of each Telnyx kind.
fn collection(kind: Kind) -> Option<&'static str> {
    Some(match kind {
        Kind::TelnyxNumber => "phone_numbers",
        Kind::TelnyxFqdnConnection => "fqdn_connections",
        Kind::TelnyxFqdn => "fqdns",
        Kind::TelnyxCredentialConnection => "credential_connections",
        Kind::TelnyxOutboundVoiceProfile => "outbound_voice_profiles",
        Kind::TelnyxTexmlApplication => "texml_applications",
        // spec3.yml `/addresses` (List, Create) and `/addresses/{id}` (Retrieve, Delete).
        Kind::TelnyxEmergencyAddress => "addresses",
        _ => return None,
    })
}

/// The Telnyx provider. Debug shows no credential.
#[derive(Debug)]
pub struct TelnyxProvider {
    http: HttpClient,
    base: Url,
    poll_attempts: u32,
    poll_interval: Duration,
    /// Numbers chosen for orders by this client, so that auto numbers ordered at once in one
    /// area code never pick the same available number (the second order would fail with
    /// "no longer available").
    claimed: std::sync::Mutex<std::collections::HashSet<E164>>,
}

impl TelnyxProvider {
    /// Reads `TELNYX_API_KEY` and the optional `TELNYX_BASE_URL` (default
    /// `https://api.telnyx.com/v2`; plain http only on loopback).
    pub fn from_env(env: &Env, opts: &ClientOptions) -> Result<Self, ProviderError> {
        let key = env.require(P, API_KEY_ENV)?;
        let base = http::check_base_url(P, env.get("TELNYX_BASE_URL").unwrap_or(DEFAULT_BASE_URL))?;
        let guard = std::sync::Arc::new(WriteGuard::from_options(opts));
        let http = HttpClient::new(
            P,
            opts,
            Auth::Bearer(crate::model::SecretValue::new(key)),
            guard,
            wire::decode_error,
        )?;
        Ok(Self {
            http,
            base,
            poll_attempts: opts.order_poll_attempts,
            poll_interval: opts.order_poll_interval,
            claimed: Default::default(),
        })
    }

    fn url(&self, path: &str, query: &[(&str, &str)]) -> Url {
        let mut url = http::join(&self.base, path);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    /// Every item of a collection: page 1 says how many pages there are; the rest are
    /// fetched concurrently (the gate bounds how many at once), one request per page.
    async fn list_all<T: DeserializeOwned + Send>(
        &self,
        path: &str,
        filters: &[(&str, &str)],
    ) -> Result<Vec<T>, ProviderError> {
        let first: Page<T> = self.page(path, filters, 1).await?;
        let total_pages = match &first.meta {
            Some(meta) => pages_to_read(path, meta)?,
            None => None,
        };
        let mut items = first.data;
        match total_pages {
            Some(total) if total > 1 => {
                let rest: Vec<(u64, Vec<T>)> =
                    futures::stream::iter(2..=total)
                        .map(|n| async move {
                            self.page::<T>(path, filters, n).await.map(|p| (n, p.data))
                        })
                        .buffer_unordered(16)
                        .try_collect()
                        .await?;
                let mut rest = rest;
                rest.sort_by_key(|(n, _)| *n);
                items.extend(rest.into_iter().flat_map(|(_, d)| d));
            }
            Some(_) => {}
            None => {
                // No paging metadata: keep reading until a short page.
                let mut n = 1;
                let mut last_len = items.len();
                while last_len == PAGE_SIZE as usize {
                    n += 1;
                    if n > MAX_PAGES {
                        return Err(too_many_pages(path, n));
                    }
                    let page: Page<T> = self.page(path, filters, n).await?;
                    last_len = page.data.len();
                    items.extend(page.data);
                }
            }
        }
        Ok(items)
    }

    async fn page<T: DeserializeOwned>(
        &self,
        path: &str,
        filters: &[(&str, &str)],
        number: u64,
    ) -> Result<Page<T>, ProviderError> {
        let number = number.to_string();
        let size = PAGE_SIZE.to_string();
        let mut query: Vec<(&str, &str)> = vec![("page[number]", &number), ("page[size]", &size)];
        query.extend_from_slice(filters);
        let url = self.url(&format!("/{path}"), &query);
        self.http
            .json(Call::get(
                url,
                format!("list {path}"),
                format!("page {number}"),
            ))
            .await
    }

    /// GET one object; `None` on 404.
    async fn get_one<T: DeserializeOwned>(
        &self,
        path: &str,
        id: &str,
    ) -> Result<Option<T>, ProviderError> {
        let url = self.url(&format!("/{path}/{id}"), &[]);
        match self
            .http
            .json::<One<T>>(Call::get(url, format!("get {path}"), id))
            .await
        {
            Ok(one) => Ok(Some(one.data)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn get_raw(&self, path: &str, id: &str) -> Result<Value, ProviderError> {
        let url = self.url(&format!("/{path}/{id}"), &[]);
        let one: One<Value> = self
            .http
            .json(Call::get(url, format!("get {path}"), id))
            .await?;
        Ok(one.data)
    }

    async fn write<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Value,
        object: &str,
        targets: &[&str],
    ) -> Result<T, ProviderError> {
        let url = self.url(path, &[]);
        let operation = format!("{method} {}", path.trim_start_matches('/'));
        let mut call = Call::write(method, url, Body::Json(body), operation, object);
        for t in targets {
            call = call.target(*t);
        }
        let one: One<T> = self.http.json(call).await?;
        Ok(one.data)
    }

    /// A PATCH of one object of a collection, answered with the object.
    async fn patch<T: DeserializeOwned>(
        &self,
        path: &str,
        id: &str,
        body: Value,
        object: &str,
    ) -> Result<T, ProviderError> {
        self.write(Method::PATCH, &format!("/{path}/{id}"), body, object, &[])
            .await
    }

    /// A create: a POST never blindly repeated; after a lost answer `find_created` runs first.
    async fn create_object(
        &self,
        req: &WriteRequest,
        path: &str,
        body: Value,
    ) -> Result<LiveObject, ProviderError> {
        let kind = req.spec.kind();
        post_once(
            self.http.backoff(),
            || async {
                let made: Value = self
                    .write(Method::POST, path, body.clone(), &req.object, &[])
                    .await?;
                self.convert_value(kind, made, &req.object)
            },
            || self.find_created(req),
        )
        .await
    }

    async fn fqdn_with_primary(&self, f: Fqdn) -> Result<LiveObject, ProviderError> {
        let primary = match &f.connection_id {
            Some(conn) => self
                .get_one::<Connection>("fqdn_connections", conn)
                .await?
                .and_then(|c| c.default_primary_fqdn_id().map(str::to_string)),
            None => None,
        };
        Ok(wire::fqdn_object(&f, primary.as_deref()))
    }

    fn number_object(&self, n: &PhoneNumber, object: &str) -> Result<LiveObject, ProviderError> {
        wire::number_object(n).map_err(|d| undecodable(P, "read phone_number", object, d))
    }

    // ---- refresh ----

    async fn refresh_all(&self) -> Result<Vec<LiveObject>, ProviderError> {
        let (numbers, fqdn_conns, fqdns, creds, profiles, apps, addresses) = futures::try_join!(
            self.list_all::<PhoneNumber>("phone_numbers", &[]),
            self.list_all::<Connection>("fqdn_connections", &[]),
            self.list_all::<Fqdn>("fqdns", &[]),
            self.list_all::<Connection>("credential_connections", &[]),
            self.list_all::<VoiceProfile>("outbound_voice_profiles", &[]),
            self.list_all::<TexmlApp>("texml_applications", &[]),
            self.list_all::<EmergencyAddress>("addresses", &[]),
        )?;
        let primaries: std::collections::HashMap<&str, &str> = fqdn_conns
            .iter()
            .filter_map(|c| c.default_primary_fqdn_id().map(|p| (c.id.as_str(), p)))
            .collect();
        let mut out = Vec::with_capacity(numbers.len() + fqdn_conns.len() + fqdns.len());
        for n in &numbers {
            out.push(self.number_object(n, &n.id)?);
        }
        out.extend(fqdn_conns.iter().map(wire::fqdn_connection_object));
        out.extend(fqdns.iter().map(|f| {
            let primary = f
                .connection_id
                .as_deref()
                .and_then(|c| primaries.get(c).copied());
            wire::fqdn_object(f, primary)
        }));
        out.extend(creds.iter().map(wire::credential_connection_object));
        out.extend(profiles.iter().map(wire::voice_profile_object));
        out.extend(apps.iter().map(wire::texml_object));
        out.extend(addresses.iter().map(wire::emergency_address_object));
        Ok(out)
    }

    // ---- numbers ----

    /// Picks the number to order: the fixed number if Telnyx offers it, else the first
    /// friendly ending in order, else the first available number in the area code.
    async fn choose_number(&self, spec: &NumberSpec, object: &str) -> Result<E164, ProviderError> {
        match spec {
            NumberSpec::Fixed { number } => match self.offers(number, object).await? {
                true => Ok(number.clone()),
                false => Err(unavailable(
                    object,
                    &format!("{number} is not available to order"),
                )),
            },
            NumberSpec::Auto {
                country,
                area_code,
                endings,
            } => {
                for ending in endings {
                    let query = auto_search_query(country, area_code, Some(ending));
                    let found = self.search_available(&query, object).await?;
                    if let Some(n) = self.claim(found, |free| pick_ending(free, area_code, ending))
                    {
                        return Ok(n);
                    }
                }
                let query = auto_search_query(country, area_code, None);
                let found = self.search_available(&query, object).await?;
                let outside = best_effort_only(&found, area_code);
                self.claim(found, |free| pick_first(free, area_code))
                    .ok_or_else(|| unavailable(object, &no_number_in(country, area_code, &outside)))
            }
        }
    }

    /// Whether Telnyx offers exactly this number for order now (one search).
    async fn offers(&self, number: &E164, object: &str) -> Result<bool, ProviderError> {
        let found = self
            .search_available(&fixed_search_query(number), object)
            .await?;
        Ok(found
            .iter()
            .any(|n| E164::normalize(&n.phone_number).ok().as_ref() == Some(number)))
    }

    /// Picks among the found numbers no other order of this client has chosen, and claims
    /// the pick.
    fn claim(
        &self,
        found: Vec<AvailableNumber>,
        pick: impl Fn(&[AvailableNumber]) -> Option<E164>,
    ) -> Option<E164> {
        let mut claimed = self
            .claimed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let free: Vec<AvailableNumber> = found
            .into_iter()
            .filter(|n| E164::normalize(&n.phone_number).map_or(true, |e| !claimed.contains(&e)))
            .collect();
        let chosen = pick(&free)?;
        claimed.insert(chosen.clone());
        Some(chosen)
    }

    async fn search_available(
        &self,
        query: &[(String, String)],
        object: &str,
    ) -> Result<Vec<AvailableNumber>, ProviderError> {
        let pairs: Vec<(&str, &str)> = query
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let url = self.url("/available_phone_numbers", &pairs);
        let page: Page<AvailableNumber> = self
            .http
            .json(Call::get(url, "search available_phone_numbers", object))
            .await?;
        Ok(page.data)
    }

    async fn post_order(
        &self,
        number: &E164,
        connection: Option<&str>,
        reference: &str,
        object: &str,
    ) -> Result<NumberOrder, ProviderError> {
        self.write(
            Method::POST,
            "/number_orders",
            order_body(number, connection, reference),
            object,
            &[number.as_str()],
        )
        .await
    }

    async fn find_order(&self, reference: &str) -> Result<Option<NumberOrder>, ProviderError> {
        if reference.is_empty() {
            return Ok(None);
        }
        let orders: Vec<NumberOrder> = self
            .list_all(
                "number_orders",
                &[("filter[customer_reference]", reference)],
            )
            .await?;
        Ok(orders
            .into_iter()
            .find(|o| o.customer_reference.as_deref() == Some(reference)))
    }

    /// Polls the order until it succeeds, with a bounded, growing interval.
    async fn wait_for_order(
        &self,
        mut order: NumberOrder,
        object: &str,
    ) -> Result<NumberOrder, ProviderError> {
        let mut interval = self.poll_interval;
        for _ in 0..self.poll_attempts {
            match order.status.as_str() {
                "success" => return Ok(order),
                "failure" => return Err(order_failed(&order, object)),
                _ if waits_for_documents(&order) => {
                    return Err(order_needs_documents(&order, object))
                }
                _ => {}
            }
            tokio::time::sleep(interval).await;
            interval = (interval * 2).min(Duration::from_secs(5));
            order = self
                .get_one::<NumberOrder>("number_orders", &order.id)
                .await?
                .ok_or_else(|| {
                    undecodable(
                        P,
                        "get number_order",
                        object,
                        format!("order {} vanished", order.id),
                    )
                })?;
        }
        if order.status == "success" {
            return Ok(order);
        }
        Err(ProviderError::Transport {
            provider: P,
            operation: "wait for number order".into(),
            object: object.to_string(),
            detail: format!(
                "order {} is still {} after {} polls",
                order.id, order.status, self.poll_attempts
            ),
        })
    }

    /// The `/phone_numbers` record of a number (digits-only filter), polling briefly while a
    /// fresh purchase appears.
    async fn number_record(
        &self,
        number: &E164,
        object: &str,
    ) -> Result<Option<PhoneNumber>, ProviderError> {
        let found: Vec<PhoneNumber> = self
            .list_all(
                "phone_numbers",
                &[("filter[phone_number]", number.digits())],
            )
            .await?;
        let _ = object;
        Ok(found
            .into_iter()
            .find(|n| E164::normalize(&n.phone_number).ok().as_ref() == Some(number)))
    }

    async fn wait_for_record(
        &self,
        number: &E164,
        object: &str,
    ) -> Result<PhoneNumber, ProviderError> {
        let mut interval = self.poll_interval;
        for _ in 0..self.poll_attempts {
            if let Some(n) = self.number_record(number, object).await? {
                return Ok(n);
            }
            tokio::time::sleep(interval).await;
            interval = (interval * 2).min(Duration::from_secs(5));
        }
        Err(undecodable(
            P,
            "find ordered number",
            object,
            format!("{number} was ordered but never appeared in /phone_numbers"),
        ))
    }

    /// Points a number at its connection (and sets its tags) once it is active, if the order
    /// did not already do so.
    async fn bind_when_active(
        &self,
        mut record: PhoneNumber,
        spec: &TelnyxNumberSpec,
        object: &str,
    ) -> Result<PhoneNumber, ProviderError> {
        let want_conn = spec
            .connection
            .as_ref()
            .map(|r| live_id(P, r, object))
            .transpose()?;
        let want_tags = canonical::set(spec.tags.clone());
        let have_tags = canonical::set(record.tags.clone().unwrap_or_default());
        if record.connection_id.as_deref() == want_conn && have_tags == want_tags {
            return Ok(record);
        }
        let mut interval = self.poll_interval;
        for _ in 0..self.poll_attempts {
            if record.status.as_deref().is_none_or(|s| s == "active") {
                break;
            }
            tokio::time::sleep(interval).await;
            interval = (interval * 2).min(Duration::from_secs(5));
            record = self
                .get_one("phone_numbers", &record.id)
                .await?
                .unwrap_or(record);
        }
        self.patch_number(
            &record.id,
            &record.phone_number,
            want_conn,
            &want_tags,
            object,
        )
        .await
    }

    async fn patch_number(
        &self,
        id: &str,
        number: &str,
        connection: Option<&str>,
        tags: &[String],
        object: &str,
    ) -> Result<PhoneNumber, ProviderError> {
        self.write(
            Method::PATCH,
            &format!("/phone_numbers/{id}"),
            number_patch_body(connection, tags),
            object,
            &[number],
        )
        .await
    }

    async fn order_number(
        &self,
        req: &WriteRequest,
        spec: &TelnyxNumberSpec,
    ) -> Result<LiveObject, ProviderError> {
        let object = req.object.as_str();
        let connection = spec
            .connection
            .as_ref()
            .map(|r| live_id(P, r, object))
            .transpose()?;
        // An order under this reference may already exist: placed by a run killed before it
        // journaled (a CI retry on another runner has no journal) or by a second checkout of
        // the same state. It is completed, never placed again, when it can only be this line's
        // purchase (`order_is_this_lines`). A look-up right before the post narrows the race of
        // two concurrent runs to this gap; nothing closer exists without a lock Telnyx holds.
        if let Some(order) = self.find_order(&req.reference).await? {
            if self
                .order_is_this_lines(&order, spec, &req.reference, object)
                .await?
            {
                tracing::info!(object, order = %order.id, "an order under this reference exists; completing it");
                return self.complete_order(order, spec, object).await;
            }
        }
        let number = self.choose_number(&spec.number, object).await?;
        let order = post_once(
            self.http.backoff(),
            || self.post_order(&number, connection, &req.reference, object),
            || self.find_order(&req.reference),
        )
        .await?;
        self.complete_order(order, spec, object).await
    }

    /// Whether an order found under this line's reference is this line's purchase: it bought
    /// the declared number (a fixed line), or a number of the declared area code (an `auto`
    /// line) that the account still holds under the same reference. A reference derives from
    /// the lineage and the address only, so an address that had another number before (a
    /// fixed number changed, a number released and the line bought again) finds that older
    /// order too: it is not this purchase, and completing it would bind the wrong number.
    async fn order_is_this_lines(
        &self,
        order: &NumberOrder,
        spec: &TelnyxNumberSpec,
        reference: &str,
        object: &str,
    ) -> Result<bool, ProviderError> {
        let Some(bought) = order
            .phone_numbers
            .iter()
            .find_map(|l| E164::normalize(&l.phone_number).ok())
        else {
            return Ok(false);
        };
        let fits = match &spec.number {
            NumberSpec::Fixed { number } => *number == bought,
            NumberSpec::Auto { area_code, .. } => bought.area_code() == Some(area_code.as_str()),
        };
        if !fits {
            return Ok(false);
        }
        Ok(self
            .number_record(&bought, object)
            .await?
            .is_some_and(|n| n.customer_reference.as_deref() == Some(reference)))
    }

    /// Waits for an order, finds the number it bought and binds it.
    async fn complete_order(
        &self,
        order: NumberOrder,
        spec: &TelnyxNumberSpec,
        object: &str,
    ) -> Result<LiveObject, ProviderError> {
        let order = self.wait_for_order(order, object).await?;
        let bought = order
            .phone_numbers
            .iter()
            .find_map(|l| E164::normalize(&l.phone_number).ok())
            .ok_or_else(|| {
                undecodable(
                    P,
                    "number order",
                    object,
                    format!("order {} lists no number", order.id),
                )
            })?;
        let record = self.wait_for_record(&bought, object).await?;
        let record = self.bind_when_active(record, spec, object).await?;
        let record = self.ensure_emergency(record, spec, object).await?;
        self.number_object(&record, object)
    }

    async fn find_number(
        &self,
        req: &WriteRequest,
        spec: &TelnyxNumberSpec,
    ) -> Result<Option<LiveObject>, ProviderError> {
        let object = req.object.as_str();
        if let Some(order) = self.find_order(&req.reference).await? {
            return self.complete_order(order, spec, object).await.map(Some);
        }
        if !req.reference.is_empty() {
            let by_ref: Vec<PhoneNumber> = self
                .list_all(
                    "phone_numbers",
                    &[("filter[customer_reference]", req.reference.as_str())],
                )
                .await?;
            if let Some(n) = by_ref
                .iter()
                .find(|n| n.customer_reference.as_deref() == Some(req.reference.as_str()))
            {
                return self.number_object(n, object).map(Some);
            }
        }
        if let NumberSpec::Fixed { number } = &spec.number {
            if let Some(n) = self.number_record(number, object).await? {
                return self.number_object(&n, object).map(Some);
            }
        }
        Ok(None)
    }

    // ---- connections ----

    async fn set_default_primary(
        &self,
        connection: &str,
        fqdn_id: Option<&str>,
        object: &str,
    ) -> Result<(), ProviderError> {
        let current = self.get_raw("fqdn_connections", connection).await?;
        let mut inbound = nested(&current, "inbound");
        inbound.insert("default_primary_fqdn_id".into(), json!(fqdn_id));
        let _: Value = self
            .write(
                Method::PATCH,
                &format!("/fqdn_connections/{connection}"),
                json!({ "inbound": inbound }),
                object,
                &[],
            )
            .await?;
        Ok(())
    }

    async fn create_fqdn(
        &self,
        req: &WriteRequest,
        spec: &FqdnSpec,
    ) -> Result<LiveObject, ProviderError> {
        let object = req.object.as_str();
        let connection = live_id(P, &spec.connection, object)?.to_string();
        let made = post_once(
            self.http.backoff(),
            || async {
                self.write::<Fqdn>(
                    Method::POST,
                    "/fqdns",
                    fqdn_body(spec, &connection, false),
                    object,
                    &[&connection],
                )
                .await
            },
            || self.find_fqdn(&connection, spec),
        )
        .await?;
        if spec.default_primary {
            self.set_default_primary(&connection, Some(&made.id), object)
                .await?;
        }
        self.fqdn_with_primary(made).await
    }

    async fn find_fqdn(
        &self,
        connection: &str,
        spec: &FqdnSpec,
    ) -> Result<Option<Fqdn>, ProviderError> {
        let fqdns: Vec<Fqdn> = self
            .list_all(
                "fqdns",
                &[
                    ("filter[connection_id]", connection),
                    ("filter[fqdn]", spec.fqdn.as_str()),
                ],
            )
            .await?;
        Ok(fqdns.into_iter().find(|f| {
            let o = wire::fqdn_object(f, None);
            matches!(&o.spec, Spec::TelnyxFqdn(s) if s.fqdn == spec.fqdn.to_ascii_lowercase() && s.port == spec.port)
        }))
    }

    async fn update_fqdn(
        &self,
        id: &str,
        before: &Spec,
        spec: &FqdnSpec,
        object: &str,
    ) -> Result<LiveObject, ProviderError> {
        let connection = live_id(P, &spec.connection, object)?.to_string();
        let updated: Fqdn = self
            .write(
                Method::PATCH,
                &format!("/fqdns/{id}"),
                fqdn_body(spec, &connection, true),
                object,
                &[],
            )
            .await?;
        let was_primary = matches!(before, Spec::TelnyxFqdn(b) if b.default_primary);
        let current = self
            .get_one::<Connection>("fqdn_connections", &connection)
            .await?;
        let points_here = current.as_ref().and_then(|c| c.default_primary_fqdn_id()) == Some(id);
        if spec.default_primary && !points_here {
            self.set_default_primary(&connection, Some(id), object)
                .await?;
        } else if !spec.default_primary && points_here && was_primary {
            self.set_default_primary(&connection, None, object).await?;
        }
        self.fqdn_with_primary(updated).await
    }

    /// Writes an FQDN connection's credentials through its `fqdn_authentication`
    /// sub-resource, then reads the connection back.
    async fn write_fqdn_auth(
        &self,
        id: &str,
        body: Value,
        object: &str,
    ) -> Result<LiveObject, ProviderError> {
        let _: Value = self
            .write(
                Method::PATCH,
                &format!("/fqdn_connections/{id}/fqdn_authentication"),
                body,
                object,
                &[id],
            )
            .await?;
        let current = self.get_raw("fqdn_connections", id).await?;
        self.convert_value(Kind::TelnyxFqdnConnection, current, object)
    }

    /// GET the connection, modify its nested objects, PATCH the complete objects back.
    async fn update_connection<T: DeserializeOwned>(
        &self,
        path: &str,
        id: &str,
        object: &str,
        body: impl Fn(&Value) -> Result<Value, ProviderError>,
    ) -> Result<T, ProviderError> {
        let current = self.get_raw(path, id).await?;
        self.write(
            Method::PATCH,
            &format!("/{path}/{id}"),
            body(&current)?,
            object,
            &[],
        )
        .await
    }

    async fn find_by_name(
        &self,
        kind: Kind,
        name: &str,
    ) -> Result<Option<LiveObject>, ProviderError> {
        let (path, filter) = match kind {
            Kind::TelnyxFqdnConnection => ("fqdn_connections", "filter[connection_name][contains]"),
            Kind::TelnyxCredentialConnection => (
                "credential_connections",
                "filter[connection_name][contains]",
            ),
            Kind::TelnyxOutboundVoiceProfile => {
                ("outbound_voice_profiles", "filter[name][contains]")
            }
            Kind::TelnyxTexmlApplication => ("texml_applications", "filter[friendly_name]"),
            _ => return Ok(None),
        };
        let items: Vec<Value> = self.list_all(path, &[(filter, name)]).await?;
        for item in items {
            let obj = self.convert_value(kind, item, name)?;
            if obj.spec.label() == name {
                return Ok(Some(obj));
            }
        }
        Ok(None)
    }

    fn convert_value(
        &self,
        kind: Kind,
        v: Value,
        object: &str,
    ) -> Result<LiveObject, ProviderError> {
        let bad = |e: serde_json::Error| undecodable(P, "read", object, e.to_string());
        Ok(match kind {
            Kind::TelnyxFqdnConnection => {
                wire::fqdn_connection_object(&serde_json::from_value(v).map_err(bad)?)
            }
            Kind::TelnyxCredentialConnection => {
                wire::credential_connection_object(&serde_json::from_value(v).map_err(bad)?)
            }
            Kind::TelnyxOutboundVoiceProfile => {
                wire::voice_profile_object(&serde_json::from_value(v).map_err(bad)?)
            }
            Kind::TelnyxTexmlApplication => {
                wire::texml_object(&serde_json::from_value(v).map_err(bad)?)
            }
            Kind::TelnyxEmergencyAddress => {
                wire::emergency_address_object(&serde_json::from_value(v).map_err(bad)?)
            }
            _ => {
                return Err(undecodable(
                    P,
                    "read",
                    object,
                    format!("{kind} is not read by name"),
                ))
            }
        })
    }

    // ---- emergency (issue 21) ----

    /// Turns emergency service on with the declared address when the number does not have it
    /// yet: `POST /phone_numbers/{id}/actions/enable_emergency` with `emergency_enabled` and
    /// `emergency_address_id`, both required (spec3.yml, PhoneNumberEnableEmergencyRequest).
    /// Telnyx answers 200 (enabled) or 202 (requested, `emergency_status` `provisioning`);
    /// either way the number is read again, so what is returned is what Telnyx now holds.
    /// An undeclared address (`None`) leaves the number's emergency settings as they are.
    async fn ensure_emergency(
        &self,
        record: PhoneNumber,
        spec: &TelnyxNumberSpec,
        object: &str,
    ) -> Result<PhoneNumber, ProviderError> {
        let Some(address) = spec.settings.emergency_address.as_ref() else {
            return Ok(record);
        };
        let address = live_id(P, address, object)?;
        if wire::emergency_address_of(&record).as_deref() == Some(address) {
            return Ok(record);
        }
        let _: Value = self
            .write(
                Method::POST,
                &format!("/phone_numbers/{}/actions/enable_emergency", record.id),
                json!({ "emergency_enabled": true, "emergency_address_id": address }),
                object,
                &[record.phone_number.as_str()],
            )
            .await?;
        let now: PhoneNumber = self
            .get_one("phone_numbers", &record.id)
            .await?
            .unwrap_or(record);
        if now.emergency_status.as_deref() == Some("provisioning-failed") {
            return Err(ProviderError::Unsupported {
                provider: P,
                operation: "enable emergency".into(),
                object: object.to_string(),
                detail: format!(
                    "Telnyx could not provision emergency service for {} with address {address} (emergency_status provisioning-failed): check the address with Telnyx (POST /addresses/actions/validate), then run cwa apply again",
                    now.phone_number
                ),
            });
        }
        Ok(now)
    }

    /// A lost create of an address is found again by its fields (an address has no name or
    /// reference cwa could filter on; every field is its identity).
    async fn find_address(
        &self,
        spec: &crate::model::EmergencyAddressSpec,
    ) -> Result<Option<LiveObject>, ProviderError> {
        let all: Vec<EmergencyAddress> = self.list_all("addresses", &[]).await?;
        Ok(all
            .iter()
            .map(wire::emergency_address_object)
            .find(|o| matches!(&o.spec, Spec::TelnyxEmergencyAddress(a) if a == spec)))
    }

    /// Telnyx's own deletion lock: a number with `deletion_lock_enabled` is never released
    /// (the plan keeps it; this refuses a release that gets here anyway, before any DELETE).
    async fn refuse_locked_release(&self, id: &str) -> Result<(), ProviderError> {
        let Some(n) = self.get_one::<PhoneNumber>("phone_numbers", id).await? else {
            return Ok(());
        };
        if n.deletion_lock_enabled == Some(true) {
            return Err(ProviderError::Unsupported {
                provider: P,
                operation: "release number".into(),
                object: id.to_string(),
                detail: format!(
                    "{} has Telnyx's deletion lock on; cwa never releases a locked number (turn the lock off in the Telnyx portal first if releasing it is really meant)",
                    n.phone_number
                ),
            });
        }
        Ok(())
    }

    /// The hard lock for a number: its id is checked by the HTTP layer, its number here.
    async fn check_number_lock(&self, id: &str, object: &str) -> Result<(), ProviderError> {
        if !self.http.guard().has_numbers() {
            return Ok(());
        }
        if let Some(n) = self.get_one::<PhoneNumber>("phone_numbers", id).await? {
            if let Ok(e) = E164::normalize(&n.phone_number) {
                self.http.guard().check(object, [e.as_str(), e.digits()])?;
            }
        }
        Ok(())
    }
}

/// The plain value of a secret, when it was resolved for this write.
fn secret_value(s: &Option<SecretRef>) -> Option<&str> {
    s.as_ref().and_then(SecretRef::value).map(|v| v.expose())
}

/// The password a connection write must carry: the resolved value, or nothing when the
/// wanted password is absent or is the one Telnyx already has (same fingerprint). A secret
/// known only by name or by a different fingerprint cannot be written.
fn password_to_send(
    want: &Option<SecretRef>,
    current: &Value,
    object: &str,
) -> Result<Option<String>, ProviderError> {
    let have = current
        .get("password")
        .and_then(Value::as_str)
        .unwrap_or("");
    let hidden = have.is_empty() || wire::is_masked(have);
    match want {
        None => Ok(None),
        Some(SecretRef::Value(v)) => Ok(Some(v.expose().to_string())),
        Some(s) if s.is_hidden() => Ok(None),
        Some(SecretRef::Fingerprint(f)) if !hidden && fingerprint(have) == *f => Ok(None),
        // Telnyx does not show it: the one cwa last wrote (its fingerprint is all state
        // has) is not sent again blindly.
        Some(SecretRef::Fingerprint(_)) if hidden && !current.is_null() => Ok(None),
        Some(_) => Err(ProviderError::Config {
            provider: P,
            detail: format!(
                "{object}: the password must be resolved from its environment variable before writing"
            ),
        }),
    }
}

fn unavailable(object: &str, detail: &str) -> ProviderError {
    ProviderError::Unsupported {
        provider: P,
        operation: "order number".into(),
        object: object.to_string(),
        detail: detail.to_string(),
    }
}

/// Whether Telnyx holds the order until regulatory documents are provided: it will not
/// complete by waiting.
fn waits_for_documents(order: &NumberOrder) -> bool {
    order
        .phone_numbers
        .iter()
        .any(|l| l.requirements_status.as_deref() == Some("requirement-info-pending"))
}

fn order_needs_documents(order: &NumberOrder, object: &str) -> ProviderError {
    let numbers: Vec<&str> = order
        .phone_numbers
        .iter()
        .map(|l| l.phone_number.as_str())
        .collect();
    ProviderError::Api {
        provider: P,
        operation: "number order".into(),
        object: object.to_string(),
        status: 200,
        code: "requirement-info-pending".into(),
        detail: format!(
            "order {} for {} waits for regulatory documents (requirement-info-pending); provide them in the Telnyx portal, then run apply again: it finds this order by its reference and does not buy twice",
            order.id,
            numbers.join(", ")
        ),
    }
}

fn order_failed(order: &NumberOrder, object: &str) -> ProviderError {
    let lines: Vec<String> = order
        .phone_numbers
        .iter()
        .map(|l| format!("{} {}", l.phone_number, l.status.as_deref().unwrap_or("?")))
        .collect();
    ProviderError::Api {
        provider: P,
        operation: "number order".into(),
        object: object.to_string(),
        status: 200,
        code: order.status.clone(),
        detail: format!("order {} failed: {}", order.id, lines.join(", ")),
    }
}

/// A nested object of a connection as it is now (`inbound`, `outbound`), to modify and send
/// back whole.
fn nested(current: &Value, key: &str) -> Map<String, Value> {
    let mut object = current
        .get(key)
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    object.retain(|_, v| !v.is_null());
    object
}

/// The search for one fixed number: its area code as NDC and the rest as `ends_with`.
pub fn fixed_search_query(number: &E164) -> Vec<(String, String)> {
    let digits = number.digits();
    let mut q = Vec::new();
    match number.area_code() {
        Some(ndc) => {
            q.push(("filter[national_destination_code]".into(), ndc.to_string()));
            q.push((
                "filter[phone_number][ends_with]".into(),
                digits[4..].to_string(),
            ));
        }
        None => q.push(("filter[phone_number][contains]".into(), digits.to_string())),
    }
    q.push(("filter[limit]".into(), "10".into()));
    q
}

/// The search of an area code, optionally for one friendly ending.
pub fn auto_search_query(
    country: &str,
    area_code: &str,
    ending: Option<&str>,
) -> Vec<(String, String)> {
    let mut q = vec![
        (
            "filter[country_code]".to_string(),
            country.to_ascii_uppercase(),
        ),
        (
            "filter[national_destination_code]".to_string(),
            area_code.to_string(),
        ),
    ];
    if let Some(e) = ending {
        q.push(("filter[phone_number][ends_with]".into(), e.to_string()));
    }
    q.push(("filter[features]".into(), "voice".into()));
    q.push(("filter[limit]".into(), "10".into()));
    q
}

/// Whether an offer is an exact match in the declared area code. Telnyx marks offers it adds
/// when it has too few exact ones `best_effort` (spec3.yml, AvailablePhoneNumber); those can be
/// in a neighbouring area code and are never bought for an `"auto"` number.
pub fn in_area_code(offer: &AvailableNumber, area_code: &str) -> Option<E164> {
    if offer.best_effort {
        return None;
    }
    let number = E164::normalize(&offer.phone_number).ok()?;
    match number.area_code() {
        Some(ac) if ac != area_code => None,
        _ => Some(number),
    }
}

/// The first exact offer in the area code that ends with the ending.
pub fn pick_ending(found: &[AvailableNumber], area_code: &str, ending: &str) -> Option<E164> {
    found
        .iter()
        .filter_map(|n| in_area_code(n, area_code))
        .find(|n| n.digits().ends_with(ending))
}

/// The first exact offer in the area code; best-effort offers are never taken.
pub fn pick_first(found: &[AvailableNumber], area_code: &str) -> Option<E164> {
    found.iter().find_map(|n| in_area_code(n, area_code))
}

/// The offers of a search when every one of them is best-effort or outside the area code
/// (empty when some offer fits, or when there was none at all).
pub fn best_effort_only(found: &[AvailableNumber], area_code: &str) -> Vec<String> {
    if found.iter().any(|n| in_area_code(n, area_code).is_some()) {
        return Vec::new();
    }
    found.iter().map(|n| n.phone_number.clone()).collect()
}

/// Why no number could be chosen, naming the refused best-effort offers when there were some.
fn no_number_in(country: &str, area_code: &str, outside: &[String]) -> String {
    if outside.is_empty() {
        return format!("no number is available in {country} area code {area_code}");
    }
    format!(
        "only best-effort offers outside area code {area_code} ({}); cwa never buys a number outside the declared area code: try again later or declare another area_code",
        outside.join(", ")
    )
}

/// A number's PATCH: its tags, and its connection when it has one. `connection_id` is a
/// string in UpdatePhoneNumberRequest: a number is never unbound with `null` (a number cwa
/// keeps is parked on a declared target instead).
pub fn number_patch_body(connection: Option<&str>, tags: &[String]) -> Value {
    let mut body = json!({ "tags": tags });
    if let Some(c) = connection {
        body["connection_id"] = json!(c);
    }
    body
}

pub fn order_body(number: &E164, connection: Option<&str>, reference: &str) -> Value {
    let mut body = json!({ "phone_numbers": [{ "phone_number": number.as_str() }] });
    if let Some(c) = connection {
        body["connection_id"] = json!(c);
    }
    if !reference.is_empty() {
        body["customer_reference"] = json!(reference);
    }
    body
}

/// An FQDN record's body. spec3.yml (CreateFqdnRequest): a port is set only with
/// `dns_record_type = "a"`; an `srv` record has none. A create of an `srv` record sends no
/// port; an update sends `port: null` so a record that was `a` loses its old port.
pub fn fqdn_body(spec: &FqdnSpec, connection: &str, update: bool) -> Value {
    let record_type = spec.dns_record_type.to_ascii_lowercase();
    let mut body = json!({
        "connection_id": connection,
        "fqdn": spec.fqdn,
        "dns_record_type": record_type,
    });
    if record_type == "a" {
        body["port"] = json!(if spec.port == 0 { 5060 } else { spec.port });
    } else if update {
        body["port"] = Value::Null;
    }
    body
}

/// The body of an FQDN connection create or update: top-level fields plus the `inbound` and
/// `outbound` objects as they are now (without their null values: the request schemas type
/// `channel_limit`, `tech_prefix`, `ip_authentication_token` and the rest as non-null), with
/// cwa's fields set. Credentials are not part of it: neither request schema declares
/// `user_name` / `password`; they go through [`fqdn_auth_body`].
pub fn fqdn_connection_body(
    spec: &FqdnConnectionSpec,
    current: &Value,
    object: &str,
) -> Result<Value, ProviderError> {
    let mut inbound = nested(current, "inbound");
    if !spec.ani_number_format.is_empty() {
        inbound.insert("ani_number_format".into(), json!(spec.ani_number_format));
    }
    if !spec.dnis_number_format.is_empty() {
        inbound.insert("dnis_number_format".into(), json!(spec.dnis_number_format));
    }
    let mut outbound = nested(current, "outbound");
    set_profile(&mut outbound, spec.outbound_voice_profile.as_ref(), object)?;
    Ok(json!({
        "connection_name": spec.connection_name,
        "active": spec.active,
        "transport_protocol": spec.transport_protocol.to_ascii_uppercase(),
        "inbound": inbound,
        "outbound": outbound,
    }))
}

/// The body of `PATCH /fqdn_connections/{id}/fqdn_authentication` (the way the current SDK
/// writes an FQDN connection's credentials), or `None` when nothing about them changes.
pub fn fqdn_auth_body(
    spec: &FqdnConnectionSpec,
    current: &Value,
    object: &str,
) -> Result<Option<Value>, ProviderError> {
    let have_user = current
        .get("user_name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let mut body = Map::new();
    let want_user = spec.user_name.as_deref().unwrap_or("");
    if want_user != have_user {
        body.insert("user_name".into(), json!(want_user));
    }
    if let Some(pw) = password_to_send(&spec.password, current, object)? {
        body.insert("password".into(), json!(pw));
    }
    Ok((!body.is_empty()).then_some(Value::Object(body)))
}

/// Sets (or clears) the outbound voice profile in an `outbound` object. The request schemas
/// type `outbound_voice_profile_id` as a string, so clearing sends `""`, never `null`.
fn set_profile(
    outbound: &mut Map<String, Value>,
    profile: Option<&Ref>,
    object: &str,
) -> Result<(), ProviderError> {
    match profile {
        Some(r) => {
            outbound.insert(
                "outbound_voice_profile_id".into(),
                json!(live_id(P, r, object)?),
            );
        }
        None if outbound.contains_key("outbound_voice_profile_id") => {
            outbound.insert("outbound_voice_profile_id".into(), json!(""));
        }
        None => {}
    }
    Ok(())
}

/// The body of a credential connection create or update; the outbound voice profile goes in
/// the `outbound` object (a flat field is silently ignored by Telnyx), echoed without nulls.
pub fn credential_connection_body(
    spec: &CredentialConnectionSpec,
    current: &Value,
    object: &str,
) -> Result<Value, ProviderError> {
    let mut outbound = nested(current, "outbound");
    set_profile(&mut outbound, spec.outbound_voice_profile.as_ref(), object)?;
    let mut body = json!({
        "connection_name": spec.connection_name,
        "active": spec.active,
        "user_name": spec.user_name,
    });
    if !outbound.is_empty() {
        body["outbound"] = Value::Object(outbound);
    }
    if let Some(pw) = password_to_send(&spec.password, current, object)? {
        body["password"] = json!(pw);
    }
    Ok(body)
}

pub fn voice_profile_body(spec: &OutboundVoiceProfileSpec) -> Value {
    json!({
        "name": spec.name,
        "enabled": spec.enabled,
        "whitelisted_destinations": crate::model::canonical::countries(spec.whitelisted_destinations.clone()),
    })
}

/// TeXML create and update both require `friendly_name` and `voice_url`.
/// An address's create body (spec3.yml, AddressCreate): the declared fields, with
/// `extended_address` only when there is one.
pub fn address_body(spec: &crate::model::EmergencyAddressSpec) -> Value {
    let mut body = json!({
        "business_name": spec.business_name,
        "first_name": spec.first_name,
        "last_name": spec.last_name,
        "street_address": spec.street_address,
        "locality": spec.locality,
        "administrative_area": spec.administrative_area,
        "postal_code": spec.postal_code,
        "country_code": spec.country_code,
    });
    if !spec.extended_address.is_empty() {
        body["extended_address"] = json!(spec.extended_address);
    }
    body
}

pub fn texml_body(spec: &TexmlApplicationSpec) -> Value {
    json!({
        "friendly_name": spec.friendly_name,
        "voice_url": spec.voice_url,
        "voice_method": spec.voice_method.to_ascii_lowercase(),
    })
}

#[async_trait]
impl Provider for TelnyxProvider {
    fn name(&self) -> ProviderName {
        P
    }

    async fn refresh(&self) -> Result<Vec<LiveObject>, ProviderError> {
        self.refresh_all().await
    }

    async fn read(&self, kind: Kind, id: &str) -> Result<Option<LiveObject>, ProviderError> {
        let Some(path) = collection(kind) else {
            return Ok(None);
        };
        match kind {
            Kind::TelnyxNumber => match self.get_one::<PhoneNumber>(path, id).await? {
                Some(n) => self.number_object(&n, id).map(Some),
                None => Ok(None),
            },
            Kind::TelnyxFqdn => match self.get_one::<Fqdn>(path, id).await? {
                Some(f) => self.fqdn_with_primary(f).await.map(Some),
                None => Ok(None),
            },
            _ => match self.get_one::<Value>(path, id).await? {
                Some(v) => self.convert_value(kind, v, id).map(Some),
                None => Ok(None),
            },
        }
    }

    async fn create(&self, req: &WriteRequest) -> Result<LiveObject, ProviderError> {
        self.http.guard().check_create(req)?;
        let object = req.object.as_str();
        match &req.spec {
            Spec::TelnyxNumber(s) => self.order_number(req, s).await,
            Spec::TelnyxFqdnConnection(s) => {
                let body = fqdn_connection_body(s, &Value::Null, object)?;
                let made = self.create_object(req, "/fqdn_connections", body).await?;
                match fqdn_auth_body(s, &Value::Null, object)? {
                    Some(auth) => self.write_fqdn_auth(&made.id, auth, object).await,
                    None => Ok(made),
                }
            }
            Spec::TelnyxFqdn(s) => self.create_fqdn(req, s).await,
            Spec::TelnyxCredentialConnection(s) => {
                if secret_value(&s.password).is_none() {
                    return Err(ProviderError::Config {
                        provider: P,
                        detail: format!(
                            "{object}: creating a credential connection needs its password value"
                        ),
                    });
                }
                let body = credential_connection_body(s, &Value::Null, object)?;
                self.create_object(req, "/credential_connections", body)
                    .await
            }
            Spec::TelnyxOutboundVoiceProfile(s) => {
                self.create_object(req, "/outbound_voice_profiles", voice_profile_body(s))
                    .await
            }
            Spec::TelnyxTexmlApplication(s) => {
                self.create_object(req, "/texml_applications", texml_body(s))
                    .await
            }
            Spec::TelnyxEmergencyAddress(s) => {
                self.create_object(req, "/addresses", address_body(s)).await
            }
            other => Err(not_mine(P, other.kind(), "create", object)),
        }
    }

    async fn update(
        &self,
        id: &str,
        before: &Spec,
        req: &WriteRequest,
    ) -> Result<LiveObject, ProviderError> {
        self.http.guard().check_update(id, req)?;
        let object = req.object.as_str();
        self.http.guard().check(object, [id])?;
        match &req.spec {
            Spec::TelnyxNumber(s) => {
                let connection = s
                    .connection
                    .as_ref()
                    .map(|r| live_id(P, r, object))
                    .transpose()?;
                let number = s
                    .number
                    .fixed()
                    .map(|n| n.as_str().to_string())
                    .unwrap_or_default();
                self.check_number_lock(id, object).await?;
                let n = self
                    .patch_number(
                        id,
                        &number,
                        connection,
                        &canonical::set(s.tags.clone()),
                        object,
                    )
                    .await?;
                let n = self.ensure_emergency(n, s, object).await?;
                self.number_object(&n, object)
            }
            Spec::TelnyxFqdnConnection(s) => {
                let current: Value = self
                    .update_connection("fqdn_connections", id, object, |cur| {
                        fqdn_connection_body(s, cur, object)
                    })
                    .await?;
                match fqdn_auth_body(s, &current, object)? {
                    Some(auth) => self.write_fqdn_auth(id, auth, object).await,
                    None => self.convert_value(Kind::TelnyxFqdnConnection, current, object),
                }
            }
            Spec::TelnyxFqdn(s) => self.update_fqdn(id, before, s, object).await,
            Spec::TelnyxCredentialConnection(s) => {
                let c: Connection = self
                    .update_connection("credential_connections", id, object, |cur| {
                        credential_connection_body(s, cur, object)
                    })
                    .await?;
                Ok(wire::credential_connection_object(&c))
            }
            Spec::TelnyxOutboundVoiceProfile(s) => {
                let p: VoiceProfile = self
                    .patch("outbound_voice_profiles", id, voice_profile_body(s), object)
                    .await?;
                Ok(wire::voice_profile_object(&p))
            }
            Spec::TelnyxTexmlApplication(s) => {
                let a: TexmlApp = self
                    .patch("texml_applications", id, texml_body(s), object)
                    .await?;
                Ok(wire::texml_object(&a))
            }
            // spec3.yml has no PATCH /addresses/{id}: an address is replaced, never edited,
            // and the planner plans a changed one as a new address (plan::matching).
            Spec::TelnyxEmergencyAddress(_) => Err(ProviderError::Unsupported {
                provider: P,
                operation: "update address".into(),
                object: object.to_string(),
                detail: "Telnyx addresses cannot be edited; cwa creates the changed address, switches its numbers to it, then deletes the old one".into(),
            }),
            other => Err(not_mine(P, other.kind(), "update", object)),
        }
    }

    async fn delete(&self, kind: Kind, id: &str) -> Result<(), ProviderError> {
        self.http.guard().check_delete(kind, id)?;
        let path = collection(kind).ok_or_else(|| not_mine(P, kind, "delete", id))?;
        self.http.guard().check(id, [id])?;
        if kind == Kind::TelnyxNumber {
            self.check_number_lock(id, id).await?;
            self.refuse_locked_release(id).await?;
        }
        let url = self.url(&format!("/{path}/{id}"), &[]);
        let call = Call::write(
            Method::DELETE,
            url,
            Body::Empty,
            format!("DELETE {path}"),
            id,
        );
        gone_is_done(self.http.send(call).await)
    }

    async fn sells(&self, number: &E164) -> Result<Option<bool>, ProviderError> {
        self.offers(number, &number.to_string()).await.map(Some)
    }

    async fn area_offers(
        &self,
        country: &str,
        area_code: &str,
    ) -> Result<Option<super::AreaOffers>, ProviderError> {
        let query = auto_search_query(country, area_code, None);
        let found = self.search_available(&query, area_code).await?;
        let exact = found
            .iter()
            .filter(|n| in_area_code(n, area_code).is_some())
            .count();
        let best_effort = best_effort_only(&found, area_code);
        Ok(Some(super::AreaOffers { exact, best_effort }))
    }

    async fn reserve(
        &self,
        country: &str,
        area_code: &str,
        endings: &[String],
        reference: &str,
    ) -> Result<Option<super::Reservation>, ProviderError> {
        self.reserve_number(country, area_code, endings, reference)
            .await
            .map(Some)
    }

    async fn reservations_of(
        &self,
        number: &E164,
    ) -> Result<Option<Vec<super::Reservation>>, ProviderError> {
        self.reservations_holding(number).await.map(Some)
    }

    async fn find_created(&self, req: &WriteRequest) -> Result<Option<LiveObject>, ProviderError> {
        match &req.spec {
            Spec::TelnyxNumber(s) => self.find_number(req, s).await,
            Spec::TelnyxFqdn(s) => {
                let connection = live_id(P, &s.connection, &req.object)?;
                match self.find_fqdn(connection, s).await? {
                    Some(f) => self.fqdn_with_primary(f).await.map(Some),
                    None => Ok(None),
                }
            }
            Spec::TelnyxEmergencyAddress(s) => self.find_address(s).await,
            spec => self.find_by_name(spec.kind(), &spec.label()).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SecretValue;

    fn e(s: &str) -> E164 {
        E164::parse(s).unwrap()
    }

    #[test]
    fn fixed_search_uses_ndc_and_the_rest() {
        let q = fixed_search_query(&e("+14144007103"));
        assert!(q.contains(&("filter[national_destination_code]".into(), "414".into())));
        assert!(q.contains(&("filter[phone_number][ends_with]".into(), "4007103".into())));
    }

    #[test]
    fn picks_friendly_ending_and_skips_best_effort() {
        let found = vec![
            AvailableNumber {
                phone_number: "+14145550000".into(),
                best_effort: true,
                reservable: true,
            },
            AvailableNumber {
                phone_number: "+14147214000".into(),
                best_effort: false,
                reservable: true,
            },
            AvailableNumber {
                phone_number: "+14147210000".into(),
                best_effort: false,
                reservable: true,
            },
        ];
        assert_eq!(pick_ending(&found, "414", "0000"), Some(e("+14147210000")));
        assert_eq!(pick_ending(&found, "414", "4000"), Some(e("+14147214000")));
        assert_eq!(pick_ending(&found, "414", "9999"), None);
        assert_eq!(pick_first(&found, "414"), Some(e("+14147214000")));
        assert_eq!(pick_first(&found, "262"), None);
        let outside = [AvailableNumber {
            phone_number: "+12625550000".into(),
            best_effort: true,
            reservable: true,
        }];
        assert_eq!(pick_first(&outside, "414"), None);
        assert_eq!(best_effort_only(&outside, "414"), vec!["+12625550000"]);
    }

    #[test]
    fn order_carries_reference_and_connection() {
        let b = order_body(&e("+14147210000"), Some("2925081061861885519"), "cwa-ref-1");
        assert_eq!(b["phone_numbers"][0]["phone_number"], "+14147210000");
        assert_eq!(b["connection_id"], "2925081061861885519");
        assert_eq!(b["customer_reference"], "cwa-ref-1");
    }

    #[test]
    fn credential_connection_profile_is_nested_and_keeps_other_outbound_fields() {
        let spec = CredentialConnectionSpec {
            connection_name: "CWA Verticals Platform Outbound".into(),
            active: true,
            user_name: "cwaoutbound".into(),
            password: None,
            outbound_voice_profile: Some(Ref::Id("2925086295615079772".into())),
        };
        let current = json!({"outbound": {"outbound_voice_profile_id": null, "channel_limit": 10}});
        let body = credential_connection_body(&spec, &current, "x").unwrap();
        assert_eq!(
            body["outbound"]["outbound_voice_profile_id"],
            "2925086295615079772"
        );
        assert_eq!(body["outbound"]["channel_limit"], 10);
        assert!(body.get("outbound_voice_profile_id").is_none());
        assert!(body.get("password").is_none());
    }

    #[test]
    fn fqdn_connection_body_keeps_default_primary_and_sends_credentials_apart() {
        let spec = FqdnConnectionSpec {
            connection_name: "LiveKit ChurchWiseAI".into(),
            active: true,
            transport_protocol: "tcp".into(),
            user_name: Some("churchwiseai".into()),
            password: Some(SecretRef::Value(SecretValue::new("pw-123456"))),
            ani_number_format: "+E.164".into(),
            dnis_number_format: "+e164".into(),
            outbound_voice_profile: None,
        };
        let current = json!({
            "inbound": {"default_primary_fqdn_id": "2925083349418510207", "channel_limit": null},
            "outbound": {"tech_prefix": null, "ip_authentication_token": null, "channel_limit": null},
        });
        let body = fqdn_connection_body(&spec, &current, "x").unwrap();
        assert_eq!(body["transport_protocol"], "TCP");
        assert_eq!(
            body["inbound"]["default_primary_fqdn_id"],
            "2925083349418510207"
        );
        assert_eq!(body["inbound"]["dnis_number_format"], "+e164");
        assert!(body.get("password").is_none() && body.get("user_name").is_none());
        assert!(
            body["inbound"].get("channel_limit").is_none(),
            "no null echoes"
        );
        assert_eq!(body["outbound"], json!({}), "{body}");
        let auth = fqdn_auth_body(&spec, &current, "x").unwrap().unwrap();
        assert_eq!(
            auth,
            json!({"user_name": "churchwiseai", "password": "pw-123456"})
        );
    }

    #[test]
    fn password_is_sent_only_when_resolved_and_never_guessed() {
        let current = json!({"password": "pw-on-telnyx"});
        let same = Some(SecretRef::Fingerprint(fingerprint("pw-on-telnyx")));
        assert_eq!(password_to_send(&same, &current, "x").unwrap(), None);
        let other = Some(SecretRef::Fingerprint(fingerprint("another")));
        assert!(password_to_send(&other, &current, "x").is_err());
        let by_name = Some(SecretRef::Env("TELNYX_FQDN_PASSWORD".into()));
        assert!(password_to_send(&by_name, &current, "x").is_err());
        let value = Some(SecretRef::Value(SecretValue::new("new-pw-123")));
        assert_eq!(
            password_to_send(&value, &current, "x").unwrap().as_deref(),
            Some("new-pw-123")
        );
        assert_eq!(password_to_send(&None, &current, "x").unwrap(), None);
    }

    #[test]
    fn unresolved_reference_is_refused() {
        let spec = CredentialConnectionSpec {
            connection_name: "c".into(),
            active: true,
            user_name: "u".into(),
            password: None,
            outbound_voice_profile: Some(Ref::Addr(crate::model::Address::new(
                Kind::TelnyxOutboundVoiceProfile,
                "main",
            ))),
        };
        assert!(matches!(
            credential_connection_body(&spec, &Value::Null, "x"),
            Err(ProviderError::Config { .. })
        ));
    }

    #[test]
    fn debug_hides_the_api_key() {
        let env = Env::from_pairs([("TELNYX_API_KEY", "KEYsecret-value")]);
        let p = TelnyxProvider::from_env(&env, &ClientOptions::default()).unwrap();
        assert!(!format!("{p:?}").contains("KEYsecret-value"));
    }

    #[test]
    fn concurrent_auto_numbers_never_claim_the_same_number() {
        let env = Env::from_pairs([("TELNYX_API_KEY", "KEY")]);
        let p = TelnyxProvider::from_env(&env, &ClientOptions::default()).unwrap();
        let found = || {
            ["+17345550000", "+17345551000", "+17345552000"]
                .map(|n| AvailableNumber {
                    phone_number: n.into(),
                    best_effort: false,
                    reservable: true,
                })
                .to_vec()
        };
        let first = p.claim(found(), |f| pick_ending(f, "734", "0000"));
        let second = p.claim(found(), |f| pick_ending(f, "734", "0000"));
        let third = p.claim(found(), |f| pick_first(f, "734"));
        assert_eq!(first, Some(e("+17345550000")));
        assert_eq!(second, None);
        assert_eq!(third, Some(e("+17345551000")));
    }

    #[test]
    fn plain_http_base_refused_off_loopback() {
        let env = Env::from_pairs([
            ("TELNYX_API_KEY", "k"),
            ("TELNYX_BASE_URL", "http://example.com/v2"),
        ]);
        assert!(matches!(
            TelnyxProvider::from_env(&env, &ClientOptions::default()),
            Err(ProviderError::Config { .. })
        ));
    }
}
