//! The providers under faults injected by the sandbox: 5xx and 429 storms, lost answers to
//! creates, hung and cut-off answers, and the hard lock on protected ids.

use std::collections::BTreeSet;
use std::time::Duration;

use cwa::model::ProviderName;
use cwa::model::{
    InboundTrunkSpec, Kind, LiveObject, NumberRef, NumberSpec, Ref, Spec, TelnyxNumberSpec, E164,
};
use cwa::providers::livekit::LivekitProvider;
use cwa::providers::telnyx::TelnyxProvider;
use cwa::providers::{connect, ClientOptions, Env, Provider, ProviderError, WriteRequest};
use cwa::sandbox::{
    read_request_log, FaultKind, FaultRule, RequestLogEntry, Sandbox, SandboxOptions,
};

const FQDN_CONNECTION: &str = "2925081061861885519";
const FALLBACK_NUMBER_ID: &str = "2927180561589994835";
const PROTECTED_TRUNK: &str = "ST_Xa3Bp9aixRFP";

fn fast() -> ClientOptions {
    ClientOptions {
        backoff_base: Duration::from_millis(20),
        order_poll_interval: Duration::from_millis(50),
        max_retries: 8,
        ..ClientOptions::default()
    }
}

async fn sandbox(opts: SandboxOptions) -> Sandbox {
    Sandbox::start(opts).await.unwrap()
}

fn log(dir: &tempfile::TempDir) -> Vec<RequestLogEntry> {
    read_request_log(dir.path()).unwrap()
}

fn ids(objects: &[LiveObject]) -> BTreeSet<(Kind, String)> {
    objects.iter().map(|o| (o.kind(), o.id.clone())).collect()
}

async fn refresh_all(env: &Env, opts: &ClientOptions) -> Vec<LiveObject> {
    let providers = connect(env, opts, &ProviderName::ALL).unwrap();
    let mut all = Vec::new();
    for name in ProviderName::ALL {
        all.extend(providers.get(name).unwrap().refresh().await.unwrap());
    }
    all
}

#[tokio::test]
async fn full_refresh_succeeds_through_5xx_and_429_with_retry_after() {
    let clean_dir = tempfile::tempdir().unwrap();
    let clean = sandbox(SandboxOptions::new(clean_dir.path(), "runbook")).await;
    let expected = refresh_all(&Env::from_pairs(clean.env()), &fast()).await;

    let dir = tempfile::tempdir().unwrap();
    let mut opts = SandboxOptions::new(dir.path(), "runbook");
    opts.fault_rate = 0.2;
    opts.rate_limit = Some(3.0);
    opts.seed = 11;
    let faulty = sandbox(opts).await;
    let got = refresh_all(&Env::from_pairs(faulty.env()), &fast()).await;

    assert_eq!(ids(&got), ids(&expected));
    let entries = log(&dir);
    assert!(
        entries.iter().any(|e| e.status == 429),
        "some answers were 429"
    );
    assert!(
        entries.iter().any(|e| e.status >= 500),
        "some answers were 5xx"
    );
}

#[tokio::test]
async fn faults_set_at_runtime_through_the_control_route_are_survived() {
    let dir = tempfile::tempdir().unwrap();
    let sb = sandbox(SandboxOptions::new(dir.path(), "runbook")).await;
    let env = Env::from_pairs(sb.env());
    let expected = refresh_all(&env, &fast()).await;
    let config = serde_json::json!({
        "error_rate": 0.2,
        "rate_limit": 3.0,
        "seed": 5,
        "rules": [
            {"kind": "malformed", "method": "GET", "path_prefix": "/v2/fqdn_connections", "count": 1},
            {"kind": "hang", "method": "GET", "path_prefix": "/v1/Trunks", "count": 1, "seconds": 3}
        ]
    });
    let status = reqwest::Client::new()
        .post(format!("{}/sandbox/faults", sb.base_url()))
        .json(&config)
        .send()
        .await
        .unwrap()
        .status();
    assert!(status.is_success());
    let opts = ClientOptions {
        timeout: Duration::from_secs(1),
        ..fast()
    };
    let before = log(&dir).len();
    let got = refresh_all(&env, &opts).await;
    assert_eq!(ids(&got), ids(&expected));
    let during: Vec<RequestLogEntry> = log(&dir).split_off(before);
    let connection_lists = during
        .iter()
        .filter(|e| e.method == "GET" && e.path == "/v2/fqdn_connections")
        .count();
    assert!(connection_lists >= 2, "the cut-off answer was asked again");
    let used: Vec<Option<u32>> = sb.faults().rules.iter().map(|r| r.count).collect();
    assert_eq!(
        used,
        vec![Some(0), Some(0)],
        "both the cut-off answer and the hang happened"
    );
}

