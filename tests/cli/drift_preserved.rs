//! Issue 13: drift sees changes to the LiveKit settings cwa keeps but does not declare (an
//! agent's deployment, media encryption, the auth realm, room timeouts), which plan never
//! shows because cwa never writes them.

use crate::common::{assert_exit, stdout, Ctx};
use cwa::drift::DriftReport;

const MEDHANIALEM_TRUNK: &str = "ST_LWgmiBSwTk7P";
const MEDHANIALEM_RULE: &str = "SDR_4hTq8WnZpK3m";

async fn drift(ctx: &Ctx, code: i32) -> DriftReport {
    let out = ctx.cwa(&["drift", "--json"]).await;
    assert_exit(&out, code);
    serde_json::from_str(&stdout(&out)).expect("a drift report")
}

fn field<'a>(report: &'a DriftReport, address: &str, field: &str) -> &'a cwa::drift::Changed {
    report
        .changed
        .iter()
        .find(|c| c.address.to_string() == address && c.field == field)
        .unwrap_or_else(|| panic!("no change of {address} {field} in {report:#?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_edits_of_preserved_settings_are_drift_and_not_plan_changes() {
    let ctx = Ctx::runbook().await;
    assert_exit(&ctx.cwa(&["import"]).await, 0);
    assert_exit(&ctx.cwa(&["apply", "--auto-approve"]).await, 0);
    let clean = drift(&ctx, 0).await;
    assert!(!clean.drift, "{clean:#?}");

    {
        let world = ctx.sb.sandbox.world();
        let mut world = world.lock().unwrap();
        let lk = &mut world.livekit;
        let rule = lk.dispatch_rules.0.get_mut(MEDHANIALEM_RULE).unwrap();
        let config = rule.room_config.as_mut().unwrap();
        config.agents[0].deployment = "staging".into();
        config.empty_timeout = 600;
        let trunk = lk.inbound_trunks.0.get_mut(MEDHANIALEM_TRUNK).unwrap();
        trunk.auth_realm = "elsewhere.example".into();
        trunk.media = Some(livekit_protocol::SipMediaConfig {
            encryption: Some(livekit_protocol::SipMediaEncryption::SipMediaEncryptRequire as i32),
            ..Default::default()
        });
    }

    let report = drift(&ctx, 2).await;
    let rule = "livekit_dispatch_rule.medhanialem";
    let deployment = field(
        &report,
        rule,
        "preserved.agents.churchwiseai-voice.deployment",
    );
    assert_eq!(deployment.declared, serde_json::Value::Null);
    assert_eq!(deployment.live, "staging");
    assert_eq!(
        field(&report, rule, "preserved.room_config.empty_timeout").live,
        "600"
    );
    let trunk = "livekit_inbound_trunk.medhanialem";
    assert_eq!(
        field(&report, trunk, "preserved.auth_realm").live,
        "elsewhere.example"
    );
    assert_eq!(
        field(&report, trunk, "preserved.media.encryption").live,
        "SIP_MEDIA_ENCRYPT_REQUIRE"
    );
    let human = stdout(&ctx.cwa(&["drift"]).await);
    assert!(
        human.contains("preserved.agents.churchwiseai-voice.deployment"),
        "{human}"
    );

    let plan = ctx.cwa(&["plan", "--detailed-exitcode"]).await;
    assert_exit(&plan, 0);
}
