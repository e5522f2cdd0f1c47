//! Recording in state: what the existing declaration matches (as it is live), what the
//! import declares, and what a plan of the result would still change.

use super::*;

impl<'a> Importer<'a> {
    /// Plans the existing declaration against live: what it matches is recorded in state as
    /// it is live; what state owns that is gone is forgotten; the rest is to import.
    pub(super) fn record_declared(&mut self) {
        let plan = plan::compute(&PlanInput {
            desired: self.base,
            state: self.input.state,
            live: self.input.live,
            refreshed: true,
            config_fingerprint: String::new(),
            options: PlanOptions::default(),
            secrets: self.input.secrets,
        });
        let mut claimed = BTreeSet::new();
        for change in &plan.changes {
            let Some(obj) = change
                .id
                .as_ref()
                .and_then(|id| self.live().get(change.kind, id))
            else {
                if change.action == plan::Action::Forget {
                    self.state.remove(&change.address);
                }
                continue;
            };
            if self.base.get(&change.address).is_none() {
                self.preferred
                    .insert((obj.kind(), obj.id.clone()), change.address.name.clone());
                continue;
            }
            claimed.insert((obj.kind(), obj.id.clone()));
            self.index
                .insert((obj.kind(), obj.id.clone()), change.address.clone());
            self.remember(
                &change.address,
                obj,
                change.church.clone(),
                change.protected,
            );
            self.recorded.push(change.address.clone());
        }
        self.todo = self
            .live()
            .objects
            .iter()
            .filter(|(k, _)| !claimed.contains(*k))
            .map(|(k, o)| (k.clone(), o))
            .collect();
    }

    pub(super) fn remember(
        &mut self,
        addr: &Address,
        obj: &LiveObject,
        church: Option<String>,
        protected: bool,
    ) {
        self.state.upsert(
            addr,
            StateResource {
                id: obj.id.clone(),
                spec: obj.spec.clone(),
                church,
                protected,
            },
        );
        if protected {
            let reason = self
                .base
                .protected_id(&obj.id)
                .map(|p| p.reason.clone())
                .unwrap_or_else(|| "declared protected in lines.toml".into());
            self.state.protected.entry(obj.id.clone()).or_insert(reason);
        }
    }

    /// Records every imported object in state under its new address.
    pub(super) fn record_imported(&mut self) {
        let church_of: HashMap<String, String> = self
            .churches
            .iter()
            .map(|c| (c.key.clone(), c.key.clone()))
            .collect();
        let added: BTreeSet<Address> = self.added.iter().cloned().collect();
        let entries: Vec<(Address, &'a LiveObject)> = self
            .todo
            .iter()
            .filter_map(|(k, o)| {
                let a = self.index.get(k)?;
                added.contains(a).then(|| (a.clone(), *o))
            })
            .collect();
        for (addr, obj) in entries {
            let church = church_of
                .get(&addr.name)
                .filter(|_| convention::LINE_KINDS.contains(&addr.kind));
            let protected = self.state.is_protected(&obj.id);
            self.remember(&addr, obj, church.cloned(), protected);
        }
    }

    /// Newly declared addresses that a plan of the result would still change.
    pub(super) fn pending(&self, desired: &Desired) -> Vec<String> {
        let added: BTreeSet<&Address> = self.added.iter().collect();
        let plan = plan::compute(&PlanInput {
            desired,
            state: &self.state,
            live: self.input.live,
            refreshed: true,
            config_fingerprint: String::new(),
            options: PlanOptions::default(),
            secrets: self.input.secrets,
        });
        plan.changes
            .iter()
            .filter(|c| added.contains(&c.address) && c.action.changes_anything())
            .map(|c| {
                let fields: Vec<&str> = c.fields.iter().map(|f| f.path.as_str()).collect();
                format!(
                    "{} {} ({})",
                    c.action.as_str(),
                    c.address,
                    fields.join(", ")
                )
            })
            .collect()
    }
}
