//! `s3rewind report`: one HTML file for the person who says yes to a plan.
//!
//! Self-contained (styles and the chart inline, no script, nothing fetched)
//! so it can be mailed and opened anywhere. Every figure is the result of
//! a read-only query shown beside it, run as shown: whoever doubts a
//! number pastes the query into `s3rewind sql`. Figures carry
//! `data-figure` attributes so a test can read them back from the page.

use std::fmt::Write as _;
use std::path::PathBuf;

use catalog::rusqlite::types::Value;
use catalog::{user_sql, Catalog, TimelineFilter};
use model::time::{format_time, parse_time};

use crate::cli::{GlobalArgs, ReportArgs};
use crate::output::{bytes, shown, thousands};
use crate::{exit, CliError};

/// Sample keys shown with their state now and after the plan.
const SAMPLE: usize = 12;
/// Top-level prefixes listed one by one.
const PREFIXES: usize = 20;

pub async fn run(global: &GlobalArgs, args: ReportArgs) -> Result<u8, CliError> {
    let catalog = Catalog::open(&global.catalog).await?;
    let report = plan::show_plan(&catalog, &args.name)?;
    let scan = catalog.scan_record()?.ok_or(plan::PlanError::NoScan)?;
    let out = args
        .out
        .unwrap_or_else(|| PathBuf::from(format!("{}.html", file_name(&args.name))));
    if catalog::companions(&global.catalog).contains(&out) {
        return Err(CliError::Usage(format!(
            "--out {} is the catalog or one of its files; choose another path",
            out.display()
        )));
    }
    let html = render(&catalog, &report, &scan)?;
    std::fs::write(&out, html).map_err(|e| {
        CliError::Usage(format!("cannot write the report to {}: {e}", out.display()))
    })?;
    println!(
        "wrote the report of plan {} to {}",
        shown(&args.name),
        shown(&out.display().to_string())
    );
    Ok(exit::OK)
}

/// A plan name made safe as a file name.
fn file_name(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '-' | '_' | '.' => c,
            _ => '_',
        })
        .collect()
}

