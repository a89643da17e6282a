//! Reading the vendored header as text: the items it declares (which generation must emit)
//! and its comments (which become the docs of the generated items).

use std::collections::BTreeMap;

use super::macro_types::UNEVALUABLE_MACROS;

/// The items a header declares, derived from its text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExpectedItems {
    /// `struct NAME {` definitions, in header order.
    pub structs: Vec<String>,
    /// Enumerators of every `enum`, in header order, as `(enum name, value name)`.
    pub enum_values: Vec<(String, String)>,
    /// Object-like macros with a value (include guards excluded), in header order.
    pub macros: Vec<String>,
}

/// Removes `/* ... */` and `// ...` comments and joins backslash-continued lines (keeping
/// line numbers of the rest), as [`expected_items`] reads a header. Also used by the ABI probes.
pub fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("/*") {
        out.push_str(&rest[..start]);
        match rest[start + 2..].find("*/") {
            Some(end) => {
                // Keep line structure so that `#define` lines stay lines.
                let comment = &rest[start..start + 2 + end + 2];
                out.extend(comment.chars().filter(|&c| c == '\n'));
                rest = &rest[start + 2 + end + 2..];
            }
            None => {
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out.replace("\\\n", " ")
        .lines()
        .map(|l| l.find("//").map_or(l, |i| &l[..i]))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Whether `s` is a C identifier.
pub fn is_ident(s: &str) -> bool {
    !s.is_empty()
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !s.starts_with(|c: char| c.is_ascii_digit())
}

/// Lists the structs, enum values and object-like macros a header declares.
///
/// This is the mechanical list that generation (and the ABI tests) check against, so a newly
/// added item is covered without anyone remembering to add it. It understands the plain style
/// the vendored headers are written in: one `#define` per line (continuations allowed),
/// `struct NAME {` and `enum NAME {` at the start of a line.
pub fn expected_items(header_text: &str) -> ExpectedItems {
    let text = strip_comments(header_text);
    let mut items = ExpectedItems::default();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let trimmed = line.trim();
        if let Some(def) = trimmed.strip_prefix("#define") {
            let def = def.trim_start();
            let name_len = def
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(def.len());
            let (name, body) = def.split_at(name_len);
            // Function-like macros have '(' right after the name; guards have no body.
            if is_ident(name) && !body.starts_with('(') && !body.trim().is_empty() {
                items.macros.push(name.to_owned());
            }
        } else if let Some(rest) = trimmed.strip_prefix("struct ") {
            if let Some(name) = rest.strip_suffix('{').map(str::trim) {
                if is_ident(name) {
                    items.structs.push(name.to_owned());
                }
            }
        } else if let Some(rest) = trimmed.strip_prefix("enum ") {
            if let Some(name) = rest.strip_suffix('{').map(str::trim) {
                let mut body = String::new();
                for l in lines.by_ref() {
                    if l.trim_start().starts_with('}') {
                        break;
                    }
                    body.push_str(l);
                    body.push('\n');
                }
                for value in body.split(',') {
                    let value = value.split('=').next().unwrap_or("").trim();
                    if is_ident(value) {
                        items.enum_values.push((name.to_owned(), value.to_owned()));
                    }
                }
            }
        }
    }
    items
}

/// Names in `expected` that `rust` does not define, minus [`UNEVALUABLE_MACROS`].
pub(super) fn missing_items(expected: &ExpectedItems, rust: &str) -> Vec<String> {
    let has = |kind: &str, name: &str| {
        let needle = format!("pub {kind} {name}");
        rust.match_indices(&needle)
            .any(|(i, _)| rust[i + needle.len()..].starts_with([':', ' ', '<']))
    };
    let mut missing = Vec::new();
    for s in &expected.structs {
        if !has("struct", s) {
            missing.push(format!("struct {s}"));
        }
    }
    for (e, v) in &expected.enum_values {
        if !has("const", v) {
            missing.push(format!("enum {e}::{v}"));
        }
    }
    for m in &expected.macros {
        if !has("const", m) && !UNEVALUABLE_MACROS.iter().any(|(n, _)| n == m) {
            missing.push(format!("macro {m}"));
        }
    }
    missing
}

/// The comments of a header, by the item they document: `NAME` for a struct, enum value or
/// macro, `struct.field` for a field of a struct (direct members only).
///
/// A comment documents an item when it ends on the line just above it (a blank line or any
/// other code in between detaches it) or when it follows the item on the item's own line;
/// a comment that does both is used whole. Lines of dashes (section banners) are dropped.
/// Clang's own comment attachment is not used: it would give a trailing `/* ... */` to the
/// *next* declaration, and it never documents macros.
pub fn header_docs(text: &str) -> BTreeMap<String, Vec<String>> {
    fn clean(comment: &str) -> Vec<String> {
        let body = comment
            .trim()
            .trim_start_matches("/*")
            .trim_end_matches("*/");
        body.lines()
            .map(|l| {
                let l = l.trim();
                let l = l.strip_prefix('*').unwrap_or(l);
                l.trim().to_owned()
            })
            .filter(|l| !l.is_empty() && !l.chars().all(|c| c == '-' || c == '='))
            .collect()
    }
    let mut docs = BTreeMap::new();
    let lines: Vec<&str> = text.lines().collect();
    let mut pending: Vec<String> = Vec::new();
    let mut current_struct: Option<String> = None;
    let mut depth = 0usize;
    let mut in_enum = false;
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let trimmed = line.trim();
        i += 1;
        if trimmed.is_empty() {
            pending.clear();
            continue;
        }
        if trimmed.starts_with("/*") {
            // A comment on lines of its own (maybe several).
            let mut comment = String::from(trimmed);
            while !comment.contains("*/") && i < lines.len() {
                comment.push('\n');
                comment.push_str(lines[i]);
                i += 1;
            }
            pending = clean(&comment);
            continue;
        }
        // A code line, maybe with a trailing comment (which may continue on the next lines).
        let (code, trailing) = match line.find("/*") {
            Some(at) => {
                let mut comment = String::from(&line[at..]);
                while !comment.contains("*/") && i < lines.len() {
                    comment.push('\n');
                    comment.push_str(lines[i]);
                    i += 1;
                }
                (&line[..at], clean(&comment))
            }
            None => (line, Vec::new()),
        };
        let code = code.trim();
        let mut doc = std::mem::take(&mut pending);
        doc.extend(trailing);
        let name: Option<String> = if let Some(def) = code.strip_prefix("#define") {
            let def = def.trim_start();
            let end = def
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(def.len());
            Some(def[..end].to_owned())
        } else if let Some(name) = code
            .strip_prefix("struct ")
            .and_then(|r| r.strip_suffix('{'))
            .map(str::trim)
            .filter(|n| is_ident(n) && depth == 0)
        {
            current_struct = Some(name.to_owned());
            Some(name.to_owned())
        } else if code.starts_with("enum ") && code.ends_with('{') && depth == 0 {
            in_enum = true;
            None
        } else if in_enum {
            let value = code.split(['=', ',']).next().unwrap_or("").trim();
            is_ident(value).then(|| value.to_owned())
        } else if let (Some(s), 1) = (&current_struct, depth) {
            // `type name;` or `type name[N];` (direct members only).
            code.strip_suffix(';')
                .map(|d| d.split('[').next().unwrap_or(d))
                .and_then(|d| d.split_whitespace().last())
                .filter(|n| is_ident(n))
                .map(|n| format!("{s}.{n}"))
        } else {
            None
        };
        for c in code.chars() {
            match c {
                '{' => depth += 1,
                '}' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        if depth == 0 {
            current_struct = None;
            in_enum = false;
        }
        if let Some(name) = name {
            if !doc.is_empty() {
                docs.insert(name, doc);
            }
        }
    }
    docs
}

/// Puts the header's comments ([`header_docs`]) on the generated items as `#[doc]`
/// attributes: structs, their direct fields, and constants (macros and enum values).
pub(super) fn add_docs(rust: &str, docs: &BTreeMap<String, Vec<String>>) -> String {
    let mut out = String::with_capacity(rust.len() + rust.len() / 4);
    let mut current_struct: Option<String> = None;
    let attrs = |indent: &str, lines: &[String], out: &mut String| {
        for l in lines {
            out.push_str(&format!("{indent}#[doc = {:?}]\n", format!(" {l}")));
        }
    };
    for line in rust.lines() {
        let item = |prefix: &str| {
            line.strip_prefix(prefix).map(|r| {
                r.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .next()
                    .unwrap_or("")
                    .to_owned()
            })
        };
        if let Some(name) = item("pub struct ") {
            if let Some(d) = docs.get(&name) {
                attrs("", d, &mut out);
            }
            current_struct = line.ends_with('{').then_some(name);
        } else if let Some(name) = item("pub const ") {
            if let Some(d) = docs.get(&name) {
                attrs("", d, &mut out);
            }
        } else if line == "}" {
            current_struct = None;
        } else if let (Some(s), Some(field)) = (&current_struct, item("    pub ")) {
            if let Some(d) = docs.get(&format!("{s}.{field}")) {
                attrs("    ", d, &mut out);
            }
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
#ifndef GUARD_H
#define GUARD_H
/* #define NOT_A_MACRO 1 */
#define ONE 1 /* one */
#define FUNC(x) ((x) + 1)
#define LONG_ONE \\
\t(1ULL << 40)
struct a {
\tint x; /* struct not_a_struct { */
};
enum e {
\tE_A = 1, /* E_NOT, */
\tE_B,
\tE_C = 3,
};
#endif
";

    #[test]
    fn expected_items_are_read_from_the_text() {
        let items = expected_items(SAMPLE);
        assert_eq!(items.structs, ["a"]);
        assert_eq!(
            items.enum_values,
            [("e", "E_A"), ("e", "E_B"), ("e", "E_C")].map(|(a, b)| (a.to_owned(), b.to_owned()))
        );
        assert_eq!(items.macros, ["ONE", "LONG_ONE"]);
    }

    #[test]
    fn missing_items_are_named() {
        let items = expected_items(SAMPLE);
        let rust = "pub struct a { }\npub const E_A: e = 1;\npub const E_C: e = 3;\n\
                    pub const ONE_AND_MORE: u32 = 1;\npub const LONG_ONE: u64 = 0;\n";
        assert_eq!(missing_items(&items, rust), ["enum e::E_B", "macro ONE"]);
    }

    #[test]
    fn header_docs_attach_leading_and_same_line_comments() {
        let text = "/* ------\n * Section\n * ------ */\n\n/* Leading of s. */\nstruct s {\n\
                    \tuint32_t a;\t/* trailing of a */\n\tuint32_t b;\n\
                    \tuint32_t c;\t/* first\n\t\t\t * second */\n};\n\
                    #define M 1 /* of M */\nenum e {\n\tE_A = 1, /* of E_A */\n};\n";
        let d = header_docs(text);
        assert_eq!(d["s"], ["Leading of s."]);
        assert_eq!(d["s.a"], ["trailing of a"]);
        // The trailing comment of `a` is not `b`'s (clang's attachment would give it to b).
        assert!(!d.contains_key("s.b"));
        assert_eq!(d["s.c"], ["first", "second"]);
        assert_eq!(d["M"], ["of M"]);
        assert_eq!(d["E_A"], ["of E_A"]);
        let rust = "pub struct s {\n    pub a: u32,\n    pub b: u32,\n}\npub const M: u32 = 1;\n";
        assert_eq!(
            add_docs(rust, &d),
            "#[doc = \" Leading of s.\"]\npub struct s {\n    #[doc = \" trailing of a\"]\n    \
             pub a: u32,\n    pub b: u32,\n}\n#[doc = \" of M\"]\npub const M: u32 = 1;\n"
        );
    }
}
