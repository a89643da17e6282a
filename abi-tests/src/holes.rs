//! Implicit holes and tail padding of the structs, from the C compiler's figures.

use crate::{Kind, Probed};

/// Bytes of a struct that no field covers, as the C compiler lays it out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hole {
    /// The struct.
    pub structure: &'static str,
    /// Where: `after <field>` (tail padding is `after` the last field).
    pub after: String,
    /// Offset of the first uncovered byte.
    pub offset: u64,
    /// How many bytes.
    pub bytes: u64,
}

/// Every implicit hole and tail padding of the structs of `probed`, from the C figures.
///
/// A flexible array member covers no bytes. Fields that overlap (which plain C structs
/// cannot have) are reported as errors.
pub fn holes(probed: &[Probed]) -> Result<Vec<Hole>, String> {
    // (struct, sizeof, [(field, offset, bytes)]) in table order: a struct's size entry comes
    // first, then each field's offset followed by its size.
    type Fields = Vec<(&'static str, u64, u64)>;
    let mut layouts: Vec<(&'static str, u64, Fields)> = Vec::new();
    let mut offset = None;
    for p in probed {
        let item = p.entry.item;
        match p.entry.kind {
            Kind::Size => layouts.push((item, p.c[0], Vec::new())),
            Kind::FieldOffset => offset = Some((item, p.c[0])),
            Kind::FieldSize | Kind::FlexElemSize => {
                let at = match offset.take() {
                    Some((i, at)) if i == item => at,
                    _ => return Err(format!("{item}: size without offset")),
                };
                let bytes = if p.entry.kind == Kind::FlexElemSize {
                    0
                } else {
                    p.c[0]
                };
                match layouts.last_mut() {
                    Some((s, _, fields)) if item.split_once('.').map(|(x, _)| x) == Some(*s) => {
                        fields.push((item, at, bytes));
                    }
                    _ => return Err(format!("{item}: field outside its struct")),
                }
            }
            _ => {}
        }
    }
    let mut holes = Vec::new();
    for (name, size, fields) in layouts {
        // Members of nested types (`s.bufpool.uaddr`) lie inside their parent, which is
        // checked here as a whole; the nested types are structs of the table themselves or
        // (anonymous) covered by the parent's size.
        let fields: Vec<_> = fields
            .into_iter()
            .filter(|(f, _, _)| f.matches('.').count() == 1)
            .collect();
        let mut end = 0u64;
        let mut last = "the start";
        // The members of an anonymous union share their start: (start, members so far).
        let mut union: Option<(u64, Vec<(&'static str, u64)>)> = None;
        let mut prev_start = None;
        for (field, offset, bytes) in fields {
            if offset < end && Some(offset) == prev_start {
                // Another member of a union: the union reaches as far as its largest member;
                // a smaller member leaves the rest uninitialised when it is the one written.
                let members = &mut union.get_or_insert_with(|| (offset, vec![(last, end)])).1;
                members.push((field, offset + bytes));
                end = end.max(offset + bytes);
                continue;
            }
            if let Some((_, members)) = union.take() {
                union_tails(name, members, end, &mut holes);
            }
            if offset < end {
                return Err(format!(
                    "{field} at offset {offset} overlaps {last}, which ends at {end}"
                ));
            }
            prev_start = Some(offset);
            if offset > end {
                holes.push(Hole {
                    structure: name,
                    after: last.to_owned(),
                    offset: end,
                    bytes: offset - end,
                });
            }
            end = offset + bytes;
            last = field;
        }
        if let Some((_, members)) = union.take() {
            union_tails(name, members, end, &mut holes);
        }
        if size > end {
            holes.push(Hole {
                structure: name,
                after: last.to_owned(),
                offset: end,
                bytes: size - end,
            });
        } else if size < end {
            return Err(format!("{name}: fields end at {end}, beyond sizeof {size}"));
        }
    }
    Ok(holes)
}

/// The tail of each member of a finished union that is shorter than the union (up to `end`).
fn union_tails(
    structure: &'static str,
    members: Vec<(&'static str, u64)>,
    end: u64,
    holes: &mut Vec<Hole>,
) {
    for (member, member_end) in members {
        if member_end < end {
            holes.push(Hole {
                structure,
                after: format!("union member {member}"),
                offset: member_end,
                bytes: end - member_end,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Entry, Rust};

    #[test]
    fn holes_are_found_and_flexible_arrays_cover_nothing() {
        let e = |item, kind, c| Probed {
            entry: Entry {
                item,
                kind,
                rust: Rust::None,
            },
            c: [c, 0],
        };
        let probed = [
            e("s", Kind::Size, 24),
            e("s.a", Kind::FieldOffset, 0),
            e("s.a", Kind::FieldSize, 4),
            e("s.b", Kind::FieldOffset, 8),
            e("s.b", Kind::FieldSize, 8),
            e("s.c", Kind::FieldOffset, 16),
            e("s.c", Kind::FieldSize, 4),
            e("t", Kind::Size, 8),
            e("t.n", Kind::FieldOffset, 0),
            e("t.n", Kind::FieldSize, 8),
            e("t.x", Kind::FieldOffset, 8),
            e("t.x", Kind::FlexElemSize, 4),
        ];
        let found = holes(&probed).expect("consistent");
        assert_eq!(
            found,
            [
                Hole {
                    structure: "s",
                    after: "s.a".into(),
                    offset: 4,
                    bytes: 4
                },
                Hole {
                    structure: "s",
                    after: "s.c".into(),
                    offset: 20,
                    bytes: 4
                },
            ]
        );
    }
}
