//! The Twilio client against the sandbox over real loopback HTTP: the legacy objects read in
//! full, writes refused under the default read-only policy, and allowed ones read back.

use std::time::Duration;

use sha2::{Digest, Sha256};

use cwa::model::{
    Kind, LiveObject, OriginationUrl, Ref, Spec, TwilioNumberSpec, TwilioTrunkNumberSpec,
    TwilioTrunkSpec, E164,
};
use cwa::providers::twilio::TwilioProvider;
use cwa::providers::{ClientOptions, Env, Provider, ProviderError, WriteRequest};
use cwa::sandbox::{read_request_log, Sandbox, SandboxOptions};

const LIVEKIT_URI: &str = "sip:5u9xu5ysoly.sip.livekit.cloud;transport=tcp";

/// Runbook-world SIDs: prefix + the first 32 hex digits of sha256("runbook:<natural key>").
fn sid(prefix: &str, key: &str) -> String {
    let digest = hex::encode(Sha256::digest(format!("runbook:{key}").as_bytes()));
    format!("{prefix}{}", &digest[..32])
}

struct World {
    dir: tempfile::TempDir,
    sandbox: Sandbox,
    twilio: TwilioProvider,
}

async fn start(writes: bool) -> World {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = Sandbox::start(SandboxOptions::new(dir.path(), "runbook"))
        .await
        .unwrap();
    let env = Env::from_pairs(sandbox.env());
    let opts = ClientOptions {
        backoff_base: Duration::from_millis(20),
        twilio_writes: writes,
        ..ClientOptions::default()
    };
    let twilio = TwilioProvider::from_env(&env, &opts).unwrap();
    World {
        dir,
        sandbox,
        twilio,
    }
}

fn find<'a>(objects: &'a [LiveObject], kind: Kind, id: &str) -> &'a LiveObject {
    objects
        .iter()
        .find(|o| o.kind() == kind && o.id == id)
        .unwrap_or_else(|| panic!("{kind} {id} not in the refresh"))
}

fn livekit_url() -> OriginationUrl {
    OriginationUrl {
        friendly_name: "LiveKit".into(),
        sip_url: LIVEKIT_URI.into(),
        priority: 10,
        weight: 10,
        enabled: true,
    }
}

fn write(object: &str, spec: Spec) -> WriteRequest {
    WriteRequest {
        object: object.to_string(),
        spec,
        reference: String::new(),
    }
}

#[tokio::test]
async fn refresh_reads_numbers_trunks_urls_and_attachments() {
    let w = start(false).await;
    let objects = w.twilio.refresh().await.unwrap();

    let sales = sid("PN", "+18886030316");
    let main = sid("TK", "churchwiseai.pstn.twilio.com");
    let test = sid("TK", "churchwiseai-test.pstn.twilio.com");
    let n = find(&objects, Kind::TwilioNumber, &sales);
    assert_eq!(
        n.spec,
        Spec::TwilioNumber(TwilioNumberSpec {
            number: E164::parse("+18886030316").unwrap(),
            friendly_name: "Sales (toll-free)".into(),
        })
    );
    assert_eq!(n.extra.get("trunk_sid"), Some(&main));

    assert_eq!(
        find(&objects, Kind::TwilioTrunk, &main).spec,
        Spec::TwilioTrunk(TwilioTrunkSpec {
            friendly_name: "LiveKit Main".into(),
            domain_name: "churchwiseai.pstn.twilio.com".into(),
            origination_urls: vec![livekit_url()],
        })
    );
    let attached = find(
        &objects,
        Kind::TwilioTrunkNumber,
        &format!("{main}/{sales}"),
    );
    assert_eq!(
        attached.spec,
        Spec::TwilioTrunkNumber(TwilioTrunkNumberSpec {
            trunk: Ref::Id(main.clone()),
            number: Ref::Id(sales.clone()),
        })
    );
    let count = |k: Kind| objects.iter().filter(|o| o.kind() == k).count();
    assert_eq!(count(Kind::TwilioNumber), 4);
    assert_eq!(count(Kind::TwilioTrunk), 2);
    assert_eq!(count(Kind::TwilioTrunkNumber), 4);
    let spare = sid("PN", "+13658253552");
    find(
        &objects,
        Kind::TwilioTrunkNumber,
        &format!("{test}/{spare}"),
    );

    for o in &objects {
        let read = w.twilio.read(o.kind(), &o.id).await.unwrap().unwrap();
        assert_eq!(read.spec, o.spec, "{} {}", o.kind(), o.id);
    }
}

