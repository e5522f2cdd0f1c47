//! The Twilio client: legacy incoming numbers, Elastic SIP trunks, their numbers and their
//! origination URLs. The runbooks keep Twilio read-only ("no new Twilio numbers are
//! purchased"), so every write is refused unless `[policy] twilio_writes = true`
//! ([`ClientOptions::twilio_writes`]); buying a Twilio number is never done.
//!
//! Wire facts: HTTP Basic with the account SID and auth token; v2010 paths end in `.json` and
//! page with a relative `next_page_uri`; trunking v1 pages with an absolute
//! `meta.next_page_url` (only its path and query are followed, on the configured base, so
//! credentials never go to another host); writes are form-encoded POSTs with PascalCase
//! keys.
//!
//! Ids: numbers `PN…`, trunks `TK…`, a number on a trunk `<TK sid>/<PN sid>`. The wire
//! types, forms and normalization into specs live in [`wire`].

mod wire;

use async_trait::async_trait;
use futures::{StreamExt, TryStreamExt};
use reqwest::{Method, Url};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::common::{from_json, gone_is_done, live_id, not_mine, undecodable, Pages};
use super::http::{self, Auth, Body, Call, HttpClient, WriteGuard};
use super::{post_once, ClientOptions, Env, Provider, ProviderError, WriteRequest};
use crate::model::{
    Kind, LiveObject, OriginationUrl, ProviderName, SecretValue, Spec, TwilioTrunkNumberSpec,
    TwilioTrunkSpec,
};
use wire::{attached, decode_error, path_and_query, split_trunk_number, str_or_empty};
pub use wire::{
    number_object, origination_form, origination_url, trunk_form, trunk_number_id,
    trunk_number_object, trunk_object, IncomingNumber, OriginationUrlWire, Trunk, TrunkNumber,
};

const P: ProviderName = ProviderName::Twilio;
const ACCOUNT_ENV: &str = "TWILIO_ACCOUNT_SID";
const TOKEN_ENV: &str = "TWILIO_AUTH_TOKEN";
/// The credentials a Twilio client cannot start without.
pub const REQUIRED_ENV: &[&str] = &[ACCOUNT_ENV, TOKEN_ENV];
pub const DEFAULT_API_BASE_URL: &str = "https://api.twilio.com";
pub const DEFAULT_TRUNKING_BASE_URL: &str = "https://trunking.twilio.com";
/// The largest page Twilio serves.
pub const PAGE_SIZE: u32 = 1000;

/// The Twilio provider. Debug shows the account SID, never the token.
#[derive(Debug)]
pub struct TwilioProvider {
    http: HttpClient,
    api: Url,
    trunking: Url,
    account: String,
    writes: bool,
}

impl TwilioProvider {
    /// Reads `TWILIO_ACCOUNT_SID`, `TWILIO_AUTH_TOKEN` and the optional
    /// `TWILIO_API_BASE_URL` / `TWILIO_TRUNKING_BASE_URL`.
    pub fn from_env(env: &Env, opts: &ClientOptions) -> Result<Self, ProviderError> {
        let account = env.require(P, ACCOUNT_ENV)?.to_string();
        let token = SecretValue::new(env.require(P, TOKEN_ENV)?);
        let api = http::check_base_url(
            P,
            env.get("TWILIO_API_BASE_URL")
                .unwrap_or(DEFAULT_API_BASE_URL),
        )?;
        let trunking = http::check_base_url(
            P,
            env.get("TWILIO_TRUNKING_BASE_URL")
                .unwrap_or(DEFAULT_TRUNKING_BASE_URL),
        )?;
        let auth = Auth::Basic {
            user: account.clone(),
            password: token,
        };
        let guard = std::sync::Arc::new(WriteGuard::from_options(opts));
        let http = HttpClient::new(P, opts, auth, guard, decode_error)?;
        Ok(Self {
            http,
            api,
            trunking,
            account,
            writes: opts.twilio_writes,
        })
    }

    fn numbers_path(&self) -> String {
        format!("/2010-04-01/Accounts/{}/IncomingPhoneNumbers", self.account)
    }

