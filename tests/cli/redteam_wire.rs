//! Red team (this session): a provider that answers in bad faith. A proxy on 127.0.0.1 stands
//! between cwa and the sandbox and rewrites answers: a list that repeats the protected trunk
//! under another id or lists its number twice, a 200 whose body is an error, a body cut short,
//! a body that never ends, a server that answers one byte a second, an error body carrying
//! terminal control. The promises: nothing protected is written, bad answers are diagnostics
//! (exit 1, never a panic, never a hang), and nothing is lost (a rerun against the honest
//! sandbox converges).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use futures::StreamExt;
use prost::Message;

use super::redteam_input::raw_controls;
use crate::common::{assert_exit, stderr, stdout, Ctx, PROTECTED_TRUNK};

/// What the proxy does with one request.
enum Answer {
    /// Forward it and return the sandbox's answer.
    Upstream,
    /// Forward it and return the sandbox's answer with its body rewritten.
    Edited(Box<dyn FnOnce(Vec<u8>) -> Vec<u8> + Send>),
    /// Do not forward it; answer this status and body.
    Instead(u16, Vec<u8>),
    /// Do not forward it; answer 200 with a body of `n` MiB of blanks.
    Endless(u64),
    /// Do not forward it; answer 200 and one byte a second, for ever.
    Dribble,
}

type Rule = Arc<dyn Fn(&str, &str) -> Answer + Send + Sync>;

/// The proxy: its URL, and how many body bytes it has handed to cwa.
struct Proxy {
    url: String,
    sent: Arc<AtomicU64>,
}

impl Proxy {
    async fn start(upstream: String, rule: Rule) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let sent = Arc::new(AtomicU64::new(0));
        let counter = sent.clone();
        let client = reqwest::Client::new();
        let app = axum::Router::new().fallback(move |req: Request| {
            let (rule, client, upstream, sent) = (
                rule.clone(),
                client.clone(),
                upstream.clone(),
                counter.clone(),
            );
            async move { answer(req, &rule, &client, &upstream, sent).await }
        });
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, sent }
    }

    /// The environment that points cwa at the proxy.
    fn env(&self) -> Vec<(String, String)> {
        cwa::sandbox::env_for(&self.url)
    }
}

async fn answer(
    req: Request,
    rule: &Rule,
    client: &reqwest::Client,
    upstream: &str,
    sent: Arc<AtomicU64>,
) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let target = format!(
        "{upstream}{}",
        req.uri().path_and_query().map_or("", |p| p.as_str())
    );
    let mut headers = req.headers().clone();
    headers.remove("host");
    let body = axum::body::to_bytes(req.into_body(), usize::MAX)
        .await
        .unwrap();
    let forward = || async {
        let resp = client
            .request(method.clone(), &target)
            .headers(headers.clone())
            .body(body.clone())
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let kind = resp.headers().get("content-type").cloned();
        (status, kind, resp.bytes().await.unwrap().to_vec())
    };
    let built = |status: u16, kind: Option<axum::http::HeaderValue>, body: Body| {
        let mut r = Response::builder().status(status);
        if let Some(k) = kind {
            r = r.header("content-type", k);
        }
        r.body(body).unwrap()
    };
    match rule(method.as_str(), &path) {
        Answer::Upstream => {
            let (status, kind, bytes) = forward().await;
            built(status, kind, Body::from(bytes))
        }
        Answer::Edited(edit) => {
            let (status, kind, bytes) = forward().await;
            built(status, kind, Body::from(edit(bytes)))
        }
        Answer::Instead(status, bytes) => built(
            status,
            Some("application/json".parse().unwrap()),
            Body::from(bytes),
        ),
        Answer::Endless(mib) => {
            let chunks = futures::stream::iter(0..mib).map(move |_| {
                sent.fetch_add(1 << 20, Ordering::SeqCst);
                Ok::<_, std::io::Error>(axum::body::Bytes::from(vec![b' '; 1 << 20]))
            });
            built(
                200,
                Some("application/json".parse().unwrap()),
                Body::from_stream(chunks),
            )
        }
        Answer::Dribble => {
            let drip = futures::stream::unfold((), move |()| async move {
                tokio::time::sleep(Duration::from_secs(1)).await;
                Some((
                    Ok::<_, std::io::Error>(axum::body::Bytes::from_static(b" ")),
                    (),
                ))
            });
            built(
                200,
                Some("application/json".parse().unwrap()),
                Body::from_stream(drip),
            )
        }
    }
}

