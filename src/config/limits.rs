//! The limits providers enforce on what lines.toml declares, checked at validate so a value a
//! provider would refuse is a diagnostic at its line, not a failed apply halfway through.
//!
//! | Value | Limit | Source |
//! |---|---|---|
//! | credential connection `user_name` | 4–32 ASCII letters and digits | Telnyx: reference/telnyx.md (the sandbox enforces it) |
//! | credential connection password (`password_env`, when set) | 8–128 characters | Telnyx: reference/telnyx.md |
//! | outbound voice profile `name` | 3+ characters | spec3.yml, CreateOutboundVoiceProfileRequest `name.minLength: 3` |
//! | any `name` (church, connection, profile, trunk, rule, TeXML) | at most 255 characters | assumption: cwa copies names into provider names and metadata; no provider documents a larger one |
//! | NANP area codes (`area_code`, the NPA of a `+1` number) | NXX with N in 2–9; not N11 (211…911), not 555, not 0xx/1xx (000, 100) | NANPA numbering plan |
//! | `area_code` of an `auto` number (a local number bought by area code) | also not N9X (299…999) nor 37X/96X (reserved for expansion, never assigned), not N00 (non-geographic), not toll-free 8YY (800, 833 … 888) | NANPA numbering plan; a fixed number may still be toll-free (the protected trunk's is) |
//!
//! | church key and line key (`[church.<key>]`, `[church.<key>.lines.<line>]`) | 1–64 lower-case ASCII letters, digits, `_` or `-` | cwa's own rule: the key is the name part of the line's addresses (`telnyx_number.<key>`, `--target church.<key>`) and of provider object names; a bare TOML key reads as it is typed and reviewed |
//!
//! A name over [`OVERSIZE`] bytes (a 50 MB church name) stops validation before expansion,
//! which would copy it into every resource of the church.

use super::error::{Problem, ProblemKind};
use super::raw::{Opt, RawFile};
use crate::model::SourceSpan;

/// The longest name cwa accepts (characters).
pub const MAX_NAME_CHARS: usize = 255;
/// A value this large is refused before lines.toml is expanded.
pub const OVERSIZE: usize = 64 * 1024;
/// The longest church or line key (bytes, which the allowed characters make characters).
pub const MAX_KEY_LEN: usize = 64;

/// Why `key` cannot be a church or line key, or `None` when it can: the key is the name part
/// of addresses (`telnyx_number.<key>`) and of provider object names, so it is 1 to
/// [`MAX_KEY_LEN`] lower-case ASCII letters, digits, `_` or `-`: nothing that needs quoting in
/// TOML, an address or a shell, and nothing a reviewer could misread (no capitals that differ
/// only in case, no look-alike or invisible character).
pub fn key_problem(key: &str) -> Option<&'static str> {
    if key.is_empty() {
        Some("is empty")
    } else if key.len() > MAX_KEY_LEN {
        Some("is longer than 64 characters")
    } else if !key
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    {
        Some("holds a character other than a lower-case ASCII letter, a digit, `_` or `-`")
    } else {
        None
    }
}

/// The key of a church or of one of its lines, checked by [`key_problem`]; `false` when it is
/// over [`OVERSIZE`] (expansion would copy it into every address of the church).
fn key(key: &str, at: SourceSpan, what: &str, problems: &mut Vec<Problem>) -> bool {
    let Some(why) = key_problem(key) else {
        return true;
    };
    let shown: String = key.chars().take(80).collect();
    let more = if shown.len() < key.len() { "…" } else { "" };
    problems.push(
        Problem::error(
            ProblemKind::ChurchKey,
            at,
            "not a church key",
            format!("the {what} `{shown}{more}` {why}"),
        )
        .with_help(format!(
            "a key is 1 to {MAX_KEY_LEN} lower-case ASCII letters, digits, `_` or `-` (it names the line's addresses, e.g. telnyx_number.grace_chapel): rename it, e.g. [church.grace_chapel]"
        )),
    );
    key.len() <= OVERSIZE
}

