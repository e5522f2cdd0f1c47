//! The Telnyx client against the sandbox over real loopback HTTP: full refresh of the runbook
//! world, every write cwa uses read back, and page-sized listing at 10,000 lines.

use std::time::Duration;

use cwa::model::{
    fingerprint, CredentialConnectionSpec, FqdnSpec, Kind, LiveObject, NumberSpec,
    OutboundVoiceProfileSpec, Ref, SecretRef, Spec, TelnyxNumberSpec, TexmlApplicationSpec, E164,
};
use cwa::providers::telnyx::TelnyxProvider;
use cwa::providers::{ClientOptions, Env, Provider, WriteRequest};
use cwa::sandbox::{read_request_log, Sandbox, SandboxOptions};

const FQDN_CONNECTION: &str = "2925081061861885519";
const FQDN_RECORD: &str = "2925083349418510207";
const OVP: &str = "2925086295615079772";
const CREDENTIAL_CONNECTION: &str = "2948197312620398250";
const TEXML_APP: &str = "2927180743153026408";
const FALLBACK_NUMBER_ID: &str = "2927180561589994835";

struct World {
    dir: tempfile::TempDir,
    sandbox: Sandbox,
    telnyx: TelnyxProvider,
}

fn fast_options() -> ClientOptions {
    ClientOptions {
        backoff_base: Duration::from_millis(20),
        order_poll_interval: Duration::from_millis(50),
        ..ClientOptions::default()
    }
}

async fn start(world: &str) -> World {
    start_with(world, fast_options()).await
}

async fn start_with(world: &str, opts: ClientOptions) -> World {
    let dir = tempfile::tempdir().unwrap();
    let mut options = SandboxOptions::new(dir.path(), world);
    options.strict = true;
    let sandbox = Sandbox::start(options).await.unwrap();
    let env = Env::from_pairs(sandbox.env());
    let telnyx = TelnyxProvider::from_env(&env, &opts).unwrap();
    World {
        dir,
        sandbox,
        telnyx,
    }
}

fn by_id<'a>(objects: &'a [LiveObject], kind: Kind, id: &str) -> &'a LiveObject {
    objects
        .iter()
        .find(|o| o.kind() == kind && o.id == id)
        .unwrap_or_else(|| panic!("{kind} {id} not in the refresh"))
}

fn number(s: &str) -> E164 {
    E164::parse(s).unwrap()
}

fn write(object: &str, spec: Spec, reference: &str) -> WriteRequest {
    WriteRequest {
        object: object.to_string(),
        spec,
        reference: reference.to_string(),
    }
}

#[tokio::test]
async fn refresh_reads_the_runbook_world_normalized() {
    let w = start("runbook").await;
    let objects = w.telnyx.refresh().await.unwrap();

    let Spec::TelnyxFqdnConnection(conn) =
        &by_id(&objects, Kind::TelnyxFqdnConnection, FQDN_CONNECTION).spec
    else {
        panic!()
    };
    assert_eq!(conn.connection_name, "LiveKit ChurchWiseAI");
    assert_eq!(conn.transport_protocol, "TCP");
    assert_eq!(conn.user_name.as_deref(), Some("churchwiseai"));
    assert_eq!(
        conn.password,
        Some(SecretRef::Fingerprint(fingerprint("sandbox-fqdn-secret")))
    );
    assert_eq!(conn.ani_number_format, "+E.164");
    assert_eq!(conn.dnis_number_format, "+e164");
    assert_eq!(conn.outbound_voice_profile, Some(Ref::Id(OVP.into())));

    let Spec::TelnyxFqdn(fqdn) = &by_id(&objects, Kind::TelnyxFqdn, FQDN_RECORD).spec else {
        panic!()
    };
    assert_eq!(fqdn.fqdn, "5u9xu5ysoly.sip.livekit.cloud");
    assert_eq!(fqdn.port, 5060);
    assert_eq!(fqdn.dns_record_type, "a");
    assert!(fqdn.default_primary);
    assert_eq!(fqdn.connection, Ref::Id(FQDN_CONNECTION.into()));

    let Spec::TelnyxCredentialConnection(cred) = &by_id(
        &objects,
        Kind::TelnyxCredentialConnection,
        CREDENTIAL_CONNECTION,
    )
    .spec
    else {
        panic!()
    };
    assert_eq!(cred.user_name, "cwaoutbound");
    assert_eq!(
        cred.outbound_voice_profile, None,
        "the runbook's silent-drop state"
    );

    let Spec::TelnyxOutboundVoiceProfile(ovp) =
        &by_id(&objects, Kind::TelnyxOutboundVoiceProfile, OVP).spec
    else {
        panic!()
    };
    assert_eq!(ovp.whitelisted_destinations, vec!["CA", "US"]);
    assert!(ovp.enabled);

    let Spec::TelnyxTexmlApplication(app) =
        &by_id(&objects, Kind::TelnyxTexmlApplication, TEXML_APP).spec
    else {
        panic!()
    };
    assert_eq!(app.voice_method, "post");
    assert_eq!(app.voice_url, "https://churchwiseai.com/api/voice/fallback");

    let numbers: Vec<(&str, &Spec)> = objects
        .iter()
        .filter(|o| o.kind() == Kind::TelnyxNumber)
        .map(|o| (o.id.as_str(), &o.spec))
        .collect();
    assert_eq!(numbers.len(), 4);
    let fallback = by_id(&objects, Kind::TelnyxNumber, FALLBACK_NUMBER_ID);
    let Spec::TelnyxNumber(n) = &fallback.spec else {
        panic!()
    };
    assert_eq!(
        n.number,
        NumberSpec::Fixed {
            number: number("+14697288326")
        }
    );
    assert_eq!(n.connection, Some(Ref::Id(TEXML_APP.into())));
    assert_eq!(
        fallback.extra.get("status").map(String::as_str),
        Some("active")
    );

    assert!(objects
        .iter()
        .any(|o| o.kind() == Kind::TelnyxFqdnConnection && o.id == "2925216093662349036"));
}

