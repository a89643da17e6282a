//! The bindgen configuration of `fuse-kernel-sys`, for the workspace's tools.
//!
//! The configuration itself ships inside the published `fuse-kernel-sys` package as
//! `fuse-kernel-sys/build/bindgen_config.rs`, where its build script reads it with `#[path]`.
//! This unpublished crate includes the same file so that `xtask` (`regen-bindings`) and the
//! build script of `abi-tests` use the very same code: one configuration, no second copy.

#[path = "../../fuse-kernel-sys/build/bindgen_config.rs"]
mod config;

pub use config::*;

/// Evaluates integer constant expressions of C with clang (through libclang) for `target`:
/// one `enum` per expression after `prelude` (the `#include`s), read back through bindgen's
/// enum callbacks. Every value comes back as the bits of an `unsigned long long`.
///
/// `clang_args` add include directories and the like (the target is set here). This is the
/// C compiler's own constant evaluation (`sizeof`, `_Alignof`, `offsetof`, macros), used by
/// the cross-architecture ABI checks of abi-tests, for targets whose binaries cannot run here.
pub fn eval_c_ints(
    prelude: &str,
    exprs: &[String],
    target: &str,
    clang_args: &[String],
    scratch_dir: &std::path::Path,
) -> Result<Vec<u64>, String> {
    use std::fmt::Write as _;
    use std::sync::{Arc, Mutex};

    #[derive(Debug, Default)]
    struct Values(Mutex<std::collections::BTreeMap<usize, u64>>);
    #[derive(Debug)]
    struct Callbacks(Arc<Values>);
    impl bindgen::callbacks::ParseCallbacks for Callbacks {
        fn enum_variant_behavior(
            &self,
            _enum_name: Option<&str>,
            variant: &str,
            value: bindgen::callbacks::EnumVariantValue,
        ) -> Option<bindgen::callbacks::EnumVariantCustomBehavior> {
            if let Some(i) = variant
                .strip_prefix("FKS_EVAL_")
                .and_then(|i| i.parse::<usize>().ok())
            {
                let bits = match value {
                    bindgen::callbacks::EnumVariantValue::Boolean(b) => u64::from(b),
                    bindgen::callbacks::EnumVariantValue::Signed(v) => v as u64,
                    bindgen::callbacks::EnumVariantValue::Unsigned(v) => v,
                };
                if let Ok(mut map) = self.0.0.lock() {
                    map.insert(i, bits);
                }
            }
            None
        }
    }

    let mut src = String::from(prelude);
    src.push('\n');
    for (i, e) in exprs.iter().enumerate() {
        writeln!(src, "enum {{ FKS_EVAL_{i} = (unsigned long long)({e}) }};").ok();
    }
    let path = scratch_dir.join(format!("eval_{}.h", clang_target(target)));
    std::fs::write(&path, src).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    let values = Arc::new(Values::default());
    bindgen::Builder::default()
        .header(path.to_string_lossy().into_owned())
        .clang_arg(format!("--target={}", clang_target(target)))
        .clang_args(clang_args.iter().cloned())
        .clang_arg("-Wno-pedantic")
        .allowlist_item("FKS_EVAL_.*")
        .parse_callbacks(Box::new(Callbacks(values.clone())))
        .generate()
        .map_err(|e| format!("clang could not evaluate the probe for {target}: {e}"))?;
    let map = values.0.lock().map_err(|_| "poisoned".to_owned())?;
    (0..exprs.len())
        .map(|i| {
            map.get(&i)
                .copied()
                .ok_or_else(|| format!("clang gave no value for `{}` ({target})", exprs[i]))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::CIntType;

    #[test]
    fn c_int_type_codes_and_generic_selection() {
        assert_eq!(
            CIntType::generic_associations(),
            "int: 1, unsigned int: 2, long: 3, unsigned long: 4, long long: 5, \
             unsigned long long: 6, default: 0"
        );
        for t in CIntType::ALL {
            assert_eq!(CIntType::from_code(t.code()), Some(t));
        }
        assert_eq!(CIntType::from_code(0), None);
        assert_eq!(CIntType::from_code(7), None);
        let signed: Vec<_> = CIntType::ALL.iter().map(|t| t.signed()).collect();
        assert_eq!(signed, [true, false, true, false, true, false]);
        let long_long: Vec<_> = CIntType::ALL.iter().map(|t| t.is_long_long()).collect();
        assert_eq!(long_long, [false, false, false, false, true, true]);
    }
}
