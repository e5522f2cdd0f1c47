//! The text the import appends: blocks of comment lines, a dotted header and keys, composed
//! after the existing declaration.

use super::*;

/// One block of the appended declaration: comment lines, a dotted header and its keys.
pub(super) struct Block {
    pub(super) comments: Vec<String>,
    pub(super) header: Vec<String>,
    pub(super) table: Table,
}

impl Block {
    pub(super) fn new(header: &[&str]) -> Self {
        Self {
            comments: Vec::new(),
            header: header.iter().map(|s| s.to_string()).collect(),
            table: Table::new(),
        }
    }

    pub(super) fn comment(&mut self, text: impl Into<String>) {
        self.comments.push(text.into());
    }

    pub(super) fn set(&mut self, key: &str, value: impl Into<Value>) {
        self.table.insert(key, Item::Value(value.into()));
    }

    /// Sets `key` with a trailing comment.
    pub(super) fn set_noted(&mut self, key: &str, value: impl Into<Value>, note: &str) {
        let mut value = value.into();
        value.decor_mut().set_suffix(format!("  # {note}"));
        self.table.insert(key, Item::Value(value));
    }

    pub(super) fn render(self) -> String {
        let mut doc = DocumentMut::new();
        let (last, parents) = self.header.split_last().expect("every block has a header");
        let mut table = doc.as_table_mut();
        for p in parents {
            let entry = table.entry(p).or_insert_with(|| {
                let mut t = Table::new();
                t.set_implicit(true);
                Item::Table(t)
            });
            table = entry.as_table_mut().expect("parents are tables");
        }
        table.insert(last, Item::Table(self.table));
        let mut out: String = self.comments.iter().map(|c| format!("# {c}\n")).collect();
        out.push_str(&doc.to_string());
        out
    }
}

impl<'a> Importer<'a> {
    /// The base text (with `[defaults]`/`[livekit]` completed) and the appended blocks.
    pub(super) fn compose(&mut self, doc: &DocumentMut) -> String {
        let mut text = doc.to_string();
        let blocks = std::mem::take(&mut self.blocks);
        if blocks.is_empty() {
            return text;
        }
        while text.ends_with("\n\n") {
            text.pop();
        }
        if !text.ends_with('\n') {
            text.push('\n');
        }
        let (settings, blocks): (Vec<Block>, Vec<Block>) =
            blocks.into_iter().partition(|b| b.header.len() == 1);
        for b in settings {
            text.push('\n');
            text.push_str(&b.render());
        }
        if blocks.is_empty() {
            return text;
        }
        text.push_str(&format!(
            "\n# ----------------------------------------------------------------------------------------\n\
             # Imported by `cwa import` on {}: live objects no declaration claimed.\n\
             # ----------------------------------------------------------------------------------------\n",
            chrono::Utc::now().format("%Y-%m-%d")
        ));
        for b in blocks {
            text.push('\n');
            text.push_str(&b.render());
        }
        text
    }
}

pub(super) fn strings(items: &[String]) -> Array {
    items.iter().map(String::as_str).collect()
}

pub(super) fn number_list(numbers: &[NumberRef]) -> Array {
    numbers
        .iter()
        .filter_map(|n| match n {
            NumberRef::Number(n) => Some(n.to_string()),
            NumberRef::Of(_) => None,
        })
        .collect()
}

pub(super) fn agents_value(agents: &[crate::model::AgentDispatch]) -> Array {
    let mut out = Array::new();
    for a in agents {
        let mut t = InlineTable::new();
        t.insert("name", a.agent_name.clone().into());
        if !a.metadata.is_empty() {
            t.insert("metadata", a.metadata.clone().into());
        }
        out.push(t);
    }
    out
}
