//! The LiveKit client (official SIPClient plus cwa's own Twirp calls) against the sandbox
//! over real loopback HTTP: refresh of the runbook world, every write cwa uses read back.

use std::collections::BTreeMap;
use std::time::Duration;

use cwa::model::{
    fingerprint, AgentDispatch, DispatchKind, DispatchRuleSpec, InboundTrunkSpec, Kind, LiveObject,
    NumberRef, OutboundTrunkSpec, Ref, SecretRef, SecretValue, Spec, E164,
};
use cwa::providers::livekit::LivekitProvider;
use cwa::providers::{ClientOptions, Env, Provider, WriteRequest};
use cwa::sandbox::{
    read_request_log, Sandbox, SandboxOptions, LIVEKIT_API_KEY, LIVEKIT_API_SECRET,
};
use livekit_api::access_token::{AccessToken, SIPGrants};
use serde_json::{json, Value};

const AGENT: &str = "churchwiseai-voice";

struct World {
    dir: tempfile::TempDir,
    sandbox: Sandbox,
    livekit: LivekitProvider,
}

async fn start(world: &str) -> World {
    start_with(world, |_| {}).await
}

async fn start_with(world: &str, adjust: impl FnOnce(&mut cwa::sandbox::World)) -> World {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = Sandbox::start(SandboxOptions::new(dir.path(), world))
        .await
        .unwrap();
    adjust(&mut sandbox.world().lock().unwrap());
    let env = Env::from_pairs(sandbox.env());
    let opts = ClientOptions {
        backoff_base: Duration::from_millis(20),
        ..ClientOptions::default()
    };
    let livekit = LivekitProvider::from_env(&env, &opts).unwrap();
    World {
        dir,
        sandbox,
        livekit,
    }
}

impl World {
    /// A raw Twirp JSON call with a token carrying `sip.admin`, as `lk` would make it.
    async fn twirp_json(&self, method: &str, body: Value) -> Value {
        let token = AccessToken::with_api_key(LIVEKIT_API_KEY, LIVEKIT_API_SECRET)
            .with_sip_grants(SIPGrants {
                admin: true,
                call: false,
            })
            .to_jwt()
            .unwrap();
        let res = reqwest::Client::new()
            .post(format!(
                "{}/twirp/livekit.SIP/{method}",
                self.sandbox.base_url()
            ))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 200, "{method}");
        res.json().await.unwrap()
    }

    /// Gives the object `id` fields a newer LiveKit has and livekit-protocol 0.8.2 lacks.
    fn inject_newer_fields(&self, id: &str) {
        let fields = json!({"future_setting": "kept", "future_limits": {"max_calls": 3}});
        self.sandbox
            .world()
            .lock()
            .unwrap()
            .livekit
            .newer_fields
            .insert(id.to_string(), fields.as_object().unwrap().clone());
    }

    /// The object as LiveKit answers it in JSON.
    async fn wire(&self, kind: Kind, id: &str) -> Value {
        match kind {
            Kind::LivekitInboundTrunk => self
                .twirp_json("GetSIPInboundTrunk", json!({"sip_trunk_id": id}))
                .await["trunk"]
                .clone(),
            Kind::LivekitOutboundTrunk => self
                .twirp_json("GetSIPOutboundTrunk", json!({"sip_trunk_id": id}))
                .await["trunk"]
                .clone(),
            _ => self
                .twirp_json("ListSIPDispatchRule", json!({"dispatch_rule_ids": [id]}))
                .await["items"][0]
                .clone(),
        }
    }
}

fn find<'a>(objects: &'a [LiveObject], kind: Kind, id: &str) -> &'a LiveObject {
    objects
        .iter()
        .find(|o| o.kind() == kind && o.id == id)
        .unwrap_or_else(|| panic!("{kind} {id} not in the refresh"))
}

fn num(s: &str) -> NumberRef {
    NumberRef::Number(E164::parse(s).unwrap())
}

