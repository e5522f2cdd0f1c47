//! Pacing and paging against a sandbox that enforces and reports each provider's own limits
//! (issue 17): Telnyx's `x-ratelimit-*` figures and 429 code 10011, LiveKit's
//! `resource_exhausted`, Twilio's concurrency limit (20429). The run slows to the provider's
//! pace and converges, no write is made twice, a create refused with 429 is looked up before it
//! is sent again, and lists longer than a page are read whole.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use cwa::model::{Kind, LiveObject, OutboundVoiceProfileSpec, ProviderName, Spec};
use cwa::providers::livekit::LivekitProvider;
use cwa::providers::telnyx::TelnyxProvider;
use cwa::providers::twilio::TwilioProvider;
use cwa::providers::{ClientOptions, Env, Provider, WriteRequest};
use cwa::sandbox::limits::LimitConfig;
use cwa::sandbox::{read_request_log, RequestLogEntry, Sandbox, SandboxOptions};

fn client() -> ClientOptions {
    ClientOptions {
        backoff_base: Duration::from_millis(50),
        max_retries: 10,
        ..ClientOptions::default()
    }
}

async fn limited(dir: &tempfile::TempDir, world: &str, limits: &str) -> Sandbox {
    let mut opts = SandboxOptions::new(dir.path(), world);
    opts.latency_ms = 5;
    opts.limits = Some(LimitConfig::parse(limits).unwrap());
    Sandbox::start(opts).await.unwrap()
}

fn log(dir: &tempfile::TempDir, provider: &str) -> Vec<RequestLogEntry> {
    read_request_log(dir.path())
        .unwrap()
        .into_iter()
        .filter(|e| e.provider == provider)
        .collect()
}

fn ids(objects: &[LiveObject]) -> BTreeSet<(Kind, String)> {
    objects.iter().map(|o| (o.kind(), o.id.clone())).collect()
}

/// A Telnyx create whose duplicates are easy to count: an outbound voice profile by name.
pub fn voice_profile(name: &str) -> WriteRequest {
    WriteRequest {
        object: format!("telnyx_outbound_voice_profile.{name}"),
        spec: Spec::TelnyxOutboundVoiceProfile(OutboundVoiceProfileSpec {
            name: name.into(),
            enabled: true,
            whitelisted_destinations: vec!["US".into()],
        }),
        reference: String::new(),
    }
}

/// How many objects of each kind (a synthetic world's LiveKit ids differ between sandboxes).
fn counts(objects: &[LiveObject]) -> BTreeMap<Kind, usize> {
    let mut out = BTreeMap::new();
    for o in objects {
        *out.entry(o.kind()).or_default() += 1;
    }
    out
}

async fn unlimited_refresh(world: &str, provider: ProviderName) -> Vec<LiveObject> {
    let dir = tempfile::tempdir().unwrap();
    let sb = Sandbox::start(SandboxOptions::new(dir.path(), world))
        .await
        .unwrap();
    let env = Env::from_pairs(sb.env());
    let providers = cwa::providers::connect(&env, &client(), &[provider]).unwrap();
    providers.get(provider).unwrap().refresh().await.unwrap()
}

/// Telnyx at 4 requests a second: the refresh of a world of more than one page per list
/// follows the remaining/reset figures, so at most the opening burst is refused, and every
/// object is read.
#[tokio::test]
async fn telnyx_rate_figures_are_followed_and_every_page_is_read() {
    let world = "synthetic:600";
    let expected = unlimited_refresh(world, ProviderName::Telnyx).await;
    let numbers = expected
        .iter()
        .filter(|o| o.kind() == Kind::TelnyxNumber)
        .count();
    assert!(numbers > 2 * cwa::providers::telnyx::PAGE_SIZE as usize);

    let dir = tempfile::tempdir().unwrap();
    let sb = limited(&dir, world, "telnyx=4/1s").await;
    let telnyx = TelnyxProvider::from_env(&Env::from_pairs(sb.env()), &client()).unwrap();
    let got = telnyx.refresh().await.unwrap();
    assert!(ids(&got) == ids(&expected), "every page read, nothing lost");
    let entries = log(&dir, "telnyx");
    let refused = entries.iter().filter(|e| e.status == 429).count();
    let served = entries.len() - refused;
    assert!(served >= 6, "{served} lists and pages");
    assert!(
        refused <= 6,
        "after the opening burst the client follows the figures: {refused} refused of {}",
        entries.len()
    );
}

