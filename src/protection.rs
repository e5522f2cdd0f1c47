//! The hard lock: one check, used by the planner, the executor and the HTTP layer alike, that
//! decides from a write request itself whether it writes, routes or re-numbers a protected
//! object.
//!
//! A protected entry is a live id (`ST_Xa3Bp9aixRFP`, `SDR_cYzx7sAkUTvx`, a Twilio SID, a
//! Telnyx id) or a phone number. What the lock knows beyond the entries it learns from live
//! ([`Lock::learn`]), so it needs neither a declaration nor state (a fresh account is locked
//! the same way):
//! - which protected entries are LiveKit inbound trunks, and the numbers they hold;
//! - the *path* of a protected trunk: the dispatch rules that route it (naming it, or naming
//!   no trunk at all), and upstream the Telnyx numbers, Twilio numbers, Twilio trunks and
//!   trunk attachments that carry its numbers to it.
//!
//! A write is refused ([`Lock::check`]) when it
//! - updates or deletes a protected object or anything on a protected path;
//! - creates or updates a dispatch rule naming a protected trunk, or naming no trunk (a rule
//!   without trunks routes every trunk; cwa's rules carry no number filter, so such a rule
//!   always reaches the protected trunk's numbers);
//! - creates or updates any trunk (inbound or outbound) listing a protected number or a
//!   number a protected trunk holds, whatever its `allowed_numbers`;
//! - orders, binds or re-points a number a protected trunk holds (Telnyx or Twilio), or
//!   attaches it to a Twilio trunk.
//!
//! Before the lock has learned live, it fails closed: an entry it cannot place may be a trunk,
//! so a rule naming no trunk is refused.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, RwLock};

use crate::model::{Kind, LiveObject, NumberRef, NumberSpec, Ref, Spec};

