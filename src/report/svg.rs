//! SVG charts for reports, written by hand as text: a Gantt chart of one run (steps as bars,
//! waits, retries, approvals and pauses marked, the critical path highlighted, the RTO target
//! as a line) and a trend of RTO and RPO over runs against the targets. No scripts, no fonts
//! or images fetched: the HTML report stays one self-contained file that prints.

use std::fmt::Write;

use super::history::HistoryRow;
use super::model::{Report, Verdict};

const ROW: f64 = 22.0;
const LABEL_W: f64 = 190.0;
const CHART_W: f64 = 640.0;
const TOP: f64 = 28.0;

/// Text for SVG and HTML: `<`, `>`, `&` and quotes escaped.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '&' => o.push_str("&amp;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// "1.2s", "59.3s", "3m04s", "1h02m".
pub fn dur(ms: u64) -> String {
    let s = ms / 1000;
    if ms < 60_000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else if s < 3600 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    }
}

/// A scale of round ticks (at most 8) up to at least `max`, ending as close above it as a
/// round step allows (61 s: 70 s, not 80 s).
fn ticks(max: f64) -> (f64, f64) {
    let max = max.max(1.0);
    let raw = max / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| max / s <= 8.0)
        .unwrap_or(10.0 * mag);
    (step, (max / step).ceil() * step)
}