fn auto_number() -> TelnyxNumberSpec {
    TelnyxNumberSpec {
        number: NumberSpec::Auto {
            country: "US".into(),
            area_code: "414".into(),
            endings: ["0000", "5000", "4000"].map(String::from).to_vec(),
        },
        connection: Some(Ref::Id(FQDN_CONNECTION.into())),
        tags: vec![],
        settings: Default::default(),
    }
}

#[tokio::test]
async fn lost_answer_to_a_number_order_finds_the_order_instead_of_buying_twice() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = SandboxOptions::new(dir.path(), "runbook");
    opts.faults = vec![FaultRule {
        kind: FaultKind::LostResponse,
        method: Some("POST".into()),
        path_prefix: "/v2/number_orders".into(),
        count: Some(1),
        probability: None,
        seconds: None,
        status: None,
    }];
    let sb = sandbox(opts).await;
    let telnyx = TelnyxProvider::from_env(&Env::from_pairs(sb.env()), &fast()).unwrap();
    let req = WriteRequest {
        object: "telnyx_number.lost".into(),
        spec: Spec::TelnyxNumber(auto_number()),
        reference: "cwa-lost-answer-1".into(),
    };
    let made = telnyx.create(&req).await.unwrap();
    let Spec::TelnyxNumber(n) = &made.spec else {
        panic!()
    };
    assert!(n.number.fixed().is_some());
    assert_eq!(n.connection, Some(Ref::Id(FQDN_CONNECTION.into())));

    let posts: Vec<RequestLogEntry> = log(&dir)
        .into_iter()
        .filter(|e| e.method == "POST" && e.path == "/v2/number_orders")
        .collect();
    assert_eq!(posts.len(), 1, "ordered exactly once: {posts:?}");
    assert_eq!(posts[0].status, 0, "the one order's answer was lost");
    let world = sb.world();
    let world = world.lock().unwrap();
    let orders = world
        .telnyx
        .number_orders
        .values()
        .filter(|o| o["customer_reference"] == "cwa-lost-answer-1")
        .count();
    assert_eq!(orders, 1);
}

#[tokio::test]
async fn lost_answer_to_a_trunk_create_finds_the_trunk() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = SandboxOptions::new(dir.path(), "runbook");
    opts.faults = vec![FaultRule {
        kind: FaultKind::LostResponse,
        method: None,
        path_prefix: "/twirp/livekit.SIP/CreateSIPInboundTrunk".into(),
        count: Some(1),
        probability: None,
        seconds: None,
        status: None,
    }];
    let sb = sandbox(opts).await;
    let livekit = LivekitProvider::from_env(&Env::from_pairs(sb.env()), &fast()).unwrap();
    let spec = InboundTrunkSpec {
        name: "Lost Answer Church".into(),
        metadata: String::new(),
        numbers: vec![NumberRef::Number(E164::parse("+14147215000").unwrap())],
        allowed_addresses: vec![],
        allowed_numbers: vec![],
        auth_username: String::new(),
        auth_password: None,
        krisp_enabled: true,
        preserved: Default::default(),
    };
    let req = WriteRequest {
        object: "livekit_inbound_trunk.lost".into(),
        spec: Spec::LivekitInboundTrunk(spec.clone()),
        reference: String::new(),
    };
    let made = livekit.create(&req).await.unwrap();
    assert_eq!(made.spec, Spec::LivekitInboundTrunk(spec));
    let creates = log(&dir)
        .into_iter()
        .filter(|e| e.path.ends_with("/CreateSIPInboundTrunk"))
        .count();
    assert_eq!(creates, 1);
}

