//! Provisioning on purchase (issue 23): `cwa add church` writes a new `[church.<key>]` block
//! into lines.toml, `cwa remove church` takes one out and declares its numbers kept. lines.toml
//! stays the single source of truth: these commands only edit it (through
//! [`crate::config::edit`], every other byte kept) and show the plan; apply does the rest.
//!
//! What is decided here, once: which flags are refused (LiveKit numbers and E911 are not
//! built), what a church key and name may hold (a bare TOML key; no control or bidi
//! character), when an add is the same as what is declared (a no-op) and when it collides with
//! an existing church (an error at that line), and that the resulting file passes the whole
//! config pipeline before anything is written.

use std::path::Path;

use miette::{Diagnostic, LabeledSpan, NamedSource};

use crate::config::{self, edit, raw, Loaded};
use crate::model::{Kind, Spec, E164};
use crate::state::State;

/// The longest church key (the rule is [`config::limits::key_problem`]).
pub use crate::config::limits::MAX_KEY_LEN;

/// Which provider a new church's number comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumberProvider {
    Telnyx,
    Livekit,
}

/// How the new church's number is chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NumberChoice {
    /// Bought at apply in this area code (`number = "auto"`).
    AreaCode(String),
    /// Exactly this number (E.164).
    Fixed(String),
}

/// A number held at Telnyx for this church until apply buys it (`--reserve`).
pub use crate::providers::Reservation;

/// What `cwa add church` was asked for.
#[derive(Debug, Clone)]
pub struct NewChurch {
    pub key: String,
    pub id: String,
    pub name: String,
    pub number: NumberChoice,
    pub agent: Option<String>,
    pub trunk: Option<String>,
    pub provider: NumberProvider,
    pub emergency_address: Option<String>,
    /// `--reserve`: the number is reserved at Telnyx now and written into the block. A retry of
    /// the same request finds the block it wrote (with its reservation) and is a no-op.
    pub reserve: bool,
}

/// The outcome of an add: nothing to do, or the new text of lines.toml.
#[derive(Debug)]
pub enum Added {
    /// The same block is declared already.
    Unchanged,
    /// The file with the new block, validated by the whole config pipeline.
    Written { text: String, loaded: Box<Loaded> },
}

/// Why an add or remove was refused; nothing was written.
#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum ProvisionError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Refused(#[from] Box<Refusal>),
    /// The file with the edit would not pass the config pipeline; its diagnostics point into
    /// that text (named "lines.toml (with church.KEY added)").
    #[error(transparent)]
    #[diagnostic(transparent)]
    Invalid(Box<config::ConfigError>),
}

/// A refusal with its code, help and, when it is about a declaration, where it is.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Refusal {
    code: &'static str,
    message: String,
    help: String,
    /// lines.toml and the place in it the refusal is about.
    at: Option<(NamedSource<String>, std::ops::Range<usize>, String)>,
}

impl Diagnostic for Refusal {
    fn code<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        Some(Box::new(self.code))
    }
    fn help<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        Some(Box::new(&self.help))
    }
    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.at
            .as_ref()
            .map(|(s, _, _)| s as &dyn miette::SourceCode)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let (_, span, label) = self.at.as_ref()?;
        Some(Box::new(std::iter::once(LabeledSpan::new(
            Some(label.clone()),
            span.start,
            span.len(),
        ))))
    }
}

fn refused(
    code: &'static str,
    message: impl Into<String>,
    help: impl Into<String>,
) -> ProvisionError {
    ProvisionError::Refused(Box::new(Refusal {
        code,
        message: message.into(),
        help: help.into(),
        at: None,
    }))
}

/// The file shown in a diagnostic: controls and bidi characters masked, as every lines.toml
/// diagnostic shows it.
fn source(path: &Path, text: &str) -> NamedSource<String> {
    NamedSource::new(path.display().to_string(), config::error::masked(text, &[]))
}

impl From<config::ConfigError> for ProvisionError {
    fn from(e: config::ConfigError) -> Self {
        Self::Invalid(Box::new(e))
    }
}