/// The run's timeline. Each step is a `<rect class="bar ...">` with `data-step`, so a browser
/// test can find one bar per step.
pub fn gantt(r: &Report) -> String {
    let rows = r.steps.len().max(1) as f64;
    let end_ms = r
        .steps
        .iter()
        .filter_map(|s| s.span.map(|s| s.end_ms))
        .chain([r.duration_ms])
        .max()
        .unwrap_or(0) as f64;
    let rto_line = (r.recovery).then(|| {
        let offset = (r.started_at - r.rto.from_at).num_milliseconds().max(0) as f64;
        r.rto.target_ms as f64 - offset
    });
    // The axis spans the run; it reaches out to the RTO target only when the target is near
    // (a 15-minute target must not stretch a 49-second run's axis to 1m20s for a line it never
    // shows). A target beyond the axis is said at its right edge instead.
    let near_target = rto_line.filter(|l| *l > 0.0 && *l <= end_ms * 1.5);
    let (step, max) = ticks(end_ms.max(near_target.unwrap_or(0.0)));
    let x = |ms: f64| LABEL_W + ms / max * CHART_W;
    let h = TOP + rows * ROW + 34.0;
    let w = LABEL_W + CHART_W + 20.0;
    let mut o = String::new();
    let _ = write!(
        o,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="gantt" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="timeline of run {id}" font-family="sans-serif" font-size="12">"#,
        id = esc(&r.run_id)
    );
    o.push_str(
        r#"<style>.bar{fill:#4a78b5}.bar.wait{fill:#e0b03a}.bar.critical{stroke:#c0392b;stroke-width:3}.bar.failed{fill:#7f1d1d}.bar.skipped,.bar.already_done{fill:#9aa5b1}.pause{fill:#ddd}.grid{stroke:#e5e5e5}.rto{stroke:#c0392b;stroke-dasharray:4 3}.retry{stroke:#000;stroke-width:2}.approval{fill:#2e7d32}text{fill:#222}</style>"#,
    );
    // Grid and axis labels.
    let mut t = 0.0;
    while t <= max + 0.5 {
        let _ = write!(
            o,
            r#"<line class="grid" x1="{x}" y1="{TOP}" x2="{x}" y2="{y2}"/><text x="{x}" y="{ty}" text-anchor="middle">{l}</text>"#,
            x = x(t),
            y2 = TOP + rows * ROW,
            ty = TOP + rows * ROW + 14.0,
            l = dur(t as u64)
        );
        t += step;
    }
    for p in &r.pauses {
        let _ = write!(
            o,
            r#"<rect class="pause" x="{x0}" y="{TOP}" width="{w}" height="{h}"><title>paused {d}</title></rect>"#,
            x0 = x(p.start_ms as f64),
            w = (x(p.end_ms as f64) - x(p.start_ms as f64)).max(1.0),
            h = rows * ROW,
            d = dur(p.end_ms.saturating_sub(p.start_ms))
        );
    }
    for (i, s) in r.steps.iter().enumerate() {
        let y = TOP + i as f64 * ROW;
        let _ = write!(
            o,
            r#"<text x="4" y="{ty}"{bold}>{id}</text>"#,
            ty = y + 15.0,
            bold = if s.critical {
                r#" font-weight="bold""#
            } else {
                ""
            },
            id = esc(&s.id)
        );
        let Some(sp) = s.span else { continue };
        let mut class = vec!["bar"];
        if s.wait {
            class.push("wait");
        }
        if s.critical {
            class.push("critical");
        }
        if matches!(s.state.as_str(), "failed" | "skipped" | "already_done") {
            class.push(s.state.as_str());
        }
        let bw = (x(sp.end_ms as f64) - x(sp.start_ms as f64)).max(2.0);
        let d = dur(sp.end_ms.saturating_sub(sp.start_ms));
        let _ = write!(
            o,
            r#"<rect class="{c}" data-step="{id}" x="{x0}" y="{y0}" width="{bw}" height="14"><title>{id} ({kind}): {state}, {d}</title></rect>"#,
            c = class.join(" "),
            id = esc(&s.id),
            kind = esc(&s.kind),
            state = esc(&s.state),
            x0 = x(sp.start_ms as f64),
            y0 = y + 4.0,
        );
        // Every bar says how long it took, a sub-second sliver too: beside it, or inside it
        // near the right edge when there is no room left of the axis end.
        let (lx, anchor) = if x(sp.end_ms as f64) + 50.0 <= LABEL_W + CHART_W + 20.0 {
            (x(sp.end_ms as f64) + 3.0, "start")
        } else {
            (x(sp.end_ms as f64) - 3.0, "end")
        };
        let _ = write!(
            o,
            r#"<text class="dur" data-step="{id}" x="{lx}" y="{ty}" text-anchor="{anchor}" font-size="10">{d}</text>"#,
            id = esc(&s.id),
            ty = y + 15.0,
        );
        for at in &s.retries_at_ms {
            let _ = write!(
                o,
                r#"<line class="retry" x1="{x}" y1="{y0}" x2="{x}" y2="{y1}"><title>retry</title></line>"#,
                x = x(*at as f64),
                y0 = y + 2.0,
                y1 = y + 20.0
            );
        }
        for a in r.approvals.iter().filter(|a| a.step == s.id) {
            let ax = x((a.at - r.started_at).num_milliseconds().max(0) as f64);
            let _ = write!(
                o,
                r#"<circle class="approval" cx="{ax}" cy="{cy}" r="5"><title>approved by {by} via {via}</title></circle>"#,
                cy = y + 11.0,
                by = esc(&a.by),
                via = esc(&a.via)
            );
        }
    }
    match rto_line {
        Some(l) if l > 0.0 && l <= max => {
            let _ = write!(
                o,
                r##"<line class="rto" id="rto-target" x1="{x}" y1="{y0}" x2="{x}" y2="{y1}"/><text x="{x}" y="{ty}" text-anchor="middle" fill="#c0392b">RTO target {t}</text>"##,
                x = x(l),
                y0 = TOP - 4.0,
                y1 = TOP + rows * ROW,
                ty = TOP - 8.0,
                t = dur(r.rto.target_ms)
            );
        }
        Some(_) => {
            let _ = write!(
                o,
                r##"<text id="rto-target" x="{x}" y="{ty}" text-anchor="end" fill="#c0392b">RTO target {t} (beyond this chart) →</text>"##,
                x = LABEL_W + CHART_W,
                ty = TOP - 8.0,
                t = dur(r.rto.target_ms)
            );
        }
        None => {}
    }
    let _ = write!(
        o,
        r#"<text x="4" y="{y}">bars: red outline = critical path, yellow = waiting (approval, wait), grey = skipped or already done; | retry; ● approval; shaded = paused</text>"#,
        y = h - 4.0
    );
    o.push_str("</svg>");
    o
}