/// One write, as the planner, the executor or a provider client is about to make it:
/// references are live ids where the object exists.
#[derive(Debug, Clone, Copy)]
pub enum Write<'a> {
    Create(&'a Spec),
    Update { id: &'a str, spec: &'a Spec },
    Delete { kind: Kind, id: &'a str },
}

/// Why a write is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{detail}")]
pub struct Violation {
    /// The protected entry the write would reach.
    pub protected: String,
    pub detail: String,
}

/// The protected entries and what live says about them.
#[derive(Debug, Clone, Default)]
pub struct Lock {
    /// Entries, trimmed; compared exactly.
    ids: BTreeSet<String>,
    /// Whether [`Lock::learn`] has run.
    learned: bool,
    /// Entries found live (as an id or as a number).
    placed: BTreeSet<String>,
    /// Live ids of protected LiveKit inbound trunks.
    trunks: BTreeSet<String>,
    /// Numbers protected (as entries, or held by a protected trunk) -> the entry that locks it.
    numbers: BTreeMap<String, String>,
    /// Live ids on a protected trunk's path -> why.
    path: BTreeMap<String, String>,
    /// Twilio number SIDs -> their numbers, to read a trunk attachment.
    twilio_numbers: BTreeMap<String, String>,
}

impl Lock {
    /// A lock on these entries; surrounding whitespace is trimmed, nothing else is changed.
    pub fn new<S: AsRef<str>>(ids: impl IntoIterator<Item = S>) -> Self {
        let ids: BTreeSet<String> = ids
            .into_iter()
            .map(|s| s.as_ref().trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        let numbers = ids
            .iter()
            .filter(|s| s.starts_with('+'))
            .map(|s| (s.clone(), s.clone()))
            .collect();
        Self {
            ids,
            numbers,
            ..Self::default()
        }
    }

    /// The entries, trimmed.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.ids.iter().map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// True when the entry matched a live object (by id, or as a number) when the lock
    /// learned live.
    pub fn is_placed(&self, entry: &str) -> bool {
        self.placed.contains(entry.trim())
    }

    /// True when the id is a protected entry (exactly) or on a protected trunk's path.
    pub fn is_locked(&self, id: &str) -> bool {
        !id.is_empty() && (self.ids.contains(id) || self.path.contains_key(id))
    }

    /// Learns from live which entries are trunks, which numbers they hold, and which objects
    /// route or feed them. Runs in two passes: trunks first, then what depends on them.
    pub fn learn<'a>(&mut self, objects: impl IntoIterator<Item = &'a LiveObject> + Clone) {
        self.learned = true;
        for o in objects.clone() {
            if self.ids.contains(&o.id) {
                self.placed.insert(o.id.clone());
            }
            if let Some(n) = number_of(&o.spec) {
                if self.ids.contains(&n) {
                    self.placed.insert(n.clone());
                }
                if o.kind() == Kind::TwilioNumber {
                    self.twilio_numbers.insert(o.id.clone(), n);
                }
            }
            if let (true, Spec::LivekitInboundTrunk(t)) = (self.ids.contains(&o.id), &o.spec) {
                self.trunks.insert(o.id.clone());
                for n in fixed_numbers(&t.numbers) {
                    self.numbers.insert(n, o.id.clone());
                }
            }
        }
        let mut twilio_trunks = Vec::new();
        for o in objects {
            if let Some(why) = self.feeds(o) {
                if let Spec::TwilioTrunkNumber(tn) = &o.spec {
                    twilio_trunks.extend(tn.trunk.id().map(|t| (t.to_string(), why.clone())));
                }
                self.path.insert(o.id.clone(), why);
            }
        }
        for (trunk, why) in twilio_trunks {
            self.path.entry(trunk).or_insert(why);
        }
    }

    /// Why a live object is on a protected trunk's path, if it is.
    fn feeds(&self, o: &LiveObject) -> Option<String> {
        match &o.spec {
            Spec::LivekitDispatchRule(rule) => self
                .routed(&rule.trunks)
                .map(|t| format!("{} routes the protected trunk {t}", o.id)),
            Spec::TelnyxNumber(_) | Spec::TwilioNumber(_) => {
                let n = number_of(&o.spec)?;
                self.numbers
                    .get(&n)
                    .map(|t| format!("{} ({n}) carries calls to the protected {t}", o.id))
            }
            Spec::TwilioTrunkNumber(tn) => {
                let pn = tn.number.id()?;
                let n = self.twilio_number_of(pn)?;
                self.numbers
                    .get(&n)
                    .map(|t| format!("{} attaches {n}, which the protected {t} holds", o.id))
            }
            _ => None,
        }
    }

    fn twilio_number_of(&self, sid: &str) -> Option<String> {
        self.twilio_numbers.get(sid).cloned()
    }

    /// The protected trunk a rule with these trunks routes, if any.
    fn routed(&self, trunks: &[Ref]) -> Option<String> {
        if trunks.is_empty() {
            return self.wildcard_target();
        }
        trunks
            .iter()
            .filter_map(Ref::id)
            .find(|t| self.trunks.contains(*t) || self.ids.contains(*t))
            .map(str::to_string)
    }

    /// The protected trunk a rule naming no trunk would reach: a known protected trunk, or,
    /// before live is known, any entry that is not a phone number (it may be a trunk).
    fn wildcard_target(&self) -> Option<String> {
        if let Some(t) = self.trunks.iter().next() {
            return Some(t.clone());
        }
        self.ids
            .iter()
            .find(|id| !(id.starts_with('+') || self.learned && self.placed.contains(*id)))
            .cloned()
    }

    /// Refuses a write that would write, route or re-number a protected object.
    pub fn check(&self, write: &Write<'_>) -> Result<(), Violation> {
        match *write {
            Write::Delete { kind, id } => self.check_target(kind, id, "delete"),
            Write::Update { id, spec } => {
                self.check_target(spec.kind(), id, "update")?;
                self.check_body(spec)
            }
            Write::Create(spec) => self.check_body(spec),
        }
    }

    fn check_target(&self, kind: Kind, id: &str, verb: &str) -> Result<(), Violation> {
        for part in id.split('/') {
            if self.ids.contains(part) {
                return Err(Violation {
                    protected: part.to_string(),
                    detail: format!("{verb} of {kind} {id}: {part} is protected"),
                });
            }
            if let Some(why) = self.path.get(part) {
                return Err(Violation {
                    protected: part.to_string(),
                    detail: format!("{verb} of {kind} {id}: {why}"),
                });
            }
        }
        Ok(())
    }

    fn check_body(&self, spec: &Spec) -> Result<(), Violation> {
        let kind = spec.kind();
        match spec {
            Spec::LivekitDispatchRule(rule) => match self.routed(&rule.trunks) {
                Some(t) if rule.trunks.is_empty() => Err(Violation {
                    detail: format!(
                        "{kind} \"{}\" names no trunk, so it routes every trunk, the protected {t} included",
                        rule.name
                    ),
                    protected: t,
                }),
                Some(t) => Err(Violation {
                    detail: format!(
                        "{kind} \"{}\" names the protected trunk {t}: it would change how its calls are routed",
                        rule.name
                    ),
                    protected: t,
                }),
                None => Ok(()),
            },
            Spec::LivekitInboundTrunk(t) => self.check_numbers(kind, &t.name, &t.numbers),
            Spec::LivekitOutboundTrunk(t) => self.check_numbers(kind, &t.name, &t.numbers),
            Spec::TelnyxNumber(_) | Spec::TwilioNumber(_) => {
                let Some(n) = number_of(spec) else {
                    return Ok(());
                };
                match self.numbers.get(&n) {
                    Some(owner) => Err(Violation {
                        protected: owner.clone(),
                        detail: format!(
                            "{kind} {n}: the number is locked by the protected {owner}"
                        ),
                    }),
                    None => Ok(()),
                }
            }
            Spec::TwilioTrunkNumber(tn) => [&tn.trunk, &tn.number]
                .into_iter()
                .filter_map(Ref::id)
                .try_for_each(|id| self.check_target(kind, id, "attach")),
            _ => Ok(()),
        }
    }

    fn check_numbers(
        &self,
        kind: Kind,
        name: &str,
        numbers: &[NumberRef],
    ) -> Result<(), Violation> {
        match fixed_numbers(numbers).find_map(|n| self.numbers.get(&n).map(|o| (n, o))) {
            Some((n, owner)) => Err(Violation {
                protected: owner.clone(),
                detail: format!(
                    "{kind} \"{name}\" lists {n}, which the protected {owner} holds: it would re-route the number"
                ),
            }),
            None => Ok(()),
        }
    }
}

/// A lock shared by every client of a run, so what a refresh learns reaches the HTTP guard.
#[derive(Debug, Clone, Default)]
pub struct Shared(Arc<RwLock<Lock>>);

impl Shared {
    pub fn new(lock: Lock) -> Self {
        Self(Arc::new(RwLock::new(lock)))
    }

    /// Adds what a refresh read.
    pub fn learn<'a>(&self, objects: impl IntoIterator<Item = &'a LiveObject> + Clone) {
        self.write_lock().learn(objects);
    }

    pub fn check(&self, write: &Write<'_>) -> Result<(), Violation> {
        self.read_lock().check(write)
    }

    pub fn is_locked(&self, id: &str) -> bool {
        self.read_lock().is_locked(id)
    }

    /// A copy of the lock as it is now.
    pub fn snapshot(&self) -> Lock {
        self.read_lock().clone()
    }

    fn read_lock(&self) -> std::sync::RwLockReadGuard<'_, Lock> {
        self.0.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write_lock(&self) -> std::sync::RwLockWriteGuard<'_, Lock> {
        self.0.write().unwrap_or_else(|e| e.into_inner())
    }
}