impl From<edit::EditError> for ProvisionError {
    fn from(e: edit::EditError) -> Self {
        refused("cwa::add::edit", e.message, e.help)
    }
}

/// The flags and values of an add that are refused before lines.toml is read.
pub fn check_request(new: &NewChurch) -> Result<(), ProvisionError> {
    if new.provider == NumberProvider::Livekit && new.trunk.is_some() {
        return Err(refused(
            "cwa::add::trunk_with_livekit",
            "--trunk cannot be combined with --provider livekit",
            "a LiveKit number is attached to its own LiveKit trunk; drop --trunk, or buy the number at Telnyx (--provider telnyx) to put it on an existing trunk",
        ));
    }
    if new.provider == NumberProvider::Livekit {
        return Err(refused(
            "cwa::add::not_built",
            "--provider livekit is not built yet: cwa cannot declare LiveKit phone numbers (issue 20)",
            "add the church with a Telnyx number (the default, --provider telnyx); LiveKit numbers come with issue 20",
        ));
    }
    if new.emergency_address.is_some() {
        return Err(refused(
            "cwa::add::not_built",
            "--emergency-address is not built yet: cwa cannot declare E911 addresses (issue 21)",
            "add the church without --emergency-address and set the E911 address at Telnyx by hand until issue 21 lands",
        ));
    }
    check_key(&new.key)?;
    check_text("--name", &new.name)?;
    for (flag, v) in [("--agent", &new.agent), ("--trunk", &new.trunk)] {
        if let Some(v) = v {
            check_text(flag, v)?;
        }
    }
    uuid::Uuid::parse_str(&new.id).map_err(|e| {
        refused(
            "cwa::add::id",
            format!("--id {} is not a UUID: {e}", shown(&new.id)),
            "pass the church's id from the church_voice_agents table, e.g. --id 3f2c0a4e-1b2c-4d5e-8f90-1234567890ab",
        )
    })?;
    if let NumberChoice::Fixed(n) = &new.number {
        E164::parse(n).map_err(|e| {
            refused(
                "cwa::add::number",
                format!("--number {}: {e}", shown(n)),
                "write the number in E.164 with its +, e.g. --number +13135550100, or pass --area-code to buy one",
            )
        })?;
    }
    Ok(())
}

/// A church key `cwa add` writes follows the rule `cwa validate` holds every church key to
/// ([`config::limits::key_problem`]): checked here too, so a bad key is refused before the
/// file is read, named as the flag it came from.
fn check_key(key: &str) -> Result<(), ProvisionError> {
    let Some(why) = config::limits::key_problem(key) else {
        return Ok(());
    };
    Err(refused(
        "cwa::add::key",
        format!(
            "the church key {} {why}: a key is 1 to {MAX_KEY_LEN} lower-case ASCII letters, digits, `_` or `-`",
            shown(key)
        ),
        "the key names the church's addresses (telnyx_number.<key>); pick a short slug of its name, e.g. grace_chapel",
    ))
}

/// A value written into lines.toml: not empty, one line, no control or bidi character (the
/// file is reviewed in pull requests, where such a character hides what a line says), and not
/// larger than any name cwa accepts.
fn check_text(flag: &str, value: &str) -> Result<(), ProvisionError> {
    // A name of more bytes than 255 four-byte characters is too long whatever it holds: say
    // so before reading it character by character (a 50 MB name).
    let what = if value.len() > 4 * config::limits::MAX_NAME_CHARS {
        "is longer than 255 characters"
    } else if value.trim().is_empty() {
        "is empty"
    } else if value.chars().any(crate::render::escape::is_hidden_control) {
        "holds a control, line-break or bidi character"
    } else if value.chars().count() > config::limits::MAX_NAME_CHARS {
        "is longer than 255 characters"
    } else {
        return Ok(());
    };
    Err(refused(
        "cwa::add::value",
        format!("{flag} {what}"),
        format!(
            "pass {flag} as one line of plain text of at most {} characters",
            config::limits::MAX_NAME_CHARS
        ),
    ))
}

