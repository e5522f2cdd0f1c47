//! Dispatch rules: every inbound trunk has one, and it sends an agent that exists.

use std::collections::BTreeMap;

use super::declared::Declared;
use super::live::{Index, Results};
use super::{CheckResult, Rule};
use crate::config::{Problem, ProblemKind};
use crate::model::{Address, Desired, DesiredResource, Kind, LiveObject, Spec, E164};

/// No dispatch rule for the trunk: "No SIP Dispatch Rules matched".
pub const NO_RULE: Rule = Rule {
    code: "cwa::dispatch::no-rule",
    check: "dispatch-rule",
    hop: "dispatch",
};
/// The rule dispatches no agent, or another one: the agent never joins.
pub const AGENT: Rule = Rule {
    code: "cwa::dispatch::no-agent",
    check: "dispatch-agent",
    hop: "dispatch",
};

/// The dispatch rule of the trunk a call lands on sends the agent lines.toml names.
pub(super) fn live(
    desired: &Desired,
    index: &Index,
    number: &E164,
    trunk: &LiveObject,
    out: &mut Results,
) {
    let subject = number.as_str();
    let agent = &desired.settings.agent_name;
    let rule = index.rule_by_trunk.get(trunk.id.as_str());
    let Some(rule) = rule else {
        out.push(CheckResult::new(
            &NO_RULE,
            subject,
            false,
            "no dispatch rule for the trunk: No SIP Dispatch Rules matched".into(),
        ));
        return;
    };
    let Spec::LivekitDispatchRule(r) = &rule.spec else {
        return;
    };
    let declared = index
        .declared_agents
        .get(r.name.as_str())
        .map_or(&[][..], Vec::as_slice);
    let agent = declared.first().copied().unwrap_or(agent.as_str());
    let names_agent = r.agents.iter().any(|a| {
        agent.is_empty() || a.agent_name == agent || declared.contains(&a.agent_name.as_str())
    });
    out.push(CheckResult::new(
        &AGENT,
        &format!("{subject} via {}", rule.id),
        !r.agents.is_empty() && names_agent,
        format!(
            "the rule dispatches {:?} (want {agent}; none means the agent never joins)",
            r.agents
                .iter()
                .map(|a| a.agent_name.as_str())
                .collect::<Vec<_>>()
        ),
    ));
}

impl Declared<'_> {
    pub(super) fn dispatch_rules(&mut self) {
        let mut found = Vec::new();
        let mut by_trunk: BTreeMap<(Option<&Address>, String), &DesiredResource> = BTreeMap::new();
        let default_agent = &self.x.desired.settings.agent_name;
        for r in self.of_kind(Kind::LivekitDispatchRule) {
            let Spec::LivekitDispatchRule(s) = &r.spec else {
                continue;
            };
            let pin = match &s.rule {
                crate::model::DispatchKind::Individual { pin, .. }
                | crate::model::DispatchKind::Direct { pin, .. }
                | crate::model::DispatchKind::Callee { pin, .. } => pin.clone(),
            };
            let trunks: Vec<Option<&Address>> = if s.trunks.is_empty() {
                vec![None]
            } else {
                s.trunks.iter().map(|t| t.addr()).collect()
            };
            for (i, t) in trunks.into_iter().enumerate() {
                if let Some(first) = by_trunk.insert((t, pin.clone()), r) {
                    let trunk = t.map_or("every trunk".to_string(), |a| a.to_string());
                    found.push(
                        Problem::error(
                            ProblemKind::DispatchRule,
                            self.at(r, &format!("trunks.{i}")),
                            "same trunk and pin",
                            format!("{} and {} both dispatch calls on {trunk}", first.addr, r.addr),
                        )
                        .with_label(first.span, "first rule")
                        .with_help("LiveKit refuses two rules for the same trunk, numbers and pin; keep one rule per trunk (the agent tells churches apart by the called number)"),
                    );
                }
            }
            if s.agents.is_empty() || s.agents.iter().any(|a| a.agent_name.is_empty()) {
                let span = self.x.spans.get(&r.addr, "agents").unwrap_or(r.span);
                found.push(
                    Problem::error(
                        ProblemKind::NoAgent,
                        span,
                        "no agent named",
                        format!("{} dispatches calls to no agent", r.addr),
                    )
                    .with_help("the call connects and a room is created, but the agent never joins: callers hear silence, then \"customer unavailable\". Name it: agents = [{ name = \"churchwiseai-voice\" }], or set [defaults] agent"),
                );
            }
            for (i, a) in s.agents.iter().enumerate() {
                if !default_agent.is_empty()
                    && !a.agent_name.is_empty()
                    && &a.agent_name != default_agent
                {
                    found.push(
                        Problem::error(
                            ProblemKind::AgentName,
                            self.at(r, &format!("agents.{i}")),
                            "not the default agent",
                            format!("{} dispatches to `{}`, not to the project's agent `{default_agent}`", r.addr, a.agent_name),
                        )
                        .as_warning()
                        .with_help("an agent name nobody deploys means the agent never joins; check the spelling"),
                    );
                }
            }
        }
        let wildcard = by_trunk.keys().any(|(a, _)| a.is_none());
        let covered_trunks: std::collections::HashSet<&Address> =
            by_trunk.keys().filter_map(|(a, _)| *a).collect();
        for t in self.of_kind(Kind::LivekitInboundTrunk) {
            let covered = wildcard || covered_trunks.contains(&t.addr);
            if !covered {
                found.push(
                    Problem::error(
                        ProblemKind::DispatchRule,
                        t.span,
                        "no dispatch rule for this trunk",
                        format!("no dispatch rule sends calls on {} to an agent", t.addr),
                    )
                    .with_help("LiveKit rejects the call (\"No SIP Dispatch Rules matched\"); add a [livekit.dispatch_rule.<name>] with trunks = [\"…\"]"),
                );
            }
        }
        self.extend(found);
    }
}