/// Runs every limit check on the parsed file. Returns `false` when a value is so large that
/// expanding the file would be unsafe (the error is already pushed).
pub fn run(raw: &RawFile, problems: &mut Vec<Problem>) -> bool {
    let mut safe = true;
    for c in &raw.churches {
        safe &= key(&c.name, c.span, "church key", problems);
        for line in c.raw.lines.iter().flat_map(|l| l.keys()) {
            safe &= key(line.get_ref(), span(line), "line key", problems);
        }
        safe &= name(&c.raw.name, "church name", problems);
        area_code(&c.raw.area_code, problems);
        npa_of(&c.raw.number, problems);
        for line in c.raw.lines.iter().flat_map(|l| l.values()) {
            area_code(&line.get_ref().area_code, problems);
            npa_of(&line.get_ref().number, problems);
        }
    }
    for b in &raw.credential_connections {
        safe &= name(&b.raw.name, "connection name", problems);
        credential_user(&b.raw.user_name, problems);
        credential_password(&b.raw.password_env, problems);
    }
    for b in &raw.outbound_voice_profiles {
        safe &= name(&b.raw.name, "outbound voice profile name", problems);
        profile_name(&b.raw.name, problems);
    }
    for b in &raw.fqdn_connections {
        safe &= name(&b.raw.name, "connection name", problems);
    }
    for b in &raw.texml_applications {
        safe &= name(&b.raw.name, "TeXML application name", problems);
    }
    for b in &raw.inbound_trunks {
        safe &= name(&b.raw.name, "trunk name", problems);
    }
    for b in &raw.outbound_trunks {
        safe &= name(&b.raw.name, "trunk name", problems);
    }
    for b in &raw.dispatch_rules {
        safe &= name(&b.raw.name, "dispatch rule name", problems);
    }
    for b in &raw.telnyx_numbers {
        npa_of(&b.raw.number, problems);
    }
    safe
}

fn span<T>(v: &toml::Spanned<T>) -> SourceSpan {
    v.span().into()
}

fn limit(span: SourceSpan, label: &str, message: String, help: &str) -> Problem {
    Problem::error(ProblemKind::ProviderLimit, span, label, message).with_help(help.to_string())
}

/// A name no longer than [`MAX_NAME_CHARS`]; `false` when it is over [`OVERSIZE`].
fn name(value: &Opt<String>, what: &str, problems: &mut Vec<Problem>) -> bool {
    let Some(v) = value else { return true };
    let chars = v.get_ref().chars().count();
    if chars <= MAX_NAME_CHARS {
        return true;
    }
    problems.push(limit(
        span(v),
        "too long",
        format!("the {what} is {chars} characters; at most {MAX_NAME_CHARS} are accepted"),
        "shorten it: names are copied into provider object names and metadata",
    ));
    v.get_ref().len() <= OVERSIZE
}

fn credential_user(value: &Opt<String>, problems: &mut Vec<Problem>) {
    let Some(v) = value else { return };
    let user = v.get_ref();
    let ok = (4..=32).contains(&user.len()) && user.bytes().all(|b| b.is_ascii_alphanumeric());
    if !ok {
        problems.push(limit(
            span(v),
            "4–32 letters and digits",
            format!(
                "user_name `{user}` is not 4 to 32 ASCII letters and digits, as Telnyx requires"
            ),
            "e.g. user_name = \"cwaoutbound\" (no spaces, dashes or underscores)",
        ));
    }
}

/// The password's length, when its environment variable is set here (validate never needs
/// it; the value is only measured, never shown).
fn credential_password(env: &Opt<String>, problems: &mut Vec<Problem>) {
    let Some(name) = env else { return };
    let Ok(value) = std::env::var(name.get_ref()) else {
        return;
    };
    let chars = value.chars().count();
    if !(8..=128).contains(&chars) {
        problems.push(limit(
            span(name),
            "8–128 characters",
            format!(
                "the password in ${} is {chars} characters; Telnyx takes 8 to 128",
                name.get_ref()
            ),
            "set the variable to a password of 8 to 128 characters",
        ));
    }
}

fn profile_name(value: &Opt<String>, problems: &mut Vec<Problem>) {
    let Some(v) = value else { return };
    if v.get_ref().trim().chars().count() < 3 {
        problems.push(limit(
            span(v),
            "3+ characters",
            format!(
                "outbound voice profile name `{}` is shorter than 3 characters, which Telnyx refuses",
                v.get_ref()
            ),
            "give the profile a name of at least 3 characters",
        ));
    }
}

