//! One escaping function per output language. Names, ids, labels and values come from
//! lines.toml, state, a plan file or a live account, and any of them may be hostile: a church
//! named `# No changes`, `<!--`, `[click](https://…)` or `\x1b]0;owned\x07`. Every renderer
//! passes every piece of data through the function of its language, and only there; what it
//! writes around the data (its own headings, tables, colors) is the only markup in the output.
//!
//! All four first make invisible and layout-changing characters visible (see
//! [`is_hidden_control`]): a name can never end a line, erase one, retitle the window or
//! reorder the text around it.

use std::fmt::Write;

/// Control and layout characters no name may carry into output: C0 and C1 controls (ESC, BEL,
/// CR, LF, backspace, …), DEL, line and paragraph separators, and the bidirectional overrides
/// and isolates that reorder what a reader sees ("Trojan Source").
pub fn is_hidden_control(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{200B}'..='\u{200F}'
            | '\u{2028}'..='\u{202E}'
            | '\u{2060}'..='\u{2069}'
            | '\u{FEFF}')
}

/// JSON whose strings carry no hidden control character: serde_json escapes C0 controls but
/// leaves DEL, C1 controls, line separators and bidi overrides (U+202E) raw, which a terminal
/// or a reviewer's viewer acts on. Each becomes `\uXXXX` (all are in the BMP), so the text is
/// still the same JSON value; the structural newlines of the pretty form are kept.
pub fn json_visible(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        if c != '\n' && is_hidden_control(c) {
            let _ = write!(out, "\\u{:04X}", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}

/// `c` as visible text: `\n`, `\t`, `\r`, or `\u{1b}`.
fn visible(c: char, out: &mut String) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        other => {
            let _ = write!(out, "\\u{{{:x}}}", other as u32);
        }
    }
}

/// Text for a terminal: every control character (ESC sequences, OSC window titles, line
/// erase, carriage return, newline) and bidi override shown as a visible escape; nothing
/// else changed. Colors are added by the renderer after this.
pub fn terminal(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if is_hidden_control(c) {
            visible(c, &mut out);
        } else {
            out.push(c);
        }
    }
    out
}

/// Text for GitHub-flavoured Markdown, safe anywhere inline: in a paragraph, a list item, a
/// table cell, or the raw HTML of a `<summary>`. Every character Markdown or HTML could read
/// as markup (`# * _ [ ] < > | ~ & $ : @`, the backtick and the backslash) is a numeric
/// character reference, `www.` cannot become a link, and controls are visible: a name
/// can open no heading, link, image, HTML comment, table cell, math block or emoji, and
/// cannot start a line of its own.
pub fn markdown(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    let chars: Vec<char> = text.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if is_hidden_control(c) {
            let mut v = String::new();
            visible(c, &mut v);
            out.push_str(&v.replace('\\', "&#92;"));
        } else if (is_markdown_markup(c) && !intraword_underscore(&chars, i))
            || (c == '.' && after_www(&chars[..i]))
        {
            let _ = write!(out, "&#{};", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}

/// [`markdown`] as inline code (`<code>…</code>`): monospace, and GitHub's emoji and
/// @-mention filters leave it alone.
pub fn markdown_code(text: &str) -> String {
    format!("<code>{}</code>", markdown(text))
}

/// The characters that start Markdown or HTML markup on GitHub: emphasis, code, links and
/// images (`[`/`]`: without them `(` and `!` are plain), headings, HTML and comments, table
/// cells, strikethrough, entities, math, emoji shortcodes and mentions.
fn is_markdown_markup(c: char) -> bool {
    matches!(
        c,
        '\\' | '`' | '*' | '_' | '[' | ']' | '#' | '<' | '>' | '|' | '~' | '&' | '$' | ':' | '@'
    )
}

/// `snake_case` underscores cannot emphasize anything and stay readable.
fn intraword_underscore(chars: &[char], i: usize) -> bool {
    chars[i] == '_'
        && i > 0
        && chars[i - 1].is_alphanumeric()
        && chars.get(i + 1).is_some_and(|c| c.is_alphanumeric())
}

fn after_www(before: &[char]) -> bool {
    before.len() >= 3
        && before[before.len() - 3..]
            .iter()
            .all(|c| c.eq_ignore_ascii_case(&'w'))
}

/// Text for a Mermaid node label inside `["…"]`: quotes, brackets, braces, angle brackets,
/// `#`, `&`, `;`, `|`, backslashes and backticks as entity codes (`#35;`), controls visible;
/// the label cannot end itself, add a node or an edge, or close the Markdown code fence.
pub fn mermaid(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if is_hidden_control(c) {
            let mut v = String::new();
            visible(c, &mut v);
            out.push_str(&v.replace('\\', "#92;"));
        } else if matches!(
            c,
            '"' | '#' | '<' | '>' | '&' | '`' | '[' | ']' | '{' | '}' | '|' | '\\' | ';'
        ) {
            let _ = write!(out, "#{};", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}

/// A Mermaid identifier (a subgraph or node id) made from data: every character but ASCII
/// letters and digits becomes `_`, so the id cannot carry syntax. The label beside it, in
/// [`mermaid`], shows the data itself.
pub fn mermaid_id(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// Text for a Graphviz DOT double-quoted string: backslashes and quotes escaped (so neither
/// `\l`-style label escapes nor an early end of the string can appear), controls visible.
pub fn dot(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in terminal(text).chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTILE: [&str; 8] = [
        "# No changes",
        "<!-- hide the rest",
        "[click](https://evil.example)",
        "\u{1b}]0;owned\u{7}",
        "\u{1b}[2K\rline erased",
        "a\n### ✅ No changes",
        "x | y ``` z",
        "www.evil.example :x: @team $x$",
    ];

    #[test]
    fn terminal_text_has_no_control_characters() {
        for h in HOSTILE {
            let t = terminal(h);
            assert!(!t.chars().any(is_hidden_control), "{t:?}");
        }
        assert_eq!(terminal("\u{1b}[8m"), "\\u{1b}[8m");
        assert_eq!(terminal("Grace Chapel"), "Grace Chapel");
        assert_eq!(terminal("a\u{202e}b"), "a\\u{202e}b");
    }

    #[test]
    fn markdown_text_has_no_markup() {
        for h in HOSTILE {
            let m = markdown(h);
            for bad in ["#", "<", ">", "[", "](", "\n", "|", "`", "www.", ":x:", "$"] {
                let without_refs = m
                    .split('&')
                    .map(|part| part.split_once(';').map_or(part, |(_, rest)| rest))
                    .collect::<String>();
                assert!(!without_refs.contains(bad), "{h:?} -> {m:?} has {bad:?}");
            }
        }
        assert_eq!(
            markdown("livekit_inbound_trunk.grace"),
            "livekit_inbound_trunk.grace"
        );
        assert_eq!(markdown("_x_"), "&#95;x&#95;");
    }

    #[test]
    fn mermaid_labels_cannot_close_themselves() {
        for h in HOSTILE {
            let m = mermaid(h);
            for bad in ['"', '[', ']', '<', '>', '`', '\n', '|'] {
                assert!(!m.contains(bad), "{h:?} -> {m:?}");
            }
        }
    }

    #[test]
    fn dot_strings_cannot_end_early() {
        assert_eq!(dot("a\"b\\l"), "a\\\"b\\\\l");
        assert!(!dot("a\nb").contains('\n'));
    }
}
