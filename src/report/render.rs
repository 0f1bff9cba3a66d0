//! A report as Markdown (for a postmortem or a ticket) and as one self-contained HTML file
//! (inline CSS and SVG, no scripts, nothing fetched; readable when printed).

use std::fmt::Write;

use super::history::{History, Prediction};
use super::model::{Report, Verdict};
use super::svg::{dur, esc, gantt, trend};

/// A time for people: UTC to the millisecond.
fn at(t: &chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S%.3f UTC").to_string()
}

fn opt_dur(ms: Option<u64>) -> String {
    ms.map(dur).unwrap_or_else(|| "-".into())
}

fn who(r: &Report) -> String {
    let p = &r.started_by;
    let mut s = format!("{}@{}", p.user, p.host);
    match (&p.aws_arn, &p.aws_account) {
        (Some(arn), _) => {
            let _ = write!(s, " as {arn}");
        }
        (None, Some(acct)) => {
            let _ = write!(s, " in account {acct}");
        }
        _ => s.push_str(" (AWS identity not recorded)"),
    }
    s
}

/// "41.2s against a target of 15m00s (how it was measured)": the RTO after its verdict.
fn rto_text(r: &Report) -> String {
    format!(
        "{} against a target of {} ({})",
        opt_dur(r.rto.measured_ms),
        dur(r.rto.target_ms),
        r.rto.note
    )
}

fn rpo_text(r: &Report) -> String {
    format!(
        "{} against a target of {} ({})",
        r.rpo
            .measured_s
            .map(|s| format!("{s:.1}s"))
            .unwrap_or_else(|| "-".into()),
        dur((r.rpo.target_s * 1000.0) as u64),
        r.rpo.note
    )
}