/// Up to 80 characters of a value, escaped for the terminal.
fn shown(value: &str) -> String {
    let short: String = value.chars().take(80).collect();
    let more = if short.len() < value.len() { "…" } else { "" };
    format!("`{}{more}`", crate::render::escape::terminal(&short))
}

/// How the comment above a reserved church's block starts, before its area code: what a
/// retried `cwa add --reserve` recognises as its own earlier reservation.
const RESERVED_IN: &str = "Reserved at Telnyx by cwa add --reserve in area code";

/// The block of the new church as `cwa fmt` lays it out, with the reservation's comment.
pub fn block(new: &NewChurch, reservation: Option<&Reservation>) -> String {
    let mut lines = vec![
        edit::string_line("id", &new.id),
        edit::string_line("name", &new.name),
    ];
    match (reservation, &new.number) {
        (Some(r), _) => lines.push(edit::string_line("number", r.number.as_str())),
        (None, NumberChoice::Fixed(n)) => lines.push(edit::string_line("number", n)),
        (None, NumberChoice::AreaCode(ac)) => {
            lines.push(edit::string_line("number", "auto"));
            lines.push(edit::string_line("area_code", ac));
        }
    }
    if let Some(a) = &new.agent {
        lines.push(edit::string_line("agent", a));
    }
    if let Some(t) = &new.trunk {
        lines.push(edit::string_line("trunk", t));
    }
    let comments: Vec<String> = match (reservation, &new.number) {
        (Some(r), NumberChoice::AreaCode(ac)) => vec![format!(
            "{} {ac}: reservation {}, held until {}; apply buys exactly this number.",
            RESERVED_IN, r.id, r.expires_at
        )],
        (Some(r), NumberChoice::Fixed(_)) => vec![format!(
            "Reserved at Telnyx by cwa add --reserve: reservation {}, held until {}; apply buys exactly this number.",
            r.id, r.expires_at
        )],
        (None, _) => Vec::new(),
    };
    edit::church_block(&new.key, &lines, &comments)
}

/// lines.toml with the new church, or [`Added::Unchanged`] when exactly this church is declared
/// already. Refused, naming the existing line, when the key, id or number is taken by a
/// different declaration; the result must pass the whole config pipeline.
pub fn add(
    path: &Path,
    text: &str,
    new: &NewChurch,
    reservation: Option<&Reservation>,
) -> Result<Added, ProvisionError> {
    check_request(new)?;
    let mut problems = Vec::new();
    let file = raw::parse(text, &mut problems).ok_or_else(|| {
        refused(
            "cwa::add::invalid",
            format!("{} is not TOML", path.display()),
            "run cwa validate and fix the file before adding a church",
        )
    })?;
    let number = match (reservation, &new.number) {
        (Some(r), _) => Some(r.number.clone()),
        (None, NumberChoice::Fixed(n)) => E164::parse(n).ok(),
        (None, NumberChoice::AreaCode(_)) => None,
    };
    if let Some(existing) = file.churches.iter().find(|c| c.name == new.key) {
        if same_church(&existing.raw, new, number.as_ref())
            || reserved_earlier(text, &existing.raw, new)
        {
            return Ok(Added::Unchanged);
        }
        let header = existing.span.offset..existing.span.offset + existing.span.len;
        return Err(taken(
            path,
            text,
            header,
            "key",
            &new.key,
            "is declared here, differently",
        ));
    }
    collisions(path, text, &file, new, number.as_ref())?;
    let candidate = edit::insert_church(text, &block(new, reservation))?;
    let shown_as = format!("{} (with church.{} added)", path.display(), new.key);
    let mut loaded = config::parse(Path::new(&shown_as), &candidate)?;
    loaded.path = path.to_path_buf();
    Ok(Added::Written {
        text: candidate,
        loaded: Box::new(loaded),
    })
}