    fn writable(&self, operation: &str, object: &str) -> Result<(), ProviderError> {
        if self.writes {
            return Ok(());
        }
        Err(ProviderError::Unsupported {
            provider: P,
            operation: operation.to_string(),
            object: object.to_string(),
            detail: "Twilio objects are read-only under the policy `policy.twilio_writes = false`; set `twilio_writes = true` under [policy] in lines.toml to allow this write".to_string(),
        })
    }

    fn decode<T: DeserializeOwned>(
        &self,
        v: Value,
        operation: &str,
        object: &str,
    ) -> Result<T, ProviderError> {
        from_json(P, v, operation, object)
    }

    /// Every item of a list: `key` names the array; the next link is followed on `base`.
    async fn list_all<T: DeserializeOwned>(
        &self,
        base: &Url,
        first: &str,
        key: &str,
    ) -> Result<Vec<T>, ProviderError> {
        let mut items = Vec::new();
        let sep = if first.contains('?') { '&' } else { '?' };
        let mut next = Some(format!("{first}{sep}PageSize={PAGE_SIZE}"));
        let mut pages = Pages::new(P, format!("list {key}"));
        while let Some(path) = next.take() {
            pages.read(&path)?;
            let url = http::join(base, &path);
            let page: Value = self
                .http
                .json(Call::get(url, format!("list {key}"), path.clone()))
                .await?;
            let data = page.get(key).cloned().unwrap_or(Value::Array(Vec::new()));
            items.extend(self.decode::<Vec<T>>(data, &format!("list {key}"), &path)?);
            next = page
                .get("next_page_uri")
                .or_else(|| page.get("meta").and_then(|m| m.get("next_page_url")))
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(path_and_query);
        }
        Ok(items)
    }