/// Text that came from a journal, safe in a Markdown table cell or list item: one line, no
/// `|`, no HTML (a wiki would render it), no code spans; long output cut to 300 characters.
fn md(s: &str) -> String {
    let one_line = s.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut o = String::with_capacity(one_line.len());
    for (n, c) in one_line.chars().enumerate() {
        if n == 300 {
            o.push('…');
            break;
        }
        match c {
            '|' => o.push_str("\\|"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '`' => o.push('\''),
            c => o.push(c),
        }
    }
    o
}

/// Markdown: headings, a facts list and tables; the timeline as a table (the HTML has the chart).
/// The first thing a report of a damaged journal says: it is not the record drctl wrote.
fn broken_banner(r: &Report) -> Option<String> {
    r.journal.chain_status.strip_prefix("BROKEN: ").map(|why| {
        format!(
            "BROKEN JOURNAL: this run's journal was changed after drctl wrote it ({why}); nothing below can be trusted. `drctl verify {}` says where",
            r.run_id
        )
    })
}

pub fn markdown(r: &Report) -> String {
    let mut o = String::new();
    if let Some(b) = broken_banner(r) {
        let _ = writeln!(o, "> **{}**\n", md(&b));
    }
    let _ = writeln!(
        o,
        "# Run {}: {}{} ({})\n",
        md(&r.run_id),
        md(&r.runbook),
        r.direction
            .as_ref()
            .map(|d| format!(", {}", md(d)))
            .unwrap_or_default(),
        r.outcome
    );
    let _ = writeln!(o, "- outcome: **{}**: {}", r.outcome, md(&r.outcome_text));
    let _ = writeln!(o, "- environment: {}", md(&r.env));
    let _ = writeln!(o, "- command: {}", md(&r.command));
    let _ = writeln!(o, "- started by: {}", md(&who(r)));
    if let Some(t) = &r.trigger {
        let _ = writeln!(
            o,
            "- triggered by: {} (outage detected {}): {}",
            md(&t.by),
            at(&t.detected_at),
            md(&t.why)
        );
    }
    let _ = writeln!(o, "- started: {}", at(&r.started_at));
    let _ = writeln!(
        o,
        "- {}: {} ({})",
        if r.finished { "finished" } else { "last event" },
        at(&r.last_event_at),
        dur(r.duration_ms)
    );
    for s in &r.sessions {
        let _ = writeln!(
            o,
            "- {}: {} by {}",
            s.kind,
            at(&s.at),
            md(&format!("{}@{}", s.user, s.host))
        );
    }
    if r.recovery {
        let _ = writeln!(o, "- RTO: {} {}", r.rto.verdict.word(), rto_text(r));
        let _ = writeln!(o, "- RPO: {} {}", r.rpo.verdict.word(), rpo_text(r));
    }
    let _ = writeln!(
        o,
        "- phase before: {}",
        r.phase_before.as_deref().unwrap_or("not observed")
    );
    let _ = writeln!(
        o,
        "- phase after: {}",
        r.phase_after
            .as_deref()
            .unwrap_or("not derived (see `drctl status`)")
    );
    if !r.approvals.is_empty() {
        o.push_str("\n## Approvals\n\n| gate | by | via | at | waited | comment |\n|---|---|---|---|---|---|\n");
        for a in &r.approvals {
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | {} | {} |",
                md(&a.step),
                md(&a.by),
                md(&a.via),
                at(&a.at),
                opt_dur(a.waited_ms),
                md(a.comment.as_deref().unwrap_or(""))
            );
        }
    }
    o.push_str("\n## Timeline\n\n| step | kind | state | starts | took | attempts | critical |\n|---|---|---|---|---|---|---|\n");
    for s in &r.steps {
        let _ = writeln!(
            o,
            "| {} | {} | {}{} | {} | {} | {} | {} |",
            md(&s.id),
            md(&s.kind),
            s.state,
            s.detail
                .as_deref()
                .map(|d| format!(": {}", md(d)))
                .unwrap_or_default(),
            s.span
                .map(|sp| format!("+{}", dur(sp.start_ms)))
                .unwrap_or_else(|| "-".into()),
            opt_dur(s.duration_ms),
            s.attempts,
            if s.critical { "yes" } else { "" }
        );
    }
    if !r.fences.is_empty() {
        o.push_str("\n## Fences\n\n");
        for f in &r.fences {
            let _ = writeln!(
                o,
                "- {} in {}: {} ({})",
                md(&f.instance_id),
                md(&f.region),
                if f.fenced {
                    "fenced"
                } else {
                    "NOT fenced (outstanding)"
                },
                md(&f.detail)
            );
        }
    }
    if let Some(d) = &r.drill {
        o.push_str("\n## Drill\n\n");
        let secs = |v: Option<f64>| {
            v.map(|s| format!("{s:.1}s"))
                .unwrap_or_else(|| "not measured".into())
        };
        let _ = writeln!(o, "- time to a writable database: {}", secs(d.database_s));
        let _ = writeln!(o, "- time to serving compute: {}", secs(d.serving_s));
        let _ = writeln!(o, "- instance-minutes: {:.1}\n", d.instance_minutes);
        o.push_str("| resource | id | created | removed |\n|---|---|---|---|\n");
        for x in &d.resources {
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} |",
                md(&x.kind),
                md(&x.id),
                x.created_at.as_ref().map(at).unwrap_or_else(|| "-".into()),
                x.removed_at
                    .as_ref()
                    .map(at)
                    .unwrap_or_else(|| "NOT REMOVED".into())
            );
        }
    }
    if !r.warnings.is_empty() {
        o.push_str("\n## Warnings\n\n");
        for w in &r.warnings {
            let _ = writeln!(o, "- {}", md(w));
        }
    }
    let _ = writeln!(
        o,
        "\n## Evidence\n\n- journal: {} ({} events)\n- hash chain: {}\n- hash chain head: {}",
        r.journal.path,
        r.journal.events,
        r.journal.chain_status,
        r.journal
            .chain_head
            .as_deref()
            .unwrap_or("none (see the hash chain's status)")
    );
    o
}