#[tokio::test]
async fn read_is_exact_and_none_when_missing() {
    let w = start("runbook").await;
    let objects = w.telnyx.refresh().await.unwrap();
    for kind in [
        Kind::TelnyxFqdnConnection,
        Kind::TelnyxFqdn,
        Kind::TelnyxCredentialConnection,
        Kind::TelnyxOutboundVoiceProfile,
        Kind::TelnyxTexmlApplication,
        Kind::TelnyxNumber,
    ] {
        for o in objects.iter().filter(|o| o.kind() == kind) {
            let read = w.telnyx.read(kind, &o.id).await.unwrap().unwrap();
            assert_eq!(read.spec, o.spec, "{kind} {}", o.id);
        }
    }
    assert!(w
        .telnyx
        .read(Kind::TelnyxNumber, "1111111111111111111")
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn credential_connection_profile_is_set_through_the_nested_object() {
    let w = start("runbook").await;
    let before = w
        .telnyx
        .read(Kind::TelnyxCredentialConnection, CREDENTIAL_CONNECTION)
        .await
        .unwrap()
        .unwrap();
    let Spec::TelnyxCredentialConnection(mut spec) = before.spec.clone() else {
        panic!()
    };
    spec.outbound_voice_profile = Some(Ref::Id(OVP.into()));
    let req = write(
        "telnyx_credential_connection.outbound",
        Spec::TelnyxCredentialConnection(spec.clone()),
        "",
    );
    w.telnyx
        .update(CREDENTIAL_CONNECTION, &before.spec, &req)
        .await
        .unwrap();
    let after = w
        .telnyx
        .read(Kind::TelnyxCredentialConnection, CREDENTIAL_CONNECTION)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.spec, Spec::TelnyxCredentialConnection(spec));
}

#[tokio::test]
async fn profile_and_texml_updates_take_effect() {
    let w = start("runbook").await;
    let before = w
        .telnyx
        .read(Kind::TelnyxOutboundVoiceProfile, OVP)
        .await
        .unwrap()
        .unwrap();
    let spec = OutboundVoiceProfileSpec {
        name: "ChurchWiseAI".into(),
        enabled: true,
        whitelisted_destinations: vec!["CA".into(), "MX".into(), "US".into()],
    };
    let req = write(
        "telnyx_outbound_voice_profile.main",
        Spec::TelnyxOutboundVoiceProfile(spec.clone()),
        "",
    );
    w.telnyx.update(OVP, &before.spec, &req).await.unwrap();
    let read = w
        .telnyx
        .read(Kind::TelnyxOutboundVoiceProfile, OVP)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.spec, Spec::TelnyxOutboundVoiceProfile(spec));

    let before = w
        .telnyx
        .read(Kind::TelnyxTexmlApplication, TEXML_APP)
        .await
        .unwrap()
        .unwrap();
    let spec = TexmlApplicationSpec {
        friendly_name: "ChurchWiseAI Fallback Greeting".into(),
        voice_url: "https://churchwiseai.com/api/voice/fallback-v2".into(),
        voice_method: "get".into(),
    };
    let req = write(
        "telnyx_texml_application.fallback",
        Spec::TelnyxTexmlApplication(spec.clone()),
        "",
    );
    w.telnyx
        .update(TEXML_APP, &before.spec, &req)
        .await
        .unwrap();
    let read = w
        .telnyx
        .read(Kind::TelnyxTexmlApplication, TEXML_APP)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.spec, Spec::TelnyxTexmlApplication(spec));
}