/// LiveKit reports nothing but `resource_exhausted`: the client halves its rate at each and
/// converges on a world whose lists need several pages.
#[tokio::test]
async fn livekit_resource_exhausted_slows_the_pace_until_the_run_converges() {
    let world = "synthetic:1200";
    let expected = unlimited_refresh(world, ProviderName::Livekit).await;
    let dir = tempfile::tempdir().unwrap();
    let sb = limited(&dir, world, "livekit=3/1s").await;
    sb.world().lock().unwrap().livekit.list_page_cap =
        Some(cwa::providers::livekit::PAGE_LIMIT as usize);
    let livekit = LivekitProvider::from_env(&Env::from_pairs(sb.env()), &client()).unwrap();
    let got = livekit.refresh().await.unwrap();
    assert_eq!(counts(&got), counts(&expected));
    assert_eq!(ids(&got).len(), got.len(), "no object read twice");
    let entries = log(&dir, "livekit");
    let refused = entries.iter().filter(|e| e.status == 429).count();
    assert!(refused >= 1, "the limit was met");
    assert!(
        refused * 2 <= entries.len(),
        "the pace followed the 429s: {refused} refused of {}",
        entries.len()
    );
}

/// Twilio limits requests in flight: a client starting at 4 against a limit of 2 meets 20429s,
/// halves its concurrency and reads every number of a list longer than one 1,000-item page.
#[tokio::test]
async fn twilio_concurrency_limit_is_followed_and_1000_item_pages_are_read_whole() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = SandboxOptions::new(dir.path(), "runbook");
    opts.latency_ms = 30;
    opts.limits = Some(LimitConfig::parse("twilio=2").unwrap());
    let sb = Sandbox::start(opts).await.unwrap();
    {
        let world = sb.world();
        let mut world = world.lock().unwrap();
        let template = world.twilio.numbers.values().next().unwrap().clone();
        for i in 0..1500u32 {
            let mut n = template.clone();
            n.sid = format!("PN{:032x}", 0xa000_0000u64 + u64::from(i));
            n.phone_number = format!("+1415555{:04}", i);
            n.trunk_sid = None;
            world.twilio.numbers.insert(n.sid.clone(), n);
        }
    }
    let twilio = TwilioProvider::from_env(&Env::from_pairs(sb.env()), &client()).unwrap();
    let got = twilio.refresh().await.unwrap();
    let numbers = got
        .iter()
        .filter(|o| o.kind() == Kind::TwilioNumber)
        .count();
    assert_eq!(numbers, sb.world().lock().unwrap().twilio.numbers.len());
    assert!(numbers > 1500);
    let entries = log(&dir, "twilio");
    let pages = entries
        .iter()
        .filter(|e| e.status == 200 && e.path.contains("IncomingPhoneNumbers"))
        .count();
    assert_eq!(
        pages, 2,
        "PageSize=1000: two pages, followed by next_page_uri"
    );
}

/// A create Telnyx refuses with 429 (code 10011) is not sent again blindly: Telnyx does not
/// document that a 429'd request was not carried out, so the client looks the object up
/// before the second POST, and exactly one profile is made.
#[tokio::test]
async fn a_create_refused_with_429_is_looked_up_before_it_is_sent_again() {
    let dir = tempfile::tempdir().unwrap();
    let sb = limited(&dir, "runbook", "telnyx=1/4s").await;
    let env = Env::from_pairs(sb.env());
    let reader = TelnyxProvider::from_env(&env, &client()).unwrap();
    // Another client spends the window, so this one's first POST meets the limit.
    let _ = reader.read(Kind::TelnyxOutboundVoiceProfile, "none").await;
    let writer = TelnyxProvider::from_env(&env, &client()).unwrap();
    let name = "CWA Paced";
    writer.create(&voice_profile(name)).await.unwrap();

    let entries = log(&dir, "telnyx");
    let posts: Vec<usize> = entries
        .iter()
        .enumerate()
        .filter(|(_, e)| e.method == "POST")
        .map(|(i, _)| i)
        .collect();
    assert!(posts.len() >= 2, "the first POST was refused: {entries:#?}");
    assert_eq!(entries[posts[0]].status, 429);
    let between = &entries[posts[0] + 1..posts[1]];
    assert!(
        between.iter().any(|e| e.method == "GET"
            && e.path.contains("outbound_voice_profiles")
            && e.status == 200),
        "looked up before the second POST: {entries:#?}"
    );
    let world = sb.world();
    let world = world.lock().unwrap();
    let copies = world
        .telnyx
        .outbound_voice_profiles
        .values()
        .filter(|p| p["name"] == name)
        .count();
    assert_eq!(copies, 1);
}