#[tokio::test]
async fn protected_ids_are_refused_before_any_request() {
    let dir = tempfile::tempdir().unwrap();
    let sb = sandbox(SandboxOptions::new(dir.path(), "runbook")).await;
    let env = Env::from_pairs(sb.env());
    let main_trunk_sid = {
        let providers = connect(&env, &fast(), &[ProviderName::Twilio]).unwrap();
        let objects = providers.twilio.unwrap().refresh().await.unwrap();
        objects
            .into_iter()
            .find(|o| matches!(&o.spec, Spec::TwilioTrunk(t) if t.domain_name == "churchwiseai.pstn.twilio.com"))
            .unwrap()
            .id
    };
    let opts = ClientOptions {
        protected_ids: vec![
            PROTECTED_TRUNK.into(),
            FQDN_CONNECTION.into(),
            FALLBACK_NUMBER_ID.into(),
            main_trunk_sid.clone(),
        ],
        twilio_writes: true,
        ..fast()
    };
    let providers = connect(&env, &opts, &ProviderName::ALL).unwrap();
    let lk = providers.livekit.clone().unwrap();
    let tx = providers.telnyx.clone().unwrap();
    let tw = providers.twilio.clone().unwrap();
    let trunk = lk
        .read(Kind::LivekitInboundTrunk, PROTECTED_TRUNK)
        .await
        .unwrap()
        .unwrap();
    let conn = tx
        .read(Kind::TelnyxFqdnConnection, FQDN_CONNECTION)
        .await
        .unwrap()
        .unwrap();
    let number = tx
        .read(Kind::TelnyxNumber, FALLBACK_NUMBER_ID)
        .await
        .unwrap()
        .unwrap();
    let tw_trunk = tw
        .read(Kind::TwilioTrunk, &main_trunk_sid)
        .await
        .unwrap()
        .unwrap();
    let before = log(&dir).len();

    let mut refusals: Vec<ProviderError> = Vec::new();
    let req = |o: &LiveObject| WriteRequest {
        object: format!("{}.x", o.kind()),
        spec: o.spec.clone(),
        reference: String::new(),
    };
    refusals.push(
        lk.update(PROTECTED_TRUNK, &trunk.spec, &req(&trunk))
            .await
            .unwrap_err(),
    );
    refusals.push(
        lk.delete(Kind::LivekitInboundTrunk, PROTECTED_TRUNK)
            .await
            .unwrap_err(),
    );
    refusals.push(
        tx.update(FQDN_CONNECTION, &conn.spec, &req(&conn))
            .await
            .unwrap_err(),
    );
    refusals.push(
        tx.delete(Kind::TelnyxFqdnConnection, FQDN_CONNECTION)
            .await
            .unwrap_err(),
    );
    refusals.push(
        tx.update(FALLBACK_NUMBER_ID, &number.spec, &req(&number))
            .await
            .unwrap_err(),
    );
    refusals.push(
        tx.delete(Kind::TelnyxNumber, FALLBACK_NUMBER_ID)
            .await
            .unwrap_err(),
    );
    refusals.push(
        tw.update(&main_trunk_sid, &tw_trunk.spec, &req(&tw_trunk))
            .await
            .unwrap_err(),
    );
    refusals.push(
        tw.delete(Kind::TwilioTrunk, &main_trunk_sid)
            .await
            .unwrap_err(),
    );
    for e in &refusals {
        assert!(matches!(e, ProviderError::Protected { .. }), "{e}");
    }
    assert_eq!(log(&dir).len(), before, "no request reached the sandbox");
}