fn number_of(spec: &Spec) -> Option<String> {
    match spec {
        Spec::TelnyxNumber(n) => match &n.number {
            NumberSpec::Fixed { number } => Some(number.as_str().to_string()),
            _ => None,
        },
        Spec::TwilioNumber(n) => Some(n.number.as_str().to_string()),
        _ => None,
    }
}

fn fixed_numbers(numbers: &[NumberRef]) -> impl Iterator<Item = String> + '_ {
    numbers.iter().filter_map(|n| match n {
        NumberRef::Number(e) => Some(e.as_str().to_string()),
        NumberRef::Of(_) => None,
    })
}

/// Near misses of a protected entry that matches nothing live: candidates equal to it when
/// case, Unicode lookalikes and invisible characters are ignored. Near misses are suggestions
/// only; they are never matched.
pub fn near_misses<'a>(entry: &str, candidates: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let want = skeleton(entry);
    let mut found: Vec<String> = candidates
        .into_iter()
        .filter(|c| *c != entry && skeleton(c) == want)
        .map(str::to_string)
        .collect();
    found.sort();
    found.dedup();
    found
}

/// What an entry looks like once case, lookalike letters and invisible characters are
/// ignored: `ST_Xa3Bp9aixRFP`, `st_xa3bp9aixrfp` and `ST_Xа3Bp9aixRFP` (Cyrillic а) agree.
pub fn skeleton(s: &str) -> String {
    s.chars()
        .filter(|c| !is_invisible(*c))
        .map(unconfuse)
        .flat_map(char::to_lowercase)
        .map(|c| match c {
            '0' => 'o',
            '1' | 'i' => 'l',
            c => c,
        })
        .collect()
}

fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}' | '\u{00AD}'
    )
}

