//! Independent audit (red team) of the HTTP layer the providers share: a server on 127.0.0.1
//! that answers every request 429 with a hostile wait (`Retry-After`, `Retry-After-Ms`, Telnyx's
//! `x-ratelimit-reset`), against the real binary. A case whose fix belongs to
//! `src/providers/` (owned elsewhere) is committed as `#[ignore = "..."]` with what breaks.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use crate::common::stderr;

/// A Telnyx stand-in on an ephemeral port: every request is answered by `answer(request
/// line)` as (status line, extra headers, JSON body). Returns the base URL; the thread lives
/// as long as the test process.
fn serve(answer: impl Fn(&str) -> (&'static str, String, String) + Send + 'static) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut stream = stream;
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            let mut buf = [0u8; 8192];
            let n = stream.read(&mut buf).unwrap_or(0);
            let request = String::from_utf8_lossy(&buf[..n]);
            let (status, headers, body) = answer(request.lines().next().unwrap_or(""));
            let reply = format!(
                "HTTP/1.1 {status}\r\n{headers}content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(reply.as_bytes());
        }
    });
    url
}

/// Every request answered 429 with `header: value`.
fn always_429(header: &'static str, value: &'static str) -> String {
    serve(move |_| {
        (
            "429 Too Many Requests",
            format!("{header}: {value}\r\n"),
            r#"{"errors":[{"code":"10011","title":"Too many requests"}]}"#.to_string(),
        )
    })
}

const TELNYX_ONLY: &str = "version = 1\n\n[telnyx.texml_application.fallback]\nname = \"Fallback\"\nvoice_url = \"https://churchwiseai.com/api/voice/fallback\"\nvoice_method = \"post\"\n";

/// Runs `cwa plan` against the stand-in; a run still going after `deadline` is killed
/// (its exit code is then `None`).
fn plan_within(url: &str, deadline: Duration) -> (std::process::Output, Duration) {
    let env = [
        ("TELNYX_API_KEY", "KEY_audit_wire"),
        ("TELNYX_BASE_URL", url),
    ];
    plan_of(TELNYX_ONLY, &env, deadline)
}

/// Runs `cwa plan` on `lines` with only `env` (beside PATH) set; killed after `deadline`.
fn plan_of(
    lines: &str,
    env: &[(&str, &str)],
    deadline: Duration,
) -> (std::process::Output, Duration) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("lines.toml"), lines).unwrap();
    let started = Instant::now();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_cwa"))
        .current_dir(dir.path())
        .args(["plan"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("NO_COLOR", "1")
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("cwa runs");
    while started.elapsed() < deadline && child.try_wait().unwrap().is_none() {
        std::thread::sleep(Duration::from_millis(100));
    }
    if child.try_wait().unwrap().is_none() {
        let _ = child.kill();
    }
    let out = child.wait_with_output().expect("cwa is waited for");
    (out, started.elapsed())
}

fn plan_against(url: &str) -> (std::process::Output, Duration) {
    plan_within(url, Duration::from_secs(120))
}

/// A wait too large for a `Duration` (10^20 seconds, or as many milliseconds times 1000)
/// made `Duration::from_secs_f64` panic: `cwa plan` died with exit 101 and a backtrace (mid-
/// apply, the same panic would end the run without its summary). A hostile or broken server's
/// wait is capped like any other, and the command ends with a diagnostic (exit 1).
#[test]
fn a_wait_too_large_for_a_duration_is_capped_not_a_panic() {
    for (header, value) in [
        ("retry-after", "100000000000000000000"),
        ("retry-after", "1e20"),
        ("retry-after-ms", "1e23"),
        ("x-ratelimit-reset", "1e20"),
    ] {
        let (out, _) = plan_against(&always_429(header, value));
        let err = stderr(&out);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{header}: {value}: exit {:?}\n{err}",
            out.status.code()
        );
        assert!(!err.contains("panicked"), "{header}: {value}: {err}");
        assert!(
            err.contains("429"),
            "{header}: {value}: names the answer: {err}"
        );
    }
}

/// A negative or unreadable wait is ignored (backoff instead), and the command still ends
/// with a diagnostic naming the 429.
#[test]
fn a_negative_or_unreadable_wait_falls_back_to_backoff() {
    for (header, value) in [
        ("retry-after", "-5"),
        ("retry-after", "NaN"),
        ("retry-after", "inf"),
        ("x-ratelimit-reset", "-1e300"),
    ] {
        let (out, took) = plan_against(&always_429(header, value));
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{header}: {value}\n{err}");
        assert!(!err.contains("panicked"), "{header}: {value}: {err}");
        assert!(err.contains("429"), "{header}: {value}: {err}");
        assert!(
            took < Duration::from_secs(60),
            "{header}: {value}: took {took:?}"
        );
    }
}