#[tokio::test]
async fn writes_are_refused_under_the_read_only_policy_without_a_request() {
    let w = start(false).await;
    let before = read_request_log(w.dir.path()).unwrap().len();
    let trunk = TwilioTrunkSpec {
        friendly_name: "New".into(),
        domain_name: "cwa-new.pstn.twilio.com".into(),
        origination_urls: vec![livekit_url()],
    };
    let err = w
        .twilio
        .create(&write("twilio_trunk.new", Spec::TwilioTrunk(trunk)))
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::Unsupported { .. }));
    assert!(err.to_string().contains("twilio_writes"), "{err}");
    let main = sid("TK", "churchwiseai.pstn.twilio.com");
    assert!(w.twilio.delete(Kind::TwilioTrunk, &main).await.is_err());
    assert_eq!(read_request_log(w.dir.path()).unwrap().len(), before);
}

#[tokio::test]
async fn allowed_writes_create_attach_update_detach_and_delete() {
    let w = start(true).await;
    let trunk = TwilioTrunkSpec {
        friendly_name: "LiveKit Spare".into(),
        domain_name: "cwa-spare.pstn.twilio.com".into(),
        origination_urls: vec![livekit_url()],
    };
    let made = w
        .twilio
        .create(&write(
            "twilio_trunk.spare",
            Spec::TwilioTrunk(trunk.clone()),
        ))
        .await
        .unwrap();
    assert_eq!(made.spec, Spec::TwilioTrunk(trunk.clone()));
    let read = w
        .twilio
        .read(Kind::TwilioTrunk, &made.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.spec, Spec::TwilioTrunk(trunk.clone()));

    let mut moved = trunk.clone();
    moved.friendly_name = "LiveKit Spare (tls)".into();
    moved.origination_urls = vec![OriginationUrl {
        sip_url: "sip:5u9xu5ysoly.sip.livekit.cloud;transport=tls".into(),
        ..livekit_url()
    }];
    let req = write("twilio_trunk.spare", Spec::TwilioTrunk(moved.clone()));
    w.twilio.update(&made.id, &read.spec, &req).await.unwrap();
    let read = w
        .twilio
        .read(Kind::TwilioTrunk, &made.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.spec, Spec::TwilioTrunk(moved));

    let test = sid("TK", "churchwiseai-test.pstn.twilio.com");
    let spare = sid("PN", "+13658253552");
    w.twilio
        .delete(Kind::TwilioTrunkNumber, &format!("{test}/{spare}"))
        .await
        .unwrap();
    let attach = TwilioTrunkNumberSpec {
        trunk: Ref::Id(made.id.clone()),
        number: Ref::Id(spare.clone()),
    };
    let attached = w
        .twilio
        .create(&write(
            "twilio_trunk_number.spare",
            Spec::TwilioTrunkNumber(attach),
        ))
        .await
        .unwrap();
    assert_eq!(attached.id, format!("{}/{spare}", made.id));
    assert!(w
        .twilio
        .read(Kind::TwilioTrunkNumber, &attached.id)
        .await
        .unwrap()
        .is_some());

    w.twilio
        .delete(Kind::TwilioTrunkNumber, &attached.id)
        .await
        .unwrap();
    assert!(w
        .twilio
        .read(Kind::TwilioTrunkNumber, &attached.id)
        .await
        .unwrap()
        .is_none());
    w.twilio.delete(Kind::TwilioTrunk, &made.id).await.unwrap();
    assert!(w
        .twilio
        .read(Kind::TwilioTrunk, &made.id)
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn buying_a_twilio_number_is_never_done() {
    let w = start(true).await;
    let spec = TwilioNumberSpec {
        number: E164::parse("+14695550100").unwrap(),
        friendly_name: "x".into(),
    };
    let err = w
        .twilio
        .create(&write("twilio_number.x", Spec::TwilioNumber(spec)))
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::Unsupported { .. }));
}