/// Runs cwa in `ctx` through `proxy`, with `extra` environment.
async fn through(
    ctx: &Ctx,
    proxy: &Proxy,
    args: &[&str],
    extra: &[(&str, &str)],
) -> std::process::Output {
    let env = proxy.env();
    let mut all: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    all.extend_from_slice(extra);
    ctx.cwa_env(args, &all).await
}

fn is_twirp(path: &str, method: &str) -> bool {
    path == format!("/twirp/livekit.SIP/{method}")
}

/// Rewrites the protobuf `ListSIPInboundTrunk` answer with `edit`.
fn edit_inbound(edit: fn(&mut Vec<livekit_protocol::SipInboundTrunkInfo>)) -> Answer {
    Answer::Edited(Box::new(move |bytes| {
        let mut list = livekit_protocol::ListSipInboundTrunkResponse::decode(&bytes[..])
            .expect("a protobuf list");
        edit(&mut list.items);
        list.encode_to_vec()
    }))
}

/// LiveKit lists the protected trunk twice: once as itself and once under another id
/// (`ST_Impostor00001`), with the same name and numbers; another time with its numbers
/// listed twice. Plan and apply must write neither the protected trunk nor the impostor,
/// and a rerun against the honest sandbox converges.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_that_repeats_the_protected_trunk_writes_nothing_protected() {
    let edits: [fn(&mut Vec<livekit_protocol::SipInboundTrunkInfo>); 2] = [
        |items| {
            let mut twin = items
                .iter()
                .find(|t| t.sip_trunk_id == PROTECTED_TRUNK)
                .expect("the protected trunk is listed")
                .clone();
            twin.sip_trunk_id = "ST_Impostor00001".into();
            items.push(twin);
        },
        |items| {
            for t in items
                .iter_mut()
                .filter(|t| t.sip_trunk_id == PROTECTED_TRUNK)
            {
                let again = t.numbers.clone();
                t.numbers.extend(again);
            }
        },
    ];
    for (i, edit) in edits.into_iter().enumerate() {
        let ctx = Ctx::runbook().await;
        let rule: Rule = Arc::new(move |_, path| {
            if is_twirp(path, "ListSIPInboundTrunk") {
                edit_inbound(edit)
            } else {
                Answer::Upstream
            }
        });
        let proxy = Proxy::start(ctx.sb.sandbox.base_url(), rule).await;
        let out = through(&ctx, &proxy, &["apply", "--auto-approve"], &[]).await;
        let text = format!("{}{}", stdout(&out), stderr(&out));
        assert!(
            matches!(out.status.code(), Some(0 | 1)),
            "case {i}: exit {:?}\n{text}",
            out.status.code()
        );
        assert!(!text.contains("panicked"), "case {i}: {text}");
        let stray: Vec<_> = ctx
            .writes()
            .into_iter()
            .filter(|w| {
                w.resource_id
                    .as_deref()
                    .is_some_and(|id| id == "ST_Impostor00001" || id == PROTECTED_TRUNK)
            })
            .collect();
        assert!(stray.is_empty(), "case {i}: {stray:?}\n{text}");
        ctx.assert_protected_untouched();
        assert_exit(&ctx.cwa(&["apply", "--auto-approve"]).await, 0);
        assert_exit(&ctx.cwa(&["plan", "--detailed-exitcode"]).await, 0);
    }
}