fn write(object: &str, spec: Spec) -> WriteRequest {
    WriteRequest {
        object: object.to_string(),
        spec,
        reference: String::new(),
    }
}

fn agent(metadata: &str) -> AgentDispatch {
    AgentDispatch {
        agent_name: AGENT.into(),
        metadata: metadata.into(),
    }
}

#[tokio::test]
async fn refresh_reads_the_runbook_world_normalized() {
    let w = start("runbook").await;
    let objects = w.livekit.refresh().await.unwrap();

    let Spec::LivekitInboundTrunk(main) =
        &find(&objects, Kind::LivekitInboundTrunk, "ST_Xa3Bp9aixRFP").spec
    else {
        panic!()
    };
    assert_eq!(
        main.numbers,
        vec![
            num("+13658254095"),
            num("+14696152221"),
            num("+18886030316")
        ],
        "numbers sorted, E.164"
    );
    assert_eq!(main.auth_username, "");
    assert_eq!(main.auth_password, None);
    assert!(main.krisp_enabled);

    let Spec::LivekitOutboundTrunk(out) =
        &find(&objects, Kind::LivekitOutboundTrunk, "ST_X3n9jxR55VrB").spec
    else {
        panic!()
    };
    assert_eq!(out.address, "sip.telnyx.com");
    assert_eq!(out.transport, "tcp");
    assert_eq!(out.numbers, vec![num("+12268830000")]);
    assert_eq!(out.auth_username, "cwaoutbound");
    assert_eq!(
        out.auth_password,
        Some(SecretRef::Fingerprint(fingerprint(
            "sandbox-outbound-secret"
        )))
    );
    assert!(out.headers.is_empty(), "the Day 3 header is not set yet");
    assert_eq!(out.destination_country, "US");

    let Spec::LivekitDispatchRule(main_rule) =
        &find(&objects, Kind::LivekitDispatchRule, "SDR_cYzx7sAkUTvx").spec
    else {
        panic!()
    };
    assert_eq!(main_rule.trunks, vec![Ref::Id("ST_Xa3Bp9aixRFP".into())]);
    assert_eq!(
        main_rule.rule,
        DispatchKind::Individual {
            room_prefix: "call-".into(),
            pin: String::new()
        }
    );
    assert_eq!(main_rule.agents, vec![agent(r#"{"source": "phone"}"#)]);

    let Spec::LivekitDispatchRule(broken) =
        &find(&objects, Kind::LivekitDispatchRule, "SDR_9vRb2XcLeY7s").spec
    else {
        panic!()
    };
    assert!(
        broken.agents.is_empty(),
        "the deprecated-fields rule has no agents"
    );
    assert_eq!(
        objects
            .iter()
            .filter(|o| o.kind() == Kind::LivekitInboundTrunk)
            .count(),
        4
    );
}

#[tokio::test]
async fn read_matches_refresh_and_is_none_when_missing() {
    let w = start("runbook").await;
    let objects = w.livekit.refresh().await.unwrap();
    for o in &objects {
        let read = w.livekit.read(o.kind(), &o.id).await.unwrap().unwrap();
        assert_eq!(read.spec, o.spec, "{} {}", o.kind(), o.id);
    }
    assert!(w
        .livekit
        .read(Kind::LivekitInboundTrunk, "ST_doesnotexist")
        .await
        .unwrap()
        .is_none());
    assert!(w
        .livekit
        .read(Kind::LivekitDispatchRule, "SDR_doesnotexist")
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn dispatch_rule_update_sets_agents_through_the_wrapper_and_keeps_them() {
    let w = start("runbook").await;
    let before = w
        .livekit
        .read(Kind::LivekitDispatchRule, "SDR_9vRb2XcLeY7s")
        .await
        .unwrap()
        .unwrap();
    let Spec::LivekitDispatchRule(mut spec) = before.spec.clone() else {
        panic!()
    };
    spec.agents = vec![agent(r#"{"source": "phone"}"#)];
    let req = write(
        "livekit_dispatch_rule.melvindale",
        Spec::LivekitDispatchRule(spec.clone()),
    );
    w.livekit
        .update("SDR_9vRb2XcLeY7s", &before.spec, &req)
        .await
        .unwrap();
    let read = w
        .livekit
        .read(Kind::LivekitDispatchRule, "SDR_9vRb2XcLeY7s")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.spec, Spec::LivekitDispatchRule(spec.clone()));

    let mut renamed = spec.clone();
    renamed.name = "Melvindale Dispatch".into();
    let req = write(
        "livekit_dispatch_rule.melvindale",
        Spec::LivekitDispatchRule(renamed.clone()),
    );
    w.livekit
        .update("SDR_9vRb2XcLeY7s", &read.spec, &req)
        .await
        .unwrap();
    let read = w
        .livekit
        .read(Kind::LivekitDispatchRule, "SDR_9vRb2XcLeY7s")
        .await
        .unwrap()
        .unwrap();
    let Spec::LivekitDispatchRule(got) = read.spec else {
        panic!()
    };
    assert_eq!(got.name, "Melvindale Dispatch");
    assert_eq!(got.agents, spec.agents, "a later update keeps the agents");
}

#[tokio::test]
async fn inbound_trunk_auth_is_cleared_in_place() {
    let w = start("runbook").await;
    let id = "ST_LWgmiBSwTk7P";
    let before = w
        .livekit
        .read(Kind::LivekitInboundTrunk, id)
        .await
        .unwrap()
        .unwrap();
    let Spec::LivekitInboundTrunk(mut spec) = before.spec.clone() else {
        panic!()
    };
    spec.auth_username = "churchwiseai".into();
    spec.auth_password = Some(SecretRef::Value(SecretValue::new("wrong-on-purpose")));
    let req = write(
        "livekit_inbound_trunk.medhanialem",
        Spec::LivekitInboundTrunk(spec.clone()),
    );
    w.livekit.update(id, &before.spec, &req).await.unwrap();
    let with_auth = w
        .livekit
        .read(Kind::LivekitInboundTrunk, id)
        .await
        .unwrap()
        .unwrap();
    let Spec::LivekitInboundTrunk(got) = &with_auth.spec else {
        panic!()
    };
    assert_eq!(got.auth_username, "churchwiseai");
    assert_eq!(
        got.auth_password,
        Some(SecretRef::Fingerprint(fingerprint("wrong-on-purpose")))
    );

    spec.auth_username = String::new();
    spec.auth_password = None;
    let req = write(
        "livekit_inbound_trunk.medhanialem",
        Spec::LivekitInboundTrunk(spec.clone()),
    );
    w.livekit.update(id, &with_auth.spec, &req).await.unwrap();
    let cleared = w
        .livekit
        .read(Kind::LivekitInboundTrunk, id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(cleared.spec, Spec::LivekitInboundTrunk(spec));
    assert_eq!(
        cleared.id, id,
        "the same trunk, never deleted and made again"
    );
    let log = read_request_log(w.dir.path()).unwrap();
    assert!(
        !log.iter()
            .any(|e| e.path.ends_with("/DeleteSIPTrunk")
                || e.path.ends_with("/CreateSIPInboundTrunk")),
        "trunk updates are in place"
    );
}

#[tokio::test]
async fn outbound_trunk_header_is_set_and_other_fields_kept() {
    let w = start("runbook").await;
    let id = "ST_X3n9jxR55VrB";
    let before = w
        .livekit
        .read(Kind::LivekitOutboundTrunk, id)
        .await
        .unwrap()
        .unwrap();
    let Spec::LivekitOutboundTrunk(mut spec) = before.spec.clone() else {
        panic!()
    };
    spec.headers = BTreeMap::from([("X-Telnyx-Username".to_string(), "cwaoutbound".to_string())]);
    let req = write(
        "livekit_outbound_trunk.telnyx",
        Spec::LivekitOutboundTrunk(spec.clone()),
    );
    w.livekit.update(id, &before.spec, &req).await.unwrap();
    let read = w
        .livekit
        .read(Kind::LivekitOutboundTrunk, id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.spec, Spec::LivekitOutboundTrunk(spec));
}

#[tokio::test]
async fn line_trunk_and_rule_are_created_found_and_deleted() {
    let w = start("runbook").await;
    let trunk = InboundTrunkSpec {
        name: "Grace Chapel".into(),
        metadata: String::new(),
        numbers: vec![num("+14147210000")],
        allowed_addresses: vec![],
        allowed_numbers: vec![],
        auth_username: String::new(),
        auth_password: None,
        krisp_enabled: true,
        preserved: Default::default(),
    };
    let req = write(
        "livekit_inbound_trunk.grace",
        Spec::LivekitInboundTrunk(trunk.clone()),
    );
    let made = w.livekit.create(&req).await.unwrap();
    assert_eq!(made.spec, Spec::LivekitInboundTrunk(trunk));
    assert_eq!(
        w.livekit.find_created(&req).await.unwrap().map(|o| o.id),
        Some(made.id.clone())
    );

    let rule = DispatchRuleSpec {
        name: "Grace Chapel Dispatch".into(),
        metadata: r#"{"church_id":"c0ffee"}"#.into(),
        trunks: vec![Ref::Id(made.id.clone())],
        rule: DispatchKind::Individual {
            room_prefix: "call-".into(),
            pin: String::new(),
        },
        agents: vec![agent(r#"{"source": "phone"}"#)],
        hide_phone_number: false,
        krisp_enabled: false,
        preserved: Default::default(),
    };
    let rule_req = write(
        "livekit_dispatch_rule.grace",
        Spec::LivekitDispatchRule(rule.clone()),
    );
    let made_rule = w.livekit.create(&rule_req).await.unwrap();
    let read = w
        .livekit
        .read(Kind::LivekitDispatchRule, &made_rule.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.spec, Spec::LivekitDispatchRule(rule));
    assert_eq!(
        w.livekit
            .find_created(&rule_req)
            .await
            .unwrap()
            .map(|o| o.id),
        Some(made_rule.id.clone())
    );

    w.livekit
        .delete(Kind::LivekitDispatchRule, &made_rule.id)
        .await
        .unwrap();
    w.livekit
        .delete(Kind::LivekitInboundTrunk, &made.id)
        .await
        .unwrap();
    assert!(w
        .livekit
        .read(Kind::LivekitDispatchRule, &made_rule.id)
        .await
        .unwrap()
        .is_none());
    assert!(w
        .livekit
        .read(Kind::LivekitInboundTrunk, &made.id)
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn outbound_trunk_create_keeps_destination_country_and_delete_removes_it() {
    let w = start("runbook").await;
    let spec = OutboundTrunkSpec {
        name: "Telnyx Outbound CA".into(),
        metadata: String::new(),
        address: "sip.telnyx.com".into(),
        transport: "tls".into(),
        numbers: vec![num("+12268830001")],
        auth_username: "cwaoutbound".into(),
        auth_password: Some(SecretRef::Value(SecretValue::new("outbound-test-pw"))),
        headers: BTreeMap::from([("X-Telnyx-Username".to_string(), "cwaoutbound".to_string())]),
        destination_country: "CA".into(),
        preserved: Default::default(),
    };
    let made = w
        .livekit
        .create(&write(
            "livekit_outbound_trunk.ca",
            Spec::LivekitOutboundTrunk(spec.clone()),
        ))
        .await
        .unwrap();
    let read = w
        .livekit
        .read(Kind::LivekitOutboundTrunk, &made.id)
        .await
        .unwrap()
        .unwrap();
    let Spec::LivekitOutboundTrunk(got) = read.spec else {
        panic!()
    };
    assert_eq!(got.destination_country, "CA");
    assert_eq!(got.transport, "tls");
    assert_eq!(got.headers, spec.headers);
    assert_eq!(
        got.auth_password,
        Some(SecretRef::Fingerprint(fingerprint("outbound-test-pw")))
    );
    w.livekit
        .delete(Kind::LivekitOutboundTrunk, &made.id)
        .await
        .unwrap();
    assert!(w
        .livekit
        .read(Kind::LivekitOutboundTrunk, &made.id)
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn refresh_of_10000_lines_is_one_list_call_per_kind() {
    let w = start("synthetic:10000").await;
    let objects = w.livekit.refresh().await.unwrap();
    let count = |k: Kind| objects.iter().filter(|o| o.kind() == k).count();
    assert!(count(Kind::LivekitInboundTrunk) >= 10_000);
    assert!(count(Kind::LivekitDispatchRule) >= 10_000);
    let log = read_request_log(w.dir.path()).unwrap();
    assert_eq!(log.len(), 3, "{log:?}");
    assert!(log
        .iter()
        .all(|e| e.path.starts_with("/twirp/livekit.SIP/List")));
}

/// One change cwa can make to an object of the runbook world.
type Change = fn(&mut Spec);

fn rename(spec: &mut Spec) {
    match spec {
        Spec::LivekitInboundTrunk(s) => s.name.push_str(" (renamed)"),
        Spec::LivekitOutboundTrunk(s) => s.name.push_str(" (renamed)"),
        Spec::LivekitDispatchRule(s) => s.name.push_str(" (renamed)"),
        _ => unreachable!(),
    }
}

/// A change the `update` action cannot express: krisp, headers, agents.
fn replace_only(spec: &mut Spec) {
    match spec {
        Spec::LivekitInboundTrunk(s) => s.krisp_enabled = !s.krisp_enabled,
        Spec::LivekitOutboundTrunk(s) => {
            s.headers
                .insert("X-Telnyx-Username".into(), "cwaoutbound".into());
        }
        Spec::LivekitDispatchRule(s) => s.agents = vec![agent(r#"{"source": "phone"}"#)],
        _ => unreachable!(),
    }
}

#[tokio::test]
async fn every_update_keeps_the_fields_this_build_does_not_know() {
    let w = start("runbook").await;
    let objects = [
        (Kind::LivekitInboundTrunk, "ST_3KMJ5YEjF2fF"),
        (Kind::LivekitOutboundTrunk, "ST_X3n9jxR55VrB"),
        (Kind::LivekitDispatchRule, "SDR_9vRb2XcLeY7s"),
    ];
    let changes: [(&str, Change); 2] = [("update", rename), ("replace", replace_only)];
    for (kind, id) in objects {
        for (how, change) in changes {
            w.inject_newer_fields(id);
            let before = w.livekit.read(kind, id).await.unwrap().unwrap();
            let mut spec = before.spec.clone();
            change(&mut spec);
            let req = write(&format!("{kind}.x"), spec.clone());
            let made = w.livekit.update(id, &before.spec, &req).await.unwrap();
            assert_eq!(made.spec, spec, "{kind} {id} ({how}) reads back as written");
            let wire = w.wire(kind, id).await;
            assert_eq!(
                wire["future_setting"],
                json!("kept"),
                "{kind} {id} ({how}) keeps fields livekit-protocol 0.8.2 does not know: {wire:#}"
            );
            assert_eq!(
                wire["future_limits"],
                json!({"max_calls": 3}),
                "{kind} {id} ({how})"
            );
        }
    }
    let log = read_request_log(w.dir.path()).unwrap();
    assert!(
        !log.iter()
            .any(|e| e.path.contains("/Create") || e.path.contains("/Delete")),
        "every change was in place"
    );
}

#[tokio::test]
async fn a_rule_that_turns_noise_cancellation_on_is_seen_and_turned_off() {
    let w = start_with("runbook", |world| {
        let rule = world
            .livekit
            .dispatch_rules
            .0
            .get_mut("SDR_9vRb2XcLeY7s")
            .unwrap();
        rule.krisp_enabled = true;
    })
    .await;
    let before = w
        .livekit
        .read(Kind::LivekitDispatchRule, "SDR_9vRb2XcLeY7s")
        .await
        .unwrap()
        .unwrap();
    let Spec::LivekitDispatchRule(mut spec) = before.spec.clone() else {
        panic!()
    };
    assert!(
        spec.krisp_enabled,
        "LiveKit turns krisp on when the trunk or the rule asks: the rule's flag is read"
    );
    spec.krisp_enabled = false;
    let req = write(
        "livekit_dispatch_rule.melvindale",
        Spec::LivekitDispatchRule(spec.clone()),
    );
    let made = w
        .livekit
        .update("SDR_9vRb2XcLeY7s", &before.spec, &req)
        .await
        .unwrap();
    assert_eq!(made.spec, Spec::LivekitDispatchRule(spec));
    let wire = w.wire(Kind::LivekitDispatchRule, "SDR_9vRb2XcLeY7s").await;
    assert_eq!(wire["krisp_enabled"], json!(false));
}

#[tokio::test]
async fn lists_are_paged_when_the_server_caps_its_answers() {
    let w = start_with("synthetic:1200", |world| {
        world.livekit.list_page_cap = Some(100_000);
    })
    .await;
    let objects = w.livekit.refresh().await.unwrap();
    let count = |k: Kind| objects.iter().filter(|o| o.kind() == k).count();
    let trunks = w
        .sandbox
        .world()
        .lock()
        .unwrap()
        .livekit
        .all_inbound()
        .len();
    assert_eq!(count(Kind::LivekitInboundTrunk), trunks);
    assert!(trunks > 2 * cwa::providers::livekit::PAGE_LIMIT as usize);
    let log = read_request_log(w.dir.path()).unwrap();
    let pages = log
        .iter()
        .filter(|e| e.path.ends_with("/ListSIPInboundTrunk"))
        .count();
    assert_eq!(
        pages,
        trunks.div_ceil(cwa::providers::livekit::PAGE_LIMIT as usize),
        "one call per page of {}",
        cwa::providers::livekit::PAGE_LIMIT
    );
}

#[tokio::test]
async fn a_legacy_trunk_lists_as_both_kinds_and_is_never_written() {
    let w = start("runbook").await;
    let made = w
        .twirp_json(
            "CreateSIPTrunk",
            json!({"name": "Old combined trunk", "outbound_address": "sip.telnyx.com",
                   "outbound_number": "+12125550123", "inbound_addresses": ["192.76.120.10"]}),
        )
        .await;
    let id = made["sip_trunk_id"].as_str().unwrap().to_string();
    let objects = w.livekit.refresh().await.unwrap();
    let inbound = find(&objects, Kind::LivekitInboundTrunk, &id);
    let outbound = find(&objects, Kind::LivekitOutboundTrunk, &id);
    for o in [inbound, outbound] {
        assert_eq!(
            o.extra
                .get(cwa::providers::livekit::LEGACY_TRUNK)
                .map(String::as_str),
            Some("true"),
            "{o:?}"
        );
    }
    let Spec::LivekitInboundTrunk(s) = &inbound.spec else {
        panic!()
    };
    assert_eq!(s.numbers, vec![num("+12125550123")]);
    assert_eq!(s.allowed_addresses, vec!["192.76.120.10".to_string()]);

    let mut renamed = inbound.spec.clone();
    rename(&mut renamed);
    let err = w
        .livekit
        .update(
            &id,
            &inbound.spec,
            &write("livekit_inbound_trunk.old", renamed),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("CreateSIPTrunk"), "{err}");
    let err = w
        .livekit
        .delete(Kind::LivekitOutboundTrunk, &id)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("CreateSIPTrunk"), "{err}");
    let log = read_request_log(w.dir.path()).unwrap();
    assert!(
        !log.iter()
            .any(|e| e.path.contains("/Update") || e.path.contains("/Delete")),
        "nothing written to the legacy trunk: {log:?}"
    );
}
