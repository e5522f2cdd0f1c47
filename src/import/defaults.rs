//! `[defaults]` and `[livekit]` keys the result needs and the declaration lacks, guessed from
//! live and marked as guesses.

use super::*;

impl<'a> Importer<'a> {
    /// Fills in `[defaults] agent`, `[defaults] connection` and `[livekit] project_id` when the
    /// declaration needs them and lacks them.
    pub(super) fn complete_defaults(&mut self, doc: &mut DocumentMut) {
        let needs_agent = self
            .todo
            .values()
            .any(|o| o.kind() == Kind::LivekitDispatchRule);
        if self.defaults.line.agent.is_empty() && needs_agent {
            if let Some(agent) = most_common_agent(self.live()) {
                self.defaults.line.agent = agent.clone();
                self.additions.push((
                    "defaults",
                    "agent",
                    agent,
                    "guessed: the agent most live dispatch rules name".into(),
                ));
            }
        }
        let has_connection_key = doc
            .get("defaults")
            .and_then(|d| d.get("connection"))
            .is_some();
        if !has_connection_key && !self.churches.is_empty() {
            let chosen = self
                .defaults
                .connection
                .clone()
                .or_else(|| self.most_common_church_connection());
            if let Some(c) = chosen {
                self.additions.push((
                    "defaults",
                    "connection",
                    c.to_string(),
                    "guessed: where most church numbers are bound".into(),
                ));
                self.defaults.connection = Some(c);
            }
        }
        let has_project = doc
            .get("livekit")
            .and_then(|d| d.get("project_id"))
            .is_some();
        let needs_project = self.todo.values().any(|o| {
            matches!(o.kind().provider(), crate::model::ProviderName::Livekit)
                || o.kind() == Kind::TelnyxFqdn
        });
        if !has_project && needs_project {
            if let Some((project, from)) = guess_project_id(self.live()) {
                self.additions.push((
                    "livekit",
                    "project_id",
                    project,
                    format!("guessed from {from}"),
                ));
            }
        }
        let mut new_tables: Vec<Block> = Vec::new();
        for (table, key, value, note) in &self.additions {
            match doc.get_mut(table).and_then(Item::as_table_mut) {
                Some(t) => {
                    let mut v = Value::from(value.as_str());
                    v.decor_mut().set_suffix(format!("  # {note}"));
                    t.insert(key, Item::Value(v));
                }
                None => {
                    let at = match new_tables.iter().position(|b| b.header == [*table]) {
                        Some(i) => i,
                        None => {
                            new_tables.push(Block::new(&[table]));
                            new_tables.len() - 1
                        }
                    };
                    new_tables[at].set_noted(key, value.as_str(), note);
                }
            }
        }
        self.blocks.splice(0..0, new_tables);
    }

    pub(super) fn most_common_church_connection(&self) -> Option<Address> {
        let mut counts: BTreeMap<Address, usize> = BTreeMap::new();
        for c in &self.churches {
            if let Spec::TelnyxNumber(n) = &self.todo[&c.number].spec {
                if let Some(a) = n
                    .connection
                    .as_ref()
                    .and_then(Ref::id)
                    .and_then(|id| self.connection_addr(id))
                {
                    *counts.entry(a.clone()).or_default() += 1;
                }
            }
        }
        counts.into_iter().max_by_key(|(_, n)| *n).map(|(a, _)| a)
    }
}

/// Where a church number binds in the existing declaration: what its church numbers use.
pub(super) fn base_connection(base: &Desired) -> Option<Address> {
    base.resources
        .values()
        .find_map(|r| match (&r.church, &r.spec) {
            (Some(_), Spec::TelnyxNumber(n)) => n.connection.as_ref().and_then(Ref::addr).cloned(),
            _ => None,
        })
}

fn most_common_agent(live: &Live) -> Option<String> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for o in live.of_kind(Kind::LivekitDispatchRule) {
        if let Spec::LivekitDispatchRule(r) = &o.spec {
            for a in &r.agents {
                *counts.entry(a.agent_name.as_str()).or_default() += 1;
            }
        }
    }
    counts
        .into_iter()
        .filter(|(a, _)| !a.is_empty())
        .max_by_key(|(_, n)| *n)
        .map(|(a, _)| a.to_string())
}

/// `p_<id>` from the first project-id SIP host live objects point at.
fn guess_project_id(live: &Live) -> Option<(String, &'static str)> {
    let project = |host: &str| {
        host.strip_suffix(".sip.livekit.cloud")
            .filter(|id| !id.is_empty() && !id.contains('.'))
            .map(|id| format!("p_{id}"))
    };
    let from_fqdn = live.of_kind(Kind::TelnyxFqdn).find_map(|o| match &o.spec {
        Spec::TelnyxFqdn(f) => project(&f.fqdn),
        _ => None,
    });
    if let Some(p) = from_fqdn {
        return Some((p, "the Telnyx FQDN record"));
    }
    live.of_kind(Kind::TwilioTrunk).find_map(|o| match &o.spec {
        Spec::TwilioTrunk(t) => t.origination_urls.iter().find_map(|u| {
            let host = u
                .sip_url
                .trim_start_matches("sip:")
                .split([';', ':'])
                .next()?;
            project(host).map(|p| (p, "a Twilio origination URL"))
        }),
        _ => None,
    })
}
