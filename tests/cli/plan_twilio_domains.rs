//! Issue 13: Twilio keeps a deleted trunk's domain reserved for up to 30 days (error 21248).
//! A plan whose create needs such a domain warns before apply, and the sandbox refuses the
//! create as Twilio would.

use crate::common::{assert_exit, stdout, Ctx};
use cwa::sandbox::twilio::runbook_sid;
use reqwest::Method;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_on_a_reserved_domain_is_warned_about() {
    let ctx = Ctx::runbook().await;
    ctx.edit_lines_toml(r#"twilio = "read-only""#, r#"twilio = "read-write""#);
    assert_exit(&ctx.cwa(&["import"]).await, 0);
    let test_trunk = runbook_sid("TK", "churchwiseai-test.pstn.twilio.com");
    let (status, _) = crate::common::sandbox::send(
        ctx.sb
            .twilio(Method::DELETE, &format!("/v1/Trunks/{test_trunk}")),
    )
    .await;
    assert_eq!(status, 204);

    let out = ctx.cwa(&["plan", "--json"]).await;
    let plan: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("a JSON plan");
    let warning = plan["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "twilio-domain-reserved")
        .unwrap_or_else(|| panic!("no reserved-domain warning in {:#}", plan["checks"]));
    assert_eq!(warning["severity"], "warning");
    assert_eq!(warning["address"], "twilio_trunk.test");
    assert!(warning["message"]
        .as_str()
        .unwrap()
        .contains("churchwiseai-test.pstn.twilio.com"));
}