#[tokio::test]
async fn a_number_protected_by_its_e164_is_never_written() {
    let dir = tempfile::tempdir().unwrap();
    let sb = sandbox(SandboxOptions::new(dir.path(), "runbook")).await;
    let opts = ClientOptions {
        protected_ids: vec!["+14697288326".into()],
        ..fast()
    };
    let telnyx = TelnyxProvider::from_env(&Env::from_pairs(sb.env()), &opts).unwrap();
    let err = telnyx
        .delete(Kind::TelnyxNumber, FALLBACK_NUMBER_ID)
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::Protected { .. }), "{err}");
    assert!(
        log(&dir).iter().all(|e| !e.write),
        "no write reached the sandbox"
    );
    assert!(telnyx
        .read(Kind::TelnyxNumber, FALLBACK_NUMBER_ID)
        .await
        .unwrap()
        .is_some());
}

#[tokio::test]
async fn bad_credentials_are_auth_errors_that_name_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let sb = sandbox(SandboxOptions::new(dir.path(), "runbook")).await;
    let wrong = "wrong-secret-value-1234567890";
    let env = Env::from_pairs(sb.env().into_iter().map(|(k, v)| match k.as_str() {
        "TELNYX_API_KEY" | "LIVEKIT_API_SECRET" | "TWILIO_AUTH_TOKEN" => (k, wrong.to_string()),
        _ => (k, v),
    }));
    let providers = connect(&env, &fast(), &ProviderName::ALL).unwrap();
    let checks = [
        (
            ProviderName::Telnyx,
            Kind::TelnyxNumber,
            FALLBACK_NUMBER_ID,
            "10009",
        ),
        (
            ProviderName::Livekit,
            Kind::LivekitInboundTrunk,
            PROTECTED_TRUNK,
            "",
        ),
        (ProviderName::Twilio, Kind::TwilioTrunk, "TK0", "20003"),
    ];
    for (name, kind, id, code) in checks {
        let err = providers
            .get(name)
            .unwrap()
            .read(kind, id)
            .await
            .unwrap_err();
        let shown = format!("{err} {err:?}");
        assert!(
            matches!(err, ProviderError::Api { status: 401, .. }),
            "{name}: {shown}"
        );
        assert!(shown.contains(code), "{name}: {shown}");
        assert!(!shown.contains(wrong), "{name} leaks the secret: {shown}");
    }
    let unauthorized = log(&dir).iter().filter(|e| e.status == 401).count();
    assert_eq!(unauthorized, 3, "an auth failure is not retried");
}

#[tokio::test]
async fn creates_refused_with_429_are_retried_and_made_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = SandboxOptions::new(dir.path(), "runbook");
    opts.rate_limit = Some(1.0);
    let sb = sandbox(opts).await;
    let client = ClientOptions {
        rate_limit_rps: cwa::providers::PerProvider {
            telnyx: 0.0,
            livekit: 0.0,
            twilio: 0.0,
        },
        ..fast()
    };
    let telnyx = TelnyxProvider::from_env(&Env::from_pairs(sb.env()), &client).unwrap();
    let names = ["CWA A", "CWA B", "CWA C"];
    let creates = names.map(|name| {
        let telnyx = &telnyx;
        async move { telnyx.create(&crate::pacing::voice_profile(name)).await }
    });
    let made = futures::future::join_all(creates).await;
    assert!(made.iter().all(Result::is_ok), "{made:?}");
    let entries = log(&dir);
    assert!(
        entries.iter().any(|e| e.status == 429),
        "the sandbox refused some"
    );
    let world = sb.world();
    let world = world.lock().unwrap();
    for name in names {
        let copies = world
            .telnyx
            .outbound_voice_profiles
            .values()
            .filter(|p| p["name"] == name)
            .count();
        assert_eq!(copies, 1, "{name}");
    }
}