/// Where the number `pn` is attached now, as the trunks' PhoneNumbers lists say.
async fn trunks_holding(w: &World, pn: &str) -> Vec<String> {
    let objects = w.twilio.refresh().await.unwrap();
    objects
        .iter()
        .filter(|o| o.kind() == Kind::TwilioTrunkNumber)
        .filter_map(|o| o.id.split_once('/'))
        .filter(|(_, n)| *n == pn)
        .map(|(t, _)| t.to_string())
        .collect()
}

#[tokio::test]
async fn moving_a_number_to_another_trunk_detaches_it_first() {
    let w = start(true).await;
    let main = sid("TK", "churchwiseai.pstn.twilio.com");
    let test = sid("TK", "churchwiseai-test.pstn.twilio.com");
    let spare = sid("PN", "+13658253552");
    assert_eq!(trunks_holding(&w, &spare).await, vec![test.clone()]);
    for (from, to) in [(&test, &main), (&main, &test)] {
        let attach = TwilioTrunkNumberSpec {
            trunk: Ref::Id(to.clone()),
            number: Ref::Id(spare.clone()),
        };
        let moved = w
            .twilio
            .create(&write(
                "twilio_trunk_number.spare",
                Spec::TwilioTrunkNumber(attach),
            ))
            .await
            .unwrap_or_else(|e| panic!("move {from} -> {to}: {e}"));
        assert_eq!(moved.id, format!("{to}/{spare}"));
        assert_eq!(trunks_holding(&w, &spare).await, vec![to.clone()]);
        // The old attachment's delete (the second half of the planned replace) finds it gone.
        w.twilio
            .delete(Kind::TwilioTrunkNumber, &format!("{from}/{spare}"))
            .await
            .unwrap();
        assert_eq!(trunks_holding(&w, &spare).await, vec![to.clone()]);
    }
}

#[tokio::test]
async fn a_move_whose_attach_fails_puts_the_number_back() {
    let w = start(true).await;
    let main = sid("TK", "churchwiseai.pstn.twilio.com");
    let test = sid("TK", "churchwiseai-test.pstn.twilio.com");
    let spare = sid("PN", "+13658253552");
    w.sandbox.set_faults(cwa::sandbox::FaultConfig {
        rules: vec![cwa::sandbox::FaultRule {
            kind: cwa::sandbox::FaultKind::Error,
            method: Some("POST".into()),
            path_prefix: format!("/v1/Trunks/{main}/PhoneNumbers"),
            count: None,
            probability: None,
            seconds: None,
            status: Some(400),
        }],
        ..Default::default()
    });
    let attach = TwilioTrunkNumberSpec {
        trunk: Ref::Id(main.clone()),
        number: Ref::Id(spare.clone()),
    };
    let err = w
        .twilio
        .create(&write(
            "twilio_trunk_number.spare",
            Spec::TwilioTrunkNumber(attach),
        ))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ProviderError::Api { status: 400, .. }),
        "{err}"
    );
    w.sandbox.set_faults(cwa::sandbox::FaultConfig::default());
    assert_eq!(
        trunks_holding(&w, &spare).await,
        vec![test],
        "never left on no trunk"
    );
}

#[tokio::test]
async fn an_origination_only_trunk_has_no_domain() {
    let w = start(true).await;
    let trunk = TwilioTrunkSpec {
        friendly_name: "Origination only".into(),
        domain_name: String::new(),
        origination_urls: vec![livekit_url()],
    };
    let req = write("twilio_trunk.origination", Spec::TwilioTrunk(trunk.clone()));
    let made = w.twilio.create(&req).await.unwrap();
    assert_eq!(made.spec, Spec::TwilioTrunk(trunk.clone()));
    let found = w.twilio.find_created(&req).await.unwrap().unwrap();
    assert_eq!(
        found.id, made.id,
        "found again by name when it has no domain"
    );
    let other = TwilioTrunkSpec {
        friendly_name: "Another origination-only trunk".into(),
        ..trunk
    };
    let other_req = write("twilio_trunk.other", Spec::TwilioTrunk(other));
    assert!(
        w.twilio.find_created(&other_req).await.unwrap().is_none(),
        "an empty domain does not match every trunk without one"
    );
}
