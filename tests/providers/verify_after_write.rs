//! Verify-after-write: a write the provider answers 200 but silently ignores is caught.
//!
//! The runbooks' incident: a credential connection PATCHed with a flat
//! `outbound_voice_profile_id` returns 200 and changes nothing (only the nested `outbound`
//! object works). cwa's own client sends the nested form, so to prove the executor would catch
//! the silent failure this test wraps the real Telnyx client in one that sends the flat form,
//! as a careless client would, over real HTTP to the sandbox, which reproduces the quirk.

use std::sync::Arc;

use crate::common::sandbox::TestSandbox;
use async_trait::async_trait;
use cwa::apply::{ApplyOptions, Executor};
use cwa::model::{Kind, LiveObject, ProviderName, SecretSource, Spec};
use cwa::plan::{Action, PlanInput, PlanOptions};
use cwa::providers::{self, ClientOptions, Env, Provider, ProviderError, WriteRequest};
use cwa::session::refresh;
use cwa::state::StateStore;

/// The real Telnyx client, except that it links a voice profile with a flat PATCH.
struct FlatPatchTelnyx {
    inner: Arc<dyn Provider>,
    sb_base: String,
}

#[async_trait]
impl Provider for FlatPatchTelnyx {
    fn name(&self) -> ProviderName {
        ProviderName::Telnyx
    }

    async fn refresh(&self) -> Result<Vec<LiveObject>, ProviderError> {
        self.inner.refresh().await
    }

    async fn read(&self, kind: Kind, id: &str) -> Result<Option<LiveObject>, ProviderError> {
        self.inner.read(kind, id).await
    }

    async fn create(&self, req: &WriteRequest) -> Result<LiveObject, ProviderError> {
        self.inner.create(req).await
    }

    async fn update(
        &self,
        id: &str,
        before: &Spec,
        req: &WriteRequest,
    ) -> Result<LiveObject, ProviderError> {
        let Spec::TelnyxCredentialConnection(spec) = &req.spec else {
            return self.inner.update(id, before, req).await;
        };
        let ovp = spec
            .outbound_voice_profile
            .as_ref()
            .and_then(|r| r.id())
            .unwrap_or_default();
        let answer = reqwest::Client::new()
            .patch(format!("{}/v2/credential_connections/{id}", self.sb_base))
            .bearer_auth(cwa::sandbox::TELNYX_API_KEY)
            .json(&serde_json::json!({ "outbound_voice_profile_id": ovp }))
            .send()
            .await
            .expect("the sandbox answers");
        assert_eq!(answer.status(), 200, "the flat PATCH is accepted with 200");
        Ok(self
            .inner
            .read(Kind::TelnyxCredentialConnection, id)
            .await?
            .expect("still there"))
    }

    async fn delete(&self, kind: Kind, id: &str) -> Result<(), ProviderError> {
        self.inner.delete(kind, id).await
    }

    async fn find_created(&self, req: &WriteRequest) -> Result<Option<LiveObject>, ProviderError> {
        self.inner.find_created(req).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silently_ignored_write_is_an_error_naming_the_field() {
    // Lenient: strict mode would refuse the flat key this test sends on purpose; real Telnyx
    // accepts it with 200 and ignores it, which is what is reproduced here.
    let sb = TestSandbox::start_with("runbook", |o| o.strict = false).await;
    let env = Env::from_pairs(sb.sandbox.env());
    let secrets = SecretSource::with_overrides(sb.sandbox.env());
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/lines.toml")).unwrap();
    let loaded = cwa::config::parse(std::path::Path::new("lines.toml"), &text).unwrap();
    let mut real = providers::connect(&env, &ClientOptions::default(), &ProviderName::ALL).unwrap();
    real.telnyx = Some(Arc::new(FlatPatchTelnyx {
        inner: real.telnyx.clone().unwrap(),
        sb_base: sb.sandbox.base_url(),
    }));
    let dir = tempfile::tempdir().unwrap();
    let store = StateStore::new(dir.path());
    let state = store.load().unwrap();
    let live = refresh(&real).await.unwrap();
    let plan = cwa::plan::compute(&PlanInput {
        desired: &loaded.desired,
        state: &state,
        live: &live,
        refreshed: true,
        config_fingerprint: String::new(),
        options: PlanOptions::default(),
        secrets: &secrets,
    });
    let change = plan
        .changes
        .iter()
        .find(|c| c.address.to_string() == "telnyx_credential_connection.outbound")
        .unwrap();
    assert_eq!(change.action, Action::Adopt);
    assert_eq!(change.fields[0].path, "outbound_voice_profile");

    let executor = Executor::new(
        real,
        store.clone(),
        state,
        secrets,
        Vec::new(),
        ApplyOptions {
            parallelism: 4,
            rollback_on_failure: false,
        },
    );
    let report = executor.execute(&plan).await;
    assert!(!report.succeeded());
    let failed = report
        .failed
        .iter()
        .find(|o| o.address.to_string() == "telnyx_credential_connection.outbound")
        .expect("the ignored write fails the change");
    let error = failed.error.clone().unwrap_or_default();
    assert!(
        error.contains("did not perform it") && error.contains("outbound_voice_profile"),
        "{error}"
    );
    assert!(
        !error.contains("IgnoredWrite {"),
        "words, not a Debug dump: {error}"
    );
    assert!(!failed.rerun_helps, "a rerun sends the same ignored write");

    // State records what is really live (no profile), so the next plan shows the change again.
    let saved = store.load().unwrap();
    let Spec::TelnyxCredentialConnection(c) =
        &saved.resources["telnyx_credential_connection.outbound"].spec
    else {
        panic!("wrong kind in state");
    };
    assert_eq!(c.outbound_voice_profile, None);
}
