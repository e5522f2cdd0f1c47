//! The registry the voice agent routes calls with: every church number and its church id,
//! from lines.toml and the numbers state pinned for `"auto"` lines (`cwa export registry`).
//! This module decides what is in it; [`crate::render::registry`] prints it.

use std::collections::BTreeMap;

use crate::model::{Desired, Kind, Spec, E164};
use crate::state::State;

/// One registry entry: the church id and the church name (for the Python comment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryEntry {
    pub church_id: uuid::Uuid,
    pub church_name: String,
}

/// Every church number with its church, sorted by number; and the addresses of `"auto"`
/// numbers that state has not pinned yet.
pub fn registry(desired: &Desired, state: &State) -> (BTreeMap<E164, RegistryEntry>, Vec<String>) {
    let mut out = BTreeMap::new();
    let mut unpinned = Vec::new();
    for r in desired.resources.values() {
        let (Some(key), Spec::TelnyxNumber(n)) = (&r.church, &r.spec) else {
            continue;
        };
        let Some(church) = desired.churches.iter().find(|c| &c.key == key) else {
            continue;
        };
        let number = n.number.fixed().cloned().or_else(|| pinned(state, &r.addr));
        match number {
            Some(number) => {
                out.insert(
                    number,
                    RegistryEntry {
                        church_id: church.id,
                        church_name: church.name.clone(),
                    },
                );
            }
            None => unpinned.push(r.addr.to_string()),
        }
    }
    (out, unpinned)
}

fn pinned(state: &State, addr: &crate::model::Address) -> Option<E164> {
    debug_assert_eq!(addr.kind, Kind::TelnyxNumber);
    match state.get(addr).map(|r| &r.spec) {
        Some(Spec::TelnyxNumber(n)) => n.number.fixed().cloned(),
        _ => None,
    }
}

/// The rows of a church -> number table: each church once, with its first number (by number
/// order) when it has several.
pub fn table_rows(registry: &BTreeMap<E164, RegistryEntry>) -> BTreeMap<String, String> {
    let mut rows = BTreeMap::new();
    for (number, e) in registry {
        rows.entry(e.church_id.to_string())
            .or_insert_with(|| number.to_string());
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const CHURCHES: &str = r#"
[church.b]
id = "00000000-0000-4000-8000-000000000002"
name = "Beta"
number = "+17473897673"
[church.a]
id = "00000000-0000-4000-8000-000000000001"
name = "Alpha"
number = "+14144007103"
[church.c]
id = "00000000-0000-4000-8000-000000000003"
name = "Gamma"
number = "auto"
area_code = "734"
"#;

    #[test]
    fn numbers_are_sorted_and_auto_numbers_wait_for_state() {
        let lines = format!("{}{CHURCHES}", crate::config::expand::TEST_HEAD);
        let loaded = crate::config::parse(Path::new("t.toml"), &lines).unwrap();
        let (reg, unpinned) = registry(&loaded.desired, &State::new());
        let numbers: Vec<&str> = reg.keys().map(E164::as_str).collect();
        assert_eq!(numbers, ["+14144007103", "+17473897673"]);
        assert_eq!(unpinned, ["telnyx_number.c"]);
        let py = crate::render::registry::python(&reg);
        assert!(py.contains("\"+14144007103\": \"00000000-0000-4000-8000-000000000001\",  # Alpha"));
        let parsed: serde_json::Value =
            serde_json::from_str(&crate::render::registry::json(&reg)).unwrap();
        assert_eq!(
            parsed["+17473897673"],
            "00000000-0000-4000-8000-000000000002"
        );
    }
}
