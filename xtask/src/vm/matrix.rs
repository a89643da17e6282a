//! The matrix.

use std::fmt::Write as _;

use super::boot::{BinaryRun, KernelRun, Status};

fn cell(b: &BinaryRun) -> String {
    let counts = if b.not_applicable > 0 {
        format!("{} passed ({} n/a)", b.passed, b.not_applicable)
    } else {
        format!("{} passed", b.passed)
    };
    match &b.status {
        Status::Passed => format!("ok: {counts}, {:.0}s", b.seconds),
        Status::NotApplicable => {
            format!("not applicable ({}), {:.0}s", b.not_applicable, b.seconds)
        }
        Status::Failed(_) => format!(
            "**{}**: {} failed, {counts}, {:.0}s",
            b.status.word(),
            b.failed,
            b.seconds
        ),
        Status::Hung | Status::NoResult => {
            format!("**{}** after {:.0}s", b.status.word(), b.seconds)
        }
        Status::NotRun => "not run".into(),
    }
}

pub(super) fn matrix_markdown(results: &[KernelRun], labels: &[String]) -> String {
    let mut s = String::from("| test binary |");
    for k in results {
        let _ = write!(s, " {} |", k.name);
    }
    s.push_str("\n|---|");
    for _ in results {
        s.push_str("---|");
    }
    s.push('\n');
    let mut row = |name: &str, f: &dyn Fn(&KernelRun) -> String| {
        let _ = write!(s, "| {name} |");
        for k in results {
            let _ = write!(s, " {} |", f(k));
        }
        s.push('\n');
    };
    row("kernel package", &|k| {
        if k.package.is_empty() {
            "-".into()
        } else {
            format!("{} {}", k.package, k.version)
        }
    });
    row("uname -r", &|k| k.release.clone());
    row("FUSE", &|k| k.fuse.clone());
    row("enable_uring", &|k| k.enable_uring.clone());
    for label in labels {
        row(label, &|k| {
            k.binaries
                .iter()
                .find(|b| &b.label == label)
                .map_or_else(|| "-".into(), cell)
        });
    }
    row("guest", &|k| match &k.error {
        Some(e) => format!("**error**: {e}"),
        None => format!("{}, {:.0}s", k.outcome, k.seconds),
    });
    s
}

pub(super) fn matrix_json(results: &[KernelRun]) -> String {
    use serde_json::json;
    let kernels: Vec<serde_json::Value> = results
        .iter()
        .map(|k| {
            json!({
                "kernel": k.name,
                "suite": k.suite,
                "package": k.package,
                "version": k.version,
                "release": k.release,
                "proc_version": k.proc_version,
                "fuse": k.fuse,
                "enable_uring": k.enable_uring,
                "seconds": (k.seconds * 10.0).round() / 10.0,
                "outcome": k.outcome,
                "error": k.error,
                "binaries": k.binaries.iter().map(|b| json!({
                    "binary": b.label,
                    "status": b.status.word(),
                    "ok": b.status.is_ok(),
                    "passed": b.passed,
                    "failed": b.failed,
                    "ignored": b.ignored,
                    "not_applicable": b.not_applicable,
                    "seconds": (b.seconds * 10.0).round() / 10.0,
                    "summary": b.summary,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let mut s = serde_json::to_string_pretty(&json!({ "kernels": kernels })).unwrap_or_default();
    s.push('\n');
    s
}
