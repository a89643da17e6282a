//! The headers as text: their items (from `build_support::expected_items`) and their
//! structs with every field, parsed from the struct bodies.

use build_support::{ExpectedItems, expected_items, is_ident, strip_comments};
use std::fmt::Write as _;
use std::fs;
use std::path::Path;

/// Rust keywords: bindgen appends `_` to a C identifier that is one (C `type` -> `type_`).
const RUST_KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum", "extern",
    "false", "fn", "for", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub",
    "ref", "return", "self", "Self", "static", "struct", "super", "trait", "true", "type",
    "unsafe", "use", "where", "while", "abstract", "become", "box", "do", "final", "gen", "macro",
    "override", "priv", "try", "typeof", "unsized", "virtual", "yield",
];

/// One header: its text, its items and its parsed structs.
pub(crate) struct Header {
    /// Name shown in messages.
    label: String,
    /// Rust path of the module holding its items.
    pub(crate) rust_module: &'static str,
    pub(crate) items: ExpectedItems,
    pub(crate) structs: Vec<CStruct>,
}

impl Header {
    pub(crate) fn read(
        path: &Path,
        label: &str,
        rust_module: &'static str,
    ) -> Result<Header, String> {
        println!("cargo:rerun-if-changed={}", path.display());
        let text =
            fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let items = expected_items(&text);
        let structs = parse_structs(&text).map_err(|e| format!("{label}: {e}"))?;
        let parsed: Vec<&str> = structs.iter().map(|s| s.name.as_str()).collect();
        if parsed != items.structs {
            return Err(format!(
                "{label}: the struct bodies parsed ({parsed:?}) differ from \
                 build_support::expected_items ({:?})",
                items.structs
            ));
        }
        Ok(Header {
            label: label.to_owned(),
            rust_module,
            items,
            structs,
        })
    }

    /// The `HeaderItems` literal of this header.
    pub(crate) fn items_literal(&self) -> String {
        let mut s = String::new();
        writeln!(s, "    HeaderItems {{\n        header: {:?},", self.label).ok();
        writeln!(s, "        structs: &{:?},", self.items.structs).ok();
        let enum_values: Vec<&str> = self
            .items
            .enum_values
            .iter()
            .map(|(_, v)| v.as_str())
            .collect();
        writeln!(s, "        enum_values: &{enum_values:?},").ok();
        writeln!(s, "        macros: &{:?},", self.items.macros).ok();
        s.push_str("    },\n");
        s
    }

    pub(crate) fn has_macro_or_value(&self, name: &str) -> bool {
        self.items.macros.iter().any(|m| m == name)
            || self.items.enum_values.iter().any(|(_, v)| v == name)
    }
}

/// A struct of the header and its fields, in declaration order.
pub(crate) struct CStruct {
    pub(crate) name: String,
    pub(crate) fields: Vec<CField>,
}

pub(crate) struct CField {
    /// The C member path from the struct (`qid`, or `bufpool.uaddr` for a member of an
    /// anonymous union's nested struct): what `offsetof` and `->` take.
    pub(crate) name: String,
    /// The matching Rust path (bindgen names the n-th anonymous member of a struct
    /// `__bindgen_anon_n`: `__bindgen_anon_1.bufpool.uaddr`), keywords with bindgen's `_`.
    pub(crate) rust_path: String,
    /// The C type without the declarator (`uint32_t`, `struct fuse_attr`, `struct` for an
    /// anonymous struct).
    ty: String,
    /// `Some("")` for a flexible array member, `Some(n)` for `[n]`, `None` for a scalar.
    array: Option<String>,
    /// Reached through a union: the Rust projection must be a raw pointer (`&raw const`),
    /// since a reference to a union field would need `unsafe`.
    pub(crate) via_union: bool,
}

impl CField {
    pub(crate) fn is_flexible(&self) -> bool {
        self.array.as_deref() == Some("")
    }

    /// Whether the field is a single integer (its signedness can be compared).
    pub(crate) fn is_integer(&self) -> bool {
        self.array.is_none() && !self.ty.starts_with("struct") && !self.ty.starts_with("union")
    }
}

/// A Rust field name: bindgen appends `_` to a C identifier that is a Rust keyword.
fn rust_ident(c: &str) -> String {
    if RUST_KEYWORDS.contains(&c) {
        format!("{c}_")
    } else {
        c.to_owned()
    }
}

