//! The `struct io_uring_sqe` fields that fuse-uring writes (opcode, fd, cmd_op, addr, len,
//! uring_cmd_flags, user_data, cmd), as the C compiler lays out the distro's
//! `<linux/io_uring.h>`, against an independent Rust definition (linux-raw-sys), so that the
//! SQE builders rest on checked offsets.

use std::mem::offset_of;

use abi_tests::tables::{IO_URING_H, IO_URING_PRESENT};
use abi_tests::{Kind, Rust, field_size, pointee_size, probed_sqe};
use linux_raw_sys::io_uring::{
    io_uring_op, io_uring_sqe, io_uring_sqe__bindgen_ty_1__bindgen_ty_1,
};

/// Offset and size of an `io_uring_sqe` field in linux-raw-sys, which nests the C anonymous
/// unions as `__bindgen_anon_N` fields. `None` for a field this test does not know.
fn rust_field(name: &str) -> Option<(usize, usize)> {
    Some(match name {
        "opcode" => (
            offset_of!(io_uring_sqe, opcode),
            field_size(|s: &io_uring_sqe| &s.opcode),
        ),
        "fd" => (
            offset_of!(io_uring_sqe, fd),
            field_size(|s: &io_uring_sqe| &s.fd),
        ),
        // union { off; addr2; struct { cmd_op; __pad1; }; }
        "cmd_op" => (
            offset_of!(io_uring_sqe, __bindgen_anon_1.__bindgen_anon_1.cmd_op),
            // (A projection through a union field is unsafe unless the union field is last,
            // so take the size from the inner struct type.)
            field_size(|s: &io_uring_sqe__bindgen_ty_1__bindgen_ty_1| &s.cmd_op),
        ),
        // union { addr; splice_off_in; ... }
        "addr" => (
            offset_of!(io_uring_sqe, __bindgen_anon_2.addr),
            pointee_size(|s: &io_uring_sqe| &raw const s.__bindgen_anon_2.addr),
        ),
        "len" => (
            offset_of!(io_uring_sqe, len),
            field_size(|s: &io_uring_sqe| &s.len),
        ),
        // The op_flags union.
        "uring_cmd_flags" => (
            offset_of!(io_uring_sqe, __bindgen_anon_3.uring_cmd_flags),
            pointee_size(|s: &io_uring_sqe| &raw const s.__bindgen_anon_3.uring_cmd_flags),
        ),
        "user_data" => (
            offset_of!(io_uring_sqe, user_data),
            field_size(|s: &io_uring_sqe| &s.user_data),
        ),
        // union { struct { addr3; __pad2[1]; }; optval; __u8 cmd[0]; }: a zero-length array
        // whose bytes run on into the second half of a 128-byte SQE (IORING_SETUP_SQE128).
        "cmd" => (
            offset_of!(io_uring_sqe, __bindgen_anon_6.cmd),
            field_size(|s: &io_uring_sqe| &s.__bindgen_anon_6.cmd),
        ),
        _ => return None,
    })
}

/// The value of an io_uring constant in linux-raw-sys.
fn rust_const(name: &str) -> Option<u64> {
    Some(match name {
        "IORING_OP_URING_CMD" => io_uring_op::IORING_OP_URING_CMD as u64,
        "IORING_SETUP_SQE128" => u64::from(linux_raw_sys::io_uring::IORING_SETUP_SQE128),
        _ => return None,
    })
}

#[test]
fn sqe_fields_fuse_uring_writes_match_c_and_linux_raw_sys() {
    if !IO_URING_PRESENT {
        testkit::skip(&format!(
            "{IO_URING_H} was absent when abi-tests was built (apt-get install linux-libc-dev)"
        ));
        return;
    }
    let probed = probed_sqe().expect("the io_uring probe pairs with its table");
    let mut bad = Vec::new();
    let (mut fields, mut consts) = (0, 0);
    let mut sqe_size = 0;
    let mut cmd_offset = None;
    for p in &probed {
        let item = p.entry.item;
        match (p.entry.kind, p.entry.rust) {
            (Kind::Size, Rust::None) => {
                sqe_size = p.c[0];
                let rust = size_of::<io_uring_sqe>() as u64;
                if sqe_size != rust {
                    bad.push(format!(
                        "{item}: size {sqe_size} in C ({IO_URING_H}), {rust} in linux-raw-sys"
                    ));
                }
            }
            (Kind::SqeField, Rust::None) => {
                fields += 1;
                let name = item.trim_start_matches("io_uring_sqe.");
                let [c_offset, c_size] = p.c;
                match rust_field(name) {
                    None => bad.push(format!("{item}: no linux-raw-sys path known for it")),
                    Some((offset, size)) => {
                        if (offset as u64, size as u64) != (c_offset, c_size) {
                            bad.push(format!(
                                "{item}: offset {c_offset} size {c_size} in C ({IO_URING_H}), \
                                 offset {offset} size {size} in linux-raw-sys"
                            ));
                        }
                    }
                }
                println!("io_uring_sqe.{name}: offset {c_offset}, size {c_size}");
                if name == "cmd" {
                    cmd_offset = Some(c_offset);
                }
            }
            (Kind::SqeConst, Rust::None) => {
                consts += 1;
                match rust_const(item) {
                    None => bad.push(format!("{item}: no linux-raw-sys constant known for it")),
                    Some(v) if v != p.c[0] => bad.push(format!(
                        "{item}: {} in C ({IO_URING_H}), {v} in linux-raw-sys",
                        p.c[0]
                    )),
                    Some(_) => {}
                }
            }
            (kind, _) => bad.push(format!("{item}: unexpected entry {kind:?}")),
        }
    }
    println!("compared {fields} io_uring_sqe fields and {consts} constants");
    assert!(
        bad.is_empty(),
        "io_uring_sqe disagreements:\n  {}",
        bad.join("\n  ")
    );
    assert_eq!(fields, 8, "the eight fields fuse-uring writes");
    assert_eq!(consts, 2);

    // With IORING_SETUP_SQE128 an SQE is two slots; `cmd` runs from its offset to the end.
    let cmd_offset = cmd_offset.expect("cmd was probed");
    let cmd_area = 2 * sqe_size - cmd_offset;
    let req = size_of::<fuse_kernel_sys::fuse_uring_cmd_req>() as u64;
    println!(
        "SQE128 command area: {cmd_area} bytes at offset {cmd_offset}; fuse_uring_cmd_req: {req}"
    );
    assert_eq!(cmd_area, 80, "the 128-byte SQE's command area");
    assert!(
        req <= cmd_area,
        "fuse_uring_cmd_req ({req}) does not fit in cmd ({cmd_area})"
    );
}