/// RTO (seconds) per run against the target, and RPO as a second series.
pub fn trend(rows: &[HistoryRow], rto_target_s: f64, rpo_target_s: f64) -> String {
    // Room for run ids written at an angle below the axis (they must not be clipped at the
    // left or run into the legend).
    let (pw, ph, left, top) = (640.0, 200.0, 110.0, 20.0);
    let n = rows.len().max(1);
    let max_rto = rows
        .iter()
        .filter_map(|r| r.rto_s)
        .fold(rto_target_s, f64::max);
    let max_rpo = rows
        .iter()
        .filter_map(|r| r.rpo_s)
        .fold(rpo_target_s, f64::max);
    let (_, ymax) = ticks(max_rto * 1.1);
    let (_, y2max) = ticks(max_rpo * 1.1);
    let xp = |i: usize| left + (i as f64 + 0.5) * pw / n as f64;
    let yp = |v: f64, m: f64| top + ph - v / m * ph;
    let mut o = String::new();
    let (w, h) = (left + pw + 130.0, top + ph + 150.0);
    let _ = write!(
        o,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="trend" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="RTO and RPO over runs" font-family="sans-serif" font-size="12">"#
    );
    o.push_str(r#"<style>.rto-pt{fill:#4a78b5}.rpo-pt{fill:#e0b03a}.fail{stroke:#c0392b;stroke-width:2}.target{stroke-dasharray:4 3}</style>"#);
    let _ = write!(
        o,
        r##"<line x1="{left}" y1="{y}" x2="{x2}" y2="{y}" stroke="#4a78b5" class="target"/><text x="{x2}" y="{y}" fill="#4a78b5"> RTO target {t}</text>"##,
        y = yp(rto_target_s, ymax),
        x2 = left + pw,
        t = dur((rto_target_s * 1000.0) as u64)
    );
    let _ = write!(
        o,
        r##"<line x1="{left}" y1="{y}" x2="{x2}" y2="{y}" stroke="#e0b03a" class="target"/><text x="{x2}" y="{y}" fill="#a07000"> RPO target {t}</text>"##,
        y = yp(rpo_target_s, y2max),
        x2 = left + pw,
        t = dur((rpo_target_s * 1000.0) as u64)
    );
    let _ = write!(
        o,
        r##"<line x1="{left}" y1="{top}" x2="{left}" y2="{b}" stroke="#888"/><line x1="{left}" y1="{b}" x2="{r}" y2="{b}" stroke="#888"/><text x="4" y="{top}">{m}</text><text x="4" y="{b}">0</text>"##,
        b = top + ph,
        r = left + pw,
        m = dur((ymax * 1000.0) as u64)
    );
    for (i, row) in rows.iter().enumerate() {
        if let Some(v) = row.rto_s {
            let fail = matches!(row.rto_verdict, Verdict::Fail);
            let _ = write!(
                o,
                r#"<circle class="rto-pt{f}" data-run="{id}" cx="{x}" cy="{y}" r="5"><title>{id}: RTO {d} ({v})</title></circle>"#,
                f = if fail { " fail" } else { "" },
                id = esc(&row.run_id),
                x = xp(i),
                y = yp(v, ymax),
                d = dur((v * 1000.0) as u64),
                v = row.rto_verdict.word()
            );
        }
        if let Some(v) = row.rpo_s {
            let _ = write!(
                o,
                r#"<rect class="rpo-pt" x="{x}" y="{y}" width="8" height="8"><title>{id}: RPO {v:.1}s</title></rect>"#,
                id = esc(&row.run_id),
                x = xp(i) - 4.0,
                y = yp(v, y2max) - 4.0
            );
        }
        let _ = write!(
            o,
            r#"<text class="run-label" x="{x}" y="{y}" text-anchor="end" transform="rotate(-60 {x} {y})" font-size="10">{id}</text>"#,
            x = xp(i),
            y = top + ph + 14.0,
            id = esc(&row.run_id)
        );
    }
    let _ = write!(
        o,
        r#"<text class="legend" x="{left}" y="{y}">● RTO per run (left axis), ■ RPO per run (its own scale, to {m:.0}s); dashed: targets</text>"#,
        y = h - 4.0,
        m = y2max
    );
    o.push_str("</svg>");
    o
}
