//! The LiveKit client's `PhoneNumberService` calls (issue 20) against the strict sandbox over
//! real loopback HTTP: a purchase bought once, found again after a lost answer, by area code,
//! attached, released, and the write guard.

use std::time::Duration;

use cwa::providers::livekit::numbers::{HeldNumber, Wanted};
use cwa::providers::livekit::LivekitProvider;
use cwa::providers::{ClientOptions, Env};
use cwa::sandbox::{FaultKind, FaultRule, Sandbox};
use serde_json::json;

use crate::common::sandbox::{livekit_admin_token, strict_options};

const PURCHASE: &str = "/twirp/livekit.PhoneNumberService/PurchasePhoneNumber";

struct World {
    dir: tempfile::TempDir,
    sandbox: Sandbox,
    livekit: LivekitProvider,
}

async fn start(faults: Vec<FaultRule>, protected: &[&str]) -> World {
    let dir = tempfile::tempdir().unwrap();
    let mut options = strict_options(dir.path(), "empty");
    options.faults = faults;
    let sandbox = Sandbox::start(options).await.unwrap();
    let env = Env::from_pairs(sandbox.env());
    let opts = ClientOptions {
        backoff_base: Duration::from_millis(20),
        protected_ids: protected.iter().map(|s| s.to_string()).collect(),
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
    /// A no-trunk dispatch rule filtering on `number`, made first as the chain requires.
    async fn rule(&self, number: &str) -> String {
        let res: serde_json::Value = reqwest::Client::new()
            .post(format!(
                "{}/twirp/livekit.SIP/CreateSIPDispatchRule",
                self.sandbox.base_url()
            ))
            .bearer_auth(livekit_admin_token())
            .header("content-type", "application/json")
            .body(
                json!({"dispatch_rule": {
                    "name": format!("line {number}"),
                    "numbers": [number],
                    "rule": {"dispatchRuleIndividual": {"roomPrefix": "call-"}},
                    "roomConfig": {"agents": [{"agentName": "churchwiseai-voice"}]},
                }})
                .to_string(),
            )
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        res["sip_dispatch_rule_id"].as_str().unwrap().to_string()
    }

    fn held_in_world(&self) -> usize {
        let world = self.sandbox.world();
        let held = world.lock().unwrap().livekit.phone_numbers.0.len();
        held
    }

    fn purchases_sent(&self) -> usize {
        cwa::sandbox::read_request_log(self.dir.path())
            .unwrap()
            .iter()
            .filter(|e| e.path == PURCHASE)
            .count()
    }
}

fn fixed(n: &str) -> Wanted {
    Wanted::Fixed(n.to_string())
}

#[tokio::test]
async fn a_number_is_bought_once_and_listed_with_its_rule() {
    let w = start(Vec::new(), &[]).await;
    let rule = w.rule("+14155550123").await;
    let bought = w
        .livekit
        .purchase_number(&fixed("+14155550123"), &rule)
        .await
        .unwrap();
    assert!(bought.id.starts_with("PN_"), "{bought:?}");
    assert_eq!(bought.rule_ids, std::slice::from_ref(&rule));
    assert_eq!(
        w.livekit.list_numbers().await.unwrap(),
        std::slice::from_ref(&bought)
    );
    // A second apply asks again: the rule already holds it, nothing is sent.
    let again = w
        .livekit
        .purchase_number(&fixed("+14155550123"), &rule)
        .await
        .unwrap();
    assert_eq!(again, bought);
    assert_eq!((w.held_in_world(), w.purchases_sent()), (1, 1));
}

#[tokio::test]
async fn a_purchase_whose_answer_is_lost_is_found_by_its_rule_not_bought_twice() {
    let lost = FaultRule {
        kind: FaultKind::LostResponse,
        method: Some("POST".into()),
        path_prefix: PURCHASE.into(),
        count: Some(1),
        probability: None,
        seconds: None,
        status: None,
    };
    let w = start(vec![lost], &[]).await;
    let rule = w.rule("+15105550142").await;
    let bought = w
        .livekit
        .purchase_number(&fixed("+15105550142"), &rule)
        .await
        .unwrap();
    assert_eq!(bought.number, "+15105550142");
    assert_eq!(
        (w.held_in_world(), w.purchases_sent()),
        (1, 1),
        "the lost purchase was looked up by ListPhoneNumbers, not sent again"
    );
    let log = cwa::sandbox::read_request_log(w.dir.path()).unwrap();
    let purchase = log.iter().find(|e| e.path == PURCHASE).unwrap();
    assert_eq!(purchase.status, 0, "the fault dropped the answer");
    assert!(log
        .iter()
        .skip_while(|e| e.path != PURCHASE)
        .any(|e| e.path.ends_with("/ListPhoneNumbers")));
}

#[tokio::test]
async fn an_auto_number_is_the_first_one_offered_in_the_area_code() {
    let w = start(Vec::new(), &[]).await;
    let rule = w.rule("+15105550100").await;
    let bought = w
        .livekit
        .purchase_number(&Wanted::AreaCode("510".into()), &rule)
        .await
        .unwrap();
    assert_eq!(bought.number, "+15105550100");
    // Asked again, the rule's number in that area code is the earlier purchase.
    let again = w
        .livekit
        .purchase_number(&Wanted::AreaCode("510".into()), &rule)
        .await
        .unwrap();
    assert_eq!(again.id, bought.id);
    assert_eq!(w.purchases_sent(), 1);
    assert_eq!(
        w.livekit.search_numbers("510", 1).await.unwrap(),
        ["+15105550101"]
    );
}

#[tokio::test]
async fn numbers_of_other_rules_are_listed_but_never_taken_for_this_lines() {
    let w = start(Vec::new(), &[]).await;
    let other = w.rule("+12125550100").await;
    let mine = w.rule("+12125550101").await;
    let theirs = w
        .livekit
        .purchase_number(&fixed("+12125550100"), &other)
        .await
        .unwrap();
    assert_eq!(w.livekit.numbers_for_rule(&mine).await.unwrap(), []);
    let bought = w
        .livekit
        .purchase_number(&Wanted::AreaCode("212".into()), &mine)
        .await
        .unwrap();
    assert_eq!(bought.number, "+12125550101");
    let all: Vec<HeldNumber> = w.livekit.list_numbers().await.unwrap();
    assert_eq!(all.len(), 2);
    assert!(all.contains(&theirs));
}

#[tokio::test]
async fn release_drops_the_number_and_is_done_when_already_released() {
    let w = start(Vec::new(), &[]).await;
    let rule = w.rule("+14155550150").await;
    let bought = w
        .livekit
        .purchase_number(&fixed("+14155550150"), &rule)
        .await
        .unwrap();
    let detached = w.livekit.attach_number(&bought.id, "").await.unwrap();
    assert_eq!(detached.rule_ids, Vec::<String>::new());
    let attached = w.livekit.attach_number(&bought.id, &rule).await.unwrap();
    assert_eq!(attached.rule_ids, std::slice::from_ref(&rule));
    w.livekit.release_number(&bought.id).await.unwrap();
    assert_eq!(w.livekit.list_numbers().await.unwrap(), []);
    w.livekit.release_number(&bought.id).await.unwrap();
    let world = w.sandbox.world().lock().unwrap().livekit.phone_numbers.0[&bought.id].clone();
    assert_eq!(
        world.status,
        livekit_protocol::PhoneNumberStatus::Released as i32
    );
}

#[tokio::test]
async fn the_write_guard_refuses_releasing_a_protected_number() {
    // The id is known only after purchase, so protect it on a second client.
    let w = start(Vec::new(), &[]).await;
    let rule = w.rule("+14155550160").await;
    let bought = w
        .livekit
        .purchase_number(&fixed("+14155550160"), &rule)
        .await
        .unwrap();
    let env = Env::from_pairs(w.sandbox.env());
    let guarded = LivekitProvider::from_env(
        &env,
        &ClientOptions {
            protected_ids: vec![bought.id.clone()],
            ..ClientOptions::default()
        },
    )
    .unwrap();
    let refused = guarded.release_number(&bought.id).await.unwrap_err();
    assert!(refused.to_string().contains(&bought.id), "{refused}");
    assert_eq!(w.livekit.list_numbers().await.unwrap(), [bought]);
}
