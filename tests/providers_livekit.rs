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
use cwa::sandbox::{read_request_log, Sandbox, SandboxOptions};

const AGENT: &str = "churchwiseai-voice";

struct World {
    dir: tempfile::TempDir,
    _sandbox: Sandbox,
    livekit: LivekitProvider,
}

async fn start(world: &str) -> World {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = Sandbox::start(SandboxOptions::new(dir.path(), world))
        .await
        .unwrap();
    let env = Env::from_pairs(sandbox.env());
    let opts = ClientOptions {
        backoff_base: Duration::from_millis(20),
        ..ClientOptions::default()
    };
    let livekit = LivekitProvider::from_env(&env, &opts).unwrap();
    World {
        dir,
        _sandbox: sandbox,
        livekit,
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
