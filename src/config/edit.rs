//! Edits of lines.toml that `cwa add` and `cwa remove` make: a `[church.<key>]` block inserted
//! after the last church table, or cut out, and a number declared under `[kept]`. Every other
//! byte of the file stays as it was, so the review diff is the block and nothing else.
//!
//! The positions come from toml_edit's spanned parse (never from matching text, which a
//! comment or a multi-line string could fool). A church's extent is its header line through
//! the last line of its last key (subtables `[church.<key>.lines.*]` included), plus the
//! comment lines that follow it with no blank line between: those speak of the church (the
//! repository's Melvindale note does). Comments directly above a header, with no blank line,
//! belong to that church too. The block is written in the layout `cwa fmt` leaves unchanged.

use std::ops::Range;

use toml_edit::{Document, Item, Table, Value};

/// Why lines.toml could not be edited, with where (a byte range of the file).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct EditError {
    pub message: String,
    pub span: Option<Range<usize>>,
    pub help: String,
}

/// A `key = value` line of a block, its value encoded as a TOML string.
pub fn string_line(key: &str, value: &str) -> String {
    let encoded = Value::from(value).decorated("", "").to_string();
    format!("{key} = {encoded}\n")
}

/// The `[church.<key>]` header and `lines` (from [`string_line`]), with `comments` (each a
/// line without its `#`) above the header: a block in `cwa fmt`'s layout.
pub fn church_block(key: &str, lines: &[String], comments: &[String]) -> String {
    let mut out = String::new();
    for c in comments {
        out.push_str(&format!("# {c}\n"));
    }
    out.push_str(&format!("[church.{key}]\n"));
    for l in lines {
        out.push_str(l);
    }
    out
}

/// The byte range of every `[church.<key>]` block in the file, by key, in file order.
pub fn church_extents(text: &str) -> Result<Vec<(String, Range<usize>)>, EditError> {
    let doc = parse(text)?;
    let Some(churches) = doc.as_table().get("church") else {
        return Ok(Vec::new());
    };
    let Some(churches) = churches.as_table() else {
        return Err(not_a_table(churches.span(), "church"));
    };
    let mut out = Vec::new();
    for (key, item) in churches.iter() {
        let Some(table) = item
            .as_table()
            .filter(|t| !t.is_implicit() && !t.is_dotted())
        else {
            return Err(not_a_table(
                item.span()
                    .or_else(|| churches.key(key).and_then(|k| k.span())),
                &format!("church.{key}"),
            ));
        };
        let Some(header) = table.span() else {
            return Err(not_a_table(None, &format!("church.{key}")));
        };
        let end = last_byte(table).max(header.end);
        let start = leading_comments(text, line_start(text, header.start));
        let end = trailing_comments(text, line_end(text, end));
        out.push((key.to_string(), start..end));
    }
    out.sort_by_key(|(_, r)| r.start);
    Ok(out)
}

/// `text` with `block` inserted after the last church block (or at the end of the file when
/// there is none), one blank line before it.
pub fn insert_church(text: &str, block: &str) -> Result<String, EditError> {
    let at = church_extents(text)?
        .iter()
        .map(|(_, r)| r.end)
        .max()
        .unwrap_or(text.len());
    let (before, after) = text.split_at(at);
    let mut out = String::with_capacity(text.len() + block.len() + 2);
    out.push_str(before);
    if !before.is_empty() && !before.ends_with('\n') {
        out.push('\n');
    }
    if !before.is_empty() {
        out.push('\n');
    }
    out.push_str(block);
    if !after.is_empty() && !after.starts_with('\n') {
        out.push('\n');
    }
    out.push_str(after);
    Ok(out)
}

/// `text` without the block of church `key` (and the blank line that separated it).
pub fn remove_church(text: &str, key: &str) -> Result<Option<String>, EditError> {
    let Some((_, range)) = church_extents(text)?.into_iter().find(|(k, _)| k == key) else {
        return Ok(None);
    };
    let mut start = range.start;
    // One blank line before the block goes with it, so no double blank line is left.
    if text[..start].ends_with("\n\n") {
        start -= 1;
    } else if start == 0 && text[range.end..].starts_with('\n') {
        return Ok(Some(text[range.end + 1..].to_string()));
    }
    Ok(Some(format!("{}{}", &text[..start], &text[range.end..])))
}

/// `text` with `"<entry>" = "<reason>"` under `[kept]`: after its last entry, or in a new
/// `[kept]` table at the end of the file when there is none.
pub fn add_kept(text: &str, entry: &str, reason: &str) -> Result<String, EditError> {
    let doc = parse(text)?;
    let line = string_line(&Value::from(entry).decorated("", "").to_string(), reason);
    let Some(kept) = doc.as_table().get("kept") else {
        let mut out = text.to_string();
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str("[kept]\n");
        out.push_str(&line);
        return Ok(out);
    };
    let Some(table) = kept
        .as_table()
        .filter(|t| !t.is_implicit() && !t.is_dotted())
    else {
        return Err(not_a_table(kept.span(), "kept"));
    };
    let header = table.span().map(|s| s.end).unwrap_or(0);
    let at = line_end(text, last_byte(table).max(header));
    Ok(format!("{}{}{}", &text[..at], line, &text[at..]))
}