/// Answers that are not what they say: a read whose body is cut in half, a read answered 200
/// with an error body, a write answered 200 with an error body (the write never reached the
/// provider). Each is a diagnostic (exit 1), never a panic; a read fault comes before any
/// write; a lost write is redone by the rerun, which then converges.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_that_lie_are_diagnostics_and_a_rerun_converges() {
    let error_body =
        br#"{"errors":[{"code":"10015","title":"Bad Request","detail":"rejected"}]}"#.to_vec();
    let cases: Vec<(&str, Rule, bool)> = vec![
        (
            "truncated read",
            Arc::new(|m, p| match (m, p) {
                ("GET", "/v2/phone_numbers") => {
                    Answer::Edited(Box::new(|b| b[..b.len() / 2].to_vec()))
                }
                _ => Answer::Upstream,
            }),
            true,
        ),
        (
            "200 error body on a read",
            Arc::new({
                let body = error_body.clone();
                move |m, p| match (m, p) {
                    ("GET", "/v2/credential_connections") => Answer::Instead(200, body.clone()),
                    _ => Answer::Upstream,
                }
            }),
            true,
        ),
        (
            "200 error body on a write",
            Arc::new({
                let body = error_body.clone();
                move |m, p| match m {
                    "PATCH" if p.starts_with("/v2/credential_connections/") => {
                        Answer::Instead(200, body.clone())
                    }
                    _ => Answer::Upstream,
                }
            }),
            false,
        ),
    ];
    for (case, rule, read) in cases {
        let ctx = Ctx::runbook().await;
        let proxy = Proxy::start(ctx.sb.sandbox.base_url(), rule).await;
        let out = through(&ctx, &proxy, &["apply", "--auto-approve"], &[]).await;
        let err = format!("{}{}", stdout(&out), stderr(&out));
        assert_eq!(out.status.code(), Some(1), "{case}:\n{err}");
        assert!(!err.contains("panicked"), "{case}: {err}");
        assert!(
            err.contains("telnyx"),
            "{case}: the diagnostic names the provider: {err}"
        );
        if read {
            assert!(
                ctx.writes().is_empty(),
                "{case}: written after a bad read: {:?}\n{err}",
                ctx.writes()
            );
        }
        assert_exit(&ctx.cwa(&["apply", "--auto-approve"]).await, 0);
        assert_exit(&ctx.cwa(&["plan", "--detailed-exitcode"]).await, 0);
    }
}

/// A body that never ends (here: 512 MiB of blanks) and a server that sends one byte a
/// second. cwa must give up in bounded time and bounded memory, with a diagnostic: reading the
/// whole body into memory lets any answer exhaust the machine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_never_ends_is_cut_off_and_a_slow_server_times_out() {
    let ctx = Ctx::runbook().await;
    let rule: Rule = Arc::new(|m, p| match (m, p) {
        ("GET", "/v2/phone_numbers") => Answer::Endless(512),
        _ => Answer::Upstream,
    });
    let proxy = Proxy::start(ctx.sb.sandbox.base_url(), rule).await;
    let out = through(&ctx, &proxy, &["plan"], &[("CWA_HTTP_TIMEOUT_MS", "20000")]).await;
    assert_exit(&out, 1);
    let sent = proxy.sent.load(Ordering::SeqCst) >> 20;
    assert!(
        sent < 256,
        "cwa read {sent} MiB of one answer:\n{}",
        stderr(&out)
    );

    let rule: Rule = Arc::new(|m, p| match (m, p) {
        ("GET", "/v2/phone_numbers") => Answer::Dribble,
        _ => Answer::Upstream,
    });
    let proxy = Proxy::start(ctx.sb.sandbox.base_url(), rule).await;
    let started = Instant::now();
    let out = through(&ctx, &proxy, &["plan"], &[("CWA_HTTP_TIMEOUT_MS", "1500")]).await;
    assert_exit(&out, 1);
    assert!(
        started.elapsed() < Duration::from_secs(90),
        "a dribbling server held plan for {:?}",
        started.elapsed()
    );
    assert!(ctx.writes().is_empty());
}