/// Whether the declared church is the one an earlier `cwa add --reserve` of this same request
/// wrote (the payment webhook retries a request it saw no answer to): its block holds a fixed
/// number, the comment of a reservation made for this area code, and otherwise exactly the
/// values asked for. Reserving again would hold a second number and then collide on the key.
fn reserved_earlier(text: &str, raw: &raw::RawChurch, new: &NewChurch) -> bool {
    let NumberChoice::AreaCode(ac) = &new.number else {
        return false;
    };
    if !new.reserve {
        return false;
    }
    let Some(held) = raw
        .number
        .as_ref()
        .and_then(|n| E164::parse(n.get_ref()).ok())
    else {
        return false;
    };
    // A NANP number reserved in this area code has it as its NPA: a block whose number was
    // edited since is not the earlier reservation.
    if held
        .as_str()
        .strip_prefix("+1")
        .is_some_and(|rest| !rest.starts_with(ac.as_str()))
    {
        return false;
    }
    let marker = format!("# {RESERVED_IN} {ac}: reservation ");
    let commented = block_in(text, &new.key)
        .is_some_and(|(_, block)| block.lines().any(|l| l.starts_with(&marker)));
    commented && same_church(raw, new, Some(&held))
}

/// Whether the declared church is exactly the one asked for: the same values and nothing else.
fn same_church(raw: &raw::RawChurch, new: &NewChurch, number: Option<&E164>) -> bool {
    let s = |v: &raw::Opt<String>| v.as_ref().map(|v| v.get_ref().clone());
    let same_id = s(&raw.id)
        .and_then(|id| uuid::Uuid::parse_str(&id).ok())
        .zip(uuid::Uuid::parse_str(&new.id).ok())
        .is_some_and(|(a, b)| a == b);
    let (want_number, want_area) = match (number, &new.number) {
        (Some(n), _) => (Some(n.to_string()), None),
        (None, NumberChoice::AreaCode(ac)) => (Some("auto".to_string()), Some(ac.clone())),
        (None, NumberChoice::Fixed(n)) => (Some(n.clone()), None),
    };
    same_id
        && s(&raw.name).as_deref() == Some(new.name.as_str())
        && s(&raw.number) == want_number
        && s(&raw.area_code) == want_area
        && s(&raw.agent) == new.agent
        && s(&raw.trunk) == new.trunk
        && raw.country.is_none()
        && raw.room_prefix.is_none()
        && raw.krisp.is_none()
        && raw.depends_on.is_none()
        && raw.lines.is_none()
}

/// Another church with the same id, or any declaration of the same number.
fn collisions(
    path: &Path,
    text: &str,
    file: &raw::RawFile,
    new: &NewChurch,
    number: Option<&E164>,
) -> Result<(), ProvisionError> {
    let new_id = uuid::Uuid::parse_str(&new.id).ok();
    for c in &file.churches {
        if let Some(id) = &c.raw.id {
            if uuid::Uuid::parse_str(id.get_ref()).ok() == new_id {
                return Err(taken(
                    path,
                    text,
                    id.span(),
                    "id",
                    &new.id,
                    &format!("is church.{}'s", c.name),
                ));
            }
        }
    }
    block_at_the_churchs_address(path, text, file, new)?;
    let Some(number) = number else { return Ok(()) };
    let same = |v: &raw::Opt<String>| {
        v.as_ref()
            .filter(|v| E164::normalize(v.get_ref()).ok().as_ref() == Some(number))
            .map(|v| v.span())
    };
    let declared = file
        .churches
        .iter()
        .flat_map(|c| {
            let lines = c
                .raw
                .lines
                .iter()
                .flatten()
                .map(|(_, l)| same(&l.get_ref().number));
            std::iter::once(same(&c.raw.number)).chain(lines)
        })
        .chain(file.telnyx_numbers.iter().map(|b| same(&b.raw.number)))
        .chain(file.twilio_numbers.iter().map(|b| same(&b.raw.number)))
        .flatten()
        .next();
    match declared {
        Some(span) => Err(taken(
            path,
            text,
            span,
            "number",
            number.as_str(),
            "is declared here",
        )),
        None => Ok(()),
    }
}