/// Maps the common Cyrillic and Greek lookalikes and fullwidth forms to ASCII.
fn unconfuse(c: char) -> char {
    if ('\u{FF01}'..='\u{FF5E}').contains(&c) {
        return char::from_u32(c as u32 - 0xFEE0).unwrap_or(c);
    }
    const PAIRS: &[(char, char)] = &[
        ('а', 'a'),
        ('е', 'e'),
        ('о', 'o'),
        ('р', 'p'),
        ('с', 'c'),
        ('у', 'y'),
        ('х', 'x'),
        ('і', 'i'),
        ('ј', 'j'),
        ('ѕ', 's'),
        ('к', 'k'),
        ('в', 'b'),
        ('н', 'h'),
        ('м', 'm'),
        ('т', 't'),
        ('А', 'A'),
        ('В', 'B'),
        ('Е', 'E'),
        ('К', 'K'),
        ('М', 'M'),
        ('Н', 'H'),
        ('О', 'O'),
        ('Р', 'P'),
        ('С', 'C'),
        ('Т', 'T'),
        ('Х', 'X'),
        ('І', 'I'),
        ('Ј', 'J'),
        ('Ѕ', 'S'),
        ('Α', 'A'),
        ('Β', 'B'),
        ('Ε', 'E'),
        ('Ζ', 'Z'),
        ('Η', 'H'),
        ('Ι', 'I'),
        ('Κ', 'K'),
        ('Μ', 'M'),
        ('Ν', 'N'),
        ('Ο', 'O'),
        ('Ρ', 'P'),
        ('Τ', 'T'),
        ('Υ', 'Y'),
        ('Χ', 'X'),
        ('ο', 'o'),
        ('ν', 'v'),
        ('α', 'a'),
        ('ρ', 'p'),
        ('ι', 'i'),
        ('κ', 'k'),
    ];
    PAIRS
        .iter()
        .find(|(from, _)| *from == c)
        .map(|(_, to)| *to)
        .unwrap_or(c)
}

/// Every protected entry (trimmed) and why: declared in lines.toml, or held by protection
/// memory (state's map, a resource's flag, the audit log). The planner, the executor and the
/// HTTP guard all start from this one set.
pub fn entries(
    desired: &crate::model::Desired,
    state: &crate::state::State,
) -> BTreeMap<String, String> {
    let mut all: BTreeMap<String, String> = state
        .protection_memory()
        .into_iter()
        .map(|(id, (reason, _))| (id, reason))
        .collect();
    for p in &desired.protected {
        all.insert(p.id.trim().to_string(), p.reason.clone());
    }
    all.retain(|id, _| !id.is_empty());
    all
}

/// Ids protection memory holds that lines.toml no longer declares: each stays locked until
/// an apply with `--unprotect ID` carries its entry out.
pub fn unprotect_entries(
    desired: &crate::model::Desired,
    state: &crate::state::State,
) -> Vec<crate::plan::Unprotect> {
    let declared: BTreeSet<&str> = desired.protected.iter().map(|p| p.id.trim()).collect();
    // A number declared by its phone number is remembered by its live id.
    let covered = |id: &str| {
        declared.contains(id)
            || state.resources.values().any(|r| {
                r.id == id && number_of(&r.spec).is_some_and(|n| declared.contains(n.as_str()))
            })
    };
    state
        .protection_memory()
        .into_iter()
        .filter(|(id, _)| !covered(id))
        .map(|(id, (reason, remembered_in))| crate::plan::Unprotect {
            id,
            reason,
            remembered_in,
        })
        .collect()
}

/// The provider writes a planned change makes, for [`Lock::check`]. `after` is the change's
/// declared spec with references already turned into live ids where known.
pub fn writes<'a>(change: &'a crate::plan::Change, after: Option<&'a Spec>) -> Vec<Write<'a>> {
    use crate::plan::Action;
    let id = change.id.as_deref().unwrap_or_default();
    let update = || after.map(|spec| Write::Update { id, spec });
    let delete = Write::Delete {
        kind: change.kind,
        id,
    };
    match change.action {
        Action::Create => after.map(Write::Create).into_iter().collect(),
        Action::Update => update().into_iter().collect(),
        Action::Adopt if !change.fields.is_empty() => update().into_iter().collect(),
        Action::Replace => after
            .map(Write::Create)
            .into_iter()
            .chain([delete])
            .collect(),
        Action::Delete => vec![delete],
        _ => Vec::new(),
    }
}