/// Text for HTML: escaped for a terminal first (so invisible and
/// reordering characters show as escapes here too), then for HTML.
fn h(text: &str) -> String {
    let text = shown(text);
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn cell(v: &Value) -> String {
    match v {
        Value::Integer(i) => thousands_signed(*i),
        other => user_sql::display(other.clone()),
    }
}

fn thousands_signed(i: i64) -> String {
    match i < 0 {
        true => format!("-{}", thousands(i.unsigned_abs())),
        false => thousands(i as u64),
    }
}

fn int(v: &Value) -> i64 {
    match v {
        Value::Integer(i) => *i,
        Value::Real(f) => *f as i64,
        _ => 0,
    }
}

/// One figure of the page: its query, run as written.
struct Figure {
    sql: String,
    names: Vec<String>,
    rows: Vec<Vec<Value>>,
}

fn figure(catalog: &Catalog, sql: String) -> Result<Figure, CliError> {
    let (names, rows) = user_sql::rows(catalog.conn(), &sql, "the report's query")?;
    Ok(Figure { sql, names, rows })
}

/// A table of a figure's rows, captioned, with its SQL under it;
/// `id` names the figure for `data-figure`.
fn table(page: &mut String, id: &str, caption: &str, f: &Figure) {
    let _ = write!(
        page,
        "<table data-figure=\"{id}\"><caption>{}</caption><thead><tr>",
        h(caption)
    );
    for n in &f.names {
        let _ = write!(page, "<th scope=\"col\">{}</th>", h(n));
    }
    page.push_str("</tr></thead><tbody>");
    for row in &f.rows {
        page.push_str("<tr>");
        for (i, v) in row.iter().enumerate() {
            let numeric = matches!(v, Value::Integer(_) | Value::Real(_));
            let _ = write!(
                page,
                "<td data-column=\"{}\"{}>{}</td>",
                h(&f.names[i]),
                if numeric { " class=\"n\"" } else { "" },
                h(&cell(v))
            );
        }
        page.push_str("</tr>");
    }
    if f.rows.is_empty() {
        let _ = write!(
            page,
            "<tr><td colspan=\"{}\">none</td></tr>",
            f.names.len().max(1)
        );
    }
    page.push_str("</tbody></table>");
    sql(page, &f.sql);
}

fn sql(page: &mut String, sql: &str) {
    let _ = write!(
        page,
        "<details><summary>SQL for this figure</summary><pre><code>s3rewind sql \"{}\"</code></pre></details>",
        h(sql)
    );
}

fn render(
    catalog: &Catalog,
    report: &plan::PlanReport,
    scan: &catalog::ScanRecord,
) -> Result<String, CliError> {
    let info = &report.info;
    let p = user_sql::quoted(&info.name);
    let params: serde_json::Value = serde_json::from_str(&info.parameters).unwrap_or_default();
    let to = params["to"].as_str().and_then(|t| parse_time(t).ok());
    let where_expr = params["where"].as_str();

    let by_action = figure(
        catalog,
        format!("SELECT action, count(*) AS actions, count(DISTINCT key) AS keys, coalesce(sum(size), 0) AS bytes FROM plan_review WHERE plan = {p} GROUP BY action ORDER BY action"),
    )?;
    let by_prefix = figure(
        catalog,
        format!("SELECT CASE WHEN instr(key, '/') > 0 THEN substr(key, 1, instr(key, '/')) ELSE '(no /)' END AS prefix, count(*) AS actions, count(DISTINCT key) AS keys FROM plan_review WHERE plan = {p} AND action <> 'already' GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT {PREFIXES}"),
    )?;
    let by_status = figure(
        catalog,
        format!("SELECT status, count(*) AS actions FROM plan_review WHERE plan = {p} GROUP BY status ORDER BY status"),
    )?;
    let failures = figure(
        catalog,
        format!("SELECT CASE WHEN instr(error, ':') > 0 THEN substr(error, 1, instr(error, ':') - 1) ELSE coalesce(error, '?') END AS error_code, count(*) AS actions FROM plan_review WHERE plan = {p} AND status = 'failed' GROUP BY 1 ORDER BY 2 DESC"),
    )?;
    let archived = figure(
        catalog,
        format!("SELECT storage_class, count(*) AS copies FROM plan_review WHERE plan = {p} AND action = 'copy_version' AND storage_class IN ('GLACIER', 'DEEP_ARCHIVE') GROUP BY 1"),
    )?;
    let sample = figure(
        catalog,
        format!("SELECT a.key AS key, (SELECT replace(h.kind, '_', ' ') || ' of ' || h.last_modified FROM key_history h WHERE h.key_id = a.key_id AND h.seq = 0) AS now, a.kind AS action, a.version_id AS version_id, (SELECT h.last_modified FROM key_history h WHERE h.key_id = a.key_id AND h.seq = a.seq) AS version_last_modified FROM actions a JOIN plans p ON p.id = a.plan_id WHERE p.name = {p} ORDER BY a.id LIMIT {SAMPLE}"),
    )?;

    let count_of = |kind: &str| -> (i64, i64, i64) {
        by_action
            .rows
            .iter()
            .find(|r| matches!(&r[0], Value::Text(t) if t == kind))
            .map_or((0, 0, 0), |r| (int(&r[1]), int(&r[2]), int(&r[3])))
    };
    // Keys already as at T are listed by plan_review but need no request.
    let total: i64 = by_action
        .rows
        .iter()
        .filter(|r| !matches!(&r[0], Value::Text(t) if t == "already"))
        .map(|r| int(&r[1]))
        .sum();
    let (_, already_keys, _) = count_of("already");

    let mut page = String::with_capacity(64 * 1024);
    let title = format!("s3rewind plan {}", info.name);
    let _ = write!(
        page,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\"><title>{}</title><style>{STYLE}</style></head><body><main>",
        h(&title)
    );
    let into = plan::destination_of(info);
    let _ = write!(
        page,
        "<h1>Plan <q>{}</q> for {}{}</h1>",
        h(&info.name),
        h(&scan.location.to_string()),
        into.as_ref()
            .map(|d| format!(", into {}", h(&d.to_string())))
            .unwrap_or_default()
    );
    let _ = write!(
        page,
        "<p class=\"meta\">Made {} by rule <code>{}</code> from the scan finished {}. Report written {}.</p>",
        h(&info.created_at),
        h(&info.rule),
        h(scan.finished_at.as_deref().unwrap_or("(unfinished)")),
        h(&format_time(model::time::now()))
    );

    // In plain words.
    page.push_str("<section><h2>What it does</h2>");
    let (copies, copy_keys, copy_bytes) = count_of("copy_version");
    let (unmarks, unmark_keys, _) = count_of("delete_marker");
    let (marks, mark_keys, _) = count_of("add_delete_marker");
    let (deletes, _, delete_bytes) = count_of("delete_version");
    let scope = match where_expr {
        Some(w) => format!(" (only keys where <code>{}</code>)", h(w)),
        None => String::new(),
    };
    let mut words = match (info.rule.as_str(), to) {
        ("restore", Some(t)) => match &into {
            None => format!(
                "<p>It puts the keys of {}{scope} back the way they were at <strong data-figure=\"to\">{}</strong>.</p><ul>",
                h(&scan.location.to_string()),
                h(&format_time(t))
            ),
            Some(d) => format!(
                "<p>It copies the keys of {}{scope} as they were at <strong data-figure=\"to\">{}</strong> into <strong>{}</strong>, leaving the scanned keys as they are (a key at <code>{}</code> lands at <code>{}</code>).</p><ul>",
                h(&scan.location.to_string()),
                h(&format_time(t)),
                h(&d.to_string()),
                h(&format!("{}…", scan.location.base_prefix)),
                h(&format!("{}…", d.key_for(&scan.location.base_prefix, &scan.location.base_prefix)))
            ),
        },
        ("undelete", _) => format!("<p>It brings back deleted keys{scope}.</p><ul>"),
        ("expire", _) => format!("<p>It removes old noncurrent versions{scope}, as a lifecycle rule would.</p><ul>"),
        _ => format!("<p>It runs the actions a query chose{scope}.</p><ul>"),
    };
    if copies > 0 {
        let _ = write!(words, "<li><span data-figure=\"copy-keys\">{}</span> keys get an earlier version copied back on top ({} copied); the versions now on top stay in the bucket's history.</li>", thousands(copy_keys as u64), h(&bytes(copy_bytes as u64)));
    }
    if unmarks > 0 {
        let _ = write!(words, "<li><span data-figure=\"undelete-keys\">{}</span> deleted keys come back: {} delete markers are removed.</li>", thousands(unmark_keys as u64), thousands(unmarks as u64));
    }
    if marks > 0 {
        let _ = write!(words, "<li><span data-figure=\"hide-keys\">{}</span> keys that did not exist then are deleted (a delete marker on top; their data stays in the history).</li>", thousands(mark_keys as u64));
    }
    if deletes > 0 {
        let _ = write!(words, "<li class=\"warn\"><strong><span data-figure=\"deleted-versions\">{}</span> versions ({}) are permanently deleted. This cannot be undone.</strong></li>", thousands(deletes as u64), h(&bytes(delete_bytes as u64)));
    } else if total > 0 {
        words.push_str(
            "<li>Nothing is permanently deleted: every version stays in the bucket's history.</li>",
        );
    }
    if already_keys > 0 {
        let _ = write!(words, "<li><span data-figure=\"already-keys\">{}</span> keys are already as at T: their newest version holds the content to restore (a copy an earlier apply made, or the same size and single-part ETag), so nothing is copied onto them (<code>plan_review</code> lists them as action <code>already</code>).</li>", thousands(already_keys as u64));
    }
    if total == 0 {
        words.push_str("<li>Nothing: the keys are already as the rule wants them.</li>");
    }
    words.push_str("</ul>");
    page.push_str(&words);
    let e = &report.estimate;
    let _ = write!(
        page,
        "<p>In all <strong data-figure=\"actions\">{}</strong> actions on <strong data-figure=\"keys\">{}</strong> keys: {} COPY/PUT requests and {} DELETE requests, about <strong data-figure=\"dollars\">${:.4}</strong> at S3 list prices (request charges only).</p>",
        thousands(total as u64),
        thousands(report.keys),
        thousands(e.write_requests),
        thousands(e.delete_requests),
        e.dollars
    );
    page.push_str("</section>");

    // Hazards the catalog reveals.
    page.push_str("<section><h2>Before saying yes</h2><ul>");
    if let Some(words) = super::plan::stale_words(&report.stale) {
        let _ = write!(
            page,
            "<li class=\"warn\" data-figure=\"stale\"><strong>Stale:</strong> the plan was made from an older catalog: {}. Its actions were computed from what those keys held before.</li>",
            h(&words)
        );
    }
    if scan.versioning != "Enabled" {
        let _ = write!(page, "<li class=\"warn\">Versioning was <strong>{}</strong> when the bucket was scanned: copies and delete markers would overwrite data instead of stacking new versions. Enable versioning first.</li>", h(&scan.versioning));
    }
    let archived_copies: i64 = archived.rows.iter().map(|r| int(&r[1])).sum();
    if archived_copies > 0 {
        let _ = write!(page, "<li class=\"warn\"><span data-figure=\"archived\">{}</span> copies come from archived versions (Glacier Flexible Retrieval, Deep Archive): S3 copies them only once restored, so apply asks for the restores first, marks them <em>restoring</em>, and a later apply copies them (hours later).</li>", thousands(archived_copies as u64));
    }
    let _ = write!(page, "<li>The bucket's own configuration (lifecycle rules that expire old versions, Object Lock, KMS keys, replication, versioning now) is not in the catalog: <code>s3rewind check --plan {}</code> reads it, and apply runs the same checks and refuses a plan they block.</li>", h(&report.info.name));
    if deletes > 0 {
        page.push_str("<li class=\"warn\">The plan deletes data for good (see above).</li>");
    }
    if let Some(gaps) = super::report_gaps(catalog)? {
        let _ = write!(
            page,
            "<li class=\"warn\" data-figure=\"report-fields\">{}:<ul>",
            h(&gaps.summary)
        );
        for lost in &gaps.details {
            let _ = write!(page, "<li>{}</li>", h(lost));
        }
        page.push_str("</ul></li>");
    }
    let _ = write!(page, "<li>The plan is made from the catalog, not from the bucket as it is now: anything written after the scan ({}) is not in it. Scan again shortly before applying if writers are still busy.</li>", h(scan.finished_at.as_deref().unwrap_or("unfinished")));
    page.push_str("</ul>");
    if archived_copies > 0 {
        table(
            &mut page,
            "archived-table",
            "Copies from archived versions",
            &archived,
        );
    }
    page.push_str("</section>");

    // Counts.
    page.push_str("<section><h2>Actions</h2>");
    table(
        &mut page,
        "by-action",
        "Actions by kind: how many, on how many keys, bytes",
        &by_action,
    );
    table(
        &mut page,
        "by-prefix",
        &format!("Actions by top-level prefix (the {PREFIXES} with most)"),
        &by_prefix,
    );
    page.push_str("</section>");

    // When.
    page.push_str("<section><h2>When it went wrong</h2>");
    chart(&mut page, catalog, to)?;
    page.push_str("</section>");

    // Sample.
    page.push_str("<section><h2>Some keys, now and after</h2>");
    // A restore --into lands elsewhere: each row says where.
    let (elsewhere, lands_column) = match &into {
        Some(d) => (
            format!(", which lands in {} (not on the key)", h(&d.to_string())),
            "<th scope=\"col\">lands at</th>",
        ),
        None => (String::new(), ""),
    };
    let _ = write!(page, "<table data-figure=\"sample\"><caption>The plan's first {SAMPLE} actions: the key's newest entry now, and what it is after the plan{elsewhere}</caption><thead><tr><th scope=\"col\">key</th><th scope=\"col\">now</th><th scope=\"col\">after the plan</th>{lands_column}</tr></thead><tbody>");
    for row in &sample.rows {
        let text = |i: usize| user_sql::display(row[i].clone());
        let (version, when) = (text(3), text(4));
        let after = match text(2).as_str() {
            "copy_version" if into.is_some() => {
                format!("the version of {when} copied to where it lands")
            }
            "copy_version" => format!("the version of {when} on top again (copied)"),
            "delete_marker" => format!("the delete marker of {when} removed"),
            "add_delete_marker" => "deleted (a delete marker on top)".to_owned(),
            "delete_version" => format!("version {version} of {when} deleted for good"),
            other => other.to_owned(),
        };
        let lands = match report.lands_at(&text(0)) {
            Some(at) => format!("<td data-column=\"lands_at\"><code>{}</code></td>", h(&at)),
            None => String::new(),
        };
        let _ = write!(
            page,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td>{lands}</tr>",
            h(&text(0)),
            h(&text(1)),
            h(&after)
        );
    }
    page.push_str("</tbody></table>");
    sql(&mut page, &sample.sql);
    page.push_str("</section>");

    // Progress.
    page.push_str("<section><h2>Progress</h2>");
    let s = &info.status;
    let _ = write!(
        page,
        "<p>{}: <span data-figure=\"done\">{}</span> done, <span data-figure=\"failed\">{}</span> failed, {} skipped and <span data-figure=\"drifted\">{}</span> drifted (the key changed after the scan), <span data-figure=\"pending\">{}</span> not yet applied.</p>",
        h(super::plan::state(info)),
        thousands(s.done),
        thousands(s.failed),
        thousands(s.skipped),
        thousands(s.drifted),
        thousands(s.pending + s.in_flight + s.restoring)
    );
    if let Some(undo) = &info.undone_by {
        let _ = write!(
            page,
            "<p class=\"warn\">Undone by plan <code>{}</code>: apply refuses this plan again unless <code>--reapply</code> is given.</p>",
            h(undo)
        );
    }
    table(&mut page, "by-status", "Actions by status", &by_status);
    if s.failed > 0 {
        table(
            &mut page,
            "failures",
            "Failed actions by S3 error code",
            &failures,
        );
    }
    page.push_str("</section>");
    page.push_str("<footer><p>Made by <code>s3rewind report</code>. Every figure comes from the catalog; the SQL beside it reproduces it with <code>s3rewind sql</code>.</p></footer></main></body></html>\n");
    Ok(page)
}

/// The timeline as an inline SVG: stacked bars per slot, the plan's time
/// marked, and the same numbers as a table for those who cannot see it.
fn chart(page: &mut String, catalog: &Catalog, to: Option<i64>) -> Result<(), CliError> {
    let Some(t) = plan::timeline(catalog, &TimelineFilter::default(), None)? else {
        page.push_str("<p>The catalog holds no entries.</p>");
        return Ok(());
    };
    let (w, hgt, left, bottom) = (760.0, 240.0, 48.0, 36.0);
    let n = t.slots.len().max(1) as f64;
    let slot_w = (w - left) / n;
    let peak = t.slots.iter().map(|s| s.total()).max().unwrap_or(1).max(1) as f64;
    let y = |v: f64| (hgt - bottom) * (1.0 - v / peak);
    let first = t.slots.first().map_or(0, |s| s.start);
    let x_of = |time: i64| left + (time - first) as f64 / t.width as f64 * slot_w;
    let _ = write!(
        page,
        "<figure data-figure=\"timeline\"><svg role=\"img\" aria-labelledby=\"chart-title\" viewBox=\"0 0 {w} {hgt}\" width=\"100%\"><title id=\"chart-title\">Entries written per {}: writes, overwrites and deletes{}</title>",
        super::timeline::slot_name(t.width),
        to.map(|t| format!("; the plan's time {} marked", format_time(t)))
            .unwrap_or_default()
    );
    let _ = write!(
        page,
        "<line x1=\"{left}\" y1=\"{}\" x2=\"{w}\" y2=\"{}\" class=\"axis\"/>",
        hgt - bottom,
        hgt - bottom
    );
    let _ = write!(
        page,
        "<text x=\"{}\" y=\"12\" class=\"label\" text-anchor=\"end\">{}</text>",
        left - 4.0,
        thousands(peak as u64)
    );
    for (i, s) in t.slots.iter().enumerate() {
        let x = left + i as f64 * slot_w;
        let mut base = 0.0;
        for (value, class) in [
            (s.writes, "write"),
            (s.overwrites, "overwrite"),
            (s.deletes, "delete"),
        ] {
            if value == 0 {
                continue;
            }
            let top = base + value as f64;
            let _ = write!(
                page,
                "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" class=\"{class}\"/>",
                y(top),
                (slot_w - 1.0).max(0.5),
                y(base) - y(top)
            );
            base = top;
        }
    }
    let last = t.slots.last().map_or(first, |s| s.start);
    for (time, anchor) in [(first, "start"), (last, "end")] {
        let x = if anchor == "start" { left } else { w };
        let _ = write!(
            page,
            "<text x=\"{x}\" y=\"{}\" class=\"label\" text-anchor=\"{anchor}\">{}</text>",
            hgt - bottom + 16.0,
            format_time(time)
        );
    }
    if let Some(t_mark) = to {
        // The state at T includes what was written during second T.
        let x = x_of(t_mark + 1).clamp(left, w);
        let _ = write!(page, "<line x1=\"{x:.1}\" y1=\"0\" x2=\"{x:.1}\" y2=\"{}\" class=\"mark\"/><text x=\"{:.1}\" y=\"{}\" class=\"label\" text-anchor=\"middle\">T = {}</text>", hgt - bottom, x, hgt - 4.0, format_time(t_mark));
    }
    page.push_str("</svg><figcaption>Entries written per slot of ");
    let _ = write!(page, "{}. Legend: <span class=\"key write\">write</span> a new key or one written again after a delete; <span class=\"key overwrite\">overwrite</span> a version on top of another; <span class=\"key delete\">delete</span> a delete marker.", super::timeline::slot_name(t.width));
    if let Some(s) = t.suggested {
        let _ = write!(page, " The first burst begins at {}; the last quiet second before it is <strong data-figure=\"suggested\">{}</strong>.", format_time(s + 1), format_time(s));
    }
    page.push_str("</figcaption></figure>");
    let _ = write!(page, "<details><summary>The chart's numbers</summary><table data-figure=\"timeline-table\"><caption>Entries per slot of {}</caption><thead><tr><th scope=\"col\">slot start</th><th scope=\"col\">writes</th><th scope=\"col\">overwrites</th><th scope=\"col\">deletes</th></tr></thead><tbody>", super::timeline::slot_name(t.width));
    // Every slot, the empty ones too: a quiet stretch before the burst is
    // the evidence for the time chosen.
    for s in &t.slots {
        let _ = write!(
            page,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            format_time(s.start),
            thousands(s.writes),
            thousands(s.overwrites),
            thousands(s.deletes)
        );
    }
    page.push_str("</tbody></table></details>");
    sql(
        page,
        &catalog::TIMELINE_SQL
            .replace("?1", &first.to_string())
            .replace("?2", &last.saturating_add(t.width).to_string())
            .replace("?3", &t.width.to_string())
            .replace("({where})", "1"),
    );
    Ok(())
}

const STYLE: &str = "body{font:16px/1.5 system-ui,sans-serif;color:#1a1a1a;background:#fff;margin:0}\
main{max-width:860px;margin:0 auto;padding:1.5rem}\
h1{font-size:1.6rem;margin:.2rem 0}h2{font-size:1.25rem;margin-top:2rem;border-bottom:2px solid #1a1a1a}\
.meta{color:#444}table{border-collapse:collapse;margin:1rem 0;width:100%}\
caption{text-align:left;font-weight:600;padding:.3rem 0}\
th,td{border:1px solid #999;padding:.25rem .5rem;text-align:left;vertical-align:top}\
td.n{text-align:right;font-variant-numeric:tabular-nums}th{background:#eee}\
code{font-family:ui-monospace,monospace;overflow-wrap:anywhere}pre{white-space:pre-wrap;background:#f4f4f4;padding:.5rem}\
.warn{font-weight:600}.warn::before{content:'⚠ '}\
svg .write{fill:#4a7ab5}svg .overwrite{fill:#e08a1e}svg .delete{fill:#b8332d}\
svg .axis{stroke:#1a1a1a}svg .mark{stroke:#1a1a1a;stroke-width:2;stroke-dasharray:4 3}\
svg .label{font:12px system-ui,sans-serif;fill:#1a1a1a}\
.key{padding:0 .3rem;border:1px solid #1a1a1a;color:#fff}.key.write{background:#4a7ab5}.key.overwrite{background:#e08a1e;color:#000}.key.delete{background:#b8332d}\
figure{margin:1rem 0}table[data-figure=sample] td:first-child{min-width:14rem}footer{margin-top:2rem;color:#444;font-size:.9rem}";
