//! `s3rewind timeline`.

use std::io::IsTerminal;

use catalog::{Catalog, Slot, TimelineFilter};
use model::time::format_time;

use crate::cli::{GlobalArgs, TimelineArgs};
use crate::output::thousands;
use crate::{exit, CliError};

pub async fn run(global: &GlobalArgs, args: TimelineArgs) -> Result<u8, CliError> {
    let (since, until) = super::time_window(args.since.as_deref(), args.until.as_deref())?;
    let catalog = Catalog::open(&global.catalog).await?;
    if catalog.scan_record()?.is_none() {
        return Err(plan::PlanError::NoScan.into());
    }
    let filter = TimelineFilter {
        where_expr: args.where_expr.as_deref(),
        since,
        until,
    };
    let timeline = plan::timeline(&catalog, &filter, args.by.map(|b| b.seconds()))?;
    if args.json.json {
        println!(
            "{:#}",
            as_json(timeline.as_ref(), args.where_expr.as_deref())
        );
        return Ok(exit::OK);
    }
    let Some(t) = timeline else {
        println!("no entries were written in that window (or match --where)");
        return Ok(exit::OK);
    };
    let terminal = std::io::stdout().is_terminal();
    let columns = terminal
        .then(terminal_width)
        .flatten()
        .unwrap_or(100)
        .clamp(60, 240);
    print!(
        "{}",
        draw(&t, columns, terminal, args.where_expr.as_deref())
    );
    Ok(exit::OK)
}

/// The chart: a line per slot, its bar split into writes (`+`), overwrites
/// (`~`) and deletes (`x`), the slot's counts, and `BURST` where it is one.
/// On a terminal, bars are blocks and bursts bold.
/// `where_expr`: the `--where` the timeline was drawn for, which the
/// suggested restore must carry, or pasted as it is it would rewind every
/// key.
pub fn draw(
    t: &plan::Timeline,
    columns: usize,
    terminal: bool,
    where_expr: Option<&str>,
) -> String {
    use std::fmt::Write as _;
    let label_width = if t.width % 86_400 == 0 {
        10
    } else if t.width % 60 == 0 {
        16
    } else {
        19
    };
    let peak = t.slots.iter().map(Slot::total).max().unwrap_or(0).max(1);
    let counts_width = 30;
    let bar_width = columns
        .saturating_sub(label_width + counts_width + 4)
        .max(10);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} slots of {}; + write  ~ overwrite  x delete; one column ≈ {} entries",
        t.slots.len(),
        slot_name(t.width),
        thousands(peak.div_ceil(bar_width as u64))
    );
    for (i, slot) in t.slots.iter().enumerate() {
        let label: String = format_time(slot.start).chars().take(label_width).collect();
        let cells = |n: u64| ((n as f64 / peak as f64) * bar_width as f64).round() as usize;
        let (w, o, d) = (
            cells(slot.writes),
            cells(slot.overwrites),
            cells(slot.deletes),
        );
        let (sw, so, sd) = match terminal {
            true => ("▒", "█", "░"),
            false => ("+", "~", "x"),
        };
        let bar = format!("{}{}{}", sw.repeat(w), so.repeat(o), sd.repeat(d));
        let pad = bar_width.saturating_sub(w + o + d);
        let burst = t.bursts.contains(&i);
        let counts = format!(
            "{:>7} {:>7} {:>7}",
            thousands(slot.writes),
            thousands(slot.overwrites),
            thousands(slot.deletes)
        );
        let mark = match (burst, terminal) {
            (true, true) => " \x1b[1mBURST\x1b[0m",
            (true, false) => " BURST",
            _ => "",
        };
        let _ = writeln!(
            out,
            "{label:<label_width$} {bar}{} {counts}{mark}",
            " ".repeat(pad)
        );
    }
    let _ = writeln!(
        out,
        "usual: {} entries a slot; a burst is over {}",
        thousands(t.usual),
        thousands(t.threshold)
    );
    match t.suggested {
        Some(quiet) => {
            let _ = writeln!(
                out,
                "the first burst begins at {}; the last quiet second before it is {}",
                format_time(quiet + 1),
                format_time(quiet)
            );
            let _ = writeln!(out, "  {}", restore_command(quiet, where_expr));
        }
        None => {
            let _ = writeln!(
                out,
                "no burst: nothing stands out from the usual rate (try --by, --since/--until or --where)"
            );
        }
    }
    out
}

/// The restore to paste: to the last quiet second, over the same keys.
fn restore_command(quiet: i64, where_expr: Option<&str>) -> String {
    let mut command = format!("s3rewind plan restore --to {}", format_time(quiet));
    if let Some(w) = where_expr {
        command.push_str(" --where ");
        command.push_str(&crate::output::shell_quoted(w));
    }
    command
}

/// A slot's size in words: "a minute", "15 minutes".
pub fn slot_name(width: i64) -> String {
    match width {
        1 => "a second".into(),
        60 => "a minute".into(),
        3600 => "an hour".into(),
        86_400 => "a day".into(),
        w if w % 86_400 == 0 => format!("{} days", w / 86_400),
        w if w % 3600 == 0 => format!("{} hours", w / 3600),
        w if w % 60 == 0 => format!("{} minutes", w / 60),
        w => format!("{w} seconds"),
    }
}

/// `timeline --json` (fields: docs/json.md).
fn as_json(t: Option<&plan::Timeline>, where_expr: Option<&str>) -> serde_json::Value {
    let Some(t) = t else {
        return serde_json::json!({
            "slot_seconds": null,
            "usual": null,
            "burst_threshold": null,
            "slots": [],
            "bursts": [],
            "suggested_to": null,
            "suggested_command": null,
        });
    };
    let slots: Vec<_> = t
        .slots
        .iter()
        .map(|s| {
            serde_json::json!({
                "start": format_time(s.start),
                "start_unix": s.start,
                "writes": s.writes,
                "overwrites": s.overwrites,
                "deletes": s.deletes,
            })
        })
        .collect();
    let bursts: Vec<_> = t
        .bursts
        .iter()
        .map(|&i| format_time(t.slots[i].start))
        .collect();
    serde_json::json!({
        "slot_seconds": t.width,
        "usual": t.usual,
        "burst_threshold": t.threshold,
        "slots": slots,
        "bursts": bursts,
        "suggested_to": t.suggested.map(format_time),
        "suggested_command": t.suggested.map(|q| restore_command(q, where_expr)),
    })
}

/// Columns of the terminal on standard output, if it says.
fn terminal_width() -> Option<usize> {
    console::Term::stdout()
        .size_checked()
        .map(|(_, columns)| usize::from(columns))
}