fn parse(text: &str) -> Result<Document<&str>, EditError> {
    Document::parse(text).map_err(|e| EditError {
        message: format!("lines.toml is not TOML: {}", e.message()),
        span: e.span(),
        help: "fix the file (cwa validate shows where) before adding or removing a church".into(),
    })
}

fn not_a_table(span: Option<Range<usize>>, what: &str) -> EditError {
    EditError {
        message: format!("`{what}` is not written as a [{what}] table"),
        span,
        help: format!("cwa add and remove edit [{what}] tables only; write it as one (one header line, then its keys)"),
    }
}

/// The last byte of any key or value of `table` or its subtables.
fn last_byte(table: &Table) -> usize {
    table
        .iter()
        .map(|(_, item)| match item {
            Item::Table(t) => last_byte(t).max(t.span().map_or(0, |s| s.end)),
            Item::ArrayOfTables(a) => a
                .iter()
                .map(|t| last_byte(t).max(t.span().map_or(0, |s| s.end)))
                .max()
                .unwrap_or(0),
            other => other.span().map_or(0, |s| s.end),
        })
        .max()
        .unwrap_or(0)
}

fn line_start(text: &str, pos: usize) -> usize {
    text[..pos].rfind('\n').map_or(0, |i| i + 1)
}

/// The start of the line after the one holding `pos` (the end of the text on the last line).
fn line_end(text: &str, pos: usize) -> usize {
    let pos = pos.saturating_sub(1).max(line_start(text, pos));
    text[pos..].find('\n').map_or(text.len(), |i| pos + i + 1)
}

fn is_comment(line: &str) -> bool {
    line.trim_start().starts_with('#')
}

/// From a line start, past every following comment line.
fn trailing_comments(text: &str, mut at: usize) -> usize {
    while at < text.len() {
        let next = text[at..].find('\n').map_or(text.len(), |i| at + i + 1);
        if !is_comment(&text[at..next]) {
            break;
        }
        at = next;
    }
    at
}

/// From a line start, back over every comment line directly above it.
fn leading_comments(text: &str, mut at: usize) -> usize {
    while at > 0 {
        let prev = line_start(text, at - 1);
        if !is_comment(&text[prev..at]) {
            break;
        }
        at = prev;
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "version = 1\n\n# churches\n\n[church.a]\nid = \"1\"\nname = \"A\"\n# a's note\n\n# ---- telnyx\n[telnyx.x]\nname = \"n\"\n";

    fn block(key: &str) -> String {
        church_block(key, &[string_line("id", "2")], &[])
    }

    #[test]
    fn a_block_goes_after_the_last_church_and_its_note() {
        let out = insert_church(FILE, &block("b")).unwrap();
        assert_eq!(
            out,
            "version = 1\n\n# churches\n\n[church.a]\nid = \"1\"\nname = \"A\"\n# a's note\n\n[church.b]\nid = \"2\"\n\n# ---- telnyx\n[telnyx.x]\nname = \"n\"\n"
        );
        assert_eq!(remove_church(&out, "b").unwrap().unwrap(), FILE);
    }

    #[test]
    fn subtables_belong_to_their_church() {
        let text =
            "[church.a]\nid = \"1\"\n\n[church.a.lines.x]\nnumber = \"+1\"\n\n[other]\nk = 1\n";
        let out = insert_church(text, &block("b")).unwrap();
        assert!(
            out.contains("number = \"+1\"\n\n[church.b]\nid = \"2\"\n\n[other]"),
            "{out}"
        );
        assert_eq!(
            remove_church(text, "a").unwrap().unwrap(),
            "[other]\nk = 1\n"
        );
    }

    #[test]
    fn no_church_means_the_end_of_the_file() {
        assert_eq!(
            insert_church("version = 1", &block("b")).unwrap(),
            "version = 1\n\n[church.b]\nid = \"2\"\n"
        );
        assert_eq!(insert_church("", &block("b")).unwrap(), block("b"));
    }

    #[test]
    fn hostile_values_stay_one_string() {
        for v in ["a\"b", "x]\n[church.evil]", "tab\there", "'", "\u{202e}"] {
            let line = string_line("name", v);
            let parsed: toml::Table = toml::from_str(&line).unwrap();
            assert_eq!(parsed["name"].as_str(), Some(v), "{line}");
        }
    }

    #[test]
    fn kept_entries_go_under_kept() {
        let out = add_kept(FILE, "+13135550100", "closed").unwrap();
        assert!(
            out.ends_with("[kept]\n\"+13135550100\" = \"closed\"\n"),
            "{out}"
        );
        let again = add_kept(&out, "+13135550101", "too").unwrap();
        assert!(
            again.ends_with("[kept]\n\"+13135550100\" = \"closed\"\n\"+13135550101\" = \"too\"\n"),
            "{again}"
        );
    }

    #[test]
    fn an_inline_church_is_refused() {
        assert!(insert_church("church.a = { id = \"1\" }\n", &block("b")).is_err());
    }
}
