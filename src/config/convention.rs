//! The church convention, written once and read both ways: a church line (church -> number ->
//! its own inbound trunk -> its own dispatch rule) is *built* from it by expansion, and a live
//! trunk and rule are *recognised* by it at import, which then declares only what differs.
//!
//! The convention: the trunk is named after the church (`"Grace"`, or `"Grace (main)"` for the
//! line `main` of a church with several), holds only the line's number and has krisp on; the
//! rule is named `"<trunk name> Dispatch"`, names only that trunk, gives each call its own room
//! with the prefix `call-`, and dispatches the agent with metadata carrying the church id.

use crate::model::{
    AgentDispatch, DispatchKind, DispatchRuleSpec, InboundTrunkSpec, Kind, NumberRef, Ref,
};

/// The kinds one church line expands to, all under the line's name.
pub const LINE_KINDS: [Kind; 3] = [
    Kind::TelnyxNumber,
    Kind::LivekitInboundTrunk,
    Kind::LivekitDispatchRule,
];

/// The room prefix of a church's calls unless `[defaults] room_prefix` says otherwise.
pub const ROOM_PREFIX: &str = "call-";

/// Whether a church trunk has krisp noise cancellation unless `[defaults] krisp` says otherwise.
pub const KRISP: bool = true;

/// The `[defaults]` a church line expands with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineDefaults {
    /// The agent every rule dispatches (empty: none declared).
    pub agent: String,
    pub room_prefix: String,
    pub krisp: bool,
}

impl Default for LineDefaults {
    fn default() -> Self {
        Self {
            agent: String::new(),
            room_prefix: ROOM_PREFIX.into(),
            krisp: KRISP,
        }
    }
}

/// What one line sets over its defaults (church or line keys `agent`, `room_prefix`, `krisp`).
#[derive(Debug, Clone, Default)]
pub struct LineKeys {
    pub agent: Option<String>,
    pub room_prefix: Option<String>,
    pub krisp: Option<bool>,
}

/// The resource name of a church line: the church key, or `<key>_<line>` for each of several.
pub fn line_name(church_key: &str, line: Option<&str>) -> String {
    match line {
        None => church_key.to_string(),
        Some(l) => format!("{church_key}_{l}"),
    }
}

/// The inbound trunk's name: the church's, with the line in parentheses when it has several.
pub fn trunk_name(church_name: &str, line: Option<&str>) -> String {
    match line {
        None => church_name.to_string(),
        Some(l) => format!("{church_name} ({l})"),
    }
}

/// The dispatch rule's name, from its trunk's.
pub fn rule_name(trunk_name: &str) -> String {
    format!("{trunk_name} Dispatch")
}

/// The metadata every church dispatch carries: the agent routes the call by it.
pub fn church_metadata(id: &uuid::Uuid) -> String {
    format!(r#"{{"church_id":"{id}","source":"phone"}}"#)
}

/// The church id in a dispatch's job metadata (`{"church_id": "…"}`), if any.
pub fn church_id_in(metadata: &str) -> Option<uuid::Uuid> {
    let v: serde_json::Value = serde_json::from_str(metadata).ok()?;
    uuid::Uuid::parse_str(v.get("church_id")?.as_str()?).ok()
}

/// The agents of a church rule: `agent` with the church's metadata, or none when no agent is
/// declared (validation reports that).
pub fn agents(agent: &str, church: &uuid::Uuid) -> Vec<AgentDispatch> {
    if agent.is_empty() {
        return Vec::new();
    }
    vec![AgentDispatch {
        agent_name: agent.to_string(),
        metadata: church_metadata(church),
    }]
}

/// A church line's trunk and rule, as the convention builds them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineSpecs {
    pub trunk: InboundTrunkSpec,
    pub rule: DispatchRuleSpec,
}

/// One church line to build: whose it is and what it holds.
pub struct Line<'a> {
    pub church_id: &'a uuid::Uuid,
    /// The trunk's name ([`trunk_name`]).
    pub trunk_name: String,
    pub number: NumberRef,
    /// The reference the rule names its trunk by.
    pub trunk: Ref,
}