/// Why a NANP area code (NPA) cannot be a real line's, or `None` when it can.
pub fn npa_problem(npa: &str) -> Option<&'static str> {
    let b = npa.as_bytes();
    if b.len() != 3 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    match (b[0], b[1], b[2]) {
        (b'0' | b'1', _, _) => Some("NANP area codes never start with 0 or 1 (0xx, 1xx)"),
        (_, b'1', b'1') => Some("N11 codes (211 … 911) are service codes, not area codes"),
        (b'5', b'5', b'5') => Some("555 is not an area code in service"),
        _ => None,
    }
}

/// Why no local number can be bought in this area code (beyond [`npa_problem`]): codes
/// never assigned to a place, where a search by area code finds nothing to buy.
pub fn local_area_problem(npa: &str) -> Option<&'static str> {
    let b = npa.as_bytes();
    if b.len() != 3 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    match (b[0], b[1], b[2]) {
        (b'8', x, y) if x == y && matches!(x, b'0' | b'3'..=b'8') => {
            Some("8YY codes (800, 833 … 888) are toll-free, not the area code of a local number")
        }
        (_, b'0', b'0') => Some("N00 codes (500, 700, 900 …) are non-geographic, not an area code"),
        (_, b'9', _) => {
            Some("N9X codes are reserved for expanding the numbering plan, never assigned")
        }
        (b'3', b'7', _) | (b'9', b'6', _) => {
            Some("37X and 96X codes are reserved by NANPA, never assigned")
        }
        _ => None,
    }
}

fn area_code(value: &Opt<String>, problems: &mut Vec<Problem>) {
    let Some(v) = value else { return };
    let npa = v.get_ref();
    if let Some(why) = npa_problem(npa).or_else(|| local_area_problem(npa)) {
        problems.push(limit(
            span(v),
            "not an area code",
            format!("area code `{}` cannot be bought: {why}", v.get_ref()),
            "use the area code of the church's city, e.g. area_code = \"414\"",
        ));
    }
}

/// The area code of a fixed `+1` number.
fn npa_of(value: &Opt<String>, problems: &mut Vec<Problem>) {
    let Some(v) = value else { return };
    let Some(rest) = v.get_ref().strip_prefix("+1") else {
        return;
    };
    if rest.len() != 10 || !rest.bytes().all(|b| b.is_ascii_digit()) {
        return;
    }
    if let Some(why) = npa_problem(&rest[..3]) {
        problems.push(limit(
            span(v),
            "not a NANP number",
            format!("{} has area code {}: {why}", v.get_ref(), &rest[..3]),
            "check the number: a real line's area code is NXX with N in 2–9",
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn church_keys_are_short_lower_case_slugs() {
        for good in [
            "grace",
            "grace_chapel",
            "st-marks",
            "a",
            "church2",
            &"x".repeat(64),
        ] {
            assert_eq!(key_problem(good), None, "{good}");
        }
        for bad in [
            "",
            "Grace",
            "a b",
            "a.b",
            "a\"b",
            "a]b",
            "a\u{202e}b",
            "gr\u{e2}ce",
            "a\nb",
            &"x".repeat(65),
        ] {
            assert!(key_problem(bad).is_some(), "{bad:?}");
        }
    }

    #[test]
    fn nanp_rules() {
        for bad in ["911", "411", "211", "011", "100", "000", "555", "199"] {
            assert!(npa_problem(bad).is_some(), "{bad}");
        }
        for good in ["414", "734", "212", "888", "520"] {
            assert_eq!(npa_problem(good), None, "{good}");
        }
    }

    #[test]
    fn local_area_codes_are_assigned_geographic_codes() {
        for bad in [
            "299", "999", "370", "379", "960", "800", "833", "888", "500", "900",
        ] {
            assert!(local_area_problem(bad).is_some(), "{bad}");
        }
        for good in [
            "414", "734", "312", "469", "313", "212", "520", "808", "818", "876",
        ] {
            assert_eq!(local_area_problem(good), None, "{good}");
        }
    }
}
