//! `cwa fmt`: lines.toml in one canonical layout, so a review diff shows what changed and not
//! how someone typed it. Edited with toml_edit, which keeps every comment where it was.
//!
//! The layout: no indentation; `key = value` with one space around `=`; a trailing comment
//! one space after its value (`value # why`); one-line arrays and inline tables spaced
//! `["a", "b"]` and `{ a = 1 }`; at most one blank line between keys; exactly one blank line
//! before each table header; no blank lines at the top; one newline at the end. Values
//! (strings, numbers, multi-line arrays) are kept exactly as written, so the declaration means
//! the same before and after.

use toml_edit::{DocumentMut, Item, RawString, Table, Value};

/// Why lines.toml could not be formatted: it is not TOML.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct FmtError {
    pub message: String,
    /// Byte range in the text where the parser stopped.
    pub span: Option<std::ops::Range<usize>>,
}

/// `text` in canonical layout. Formatting the result again returns it unchanged.
pub fn format(text: &str) -> Result<String, FmtError> {
    let mut doc: DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| FmtError {
        message: e.message().to_string(),
        span: e.span(),
    })?;
    format_table(doc.as_table_mut(), true);
    let trailing = key_prefix(raw(doc.trailing()));
    doc.set_trailing(trailing);
    let mut out = doc.to_string();
    let start = out.len() - out.trim_start_matches('\n').len();
    out.drain(..start);
    let end = out.trim_end_matches(['\n', ' ', '\t']).len();
    out.truncate(end);
    out.push('\n');
    Ok(out)
}

fn raw(r: &RawString) -> &str {
    r.as_str().unwrap_or("")
}

/// A decor prefix (the lines between the previous item and this one) split into whether it
/// starts with a blank line, and its comment lines: unindented, groups separated by one blank
/// line, and a blank line at the end if one separated the last comment from the item.
fn comments(prefix: &str) -> (bool, String) {
    let parts: Vec<&str> = prefix.split('\n').collect();
    let leading_blank = parts.len() > 1 && parts[0].trim().is_empty();
    let mut out = String::new();
    let mut pending_blank = false;
    for (i, line) in parts.iter().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            // The last part is the indentation before the item itself, not a line.
            pending_blank |= i + 1 < parts.len() && !out.is_empty();
            continue;
        }
        if pending_blank {
            out.push('\n');
        }
        pending_blank = false;
        out.push_str(line);
        out.push('\n');
    }
    if pending_blank {
        out.push('\n');
    }
    (leading_blank, out)
}

/// A key's leading decor: its comments, after one blank line if there was any.
fn key_prefix(prefix: &str) -> String {
    match comments(prefix) {
        (true, c) => format!("\n{c}"),
        (false, c) => c,
    }
}

/// A trailing comment (`  #x`) as ` #x`; anything else as nothing.
fn trailing_comment(suffix: &str) -> String {
    match suffix.trim() {
        "" => String::new(),
        comment => format!(" {comment}"),
    }
}

fn format_table(table: &mut Table, root: bool) {
    if !root && !table.is_implicit() {
        let decor = table.decor_mut();
        let (_, comments) = comments(raw(decor.prefix().unwrap_or(&RawString::default())));
        let suffix = trailing_comment(raw(decor.suffix().unwrap_or(&RawString::default())));
        decor.set_prefix(format!("\n{comments}"));
        decor.set_suffix(suffix);
    }
    for (mut key, item) in table.iter_mut() {
        match item {
            Item::Value(value) => {
                let decor = key.leaf_decor_mut();
                let prefix = key_prefix(raw(decor.prefix().unwrap_or(&RawString::default())));
                decor.set_prefix(prefix);
                decor.set_suffix(" ");
                format_value(value);
            }
            Item::Table(t) => format_table(t, false),
            Item::ArrayOfTables(tables) => {
                for t in tables.iter_mut() {
                    format_table(t, false);
                }
            }
            Item::None => {}
        }
    }
}

fn format_value(value: &mut Value) {
    let suffix = trailing_comment(raw(value.decor().suffix().unwrap_or(&RawString::default())));
    match value {
        Value::Array(a) if !a.to_string().contains('\n') && !a.to_string().contains('#') => {
            a.fmt();
            a.set_trailing_comma(false);
        }
        Value::InlineTable(t) if !t.to_string().contains('\n') && !t.to_string().contains('#') => {
            t.fmt();
        }
        _ => {}
    }
    value.decor_mut().set_prefix(" ");
    value.decor_mut().set_suffix(suffix);
}

#[cfg(test)]
mod tests {
    use super::*;

    const MESSY: &str = "\n\n# Lines of the parish\n  [settings]   # shared\n  agent_name=\"a\"   # the agent\n\n\n\nroom_prefix  =  'call-'\n[church.grace]\nid = \"x\"\nnumbers=[\"+1\",\"+2\"]\nflags = {a=1,b=2}\n\n# trailing words\n\n";

    #[test]
    fn messy_becomes_canonical_and_keeps_comments() {
        let out = format(MESSY).unwrap();
        assert_eq!(
            out,
            "# Lines of the parish\n[settings] # shared\nagent_name = \"a\" # the agent\n\nroom_prefix = 'call-'\n\n[church.grace]\nid = \"x\"\nnumbers = [\"+1\", \"+2\"]\nflags = { a = 1, b = 2 }\n\n# trailing words\n"
        );
    }

    #[test]
    fn formatting_is_idempotent_and_meaning_preserving() {
        let once = format(MESSY).unwrap();
        assert_eq!(format(&once).unwrap(), once);
        let a: toml::Value = toml::from_str(MESSY).unwrap();
        let b: toml::Value = toml::from_str(&once).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn not_toml_is_an_error_with_a_span() {
        let e = format("[church\nid = 1\n").unwrap_err();
        assert!(e.span.is_some(), "{e}");
    }
}
