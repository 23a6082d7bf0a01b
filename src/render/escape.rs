//! Escapers, one per output language. A spec string reaches generated code only through these.

use std::fmt::Write;

/// A Rust string literal, quotes included.
pub fn rust_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() || is_invisible(c) => {
                write!(out, "\\u{{{:x}}}", c as u32).expect("writing to a String")
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A Python string literal, quotes included. Quotes are chosen the way `ruff format` chooses
/// them (double, unless that needs more escapes than single), so the output is already
/// formatted.
pub fn py_str(s: &str) -> String {
    let doubles = s.matches('"').count();
    let singles = s.matches('\'').count();
    let quote = if doubles > singles { '\'' } else { '"' };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() || is_invisible(c) => {
                let code = c as u32;
                if code <= 0xffff {
                    write!(out, "\\u{code:04x}").expect("writing to a String");
                } else {
                    write!(out, "\\U{code:08x}").expect("writing to a String");
                }
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// A YAML double-quoted scalar. JSON strings are valid YAML; invisible characters are escaped
/// too, so a reviewer sees them.
pub fn yaml_str(s: &str) -> String {
    let json = serde_json::to_string(s).expect("strings serialize");
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        if is_invisible(c) {
            write!(out, "\\u{:04x}", c as u32).expect("writing to a String");
        } else {
            out.push(c);
        }
    }
    out
}

/// A TOML basic string, quotes included.
pub fn toml_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() || is_invisible(c) => {
                write!(out, "\\u{:04x}", c as u32).expect("writing to a String")
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Text safe in a Markdown paragraph or table cell: no markup, no HTML, one line. Characters
/// that are markup only at the start of a line (`-`, `+`) are escaped only there.
pub fn md(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for (i, c) in s.chars().enumerate() {
        match c {
            '-' | '+' if i == 0 => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' | '\t' => out.push(' '),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\\' | '`' | '*' | '_' | '[' | ']' | '#' | '|' | '!' | '~' | '{' | '}' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() || is_invisible(c) => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// Inline code in Markdown, for values a reader should see exactly (URLs, route keys). The
/// fence is longer than any run of backticks inside, and `|` is escaped for table cells.
pub fn md_code(s: &str) -> String {
    let clean: String =
        s.chars().map(|c| if c.is_control() || is_invisible(c) { '\u{fffd}' } else { c }).collect();
    let longest = clean.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest + 1);
    let pad = if clean.starts_with('`') || clean.ends_with('`') { " " } else { "" };
    format!("{fence}{pad}{}{pad}{fence}", clean.replace('|', "\\|"))
}

/// Characters that render as nothing or reorder text; a reviewer must see them.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{200b}'..='\u{200f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2066}'..='\u{2069}'
            | '\u{feff}'
            | '\u{2028}'
            | '\u{2029}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_strings_cannot_break_out() {
        assert_eq!(rust_str(r#"a"); panic!("x"#), r#""a\"); panic!(\"x""#);
        assert_eq!(rust_str("a\\\nb"), r#""a\\\nb""#);
        assert_eq!(rust_str("\u{202e}"), r#""\u{202e}""#);
    }

    #[test]
    fn python_strings_follow_ruff_quotes() {
        assert_eq!(py_str("plain"), "\"plain\"");
        assert_eq!(py_str("say \"hi\""), "'say \"hi\"'");
        assert_eq!(py_str("it's"), "\"it's\"");
        assert_eq!(py_str("\"'"), "\"\\\"'\"");
        assert_eq!(py_str("a\\nb"), "\"a\\\\nb\"");
    }

    #[test]
    fn markdown_is_inert() {
        assert_eq!(md("<script>|x"), "&lt;script&gt;\\|x");
        assert_eq!(md_code("a`b"), "``a`b``");
        assert_eq!(md_code("`x"), "`` `x ``");
    }

    #[test]
    fn toml_strings_escape_quotes() {
        assert_eq!(toml_str("a\"b\\"), "\"a\\\"b\\\\\"");
    }
}