#[tokio::test]
async fn new_default_primary_fqdn_moves_the_connection_pointer() {
    let w = start("runbook").await;
    let spec = FqdnSpec {
        connection: Ref::Id(FQDN_CONNECTION.into()),
        fqdn: "backup.sip.livekit.cloud".into(),
        port: 5060,
        dns_record_type: "a".into(),
        default_primary: true,
    };
    let req = write("telnyx_fqdn.backup", Spec::TelnyxFqdn(spec.clone()), "");
    let made = w.telnyx.create(&req).await.unwrap();
    assert_eq!(made.spec, Spec::TelnyxFqdn(spec.clone()));

    let read = w
        .telnyx
        .read(Kind::TelnyxFqdn, &made.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.spec, Spec::TelnyxFqdn(spec));
    let old = w
        .telnyx
        .read(Kind::TelnyxFqdn, FQDN_RECORD)
        .await
        .unwrap()
        .unwrap();
    let Spec::TelnyxFqdn(old) = old.spec else {
        panic!()
    };
    assert!(!old.default_primary);
    let conn = w
        .telnyx
        .read(Kind::TelnyxFqdnConnection, FQDN_CONNECTION)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        conn.extra.get("default_primary_fqdn_id"),
        Some(&made.id),
        "the connection's inbound.default_primary_fqdn_id points at the new record"
    );
    let Spec::TelnyxFqdnConnection(c) = conn.spec else {
        panic!()
    };
    assert_eq!(
        c.transport_protocol, "TCP",
        "the nested PATCH kept the rest"
    );
    assert_eq!(c.outbound_voice_profile, Some(Ref::Id(OVP.into())));
}

fn auto_number(connection: &str) -> TelnyxNumberSpec {
    TelnyxNumberSpec {
        number: NumberSpec::Auto {
            country: "US".into(),
            area_code: "414".into(),
            endings: ["0000", "5000", "4000", "000", "500", "400", "200", "100"]
                .map(String::from)
                .to_vec(),
        },
        connection: Some(Ref::Id(connection.into())),
        tags: vec![],
        settings: Default::default(),
    }
}

#[tokio::test]
async fn auto_number_is_ordered_with_a_friendly_ending_bound_then_released() {
    let w = start("runbook").await;
    let req = write(
        "telnyx_number.new_church",
        Spec::TelnyxNumber(auto_number(FQDN_CONNECTION)),
        "cwa-test-order-1",
    );
    let made = w.telnyx.create(&req).await.unwrap();
    let Spec::TelnyxNumber(got) = &made.spec else {
        panic!()
    };
    let bought = got.number.fixed().unwrap().clone();
    assert_eq!(bought.area_code(), Some("414"));
    assert!(
        bought.digits().ends_with("0000"),
        "{bought} is the first friendly ending"
    );
    assert_eq!(got.connection, Some(Ref::Id(FQDN_CONNECTION.into())));

    let read = w
        .telnyx
        .read(Kind::TelnyxNumber, &made.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.spec, made.spec);
    assert_eq!(read.extra.get("status").map(String::as_str), Some("active"));

    let found = w.telnyx.find_created(&req).await.unwrap().unwrap();
    assert_eq!(found.id, made.id, "found again by its customer_reference");

    let mut bound = got.clone();
    bound.connection = Some(Ref::Id(TEXML_APP.into()));
    bound.tags = vec!["church".into()];
    let bind = write(
        "telnyx_number.new_church",
        Spec::TelnyxNumber(bound.clone()),
        "",
    );
    w.telnyx.update(&made.id, &made.spec, &bind).await.unwrap();
    let read = w
        .telnyx
        .read(Kind::TelnyxNumber, &made.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.spec, Spec::TelnyxNumber(bound));

    w.telnyx.delete(Kind::TelnyxNumber, &made.id).await.unwrap();
    assert!(w
        .telnyx
        .read(Kind::TelnyxNumber, &made.id)
        .await
        .unwrap()
        .is_none());
    let orders = read_request_log(w.dir.path())
        .unwrap()
        .into_iter()
        .filter(|e| e.method == "POST" && e.path == "/v2/number_orders")
        .count();
    assert_eq!(orders, 1);
}