/// Paging: a Telnyx answer whose `meta.total_pages` is absurd (10^12, with empty pages) made
/// `cwa plan` request page after page without end (about 20 pages a second here, memory
/// growing with every page kept for sorting). A page count the items cannot fill is a
/// diagnostic, and the command ends.
#[test]
fn a_page_count_no_answer_can_fill_ends_the_command() {
    for meta in [
        r#"{"total_pages":1000000000000,"page_number":1,"page_size":250,"total_results":0}"#,
        r#"{"total_pages":1000000000000,"page_number":1,"page_size":250}"#,
        r#"{"total_pages":1000000000000,"page_number":1,"page_size":250,"total_results":250000000000000}"#,
    ] {
        let body = format!(r#"{{"data":[],"meta":{meta}}}"#);
        let url = serve(move |_| ("200 OK", String::new(), body.clone()));
        let (out, took) = plan_within(&url, Duration::from_secs(30));
        assert!(
            out.status.code().is_some(),
            "{meta}: cwa plan was still paging after {took:?}"
        );
        assert_eq!(out.status.code(), Some(1), "{meta}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("cwa::provider::decode"),
            "{meta}: {}",
            stderr(&out)
        );
    }
}

/// Adaptive pacing (landed this session): Telnyx's `x-ratelimit-*` figures on an ordinary 200
/// are followed. A hostile `x-ratelimit-reset` of 10^19 or 10^20 seconds panicked
/// (`Instant + Duration` overflow, `Duration::from_secs_f64`), exit 101; one of 10^12 with
/// `remaining = 0` paused Telnyx for 10^12 seconds, so the next page never came (the
/// `Retry-After` path caps its wait at 60 s, this pause has no cap). The pause is bounded like
/// any server wait and the command ends.
#[test]
fn a_hostile_rate_limit_reset_on_an_ordinary_answer_neither_panics_nor_pauses_forever() {
    std::thread::scope(|scope| {
        for reset in ["1e19", "1e20", "1e12"] {
            scope.spawn(move || hostile_reset_once(reset));
        }
    });
}

/// One plan against a Telnyx stand-in whose first answer reports no requests left until
/// `reset` seconds from now; its later answers report a fresh window, as a real one would once
/// the pause has passed. Two pages, so the pause is waited out before the second.
fn hostile_reset_once(reset: &'static str) {
    let first = std::sync::atomic::AtomicBool::new(true);
    let url = serve(move |_| {
        let headers = if first.swap(false, std::sync::atomic::Ordering::SeqCst) {
            format!("x-ratelimit-limit: 100\r\nx-ratelimit-remaining: 0\r\nx-ratelimit-reset: {reset}\r\n")
        } else {
            "x-ratelimit-limit: 100\r\nx-ratelimit-remaining: 100\r\nx-ratelimit-reset: 60\r\n"
                .to_string()
        };
        (
            "200 OK",
            headers,
            r#"{"data":[],"meta":{"total_pages":2,"page_number":1,"page_size":250,"total_results":251}}"#
                .to_string(),
        )
    });
    let (out, took) = plan_within(&url, Duration::from_secs(90));
    let err = stderr(&out);
    assert!(
        out.status.code().is_some(),
        "reset {reset}: still paused after {took:?}"
    );
    assert!(!err.contains("panicked"), "reset {reset}: {err}");
    assert_eq!(out.status.code(), Some(0), "reset {reset}: {err}");
}

const TWILIO_ONLY: &str = "version = 1\n\n[policy]\ntwilio = \"read-only\"\n\n[twilio.trunk.main]\nname = \"Main\"\ndomain_name = \"main.pstn.twilio.com\"\n";

/// Paging at Twilio: a `next_page_uri` that leads back to a page already read (a server that
/// loops, or a hostile one) made `cwa plan` read the same page forever, memory growing with
/// every copy. A list ends at a cursor it has read before (`providers::common::Pages`, the
/// rule all three clients' paging loops ask), with a diagnostic.
#[test]
fn a_twilio_next_page_that_loops_back_ends_the_command() {
    for next in [
        "/v1/Trunks?PageSize=1000",
        "/v1/Trunks?Page=1&PageSize=1000",
    ] {
        let body = format!(
            r#"{{"trunks":[],"meta":{{"next_page_url":"https://trunking.twilio.com{next}"}}}}"#
        );
        let url = serve(move |line| {
            if line.contains("/Trunks") {
                ("200 OK", String::new(), body.clone())
            } else {
                (
                    "200 OK",
                    String::new(),
                    r#"{"incoming_phone_numbers":[],"next_page_uri":null}"#.to_string(),
                )
            }
        });
        let env = [
            ("TWILIO_ACCOUNT_SID", "AC00000000000000000000000000000000"),
            ("TWILIO_AUTH_TOKEN", "TOKEN_audit_wire"),
            ("TWILIO_API_BASE_URL", url.as_str()),
            ("TWILIO_TRUNKING_BASE_URL", url.as_str()),
        ];
        let (out, took) = plan_of(TWILIO_ONLY, &env, Duration::from_secs(30));
        assert!(
            out.status.code().is_some(),
            "{next}: cwa plan was still paging after {took:?}"
        );
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{next}: {err}");
        assert!(err.contains("cwa::provider::decode"), "{next}: {err}");
        assert!(err.contains("cursor"), "{next}: {err}");
    }
}