impl LineDefaults {
    /// The trunk and rule of `line`, with `keys` laid over these defaults.
    pub fn build(&self, line: Line<'_>, keys: &LineKeys) -> LineSpecs {
        let agent = keys.agent.as_deref().unwrap_or(&self.agent);
        let trunk = InboundTrunkSpec {
            krisp_enabled: keys.krisp.unwrap_or(self.krisp),
            ..InboundTrunkSpec::holding(line.trunk_name.clone(), vec![line.number])
        };
        let rule = DispatchRuleSpec {
            name: rule_name(&line.trunk_name),
            metadata: String::new(),
            trunks: vec![line.trunk],
            rule: DispatchKind::Individual {
                room_prefix: keys
                    .room_prefix
                    .clone()
                    .unwrap_or_else(|| self.room_prefix.clone()),
                pin: String::new(),
            },
            agents: agents(agent, line.church_id),
            hide_phone_number: false,
            krisp_enabled: false,
            preserved: Default::default(),
        };
        LineSpecs { trunk, rule }
    }
}

/// How a live trunk and rule were recognised as a church line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Evidence {
    /// The rule's dispatch metadata carries this church id.
    ChurchId(uuid::Uuid),
    /// No church id, but the names follow the convention (`"X"`, `"X Dispatch"`).
    Names,
}

/// Whether a live trunk and the one rule naming it have the shape of a church line: one
/// literal number, one individual rule naming only that trunk, a name, and either a church id
/// in the metadata or the convention's names.
pub fn recognise(trunk: &InboundTrunkSpec, rule: &DispatchRuleSpec) -> Option<Evidence> {
    let one_number = matches!(trunk.numbers.as_slice(), [NumberRef::Number(_)]);
    let individual = matches!(rule.rule, DispatchKind::Individual { .. });
    if !one_number || rule.trunks.len() != 1 || !individual || trunk.name.trim().is_empty() {
        return None;
    }
    if let Some(id) = rule.agents.iter().find_map(|a| church_id_in(&a.metadata)) {
        return Some(Evidence::ChurchId(id));
    }
    (rule.name == rule_name(&trunk.name)).then_some(Evidence::Names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::E164;

    fn grace(id: &uuid::Uuid) -> LineSpecs {
        LineDefaults {
            agent: "church-agent".into(),
            ..LineDefaults::default()
        }
        .build(
            Line {
                church_id: id,
                trunk_name: trunk_name("Grace", None),
                number: NumberRef::Number(E164::parse("+14144007103").unwrap()),
                trunk: Ref::Id("ST_1".into()),
            },
            &LineKeys::default(),
        )
    }

    #[test]
    fn what_the_convention_builds_it_recognises() {
        let id = uuid::Uuid::new_v4();
        let line = grace(&id);
        assert_eq!(line.rule.name, "Grace Dispatch");
        assert_eq!(church_id_in(&line.rule.agents[0].metadata), Some(id));
        assert_eq!(
            recognise(&line.trunk, &line.rule),
            Some(Evidence::ChurchId(id))
        );
        let mut by_name = line.clone();
        by_name.rule.agents.clear();
        assert_eq!(
            recognise(&by_name.trunk, &by_name.rule),
            Some(Evidence::Names)
        );
        by_name.rule.name = "Other".into();
        assert_eq!(recognise(&by_name.trunk, &by_name.rule), None);
    }

    #[test]
    fn a_shared_or_direct_shape_is_not_a_church_line() {
        let id = uuid::Uuid::new_v4();
        let mut two = grace(&id);
        two.trunk
            .numbers
            .push(NumberRef::Number(E164::parse("+14144007104").unwrap()));
        assert_eq!(recognise(&two.trunk, &two.rule), None);
        let mut direct = grace(&id);
        direct.rule.rule = DispatchKind::Direct {
            room_name: "r".into(),
            pin: String::new(),
        };
        assert_eq!(recognise(&direct.trunk, &direct.rule), None);
    }

    #[test]
    fn church_ids_come_from_dispatch_metadata() {
        let id = uuid::Uuid::new_v4();
        assert_eq!(church_id_in(&church_metadata(&id)), Some(id));
        assert_eq!(church_id_in(r#"{"source": "phone"}"#), None);
        assert_eq!(church_id_in("not json"), None);
    }
}