/// Reads every `struct NAME { ... };` of the header, with its fields.
///
/// The headers declare one plain member per statement (`type name;`, `type name[N];`,
/// `type name[];`), and (since 7.46) anonymous unions whose members are plain or an unnamed
/// `struct { ... } name;`; every member of those is listed with its path. Anything else (named
/// nested types, bit fields, pointers, several declarators) is refused with an error naming
/// the struct, so that nothing is silently skipped.
fn parse_structs(text: &str) -> Result<Vec<CStruct>, String> {
    let text = strip_comments(text);
    let mut structs = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let trimmed = line.trim();
        let Some(name) = trimmed
            .strip_prefix("struct ")
            .and_then(|r| r.strip_suffix('{'))
            .map(str::trim)
        else {
            continue;
        };
        if !is_ident(name) {
            continue;
        }
        // The body up to the brace that closes the struct (nested braces counted).
        let mut body = String::new();
        let mut depth = 1usize;
        for l in lines.by_ref() {
            for c in l.chars() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    _ => {}
                }
                if depth == 0 {
                    break;
                }
                body.push(c);
            }
            if depth == 0 {
                break;
            }
            body.push('\n');
        }
        if depth != 0 {
            return Err(format!("struct {name} is not closed"));
        }
        let mut fields = Vec::new();
        let mut anon = 0;
        parse_members(name, &body, "", "", false, &mut anon, &mut fields)?;
        if fields.is_empty() {
            return Err(format!("struct {name} has no members"));
        }
        structs.push(CStruct {
            name: name.to_owned(),
            fields,
        });
    }
    Ok(structs)
}

/// Splits a member list at the `;` that are not inside braces.
fn split_members(body: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut cur = String::new();
    for c in body.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            ';' if depth == 0 => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    if !cur.trim().is_empty() {
        out.push(cur);
    }
    out.into_iter()
        .map(|d| d.trim().to_owned())
        .filter(|d| !d.is_empty())
        .collect()
}

/// Parses the members of a struct (or of a nested anonymous union/struct) into `fields`,
/// with C paths prefixed by `c_prefix` and Rust paths by `rust_prefix`.
fn parse_members(
    owner: &str,
    body: &str,
    c_prefix: &str,
    rust_prefix: &str,
    via_union: bool,
    anon: &mut usize,
    fields: &mut Vec<CField>,
) -> Result<(), String> {
    for decl in split_members(body) {
        if let Some(open) = decl.find('{') {
            // `union { ... }` (anonymous member) or `struct { ... } name` (unnamed type).
            let close = decl
                .rfind('}')
                .ok_or_else(|| format!("struct {owner}: unbalanced `{decl}`"))?;
            let keyword = decl[..open].trim();
            let inner = &decl[open + 1..close];
            let declarator = decl[close + 1..].trim();
            match (keyword, declarator.is_empty()) {
                ("union", true) => {
                    *anon += 1;
                    let rust = format!("{rust_prefix}__bindgen_anon_{anon}.");
                    let mut inner_anon = 0;
                    parse_members(owner, inner, c_prefix, &rust, true, &mut inner_anon, fields)?;
                }
                ("struct", false) if is_ident(declarator) => {
                    let c_path = format!("{c_prefix}{declarator}");
                    let rust_path = format!("{rust_prefix}{}", rust_ident(declarator));
                    fields.push(CField {
                        name: c_path.clone(),
                        rust_path: rust_path.clone(),
                        ty: "struct".to_owned(),
                        array: None,
                        via_union,
                    });
                    let mut inner_anon = 0;
                    parse_members(
                        owner,
                        inner,
                        &format!("{c_path}."),
                        &format!("{rust_path}."),
                        via_union,
                        &mut inner_anon,
                        fields,
                    )?;
                }
                _ => {
                    return Err(format!(
                        "struct {owner}: member `{decl}` is neither an anonymous union nor an \
                         unnamed struct member; teach abi-tests/build/header.rs about it"
                    ));
                }
            }
            continue;
        }
        if decl.contains(['}', ',', ':', '(', '*', '=']) {
            return Err(format!(
                "struct {owner}: member `{decl}` is not a plain declaration; \
                 teach abi-tests/build/header.rs about it"
            ));
        }
        let tokens: Vec<&str> = decl.split_whitespace().collect();
        let Some((declarator, ty)) = tokens.split_last() else {
            continue;
        };
        let (field, array) = match declarator.split_once('[') {
            Some((f, rest)) => {
                let n = rest
                    .strip_suffix(']')
                    .ok_or_else(|| format!("struct {owner}: cannot read `{decl}`"))?;
                (f, Some(n.trim().to_owned()))
            }
            None => (*declarator, None),
        };
        if !is_ident(field) || ty.is_empty() {
            return Err(format!("struct {owner}: cannot read member `{decl}`"));
        }
        fields.push(CField {
            name: format!("{c_prefix}{field}"),
            rust_path: format!("{rust_prefix}{}", rust_ident(field)),
            ty: ty.join(" "),
            array,
            via_union,
        });
    }
    Ok(())
}
