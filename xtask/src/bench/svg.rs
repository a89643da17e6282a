//! The SVG bar chart of the ratios to native.

use std::fmt::Write as _;

use super::report::fmt_ratio;
use super::{Run, SystemRun, WORKLOADS};

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A grouped bar chart: one group per workload, one bar per mounted system, height = ratio to
/// native, with the native level (1.0) drawn across.
pub(crate) fn svg(run: &Run) -> String {
    // Ours in blues and oranges, libfuse in greens.
    const COLORS: [&str; 7] = [
        "#4e79a7", "#a0cbe8", "#f28e2b", "#ffbe7d", "#59a14f", "#8cd17d", "#b6992d",
    ];
    let mounted: Vec<&SystemRun> = run
        .systems
        .iter()
        .filter(|s| s.system.transport.is_some())
        .collect();
    let ratios: Vec<Vec<Option<f64>>> = WORKLOADS
        .iter()
        .map(|w| {
            mounted
                .iter()
                .map(|s| run.ratio(s.system.name, "native", w.id))
                .collect()
        })
        .collect();
    // Logarithmic axis: metadata ratios are around 0.01, data ratios around 1, and both
    // must be readable. Decades from the smallest ratio (at most 0.001) to the largest.
    let known: Vec<f64> = ratios.iter().flatten().flatten().copied().collect();
    let lo_exp = known
        .iter()
        .fold(0.0f64, |a, &b| a.min(b.max(1e-3).log10().floor()));
    let hi_exp = known
        .iter()
        .fold(1.0f64, |a, &b| a.max((b * 1.2).log10().ceil()));
    let (bottom_r, top) = (10f64.powf(lo_exp), 10f64.powf(hi_exp));
    // A legend row per 4 systems; groups wide enough for 14 px bars.
    let legend_rows = mounted.len().div_ceil(4).max(1) as f64;
    let (left, right, top_pad, bottom) = (60.0, 20.0, 56.0 + 14.0 * legend_rows, 90.0);
    let group_w = (20.0 + 14.0 * mounted.len() as f64).max(120.0);
    let width = left + right + group_w * WORKLOADS.len() as f64;
    let height = 350.0 + top_pad;
    let plot_h = height - top_pad - bottom;
    let y = |r: f64| {
        let r = r.clamp(bottom_r, top);
        top_pad + plot_h * (top.log10() - r.log10()) / (top.log10() - bottom_r.log10())
    };
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(
        s,
        r#"<rect width="100%" height="100%" fill="white"/><text x="{left}" y="18" font-size="14" font-weight="bold">Ratio to native, log scale (higher is better): {}</text>"#,
        xml_escape(&run.command)
    );
    let _ = writeln!(
        s,
        r##"<text x="{left}" y="34" fill="#555">{} · {}</text>"##,
        xml_escape(&run.date),
        xml_escape(&run.machine.describe())
    );
    // Legend.
    for (i, sys) in mounted.iter().enumerate() {
        let x = left + 190.0 * (i % 4) as f64;
        let y0 = 44.0 + 14.0 * (i / 4) as f64;
        let _ = writeln!(
            s,
            r#"<rect x="{x}" y="{y0}" width="12" height="12" fill="{}"/><text x="{}" y="{}">{}</text>"#,
            COLORS[i % COLORS.len()],
            x + 16.0,
            y0 + 10.0,
            sys.system.name
        );
    }
    // Axis and grid.
    let mut exp = lo_exp;
    while exp <= hi_exp + 1e-9 {
        let tick = 10f64.powf(exp);
        let yy = y(tick);
        let _ = writeln!(
            s,
            r##"<line x1="{left}" x2="{:.1}" y1="{yy:.1}" y2="{yy:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{tick}</text>"##,
            width - right,
            left - 6.0,
            yy + 4.0
        );
        exp += 1.0;
    }
    let yy = y(1.0);
    let _ = writeln!(
        s,
        r##"<line x1="{left}" x2="{:.1}" y1="{yy:.1}" y2="{yy:.1}" stroke="#000" stroke-dasharray="5,3"/><text x="{:.1}" y="{:.1}" text-anchor="end" font-weight="bold">native</text>"##,
        width - right,
        width - right,
        yy - 4.0
    );
    let n = mounted.len().max(1) as f64;
    let bar_w = (group_w - 20.0) / n;
    for (g, w) in WORKLOADS.iter().enumerate() {
        let gx = left + group_w * g as f64 + 10.0;
        for (i, r) in ratios[g].iter().enumerate() {
            let x = gx + bar_w * i as f64;
            match r {
                Some(r) => {
                    let (y0, y1) = (y(*r), y(bottom_r));
                    let _ = writeln!(
                        s,
                        r#"<rect x="{x:.1}" y="{y0:.1}" width="{:.1}" height="{:.1}" fill="{}"><title>{} {}: {}x</title></rect><text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="9">{}</text>"#,
                        bar_w - 2.0,
                        (y1 - y0).max(0.0),
                        COLORS[i % COLORS.len()],
                        mounted[i].system.name,
                        w.id,
                        fmt_ratio(*r),
                        x + bar_w / 2.0 - 1.0,
                        y0 - 3.0,
                        fmt_ratio(*r),
                    );
                }
                None => {
                    let _ = writeln!(
                        s,
                        r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="9" fill="#999">n/a</text>"##,
                        x + bar_w / 2.0 - 1.0,
                        y(bottom_r) - 3.0
                    );
                }
            }
        }
        let cx = left + group_w * g as f64 + group_w / 2.0;
        let _ = writeln!(
            s,
            r#"<text x="{cx:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            y(bottom_r) + 16.0,
            w.id
        );
    }
    let _ = writeln!(
        s,
        r##"<line x1="{left}" x2="{:.1}" y1="{:.1}" y2="{:.1}" stroke="#000"/>"##,
        width - right,
        y(bottom_r),
        y(bottom_r)
    );
    s.push_str("</svg>\n");
    s
}