/// A new church's line takes the addresses `telnyx_number.KEY`, `livekit_inbound_trunk.KEY`
/// and `livekit_dispatch_rule.KEY` (`config::convention::line_name`). An explicit block at one
/// of them is laid over the convention by design, so an added church would silently take that
/// block's number or trunk (the fallback number, the outbound DID): refused, naming the block.
/// (A key another church's line expands to is validate's `duplicate_church`.)
fn block_at_the_churchs_address(
    path: &Path,
    text: &str,
    file: &raw::RawFile,
    new: &NewChurch,
) -> Result<(), ProvisionError> {
    let key = crate::config::convention::line_name(&new.key, None);
    let explicit = [
        (
            "telnyx.number",
            file.telnyx_numbers
                .iter()
                .map(|b| (&b.name, &b.span))
                .collect::<Vec<_>>(),
        ),
        (
            "livekit.inbound_trunk",
            file.inbound_trunks
                .iter()
                .map(|b| (&b.name, &b.span))
                .collect(),
        ),
        (
            "livekit.dispatch_rule",
            file.dispatch_rules
                .iter()
                .map(|b| (&b.name, &b.span))
                .collect(),
        ),
    ];
    for (section, blocks) in explicit {
        if let Some((_, span)) = blocks.into_iter().find(|(name, _)| **name == key) {
            return Err(taken(
                path,
                text,
                span.offset..span.offset + span.len,
                "key",
                &new.key,
                &format!("[{section}.{key}] is declared here: a church {key} would take it over"),
            ));
        }
    }
    Ok(())
}

fn taken(
    path: &Path,
    text: &str,
    span: std::ops::Range<usize>,
    what: &str,
    value: &str,
    label: &str,
) -> ProvisionError {
    let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
    ProvisionError::Refused(Box::new(Refusal {
        code: "cwa::add::duplicate",
        message: format!(
            "the {what} {} is taken: {}:{line} declares it",
            shown(value),
            path.display()
        ),
        help: "nothing was written. The same add twice is a no-op only when every value is the same; to change a church, edit its block (or cwa remove church KEY first)".into(),
        at: Some((source(path, text), span, label.to_string())),
    }))
}

/// The outcome of `cwa remove church`.
#[derive(Debug)]
pub struct Removed {
    pub text: String,
    /// The numbers now declared under `[kept]` (none with `--release-number`).
    pub kept: Vec<E164>,
    /// Numbers state owns for the church that apply releases with `--release-numbers`.
    pub to_release: Vec<E164>,
}

/// lines.toml without church `key`; its numbers (declared, or pinned in state for `"auto"`
/// lines) declared under `[kept]` so plan and drift stay clean, unless `release` is asked for.
pub fn remove(
    loaded: &Loaded,
    state: &State,
    key: &str,
    release: bool,
    today: &str,
) -> Result<Removed, ProvisionError> {
    let Some(church) = loaded.desired.churches.iter().find(|c| c.key == key) else {
        let known: Vec<&str> = loaded
            .desired
            .churches
            .iter()
            .map(|c| c.key.as_str())
            .collect();
        let hint = raw::suggest(key, &known)
            .map(|k| format!("did you mean `{k}`?"))
            .unwrap_or_else(|| "cwa export registry lists every church".into());
        return Err(refused(
            "cwa::remove::unknown",
            format!("lines.toml declares no church {}", shown(key)),
            hint,
        ));
    };
    let numbers = church_numbers(state, key);
    let Some(mut text) = edit::remove_church(&loaded.text, key)? else {
        return Err(refused(
            "cwa::remove::unknown",
            format!("church.{key} is not written as a [church.{key}] table"),
            "remove it by hand",
        ));
    };
    let declared_kept: Vec<&str> = loaded
        .desired
        .policy
        .kept
        .iter()
        .map(|k| k.key.as_str())
        .collect();
    let mut kept = Vec::new();
    if !release {
        for n in &numbers {
            if declared_kept.contains(&n.as_str()) {
                continue;
            }
            let reason = format!(
                "{} ({key}) removed by cwa remove on {today}; the number stays ours",
                church.name
            );
            text = edit::add_kept(&text, n.as_str(), &reason)?;
            kept.push(n.clone());
        }
    }
    let shown_as = format!("{} (without church.{key})", loaded.path.display());
    config::parse(Path::new(&shown_as), &text)?;
    Ok(Removed {
        text,
        to_release: if release { numbers } else { Vec::new() },
        kept,
    })
}

