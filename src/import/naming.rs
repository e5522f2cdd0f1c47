//! Addresses for imported objects: the name state already gives, else one made from the
//! object's live label, free among every declared and owned address.

use super::*;

impl<'a> Importer<'a> {
    /// An address for every other object to import: the name state gives it, or one made from
    /// its label.
    pub(super) fn name_the_rest(&mut self) {
        let keys: Vec<(Kind, String)> = self
            .todo
            .keys()
            .filter(|k| !self.index.contains_key(*k))
            .cloned()
            .collect();
        for key in keys {
            let obj = self.todo[&key];
            let name = match self.preferred.get(&key) {
                Some(n) => n.clone(),
                None => self.free_name(key.0, &label_name(obj)),
            };
            let addr = Address::new(key.0, name);
            self.used.insert(addr.clone());
            self.index.insert(key, addr);
        }
    }

    pub(super) fn free_name(&self, kind: Kind, base: &str) -> String {
        (1..)
            .map(|n| {
                if n == 1 {
                    base.to_string()
                } else {
                    format!("{base}_{n}")
                }
            })
            .find(|n| !self.used.contains(&Address::new(kind, n)))
            .expect("some suffix is free")
    }
}

/// A name for an imported object, from what it is called live.
fn label_name(obj: &LiveObject) -> String {
    match &obj.spec {
        Spec::TelnyxNumber(n) => n
            .number
            .fixed()
            .map(|n| format!("number_{}", n.digits()))
            .unwrap_or_else(|| format!("number_{}", obj.id)),
        Spec::TelnyxFqdn(f) => slug(&f.fqdn, "fqdn"),
        Spec::TwilioNumber(n) => slug(&n.friendly_name, &format!("number_{}", n.number.digits())),
        spec => slug(&spec.label(), obj.kind().as_str()),
    }
}

/// A lines.toml name: lower-case letters, digits and `_`, starting with a letter.
pub(super) fn slug(text: &str, fallback: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('_') && !out.is_empty() {
            out.push('_');
        }
    }
    let mut out = out.trim_end_matches('_').to_string();
    out.truncate(48);
    let out = out.trim_end_matches('_').to_string();
    match out.chars().next() {
        None => fallback.to_string(),
        Some(c) if c.is_ascii_digit() => format!("{fallback}_{out}"),
        Some(_) => out,
    }
}

/// `TELNYX_<NAME>_PASSWORD`-style environment variable name.
pub(super) fn env_name(prefix: &str, name: &str, suffix: &str) -> String {
    format!("{prefix}_{}_{suffix}", name.to_ascii_uppercase())
}