/// The ids `apply --unprotect ID` may carry out: each must be an `unprotect` entry of the
/// plan (trimmed, exact), or the apply is refused before anything is written.
pub fn unprotect_requests(
    plan: &crate::plan::Plan,
    asked: &[String],
) -> Result<Vec<String>, String> {
    asked
        .iter()
        .map(|id| {
            let id = id.trim();
            match plan.unprotect.iter().find(|u| u.id == id) {
                Some(u) => Ok(u.id.clone()),
                None if plan.unprotect.is_empty() => Err(format!(
                    "--unprotect {id}: the plan has no unprotect entry (remove the id from [protected] in lines.toml first)"
                )),
                None => Err(format!(
                    "--unprotect {id}: not an unprotect entry of this plan (it has: {})",
                    plan.unprotect.iter().map(|u| u.id.as_str()).collect::<Vec<_>>().join(", ")
                )),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{
        DispatchKind, DispatchRuleSpec, FqdnConnectionSpec, FqdnSpec, InboundTrunkSpec,
        OutboundTrunkSpec, TelnyxNumberSpec, TexmlApplicationSpec, TwilioNumberSpec,
        TwilioTrunkNumberSpec, TwilioTrunkSpec, E164,
    };

    const TRUNK: &str = "ST_Xa3Bp9aixRFP";
    const RULE: &str = "SDR_cYzx7sAkUTvx";
    const SALES: &str = "+18886030316";

    fn e164(n: &str) -> E164 {
        E164::parse(n).unwrap()
    }

    fn obj(id: &str, spec: Spec) -> LiveObject {
        LiveObject {
            id: id.into(),
            spec,
            extra: BTreeMap::new(),
        }
    }

    fn inbound(name: &str, numbers: &[&str]) -> Spec {
        let numbers = numbers.iter().map(|n| NumberRef::Number(e164(n))).collect();
        Spec::LivekitInboundTrunk(InboundTrunkSpec::holding(name, numbers))
    }

    fn outbound(numbers: &[&str]) -> Spec {
        Spec::LivekitOutboundTrunk(OutboundTrunkSpec {
            name: "out".into(),
            metadata: String::new(),
            address: "sip.telnyx.com".into(),
            transport: "tcp".into(),
            numbers: numbers.iter().map(|n| NumberRef::Number(e164(n))).collect(),
            auth_username: String::new(),
            auth_password: None,
            headers: BTreeMap::new(),
            destination_country: "US".into(),
            preserved: Default::default(),
        })
    }

    fn rule(trunks: &[&str]) -> Spec {
        Spec::LivekitDispatchRule(DispatchRuleSpec {
            name: "r".into(),
            metadata: String::new(),
            trunks: trunks.iter().map(|t| Ref::Id(t.to_string())).collect(),
            rule: DispatchKind::Individual {
                room_prefix: "call-".into(),
                pin: String::new(),
            },
            agents: vec![],
            hide_phone_number: false,
            krisp_enabled: false,
            preserved: Default::default(),
        })
    }

    fn telnyx_number(n: &str) -> Spec {
        Spec::TelnyxNumber(TelnyxNumberSpec {
            number: NumberSpec::Fixed { number: e164(n) },
            connection: Some(Ref::Id("2925081061861885519".into())),
            tags: vec![],
            settings: Default::default(),
        })
    }

    fn twilio_number(n: &str) -> Spec {
        Spec::TwilioNumber(TwilioNumberSpec {
            number: e164(n),
            friendly_name: "x".into(),
        })
    }

    fn twilio_trunk() -> Spec {
        Spec::TwilioTrunk(TwilioTrunkSpec {
            friendly_name: "LiveKit Main".into(),
            domain_name: "churchwiseai.pstn.twilio.com".into(),
            origination_urls: vec![],
        })
    }

    fn attachment(trunk: &str, number: &str) -> Spec {
        Spec::TwilioTrunkNumber(TwilioTrunkNumberSpec {
            trunk: Ref::Id(trunk.into()),
            number: Ref::Id(number.into()),
        })
    }

    fn connection() -> Spec {
        Spec::TelnyxFqdnConnection(FqdnConnectionSpec {
            connection_name: "LiveKit".into(),
            active: true,
            transport_protocol: "TCP".into(),
            user_name: None,
            password: None,
            ani_number_format: "+E.164".into(),
            dnis_number_format: "+e164".into(),
            outbound_voice_profile: None,
        })
    }

    /// The runbook world's shape: the protected trunk holds the Twilio numbers, which reach it
    /// through a Twilio trunk; a Telnyx number on it too; other objects unrelated.
    fn world() -> Vec<LiveObject> {
        vec![
            obj(TRUNK, inbound("Twilio Main", &[SALES, "+14696152221"])),
            obj("ST_other", inbound("Other", &["+14144007103"])),
            obj(RULE, rule(&[TRUNK])),
            obj("SDR_other", rule(&["ST_other"])),
            obj("PNsales", twilio_number(SALES)),
            obj("PNspare", twilio_number("+13658253552")),
            obj("TKmain", twilio_trunk()),
            obj("TKtest", twilio_trunk()),
            obj("TKmain/PNsales", attachment("TKmain", "PNsales")),
            obj("TKtest/PNspare", attachment("TKtest", "PNspare")),
            obj("2926", telnyx_number("+14696152221")),
            obj("2927", telnyx_number("+14144007103")),
            obj("conn", connection()),
        ]
    }

    fn learned() -> Lock {
        let mut lock = Lock::new([TRUNK, RULE]);
        let live = world();
        lock.learn(&live);
        lock
    }

    fn refused(lock: &Lock, w: Write<'_>) -> bool {
        lock.check(&w).is_err()
    }

    #[test]
    fn livekit_inbound_trunk_writes() {
        let lock = learned();
        let spec = inbound("x", &["+14149990001"]);
        assert!(!refused(&lock, Write::Create(&spec)));
        assert!(refused(
            &lock,
            Write::Update {
                id: TRUNK,
                spec: &spec
            }
        ));
        assert!(refused(
            &lock,
            Write::Delete {
                kind: Kind::LivekitInboundTrunk,
                id: TRUNK
            }
        ));
        assert!(!refused(
            &lock,
            Write::Update {
                id: "ST_other",
                spec: &spec
            }
        ));
        assert!(!refused(
            &lock,
            Write::Delete {
                kind: Kind::LivekitInboundTrunk,
                id: "ST_other"
            }
        ));
        let grabs = inbound("x", &["+14149990001", SALES]);
        assert!(
            refused(&lock, Write::Create(&grabs)),
            "a new trunk listing a locked number"
        );
        assert!(refused(
            &lock,
            Write::Update {
                id: "ST_other",
                spec: &grabs
            }
        ));
    }

    #[test]
    fn livekit_outbound_trunk_writes() {
        let lock = learned();
        assert!(!refused(&lock, Write::Create(&outbound(&["+12268830000"]))));
        assert!(refused(&lock, Write::Create(&outbound(&[SALES]))));
        assert!(refused(
            &lock,
            Write::Update {
                id: "ST_out",
                spec: &outbound(&[SALES])
            }
        ));
        assert!(!refused(
            &lock,
            Write::Delete {
                kind: Kind::LivekitOutboundTrunk,
                id: "ST_out"
            }
        ));
    }

    #[test]
    fn livekit_dispatch_rule_writes() {
        let lock = learned();
        assert!(
            refused(&lock, Write::Create(&rule(&[TRUNK]))),
            "a second rule on the locked trunk"
        );
        assert!(
            refused(&lock, Write::Create(&rule(&[]))),
            "a rule for every trunk"
        );
        assert!(refused(&lock, Write::Create(&rule(&["ST_other", TRUNK]))));
        assert!(!refused(&lock, Write::Create(&rule(&["ST_other"]))));
        assert!(refused(
            &lock,
            Write::Update {
                id: RULE,
                spec: &rule(&["ST_other"])
            }
        ));
        assert!(refused(
            &lock,
            Write::Update {
                id: "SDR_other",
                spec: &rule(&[TRUNK])
            }
        ));
        assert!(refused(
            &lock,
            Write::Update {
                id: "SDR_other",
                spec: &rule(&[])
            }
        ));
        assert!(!refused(
            &lock,
            Write::Update {
                id: "SDR_other",
                spec: &rule(&["ST_other"])
            }
        ));
        assert!(refused(
            &lock,
            Write::Delete {
                kind: Kind::LivekitDispatchRule,
                id: RULE
            }
        ));
        assert!(!refused(
            &lock,
            Write::Delete {
                kind: Kind::LivekitDispatchRule,
                id: "SDR_other"
            }
        ));
    }

    #[test]
    fn a_rule_routing_the_locked_trunk_is_locked_even_when_not_listed() {
        let mut lock = Lock::new([TRUNK]);
        let mut live = world();
        live.push(obj("SDR_wild", rule(&[])));
        lock.learn(&live);
        assert!(refused(
            &lock,
            Write::Delete {
                kind: Kind::LivekitDispatchRule,
                id: RULE
            }
        ));
        assert!(refused(
            &lock,
            Write::Delete {
                kind: Kind::LivekitDispatchRule,
                id: "SDR_wild"
            }
        ));
        assert!(refused(
            &lock,
            Write::Update {
                id: "SDR_wild",
                spec: &rule(&["ST_other"])
            }
        ));
    }

    #[test]
    fn telnyx_number_writes() {
        let lock = learned();
        assert!(!refused(
            &lock,
            Write::Create(&telnyx_number("+14149990001"))
        ));
        assert!(
            refused(&lock, Write::Create(&telnyx_number(SALES))),
            "ordering a locked number"
        );
        assert!(refused(
            &lock,
            Write::Update {
                id: "2926",
                spec: &telnyx_number("+14696152221")
            }
        ));
        assert!(refused(
            &lock,
            Write::Delete {
                kind: Kind::TelnyxNumber,
                id: "2926"
            }
        ));
        assert!(!refused(
            &lock,
            Write::Update {
                id: "2927",
                spec: &telnyx_number("+14144007103")
            }
        ));
        assert!(!refused(
            &lock,
            Write::Delete {
                kind: Kind::TelnyxNumber,
                id: "2927"
            }
        ));
    }

    #[test]
    fn other_telnyx_writes_are_refused_only_by_id() {
        let lock = Lock::new(["conn"]);
        let fqdn = Spec::TelnyxFqdn(FqdnSpec {
            connection: Ref::Id("conn".into()),
            fqdn: "x.sip.livekit.cloud".into(),
            port: 5060,
            dns_record_type: "a".into(),
            default_primary: true,
        });
        let texml = Spec::TelnyxTexmlApplication(TexmlApplicationSpec {
            friendly_name: "f".into(),
            voice_url: "https://x".into(),
            voice_method: "post".into(),
        });
        assert!(refused(
            &lock,
            Write::Update {
                id: "conn",
                spec: &connection()
            }
        ));
        assert!(refused(
            &lock,
            Write::Delete {
                kind: Kind::TelnyxFqdnConnection,
                id: "conn"
            }
        ));
        assert!(!refused(&lock, Write::Create(&connection())));
        assert!(!refused(&lock, Write::Create(&fqdn)));
        assert!(!refused(
            &lock,
            Write::Update {
                id: "fq",
                spec: &fqdn
            }
        ));
        assert!(!refused(&lock, Write::Create(&texml)));
        assert!(!refused(
            &lock,
            Write::Delete {
                kind: Kind::TelnyxTexmlApplication,
                id: "tx"
            }
        ));
    }

    #[test]
    fn twilio_upstream_path_writes() {
        let lock = learned();
        assert!(refused(
            &lock,
            Write::Update {
                id: "PNsales",
                spec: &twilio_number(SALES)
            }
        ));
        assert!(refused(
            &lock,
            Write::Delete {
                kind: Kind::TwilioNumber,
                id: "PNsales"
            }
        ));
        assert!(refused(
            &lock,
            Write::Update {
                id: "TKmain",
                spec: &twilio_trunk()
            }
        ));
        assert!(refused(
            &lock,
            Write::Delete {
                kind: Kind::TwilioTrunk,
                id: "TKmain"
            }
        ));
        assert!(
            refused(
                &lock,
                Write::Delete {
                    kind: Kind::TwilioTrunkNumber,
                    id: "TKmain/PNsales"
                }
            ),
            "detaching the number that feeds the locked trunk"
        );
        assert!(
            refused(&lock, Write::Create(&attachment("TKtest", "PNsales"))),
            "moving it to another trunk"
        );
        assert!(refused(
            &lock,
            Write::Create(&attachment("TKmain", "PNspare"))
        ));
        assert!(!refused(
            &lock,
            Write::Update {
                id: "PNspare",
                spec: &twilio_number("+13658253552")
            }
        ));
        assert!(!refused(
            &lock,
            Write::Delete {
                kind: Kind::TwilioTrunkNumber,
                id: "TKtest/PNspare"
            }
        ));
        assert!(!refused(
            &lock,
            Write::Update {
                id: "TKtest",
                spec: &twilio_trunk()
            }
        ));
    }

    #[test]
    fn entries_are_trimmed_and_matched_exactly() {
        let lock = Lock::new([format!(" {TRUNK}\n")]);
        assert!(lock.is_locked(TRUNK));
        assert!(
            !lock.is_locked(&TRUNK.to_lowercase()),
            "a near miss never matches"
        );
        assert!(
            !lock.is_locked("ST_Xа3Bp9aixRFP"),
            "a Cyrillic а never matches"
        );
        assert!(!lock.is_locked(""));
    }

    #[test]
    fn before_learning_live_a_rule_naming_no_trunk_is_refused() {
        let lock = Lock::new([TRUNK]);
        assert!(refused(&lock, Write::Create(&rule(&[]))));
        let mut only_numbers = Lock::new(["+14697288326"]);
        only_numbers.learn(&world());
        assert!(
            !refused(&only_numbers, Write::Create(&rule(&[]))),
            "no protected trunk exists"
        );
        assert!(refused(
            &only_numbers,
            Write::Create(&telnyx_number("+14697288326"))
        ));
    }

    #[test]
    fn an_undeclared_trunk_is_placed_from_live_alone() {
        let lock = learned();
        assert!(lock.is_placed(TRUNK) && lock.is_placed(RULE));
        let mut lock = Lock::new(["st_xa3bp9aixrfp"]);
        lock.learn(&world());
        assert!(!lock.is_placed("st_xa3bp9aixrfp"));
    }

    #[test]
    fn near_misses_cover_case_lookalikes_and_invisible_characters() {
        let live = [TRUNK, RULE, "ST_other"];
        assert_eq!(near_misses("st_xa3bp9aixrfp", live), vec![TRUNK]);
        assert_eq!(near_misses("ST_Xа3Bp9aixRFP", live), vec![TRUNK]);
        assert_eq!(near_misses("ST_Xa3Bp9a\u{200B}ixRFP", live), vec![TRUNK]);
        assert_eq!(near_misses("ST_Xa3Bp9aixRFO", live), Vec::<String>::new());
        assert_eq!(
            near_misses(TRUNK, live),
            Vec::<String>::new(),
            "an exact match is no near miss"
        );
    }

    #[test]
    fn a_planned_change_maps_to_its_writes() {
        use crate::plan::{Action, Change};
        let after = rule(&[TRUNK]);
        let mut c = Change {
            address: "livekit_dispatch_rule.x".parse().unwrap(),
            kind: Kind::LivekitDispatchRule,
            action: Action::Create,
            id: None,
            church: None,
            protected: false,
            irreversible: false,
            reason: crate::plan::Reason::Unchanged,
            fields: vec![],
            before: None,
            after: Some(after.clone()),
            depends_on: vec![],
            monthly_cost_delta_cents: 0,
            displaced_from: None,
        };
        assert_eq!(writes(&c, Some(&after)).len(), 1);
        c.action = Action::Replace;
        c.id = Some("SDR_old".into());
        assert_eq!(writes(&c, Some(&after)).len(), 2);
        c.action = Action::Verify;
        assert!(writes(&c, Some(&after)).is_empty());
        c.action = Action::Adopt;
        assert!(
            writes(&c, Some(&after)).is_empty(),
            "adopting without field changes writes nothing"
        );
    }

    #[test]
    fn memory_outlives_the_declaration_and_a_declared_number_covers_its_live_id() {
        use crate::model::{Address, Desired, ProtectedId};
        use crate::state::{State, StateResource};
        let mut state = State::new();
        state.upsert(
            &Address::new(Kind::TelnyxNumber, "fallback"),
            StateResource {
                id: "2927".into(),
                spec: telnyx_number("+14697288326"),
                church: None,
                protected: true,
            },
        );
        state
            .protected
            .insert(format!(" {TRUNK} "), "locked".into());
        let mut desired = Desired::default();
        desired.protected.push(ProtectedId {
            id: "+14697288326".into(),
            reason: "fallback".into(),
            span: None,
        });
        let ids: Vec<String> = unprotect_entries(&desired, &state)
            .into_iter()
            .map(|u| u.id)
            .collect();
        assert_eq!(
            ids,
            vec![TRUNK.to_string()],
            "the trimmed map entry, not the number's id"
        );
        let all = entries(&desired, &state);
        assert!(
            all.contains_key(TRUNK) && all.contains_key("2927") && all.contains_key("+14697288326")
        );
        assert!(state.unprotect(TRUNK));
        assert!(unprotect_entries(&desired, &state).is_empty());
    }
}