/// The numbers state owns for the church (what was bought or adopted for it): a number
/// lines.toml declares but apply never bought is not ours to keep.
fn church_numbers(state: &State, key: &str) -> Vec<E164> {
    let mut all: Vec<E164> = state
        .owned()
        .filter_map(|(a, r)| match &r.spec {
            Spec::TelnyxNumber(n)
                if a.kind == Kind::TelnyxNumber && r.church.as_deref() == Some(key) =>
            {
                n.number.fixed().cloned()
            }
            _ => None,
        })
        .collect();
    all.sort();
    all.dedup();
    all
}

/// Holds a number for the new church at Telnyx (`cwa add --reserve`): the area code, country
/// and friendly endings its `"auto"` line would use, from the validated candidate `loaded`.
/// Plain `cwa plan` never reserves; only this does.
pub async fn reserve(
    session: &crate::session::Session,
    loaded: &Loaded,
    new: &NewChurch,
) -> miette::Result<Reservation> {
    let addr = crate::model::Address::new(Kind::TelnyxNumber, new.key.clone());
    let Some(Spec::TelnyxNumber(spec)) = loaded.desired.get(&addr).map(|r| &r.spec) else {
        return Err(refused(
            "cwa::add::reserve",
            format!("church.{} has no Telnyx number to reserve", new.key),
            "pass --area-code",
        )
        .into());
    };
    let crate::model::NumberSpec::Auto {
        country,
        area_code,
        endings,
    } = &spec.number
    else {
        return Err(refused(
            "cwa::add::reserve",
            "--reserve needs --area-code",
            "pass --area-code NNN with --reserve, or --number without it",
        )
        .into());
    };
    let state = session.load_state()?;
    let providers = session.connect(&loaded.desired, &state)?;
    let telnyx = providers.for_kind(Kind::TelnyxNumber).ok_or_else(|| {
        refused(
            "cwa::add::reserve",
            "no Telnyx client to reserve with",
            "set TELNYX_API_KEY (or run with --sandbox)",
        )
    })?;
    let reference = format!("cwa-add:{}", new.key);
    let held = telnyx
        .reserve(country, area_code, endings, &reference)
        .await
        .map_err(|e| {
            miette::Report::new(e)
                .wrap_err("reserving a number at Telnyx failed; nothing was written")
        })?;
    held.ok_or_else(|| {
        refused(
            "cwa::add::reserve",
            "this provider reserves no numbers",
            "reserve at Telnyx",
        )
        .into()
    })
}

/// Why a fixed number that Telnyx no longer sells cannot be bought, when this account had
/// reserved it: the reservation and when it lapsed (someone else bought the number since).
pub async fn lapsed_reservation(
    telnyx: &dyn crate::providers::Provider,
    number: &E164,
) -> Option<String> {
    let held = telnyx.reservations_of(number).await.ok()??;
    let newest = held
        .into_iter()
        .max_by(|a, b| a.expires_at.cmp(&b.expires_at))?;
    Some(format!(
        "its reservation {} lapsed at {}, and the number has been sold since",
        newest.id, newest.expires_at
    ))
}

/// Where church `key`'s block is in `text` (its first line, 1-based) and the block itself.
pub fn block_in(text: &str, key: &str) -> Option<(usize, String)> {
    let (_, range) = edit::church_extents(text)
        .ok()?
        .into_iter()
        .find(|(k, _)| k == key)?;
    let line = text[..range.start].matches('\n').count() + 1;
    Some((line, text[range].to_string()))
}