/// A provider error whose body carries terminal control (a window title, a line erase, a bidi
/// override) in its `detail`: the diagnostic shows it as data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_error_bodies_reach_the_terminal_as_data() {
    let ctx = Ctx::runbook().await;
    let body = "{\"errors\":[{\"code\":\"10015\",\"title\":\"Bad \\u001b]0;PWNED\\u0007\",\"detail\":\"\\u001b[2K\\u202eevil\"}]}";
    let rule: Rule = Arc::new(move |m, p| match m {
        "PATCH" if p.starts_with("/v2/credential_connections/") => {
            Answer::Instead(422, body.as_bytes().to_vec())
        }
        "GET" if p == "/v2/fqdns" => Answer::Instead(400, body.as_bytes().to_vec()),
        _ => Answer::Upstream,
    });
    let proxy = Proxy::start(ctx.sb.sandbox.base_url(), rule).await;
    for args in [&["plan"][..], &["check"]] {
        let out = through(&ctx, &proxy, args, &[]).await;
        let text = format!("{}{}", stdout(&out), stderr(&out));
        let raw = raw_controls(&text);
        assert!(raw.is_empty(), "{args:?}: raw {raw:?} in:\n{text}");
    }
    let rule: Rule = Arc::new(move |m, p| match m {
        "PATCH" if p.starts_with("/v2/credential_connections/") => {
            Answer::Instead(422, body.as_bytes().to_vec())
        }
        _ => Answer::Upstream,
    });
    let proxy = Proxy::start(ctx.sb.sandbox.base_url(), rule).await;
    let out = through(&ctx, &proxy, &["apply", "--auto-approve"], &[]).await;
    assert_exit(&out, 1);
    let text = format!("{}{}", stdout(&out), stderr(&out));
    let raw = raw_controls(&text);
    assert!(raw.is_empty(), "apply: raw {raw:?} in:\n{text}");
}

/// The account's number list answered 200 with an error body (no `data`), after an apply
/// that bought two numbers: read as "no numbers", the plan would order every owned number
/// again. It is a decode error before any write, and no number is ordered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_number_list_answered_with_an_error_body_buys_nothing() {
    // An account whose numbers are all bought by area code: nothing else stops the plan.
    let ctx = Ctx::with_world("synthetic:0", &cwa::synthetic::lines_toml_with_new(0, 2)).await;
    assert_exit(&ctx.cwa(&["apply", "--auto-approve"]).await, 0);
    let orders = |ctx: &Ctx| {
        ctx.writes()
            .iter()
            .filter(|w| w.path == "/v2/number_orders")
            .count()
    };
    let bought = orders(&ctx);
    let rule: Rule = Arc::new(|m, p| match (m, p) {
        ("GET", "/v2/phone_numbers") => Answer::Instead(
            200,
            br#"{"errors":[{"code":"10007","title":"Unexpected error","detail":"try again"}]}"#
                .to_vec(),
        ),
        _ => Answer::Upstream,
    });
    let proxy = Proxy::start(ctx.sb.sandbox.base_url(), rule).await;
    let writes = ctx.writes().len();
    for args in [&["plan"][..], &["apply", "--auto-approve"]] {
        let out = through(&ctx, &proxy, args, &[]).await;
        let text = format!("{}{}", stdout(&out), stderr(&out));
        assert_eq!(out.status.code(), Some(1), "{args:?}:\n{text}");
        assert!(text.contains("cwa::provider::decode"), "{args:?}:\n{text}");
    }
    assert_eq!(ctx.writes().len(), writes, "{:?}", ctx.writes());
    assert_eq!(orders(&ctx), bought);
    assert_exit(&ctx.cwa(&["plan", "--detailed-exitcode"]).await, 0);
}