/// An order already placed under the reference (by a run killed after the order, whose journal
/// is gone: a CI retry on another runner, a second checkout) is completed, never posted again:
/// the create looks the reference up before it orders.
#[tokio::test]
async fn an_order_already_placed_under_the_reference_is_completed_not_placed_again() {
    let w = start("runbook").await;
    let for_sale = cwa::sandbox::inventory::numbers_in("414");
    let killed_runs = number(&for_sale[2]);
    // The killed run: it ordered the number (here with no connection yet) and died before
    // anything recorded the order.
    let unbound = TelnyxNumberSpec {
        number: NumberSpec::Fixed {
            number: killed_runs.clone(),
        },
        connection: None,
        tags: vec![],
        settings: Default::default(),
    };
    w.telnyx
        .create(&write(
            "telnyx_number.new_church",
            Spec::TelnyxNumber(unbound),
            "cwa-killed-run-1",
        ))
        .await
        .unwrap();

    let req = write(
        "telnyx_number.new_church",
        Spec::TelnyxNumber(auto_number(FQDN_CONNECTION)),
        "cwa-killed-run-1",
    );
    let made = w.telnyx.create(&req).await.unwrap();
    let Spec::TelnyxNumber(got) = &made.spec else {
        panic!()
    };
    assert_eq!(
        got.number.fixed(),
        Some(&killed_runs),
        "the number the earlier order bought, not a second one"
    );
    assert_eq!(got.connection, Some(Ref::Id(FQDN_CONNECTION.into())));
    let posts: Vec<_> = log_of(&w)
        .into_iter()
        .filter(|e| e.method == "POST" && e.path == "/v2/number_orders")
        .collect();
    assert_eq!(posts.len(), 1, "only the killed run's order: {posts:?}");

    // The same for a fixed number: its order is found, not repeated.
    let wanted = number(&for_sale[3]);
    let first = w
        .telnyx
        .create(&write(
            "telnyx_number.fixed",
            fixed_number(&wanted),
            "cwa-killed-run-2",
        ))
        .await
        .unwrap();
    let again = w
        .telnyx
        .create(&write(
            "telnyx_number.fixed",
            fixed_number(&wanted),
            "cwa-killed-run-2",
        ))
        .await
        .unwrap();
    assert_eq!(again.id, first.id);
    let posts = log_of(&w)
        .into_iter()
        .filter(|e| e.method == "POST" && e.path == "/v2/number_orders")
        .count();
    assert_eq!(posts, 2, "one order per reference");
}

fn fixed_number(n: &E164) -> Spec {
    Spec::TelnyxNumber(TelnyxNumberSpec {
        number: NumberSpec::Fixed { number: n.clone() },
        connection: Some(Ref::Id(FQDN_CONNECTION.into())),
        tags: vec![],
        settings: Default::default(),
    })
}

#[tokio::test]
async fn fixed_number_is_ordered_only_when_offered() {
    let w = start("runbook").await;
    let for_sale = cwa::sandbox::inventory::numbers_in("414");
    let wanted = number(&for_sale[1]);
    let made = w
        .telnyx
        .create(&write(
            "telnyx_number.fixed",
            fixed_number(&wanted),
            "cwa-test-fixed",
        ))
        .await
        .unwrap();
    let Spec::TelnyxNumber(s) = &made.spec else {
        panic!()
    };
    assert_eq!(s.number.fixed(), Some(&wanted));

    let not_for_sale = number("+14145550123");
    let err = w
        .telnyx
        .create(&write(
            "telnyx_number.fiction",
            fixed_number(&not_for_sale),
            "cwa-test-x",
        ))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not available"), "{err}");
}

#[tokio::test]
async fn refresh_of_10000_lines_reads_page_sized_lists() {
    let w = start("synthetic:10000").await;
    let objects = w.telnyx.refresh().await.unwrap();
    let numbers = objects
        .iter()
        .filter(|o| o.kind() == Kind::TelnyxNumber)
        .count();
    assert!(numbers >= 10_000, "{numbers} numbers");
    let log = read_request_log(w.dir.path()).unwrap();
    let number_pages = log
        .iter()
        .filter(|e| e.method == "GET" && e.path == "/v2/phone_numbers")
        .count();
    let expected = numbers.div_ceil(250);
    assert!(
        number_pages >= expected && number_pages <= expected + 1,
        "{number_pages} list calls for {numbers} numbers"
    );
    assert!(
        log.len() < numbers / 100,
        "{} requests in all: about one per page, never one per object",
        log.len()
    );
    drop(w.sandbox);
}