const CSS: &str = "body{font-family:sans-serif;max-width:960px;margin:1.5em auto;color:#222;padding:0 1em}\
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.4em;border-bottom:1px solid #ccc}\
table{border-collapse:collapse;width:100%;font-size:.9em}td,th{border:1px solid #ccc;padding:3px 6px;text-align:left;vertical-align:top}\
.verdict{font-weight:bold;padding:1px 6px;border-radius:3px}.pass{background:#d7f0d9;color:#1b5e20}\
.fail{background:#f8d7d7;color:#7f1d1d}.not_measured,.not_applicable{background:#eee}\
dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 12px}dt{font-weight:bold}dd{margin:0}\
code{font-size:.9em}.chart{overflow-x:auto}@media print{.chart svg{max-width:100%;height:auto}body{margin:0}}";

fn verdict_html(id: &str, v: &Verdict, text: &str) -> String {
    let class = match v {
        Verdict::Pass => "pass",
        Verdict::Fail => "fail",
        Verdict::NotMeasured => "not_measured",
        Verdict::NotApplicable => "not_applicable",
    };
    format!(
        r#"<span id="{id}" class="verdict {class}" data-verdict="{class}">{}</span> {}"#,
        v.word(),
        esc(text)
    )
}

/// One HTML file: facts, verdicts, approvals, the Gantt chart, steps, fences, warnings.
pub fn html(r: &Report) -> String {
    let mut o = String::new();
    let _ = write!(
        o,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>drctl run {id}</title><style>{CSS}</style></head><body>",
        id = esc(&r.run_id)
    );
    if let Some(b) = broken_banner(r) {
        let _ = write!(
            o,
            r#"<p id="broken" class="verdict fail" style="display:block;font-size:1.2em;padding:.6em">{}</p>"#,
            esc(&b)
        );
    }
    let _ = write!(
        o,
        r#"<h1>Run {id}: {rb}{dir} <span id="outcome" class="verdict {c}">{out}</span></h1>"#,
        id = esc(&r.run_id),
        rb = esc(&r.runbook),
        dir = r
            .direction
            .as_ref()
            .map(|d| format!(r#" <span id="direction">{}</span>"#, esc(d)))
            .unwrap_or_default(),
        c = if matches!(r.outcome.as_str(), "succeeded" | "passed") && broken_banner(r).is_none() {
            "pass"
        } else {
            "fail"
        },
        // A drill's verdict in capitals, as a person scans for it.
        out = if r.drill.is_some() {
            esc(&r.outcome.to_uppercase())
        } else {
            esc(&r.outcome)
        }
    );
    o.push_str("<dl>");
    let mut fact = |k: &str, v: String| {
        let _ = write!(o, "<dt>{}</dt><dd>{v}</dd>", esc(k));
    };
    fact("outcome", esc(&r.outcome_text));
    fact("environment", esc(&r.env));
    fact("command", format!("<code>{}</code>", esc(&r.command)));
    fact(
        "started by",
        format!(r#"<span id="started-by">{}</span>"#, esc(&who(r))),
    );
    if let Some(t) = &r.trigger {
        fact(
            "triggered by",
            esc(&format!(
                "{} (outage detected {}): {}",
                t.by, t.detected_at, t.why
            )),
        );
    }
    fact("started", esc(&at(&r.started_at)));
    fact(
        if r.finished { "finished" } else { "last event" },
        esc(&format!(
            "{} ({})",
            at(&r.last_event_at),
            dur(r.duration_ms)
        )),
    );
    for s in &r.sessions {
        fact(
            &s.kind,
            esc(&format!("{} by {}@{}", at(&s.at), s.user, s.host)),
        );
    }
    if r.recovery {
        fact("RTO", verdict_html("rto", &r.rto.verdict, &rto_text(r)));
        fact("RPO", verdict_html("rpo", &r.rpo.verdict, &rpo_text(r)));
    }
    fact(
        "phase before",
        esc(r.phase_before.as_deref().unwrap_or("not observed")),
    );
    fact(
        "phase after",
        esc(r
            .phase_after
            .as_deref()
            .unwrap_or("not derived (see drctl status)")),
    );
    o.push_str("</dl>");
    o.push_str("<h2>Timeline</h2><div class=\"chart\">");
    o.push_str(&gantt(r));
    o.push_str("</div>");
    if !r.approvals.is_empty() {
        o.push_str("<h2>Approvals</h2><table id=\"approvals\"><tr><th>gate</th><th>by</th><th>via</th><th>at</th><th>waited</th><th>comment</th></tr>");
        for a in &r.approvals {
            let _ = write!(
                o,
                "<tr><td>{}</td><td class=\"approver\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&a.step),
                esc(&a.by),
                esc(&a.via),
                esc(&at(&a.at)),
                opt_dur(a.waited_ms),
                esc(a.comment.as_deref().unwrap_or(""))
            );
        }
        o.push_str("</table>");
    }
    o.push_str("<h2>Steps</h2><table id=\"steps\"><tr><th>step</th><th>kind</th><th>state</th><th>starts</th><th>took</th><th>attempts</th></tr>");
    for s in &r.steps {
        let _ = write!(
            o,
            "<tr data-step=\"{id}\"><td>{b}{id}{be}</td><td>{}</td><td>{}{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&s.kind),
            esc(&s.state),
            s.detail
                .as_deref()
                .map(|d| format!(": {}", esc(d)))
                .unwrap_or_default(),
            s.span
                .map(|sp| format!("+{}", dur(sp.start_ms)))
                .unwrap_or_else(|| "-".into()),
            opt_dur(s.duration_ms),
            s.attempts,
            id = esc(&s.id),
            b = if s.critical { "<b>" } else { "" },
            be = if s.critical { "</b>" } else { "" },
        );
    }
    o.push_str("</table>");
    if !r.fences.is_empty() {
        o.push_str("<h2>Fences</h2><ul>");
        for f in &r.fences {
            let _ = write!(
                o,
                "<li>{} in {}: {} ({})</li>",
                esc(&f.instance_id),
                esc(&f.region),
                if f.fenced {
                    "fenced"
                } else {
                    "<b>NOT fenced (outstanding)</b>"
                },
                esc(&f.detail)
            );
        }
        o.push_str("</ul>");
    }
    if let Some(d) = &r.drill {
        let secs = |v: Option<f64>| {
            v.map(|s| format!("{s:.1}s"))
                .unwrap_or_else(|| "not measured".into())
        };
        let _ = write!(
            o,
            "<h2>Drill</h2><p>time to a writable database <b id=\"drill-database\">{}</b>, to serving compute <b id=\"drill-serving\">{}</b>, instance-minutes {:.1}</p><table id=\"drill-resources\"><tr><th>resource</th><th>id</th><th>created</th><th>removed</th></tr>",
            secs(d.database_s),
            secs(d.serving_s),
            d.instance_minutes
        );
        for x in &d.resources {
            let _ = write!(
                o,
                "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
                esc(&x.kind),
                esc(&x.id),
                esc(&x.created_at.as_ref().map(at).unwrap_or_else(|| "-".into())),
                esc(&x
                    .removed_at
                    .as_ref()
                    .map(at)
                    .unwrap_or_else(|| "NOT REMOVED".into()))
            );
        }
        o.push_str("</table>");
    }
    if !r.warnings.is_empty() {
        o.push_str("<h2>Warnings</h2><ul id=\"warnings\">");
        for w in &r.warnings {
            let _ = write!(o, "<li>{}</li>", esc(w));
        }
        o.push_str("</ul>");
    }
    let _ = write!(
        o,
        "<h2>Evidence</h2><p>journal <code>{}</code>, {} events; hash chain <span id=\"chain-status\">{}</span>, head <code id=\"chain-head\">{}</code></p>",
        esc(&r.journal.path),
        r.journal.events,
        esc(&r.journal.chain_status),
        esc(r.journal.chain_head.as_deref().unwrap_or("none"))
    );
    o.push_str(
        "<p><small>drctl report, built from the run's journal alone.</small></p></body></html>\n",
    );
    o
}

/// `report --history` as Markdown.
pub fn history_markdown(h: &History) -> String {
    let mut o = format!(
        "# Runs of {}\n\nTargets: RTO {}, RPO {}\n\n| run | runbook | outcome | RTO | RPO |\n|---|---|---|---|---|\n",
        h.env,
        dur((h.rto_target_s * 1000.0) as u64),
        dur((h.rpo_target_s * 1000.0) as u64)
    );
    for r in &h.runs {
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} {} | {} {} |",
            md(&r.run_id),
            md(&r.runbook),
            r.outcome,
            r.rto_verdict.word(),
            r.rto_s
                .map(|s| dur((s * 1000.0) as u64))
                .unwrap_or_default(),
            r.rpo_verdict.word(),
            r.rpo_s.map(|s| format!("{s:.1}s")).unwrap_or_default()
        );
    }
    o.push_str(
        "\n## Step durations by kind\n\n| kind | samples | p50 | p90 |\n|---|---|---|---|\n",
    );
    for k in &h.kinds {
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} |",
            k.kind,
            k.samples,
            dur(k.p50_ms),
            dur(k.p90_ms)
        );
    }
    for (id, why) in &h.unreadable {
        let _ = writeln!(o, "\nunreadable: {id}: {why}");
    }
    o
}