    async fn get<T: DeserializeOwned>(
        &self,
        base: &Url,
        path: &str,
        object: &str,
    ) -> Result<Option<T>, ProviderError> {
        let url = http::join(base, path);
        match self.http.json::<Value>(Call::get(url, "get", object)).await {
            Ok(v) => self.decode(v, "get", object).map(Some),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn post<T: DeserializeOwned>(
        &self,
        base: &Url,
        path: &str,
        form: Vec<(String, String)>,
        object: &str,
        idempotent: bool,
    ) -> Result<T, ProviderError> {
        let url = http::join(base, path);
        let mut call = Call::write(
            Method::POST,
            url,
            Body::Form(form),
            format!("POST {path}"),
            object,
        );
        if idempotent {
            call = call.idempotent();
        }
        let v: Value = self.http.json(call).await?;
        self.decode(v, "POST", object)
    }

    async fn delete_path(&self, base: &Url, path: &str, object: &str) -> Result<(), ProviderError> {
        let url = http::join(base, path);
        let call = Call::write(
            Method::DELETE,
            url,
            Body::Empty,
            format!("DELETE {path}"),
            object,
        );
        gone_is_done(self.http.send(call).await)
    }

    async fn origination_urls(
        &self,
        trunk: &str,
    ) -> Result<Vec<OriginationUrlWire>, ProviderError> {
        self.list_all(
            &self.trunking,
            &format!("/v1/Trunks/{trunk}/OriginationUrls"),
            "origination_urls",
        )
        .await
    }

    /// Numbers and trunks are listed at once; each trunk's origination URLs take one list call
    /// each (they exist nowhere else). Which number sits on which trunk comes from the
    /// numbers' own `trunk_sid` (attaching a number sets it), so that costs no call per trunk.
    async fn refresh_all(&self) -> Result<Vec<LiveObject>, ProviderError> {
        let numbers_path = format!("{}.json", self.numbers_path());
        let (numbers, trunks) = futures::try_join!(
            self.list_all::<IncomingNumber>(&self.api, &numbers_path, "incoming_phone_numbers"),
            self.list_all::<Trunk>(&self.trunking, "/v1/Trunks", "trunks"),
        )?;
        let sids: Vec<String> = trunks.iter().map(|t| t.sid.clone()).collect();
        let urls: Vec<Vec<OriginationUrlWire>> = futures::stream::iter(sids)
            .map(|sid| async move { self.origination_urls(&sid).await })
            .buffered(4)
            .try_collect()
            .await?;
        let mut out = Vec::new();
        for n in &numbers {
            out.push(
                number_object(n)
                    .map_err(|d| undecodable(P, "list incoming_phone_numbers", &n.sid, d))?,
            );
            if let Some(trunk) = n.trunk_sid.as_deref().filter(|t| !t.is_empty()) {
                out.push(trunk_number_object(trunk, &attached(n, trunk)));
            }
        }
        for (t, urls) in trunks.iter().zip(&urls) {
            out.push(trunk_object(t, urls));
        }
        Ok(out)
    }

    async fn read_trunk(&self, sid: &str) -> Result<Option<LiveObject>, ProviderError> {
        let Some(t) = self
            .get::<Trunk>(&self.trunking, &format!("/v1/Trunks/{sid}"), sid)
            .await?
        else {
            return Ok(None);
        };
        let urls = self.origination_urls(sid).await?;
        Ok(Some(trunk_object(&t, &urls)))
    }

    async fn find_trunk(&self, spec: &TwilioTrunkSpec) -> Result<Option<Trunk>, ProviderError> {
        let trunks: Vec<Trunk> = self
            .list_all(&self.trunking, "/v1/Trunks", "trunks")
            .await?;
        let domain = spec.domain_name.to_ascii_lowercase();
        Ok(trunks.into_iter().find(|t| {
            str_or_empty(&t.domain_name).to_ascii_lowercase() == domain
                && (!domain.is_empty() || str_or_empty(&t.friendly_name) == spec.friendly_name)
        }))
    }

    async fn create_origination_url(
        &self,
        trunk: &str,
        u: &OriginationUrl,
        object: &str,
    ) -> Result<(), ProviderError> {
        let path = format!("/v1/Trunks/{trunk}/OriginationUrls");
        post_once(
            self.http.backoff(),
            || {
                self.post::<OriginationUrlWire>(
                    &self.trunking,
                    &path,
                    origination_form(u),
                    object,
                    false,
                )
            },
            || async {
                Ok(self
                    .origination_urls(trunk)
                    .await?
                    .into_iter()
                    .find(|w| w.sip_url == u.sip_url))
            },
        )
        .await
        .map(|_| ())
    }

    /// Makes the trunk's origination URLs match: creates and updates first, deletes last, so
    /// the trunk is never left without a route in between.
    async fn sync_origination_urls(
        &self,
        trunk: &str,
        want: &[OriginationUrl],
        object: &str,
    ) -> Result<(), ProviderError> {
        let current = self.origination_urls(trunk).await?;
        for u in want {
            match current.iter().find(|c| c.sip_url == u.sip_url) {
                None => self.create_origination_url(trunk, u, object).await?,
                Some(c) if origination_url(c) != *u => {
                    let path = format!("/v1/Trunks/{trunk}/OriginationUrls/{}", c.sid);
                    self.post::<Value>(&self.trunking, &path, origination_form(u), object, true)
                        .await?;
                }
                Some(_) => {}
            }
        }
        for c in current
            .iter()
            .filter(|c| !want.iter().any(|u| u.sip_url == c.sip_url))
        {
            self.delete_path(
                &self.trunking,
                &format!("/v1/Trunks/{trunk}/OriginationUrls/{}", c.sid),
                object,
            )
            .await?;
        }
        Ok(())
    }

    async fn create_trunk(
        &self,
        req: &WriteRequest,
        spec: &TwilioTrunkSpec,
    ) -> Result<LiveObject, ProviderError> {
        let object = req.object.as_str();
        let trunk = post_once(
            self.http.backoff(),
            || {
                self.post::<Trunk>(
                    &self.trunking,
                    "/v1/Trunks",
                    trunk_form(spec),
                    object,
                    false,
                )
            },
            || self.find_trunk(spec),
        )
        .await?;
        self.sync_origination_urls(&trunk.sid, &spec.origination_urls, object)
            .await?;
        self.read_trunk(&trunk.sid)
            .await?
            .ok_or_else(|| vanished(object, &trunk.sid))
    }

    /// Attaches a number to a trunk. Twilio holds a number on one trunk at a time and
    /// answers 21223 to an attach while it is on another, so a number on another trunk is
    /// detached from it first; if the attach then fails, it is put back, so a move never
    /// stops with the number on no trunk.
    async fn attach_number(
        &self,
        req: &WriteRequest,
        spec: &TwilioTrunkNumberSpec,
    ) -> Result<LiveObject, ProviderError> {
        let object = req.object.as_str();
        let trunk = live_id(P, &spec.trunk, object)?;
        let number = live_id(P, &spec.number, object)?;
        let number_path = format!("{}/{number}.json", self.numbers_path());
        let previous = self
            .get::<IncomingNumber>(&self.api, &number_path, object)
            .await?
            .and_then(|n| n.trunk_sid)
            .filter(|t| !t.is_empty() && t != trunk);
        if let Some(old) = previous.as_deref() {
            self.http.guard().check(object, [old])?;
            self.delete_path(
                &self.trunking,
                &format!("/v1/Trunks/{old}/PhoneNumbers/{number}"),
                object,
            )
            .await?;
        }
        match self.attach_to(trunk, number, object).await {
            Ok(attached) => Ok(trunk_number_object(trunk, &attached)),
            Err(e) => {
                let Some(old) = previous else { return Err(e) };
                match self.attach_to(&old, number, object).await {
                    Ok(_) => Err(e),
                    Err(back) => Err(ProviderError::Config {
                        provider: P,
                        detail: format!(
                            "{object}: moving {number} to {trunk} failed ({e}), and putting it back on {old} failed too ({back}); it is on no trunk now"
                        ),
                    }),
                }
            }
        }
    }

    /// `POST /v1/Trunks/{trunk}/PhoneNumbers`, looked up again if the answer is lost.
    async fn attach_to(
        &self,
        trunk: &str,
        number: &str,
        object: &str,
    ) -> Result<TrunkNumber, ProviderError> {
        let path = format!("/v1/Trunks/{trunk}/PhoneNumbers");
        let form = vec![("PhoneNumberSid".to_string(), number.to_string())];
        let one_path = format!("{path}/{number}");
        post_once(
            self.http.backoff(),
            || {
                let call_path = path.clone();
                let form = form.clone();
                async move {
                    let url = http::join(&self.trunking, &call_path);
                    let call = Call::write(
                        Method::POST,
                        url,
                        Body::Form(form),
                        format!("POST {call_path}"),
                        object,
                    )
                    .target(number);
                    let v: Value = self.http.json(call).await?;
                    self.decode::<TrunkNumber>(v, "POST", object)
                }
            },
            || self.get::<TrunkNumber>(&self.trunking, &one_path, object),
        )
        .await
    }
}

fn vanished(object: &str, sid: &str) -> ProviderError {
    undecodable(
        P,
        "read after create",
        object,
        format!("{sid} was created but cannot be read back"),
    )
}

#[async_trait]
impl Provider for TwilioProvider {
    fn name(&self) -> ProviderName {
        P
    }

    async fn refresh(&self) -> Result<Vec<LiveObject>, ProviderError> {
        self.refresh_all().await
    }

    async fn read(&self, kind: Kind, id: &str) -> Result<Option<LiveObject>, ProviderError> {
        match kind {
            Kind::TwilioNumber => {
                let path = format!("{}/{id}.json", self.numbers_path());
                match self.get::<IncomingNumber>(&self.api, &path, id).await? {
                    Some(n) => number_object(&n)
                        .map(Some)
                        .map_err(|d| undecodable(P, "get", id, d)),
                    None => Ok(None),
                }
            }
            Kind::TwilioTrunk => self.read_trunk(id).await,
            Kind::TwilioTrunkNumber => {
                let Some((trunk, number)) = split_trunk_number(id) else {
                    return Ok(None);
                };
                let path = format!("/v1/Trunks/{trunk}/PhoneNumbers/{number}");
                Ok(self
                    .get::<TrunkNumber>(&self.trunking, &path, id)
                    .await?
                    .map(|n| trunk_number_object(trunk, &n)))
            }
            _ => Ok(None),
        }
    }

    async fn create(&self, req: &WriteRequest) -> Result<LiveObject, ProviderError> {
        self.http.guard().check_create(req)?;
        let object = req.object.as_str();
        match &req.spec {
            Spec::TwilioNumber(_) => Err(ProviderError::Unsupported {
                provider: P,
                operation: "create".into(),
                object: object.to_string(),
                detail: "cwa never buys Twilio numbers; new lines get Telnyx numbers".into(),
            }),
            Spec::TwilioTrunk(s) => {
                self.writable("create trunk", object)?;
                self.create_trunk(req, s).await
            }
            Spec::TwilioTrunkNumber(s) => {
                self.writable("attach number to trunk", object)?;
                self.attach_number(req, s).await
            }
            other => Err(not_mine(P, other.kind(), "create", object)),
        }
    }

    async fn update(
        &self,
        id: &str,
        _before: &Spec,
        req: &WriteRequest,
    ) -> Result<LiveObject, ProviderError> {
        self.http.guard().check_update(id, req)?;
        let object = req.object.as_str();
        match &req.spec {
            Spec::TwilioNumber(s) => {
                self.writable("update number", object)?;
                let path = format!("{}/{id}.json", self.numbers_path());
                let form = vec![("FriendlyName".to_string(), s.friendly_name.clone())];
                let n: IncomingNumber = self.post(&self.api, &path, form, object, true).await?;
                number_object(&n).map_err(|d| vanished(object, &d))
            }
            Spec::TwilioTrunk(s) => {
                self.writable("update trunk", object)?;
                self.http.guard().check(object, [id])?;
                let _: Value = self
                    .post(&self.trunking, &format!("/v1/Trunks/{id}"), trunk_form(s), object, true)
                    .await?;
                self.sync_origination_urls(id, &s.origination_urls, object).await?;
                self.read_trunk(id).await?.ok_or_else(|| vanished(object, id))
            }
            Spec::TwilioTrunkNumber(_) => Err(ProviderError::Unsupported {
                provider: P,
                operation: "update".into(),
                object: object.to_string(),
                detail: "a number on a trunk has no settings; attach it to the other trunk, then detach it".into(),
            }),
            other => Err(not_mine(P, other.kind(), "update", object)),
        }
    }

    async fn delete(&self, kind: Kind, id: &str) -> Result<(), ProviderError> {
        self.http.guard().check_delete(kind, id)?;
        match kind {
            Kind::TwilioNumber => {
                self.writable("release number", id)?;
                self.delete_path(&self.api, &format!("{}/{id}.json", self.numbers_path()), id)
                    .await
            }
            Kind::TwilioTrunk => {
                self.writable("delete trunk", id)?;
                self.delete_path(&self.trunking, &format!("/v1/Trunks/{id}"), id)
                    .await
            }
            Kind::TwilioTrunkNumber => {
                self.writable("detach number from trunk", id)?;
                let (trunk, number) =
                    split_trunk_number(id).ok_or_else(|| ProviderError::Config {
                        provider: P,
                        detail: format!("`{id}` is not a <trunk sid>/<number sid> id"),
                    })?;
                self.delete_path(
                    &self.trunking,
                    &format!("/v1/Trunks/{trunk}/PhoneNumbers/{number}"),
                    id,
                )
                .await
            }
            other => Err(not_mine(P, other, "delete", id)),
        }
    }

    async fn find_created(&self, req: &WriteRequest) -> Result<Option<LiveObject>, ProviderError> {
        match &req.spec {
            Spec::TwilioTrunk(s) => match self.find_trunk(s).await? {
                Some(t) => self.read_trunk(&t.sid).await,
                None => Ok(None),
            },
            Spec::TwilioTrunkNumber(s) => {
                let trunk = live_id(P, &s.trunk, &req.object)?;
                let number = live_id(P, &s.number, &req.object)?;
                self.read(Kind::TwilioTrunkNumber, &trunk_number_id(trunk, number))
                    .await
            }
            _ => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn writes_refused_without_policy() {
        let env = Env::from_pairs([
            ("TWILIO_ACCOUNT_SID", "AC1"),
            ("TWILIO_AUTH_TOKEN", "tok-secret"),
        ]);
        let p = TwilioProvider::from_env(&env, &ClientOptions::default()).unwrap();
        assert!(!format!("{p:?}").contains("tok-secret"));
        let err = p.delete(Kind::TwilioTrunk, "TK1").await.unwrap_err();
        assert!(err.to_string().contains("twilio_writes"));
    }
}