#[tokio::test]
async fn credential_connection_create_needs_its_password_and_finds_itself() {
    let w = start("runbook").await;
    let spec = CredentialConnectionSpec {
        connection_name: "CWA Test Outbound".into(),
        active: true,
        user_name: "cwatestout".into(),
        password: Some(SecretRef::Env("TEST_PASSWORD".into())),
        outbound_voice_profile: Some(Ref::Id(OVP.into())),
    };
    let req = write(
        "telnyx_credential_connection.test",
        Spec::TelnyxCredentialConnection(spec.clone()),
        "",
    );
    assert!(w.telnyx.create(&req).await.is_err());

    let mut resolved = spec.clone();
    resolved.password = Some(SecretRef::Value(cwa::model::SecretValue::new(
        "test-password-123",
    )));
    let req = write(
        "telnyx_credential_connection.test",
        Spec::TelnyxCredentialConnection(resolved),
        "",
    );
    let made = w.telnyx.create(&req).await.unwrap();
    let Spec::TelnyxCredentialConnection(got) = &made.spec else {
        panic!()
    };
    assert_eq!(got.outbound_voice_profile, Some(Ref::Id(OVP.into())));
    let found = w.telnyx.find_created(&req).await.unwrap().unwrap();
    assert_eq!(found.id, made.id);
    w.telnyx
        .delete(Kind::TelnyxCredentialConnection, &made.id)
        .await
        .unwrap();
    assert!(w
        .telnyx
        .read(Kind::TelnyxCredentialConnection, &made.id)
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn fqdn_connection_and_record_lifecycle() {
    use cwa::model::{FqdnConnectionSpec, SecretValue};
    let w = start("runbook").await;
    let conn = FqdnConnectionSpec {
        connection_name: "LiveKit Grace".into(),
        active: true,
        transport_protocol: "TCP".into(),
        user_name: Some("gracechapel".into()),
        password: Some(SecretRef::Value(SecretValue::new("grace-secret-123"))),
        ani_number_format: "+E.164".into(),
        dnis_number_format: "+e164".into(),
        outbound_voice_profile: Some(Ref::Id(OVP.into())),
    };
    let req = write(
        "telnyx_fqdn_connection.grace",
        Spec::TelnyxFqdnConnection(conn.clone()),
        "",
    );
    let made = w.telnyx.create(&req).await.unwrap();
    let read = w
        .telnyx
        .read(Kind::TelnyxFqdnConnection, &made.id)
        .await
        .unwrap()
        .unwrap();
    let mut expected = conn.clone();
    expected.password = Some(SecretRef::Fingerprint(fingerprint("grace-secret-123")));
    assert_eq!(read.spec, Spec::TelnyxFqdnConnection(expected.clone()));
    assert_eq!(
        w.telnyx.find_created(&req).await.unwrap().map(|o| o.id),
        Some(made.id.clone())
    );

    let record = FqdnSpec {
        connection: Ref::Id(made.id.clone()),
        fqdn: "5u9xu5ysoly.sip.livekit.cloud".into(),
        port: 5060,
        dns_record_type: "a".into(),
        default_primary: true,
    };
    let rec_req = write("telnyx_fqdn.grace", Spec::TelnyxFqdn(record.clone()), "");
    let rec = w.telnyx.create(&rec_req).await.unwrap();

    let mut tls = expected.clone();
    tls.transport_protocol = "TLS".into();
    tls.dnis_number_format = "e164".into();
    let upd = write(
        "telnyx_fqdn_connection.grace",
        Spec::TelnyxFqdnConnection(tls.clone()),
        "",
    );
    w.telnyx.update(&made.id, &read.spec, &upd).await.unwrap();
    let after = w
        .telnyx
        .read(Kind::TelnyxFqdnConnection, &made.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.spec, Spec::TelnyxFqdnConnection(tls));
    assert_eq!(
        after.extra.get("default_primary_fqdn_id"),
        Some(&rec.id),
        "a connection update keeps inbound.default_primary_fqdn_id"
    );

    let mut moved = record.clone();
    moved.port = 5061;
    moved.default_primary = false;
    let upd = write("telnyx_fqdn.grace", Spec::TelnyxFqdn(moved.clone()), "");
    w.telnyx.update(&rec.id, &rec.spec, &upd).await.unwrap();
    let rec_read = w
        .telnyx
        .read(Kind::TelnyxFqdn, &rec.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rec_read.spec, Spec::TelnyxFqdn(moved));

    w.telnyx.delete(Kind::TelnyxFqdn, &rec.id).await.unwrap();
    w.telnyx
        .delete(Kind::TelnyxFqdnConnection, &made.id)
        .await
        .unwrap();
    assert!(w
        .telnyx
        .read(Kind::TelnyxFqdn, &rec.id)
        .await
        .unwrap()
        .is_none());
    assert!(w
        .telnyx
        .read(Kind::TelnyxFqdnConnection, &made.id)
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn profile_and_texml_are_created_found_and_deleted() {
    let w = start("runbook").await;
    let ovp = OutboundVoiceProfileSpec {
        name: "CWA Canada".into(),
        enabled: true,
        whitelisted_destinations: vec!["CA".into()],
    };
    let req = write(
        "telnyx_outbound_voice_profile.ca",
        Spec::TelnyxOutboundVoiceProfile(ovp.clone()),
        "",
    );
    let made = w.telnyx.create(&req).await.unwrap();
    assert_eq!(made.spec, Spec::TelnyxOutboundVoiceProfile(ovp));
    assert_eq!(
        w.telnyx.find_created(&req).await.unwrap().map(|o| o.id),
        Some(made.id.clone())
    );
    w.telnyx
        .delete(Kind::TelnyxOutboundVoiceProfile, &made.id)
        .await
        .unwrap();
    assert!(w
        .telnyx
        .read(Kind::TelnyxOutboundVoiceProfile, &made.id)
        .await
        .unwrap()
        .is_none());

    let app = TexmlApplicationSpec {
        friendly_name: "CWA Overflow".into(),
        voice_url: "https://churchwiseai.com/api/voice/overflow".into(),
        voice_method: "post".into(),
    };
    let req = write(
        "telnyx_texml_application.overflow",
        Spec::TelnyxTexmlApplication(app.clone()),
        "",
    );
    let made = w.telnyx.create(&req).await.unwrap();
    let read = w
        .telnyx
        .read(Kind::TelnyxTexmlApplication, &made.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.spec, Spec::TelnyxTexmlApplication(app));
    assert_eq!(
        w.telnyx.find_created(&req).await.unwrap().map(|o| o.id),
        Some(made.id.clone())
    );
    w.telnyx
        .delete(Kind::TelnyxTexmlApplication, &made.id)
        .await
        .unwrap();
    assert!(w
        .telnyx
        .read(Kind::TelnyxTexmlApplication, &made.id)
        .await
        .unwrap()
        .is_none());
}

fn log_of(w: &World) -> Vec<cwa::sandbox::RequestLogEntry> {
    read_request_log(w.dir.path()).unwrap()
}

/// Neither FQDN connection request schema declares `user_name` / `password`; the current SDK
/// writes them through `PATCH /fqdn_connections/{id}/fqdn_authentication`, and so does cwa
/// (the strict sandbox refuses them at top level).
#[tokio::test]
async fn fqdn_connection_credentials_go_through_fqdn_authentication() {
    use cwa::model::{FqdnConnectionSpec, SecretValue};
    let w = start("runbook").await;
    let conn = FqdnConnectionSpec {
        connection_name: "LiveKit Hope".into(),
        active: true,
        transport_protocol: "TCP".into(),
        user_name: Some("hopefellowship".into()),
        password: Some(SecretRef::Value(SecretValue::new("hope-secret-123"))),
        ani_number_format: "+E.164".into(),
        dnis_number_format: "+e164".into(),
        outbound_voice_profile: None,
    };
    let req = write(
        "telnyx_fqdn_connection.hope",
        Spec::TelnyxFqdnConnection(conn.clone()),
        "",
    );
    let made = w.telnyx.create(&req).await.unwrap();
    let Spec::TelnyxFqdnConnection(got) = &made.spec else {
        panic!()
    };
    assert_eq!(got.user_name.as_deref(), Some("hopefellowship"));
    assert_eq!(
        got.password,
        Some(SecretRef::Fingerprint(fingerprint("hope-secret-123")))
    );
    let auth_path = format!("/v2/fqdn_connections/{}/fqdn_authentication", made.id);
    let auth_writes = |w: &World| {
        log_of(w)
            .into_iter()
            .filter(|e| e.method == "PATCH" && e.path == auth_path && e.status == 200)
            .count()
    };
    assert_eq!(auth_writes(&w), 1);

    // A new password goes the same way; an update that keeps the credentials sends none.
    let mut rotated = conn.clone();
    rotated.password = Some(SecretRef::Value(SecretValue::new("hope-secret-456")));
    let upd = write(
        "telnyx_fqdn_connection.hope",
        Spec::TelnyxFqdnConnection(rotated),
        "",
    );
    let after = w.telnyx.update(&made.id, &made.spec, &upd).await.unwrap();
    let Spec::TelnyxFqdnConnection(after) = &after.spec else {
        panic!()
    };
    assert_eq!(
        after.password,
        Some(SecretRef::Fingerprint(fingerprint("hope-secret-456")))
    );
    assert_eq!(auth_writes(&w), 2);
    let mut renamed = after.clone();
    renamed.connection_name = "LiveKit Hope Fellowship".into();
    let upd = write(
        "telnyx_fqdn_connection.hope",
        Spec::TelnyxFqdnConnection(renamed.clone()),
        "",
    );
    let read = w.telnyx.update(&made.id, &made.spec, &upd).await.unwrap();
    assert_eq!(read.spec, Spec::TelnyxFqdnConnection(renamed));
    assert_eq!(auth_writes(&w), 2);
}

/// spec3.yml, CreateFqdnRequest: a port only with `dns_record_type = "a"`; an `srv` record
/// has none, and turning an `a` record into `srv` sends `port: null` so the read-back agrees.
#[tokio::test]
async fn srv_records_have_no_port_and_a_to_srv_clears_it() {
    let w = start("runbook").await;
    let srv = FqdnSpec {
        connection: Ref::Id(FQDN_CONNECTION.into()),
        fqdn: "srv.example.com".into(),
        port: 0,
        dns_record_type: "srv".into(),
        default_primary: false,
    };
    let made = w
        .telnyx
        .create(&write("telnyx_fqdn.srv", Spec::TelnyxFqdn(srv.clone()), ""))
        .await
        .unwrap();
    assert_eq!(made.spec, Spec::TelnyxFqdn(srv.clone()));

    let a = FqdnSpec {
        fqdn: "a.example.com".into(),
        port: 5060,
        dns_record_type: "a".into(),
        ..srv.clone()
    };
    let rec = w
        .telnyx
        .create(&write("telnyx_fqdn.a", Spec::TelnyxFqdn(a.clone()), ""))
        .await
        .unwrap();
    let to_srv = FqdnSpec {
        port: 0,
        dns_record_type: "srv".into(),
        ..a.clone()
    };
    w.telnyx
        .update(
            &rec.id,
            &rec.spec,
            &write("telnyx_fqdn.a", Spec::TelnyxFqdn(to_srv.clone()), ""),
        )
        .await
        .unwrap();
    let read = w
        .telnyx
        .read(Kind::TelnyxFqdn, &rec.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        read.spec,
        Spec::TelnyxFqdn(to_srv),
        "the read-back converges"
    );
}

/// An `"auto"` number is never bought outside its area code: best-effort offers (Telnyx's
/// neighbouring-area suggestions) are refused, and no order is placed.
#[tokio::test]
async fn auto_numbers_never_take_best_effort_offers() {
    let w = start("runbook").await;
    w.sandbox
        .world()
        .lock()
        .unwrap()
        .telnyx
        .realism
        .best_effort_area_codes
        .insert("414".into());
    let req = write(
        "telnyx_number.new_church",
        Spec::TelnyxNumber(auto_number(FQDN_CONNECTION)),
        "cwa-best-effort",
    );
    let err = w.telnyx.create(&req).await.unwrap_err().to_string();
    assert!(err.contains("best-effort"), "{err}");
    assert!(err.contains("414"), "{err}");
    let orders = log_of(&w)
        .into_iter()
        .filter(|e| e.method == "POST" && e.path == "/v2/number_orders")
        .count();
    assert_eq!(orders, 0, "nothing was bought");
}

/// An order Telnyx holds for regulatory documents stops apply with what to do, instead of
/// polling until it gives up; a rerun finds the same order by its reference.
#[tokio::test]
async fn requirement_pending_orders_say_what_to_do() {
    let w = start("runbook").await;
    w.sandbox
        .world()
        .lock()
        .unwrap()
        .telnyx
        .realism
        .requirement_info_pending = true;
    let req = write(
        "telnyx_number.new_church",
        Spec::TelnyxNumber(auto_number(FQDN_CONNECTION)),
        "cwa-documents",
    );
    let err = w.telnyx.create(&req).await.unwrap_err().to_string();
    assert!(err.contains("requirement-info-pending"), "{err}");
    let err = w.telnyx.find_created(&req).await.unwrap_err().to_string();
    assert!(err.contains("requirement-info-pending"), "{err}");
    let orders = log_of(&w)
        .into_iter()
        .filter(|e| e.method == "POST" && e.path == "/v2/number_orders")
        .count();
    assert_eq!(orders, 1);
}

/// GET-modify-PATCH sends only what the request schemas allow: the runbook's connections
/// read back with nulls in integer and string fields (`channel_limit`, `tech_prefix`,
/// `ip_authentication_token`) and the strict sandbox refuses any of them echoed back.
/// Clearing a profile sends `""`, never `null`.
#[tokio::test]
async fn connection_updates_echo_no_nulls_and_clear_with_an_empty_id() {
    let w = start("runbook").await;
    let before = w
        .telnyx
        .read(Kind::TelnyxFqdnConnection, FQDN_CONNECTION)
        .await
        .unwrap()
        .unwrap();
    let Spec::TelnyxFqdnConnection(mut spec) = before.spec.clone() else {
        panic!()
    };
    spec.connection_name = "LiveKit ChurchWiseAI (renamed)".into();
    spec.outbound_voice_profile = None;
    let after = w
        .telnyx
        .update(
            FQDN_CONNECTION,
            &before.spec,
            &write(
                "telnyx_fqdn_connection.livekit",
                Spec::TelnyxFqdnConnection(spec.clone()),
                "",
            ),
        )
        .await
        .unwrap();
    assert_eq!(after.spec, Spec::TelnyxFqdnConnection(spec));

    let cred = w
        .telnyx
        .read(Kind::TelnyxCredentialConnection, CREDENTIAL_CONNECTION)
        .await
        .unwrap()
        .unwrap();
    let Spec::TelnyxCredentialConnection(mut c) = cred.spec.clone() else {
        panic!()
    };
    c.connection_name = "CWA Outbound (renamed)".into();
    let after = w
        .telnyx
        .update(
            CREDENTIAL_CONNECTION,
            &cred.spec,
            &write(
                "telnyx_credential_connection.out",
                Spec::TelnyxCredentialConnection(c.clone()),
                "",
            ),
        )
        .await
        .unwrap();
    assert_eq!(after.spec, Spec::TelnyxCredentialConnection(c));
}

/// A number with Telnyx's deletion lock on is read as such and never released.
#[tokio::test]
async fn deletion_locked_numbers_are_shown_and_never_released() {
    let w = start("runbook").await;
    w.sandbox
        .world()
        .lock()
        .unwrap()
        .telnyx
        .phone_numbers
        .get_mut(FALLBACK_NUMBER_ID)
        .unwrap()["deletion_lock_enabled"] = serde_json::json!(true);
    let read = w
        .telnyx
        .read(Kind::TelnyxNumber, FALLBACK_NUMBER_ID)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        read.extra.get("deletion_lock_enabled").map(String::as_str),
        Some("true")
    );
    let err = w
        .telnyx
        .delete(Kind::TelnyxNumber, FALLBACK_NUMBER_ID)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("deletion lock"), "{err}");
    assert!(!log_of(&w)
        .iter()
        .any(|e| e.method == "DELETE" && e.path.ends_with(FALLBACK_NUMBER_ID)));
}

/// A password Telnyx masks in its answers reads as hidden, and an update of the connection
/// neither fails for it nor resends it.
#[tokio::test]
async fn masked_passwords_read_as_hidden_and_are_not_resent() {
    let w = start("runbook").await;
    w.sandbox
        .world()
        .lock()
        .unwrap()
        .telnyx
        .realism
        .mask_passwords = true;
    let before = w
        .telnyx
        .read(Kind::TelnyxFqdnConnection, FQDN_CONNECTION)
        .await
        .unwrap()
        .unwrap();
    let Spec::TelnyxFqdnConnection(mut spec) = before.spec.clone() else {
        panic!()
    };
    assert_eq!(spec.password, Some(SecretRef::hidden()));
    spec.password = Some(SecretRef::Fingerprint(fingerprint("sandbox-fqdn-secret")));
    spec.connection_name = "LiveKit ChurchWiseAI 2".into();
    w.telnyx
        .update(
            FQDN_CONNECTION,
            &before.spec,
            &write(
                "telnyx_fqdn_connection.livekit",
                Spec::TelnyxFqdnConnection(spec),
                "",
            ),
        )
        .await
        .unwrap();
    assert!(!log_of(&w)
        .iter()
        .any(|e| e.path.ends_with("/fqdn_authentication")));
}