/// `report --history` as one HTML file with the trend chart.
pub fn history_html(h: &History) -> String {
    let mut o = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>drctl history {e}</title><style>{CSS}</style></head><body><h1>Runs of {e}</h1><div class=\"chart\">",
        e = esc(&h.env)
    );
    let recovery: Vec<_> = h.runs.iter().filter(|r| r.recovery).cloned().collect();
    o.push_str(&trend(&recovery, h.rto_target_s, h.rpo_target_s));
    o.push_str("</div>");
    let _ = write!(
        o,
        "<p>Targets: RTO {}, RPO {}.</p><h2>Runs</h2><table id=\"runs\"><tr><th>run</th><th>runbook</th><th>started</th><th>outcome</th><th>RTO</th><th>RPO</th></tr>",
        dur((h.rto_target_s * 1000.0) as u64),
        dur((h.rpo_target_s * 1000.0) as u64)
    );
    for r in &h.runs {
        let cell = |v: &Verdict, text: String| {
            format!(
                "<td><span class=\"verdict {}\">{}</span> {}</td>",
                match v {
                    Verdict::Pass => "pass",
                    Verdict::Fail => "fail",
                    Verdict::NotMeasured => "not_measured",
                    Verdict::NotApplicable => "not_applicable",
                },
                v.word(),
                esc(&text)
            )
        };
        let _ = write!(
            o,
            "<tr data-run=\"{id}\"><td>{id}</td><td>{}</td><td>{}</td><td>{}</td>{}{}</tr>",
            esc(&r.runbook),
            esc(&at(&r.started_at)),
            esc(&r.outcome),
            cell(
                &r.rto_verdict,
                r.rto_s
                    .map(|s| dur((s * 1000.0) as u64))
                    .unwrap_or_default()
            ),
            cell(
                &r.rpo_verdict,
                r.rpo_s.map(|s| format!("{s:.1}s")).unwrap_or_default()
            ),
            id = esc(&r.run_id)
        );
    }
    o.push_str("</table><h2>Step durations by kind</h2><table id=\"kinds\"><tr><th>kind</th><th>samples</th><th>p50</th><th>p90</th></tr>");
    for k in &h.kinds {
        let _ = write!(
            o,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&k.kind),
            k.samples,
            dur(k.p50_ms),
            dur(k.p90_ms)
        );
    }
    o.push_str("</table>");
    if !h.unreadable.is_empty() {
        o.push_str("<h2>Unreadable journals</h2><ul>");
        for (id, why) in &h.unreadable {
            let _ = write!(o, "<li>{}: {}</li>", esc(id), esc(why));
        }
        o.push_str("</ul>");
    }
    o.push_str("</body></html>\n");
    o
}

/// The predicted RTO in one line, for `plan` and `failover --dry-run`.
pub fn prediction_line(p: &Prediction) -> String {
    format!(
        "predicted RTO: {} (critical path of {} steps; {} from past runs, the rest default estimates) against a target of {}: {}",
        dur(p.predicted_ms),
        p.path.len(),
        p.from_history,
        dur(p.target_ms),
        p.verdict.word()
    )
}
