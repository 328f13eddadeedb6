//! What the CLI prints: numbers, prompts, progress, and text from strangers
//! made safe for a terminal.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::CliError;

/// 1234567 → "1,234,567".
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

pub fn rate(count: u64, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64();
    if secs <= 0.0 {
        return "-".into();
    }
    thousands((count as f64 / secs).round() as u64)
}

/// Text that came from outside — keys, version ids, values from the catalog —
/// as it may be shown to a person: control characters (`\n`, `\x1b`, …),
/// line and paragraph separators, and the invisible characters that
/// reorder or hide text (bidirectional overrides, zero-width spaces) are
/// written as escapes, and so is `\` itself, so that what is shown is
/// unambiguous and whoever can name an object cannot rewrite the screen an
/// operator approves. JSON and CSV output keep the exact bytes instead.
pub fn shown(text: &str) -> Cow<'_, str> {
    escaped(text, true)
}

fn escaped(text: &str, backslash: bool) -> Cow<'_, str> {
    let needs_escape = |c: char| needs_escape(c) && (backslash || c != '\\');
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            _ if !needs_escape(c) => out.push(c),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x80 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
        }
    }
    Cow::Owned(out)
}

fn needs_escape(c: char) -> bool {
    c == '\\'
        || c.is_control()
        || matches!(c, '\u{61c}' | '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2060}'..='\u{2069}' | '\u{feff}')
}

/// A message of ours for the terminal (an error, say), whose line breaks
/// are kept and whose quoted keys are escaped already (`{:?}`), with any
/// other control character escaped as in [`shown`].
pub fn shown_lines(text: &str) -> String {
    text.split('\n')
        .map(|line| escaped(line, false))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Prints rows as aligned columns under a header, every cell [`shown`].
pub fn print_table(headers: &[String], rows: &[Vec<String>]) {
    let headers: Vec<String> = headers.iter().map(|h| shown(h).into_owned()).collect();
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|c| shown(c).into_owned()).collect())
        .collect();
    let (headers, rows) = (&headers, &rows);
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}  "));
            }
        }
        println!("{}", out.trim_end());
    };
    line(headers);
    line(&widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>());
    for row in rows {
        line(row);
    }
}

/// Asks a yes/no question on the terminal. `--yes` answers it; with no
/// terminal to ask, refuses rather than guessing.
pub fn confirm(question: &str, yes: bool) -> Result<bool, CliError> {
    if yes {
        return Ok(true);
    }
    if !std::io::stdin().is_terminal() {
        return Err(CliError::Usage(format!(
            "{question}\n  refusing: there is no terminal to confirm on; pass --yes to proceed"
        )));
    }
    eprint!("{question} [y/N] ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes"))
}

/// The progress bar on the terminal, while one is shown.
static BAR: std::sync::Mutex<Option<ProgressBar>> = std::sync::Mutex::new(None);

/// Runs `write` (a log line) with the progress bar, if one is shown,
/// cleared from the screen, and draws it again after.
pub fn between_redraws(write: impl FnOnce()) {
    let bar = BAR.lock().ok().and_then(|b| b.clone());
    match bar {
        Some(bar) => bar.suspend(write),
        None => write(),
    }
}

/// One progress reading.
pub struct Reading {
    pub done: u64,
    pub total: u64,
    pub message: String,
}

/// Shows progress while long work runs: a bar on a terminal, a plain line
/// every few seconds otherwise (logs, CI).
pub struct Progress {
    /// Wakes the display at once when the work is over, rather than at its
    /// next refresh (a short command would otherwise wait up to 200 ms).
    stop: Arc<tokio::sync::Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl Progress {
    pub fn start(label: &'static str, read: impl Fn() -> Reading + Send + 'static) -> Progress {
        let stop = Arc::new(tokio::sync::Notify::new());
        let stopped = stop.clone();
        // Waits `period`; false once the work is over.
        let wait = move |period: u64| {
            let stopped = stopped.clone();
            async move {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(period)) => true,
                    _ = stopped.notified() => false,
                }
            }
        };
        let task = tokio::spawn(async move {
            let started = Instant::now();
            if std::io::stderr().is_terminal() {
                let bar = ProgressBar::new(0);
                bar.set_style(
                    ProgressStyle::with_template(
                        "{prefix} [{elapsed_precise}] {bar:30} {pos}/{len} {msg}",
                    )
                    .expect("valid template"),
                );
                bar.set_prefix(label);
                if let Ok(mut shown) = BAR.lock() {
                    *shown = Some(bar.clone());
                }
                loop {
                    let r = read();
                    bar.set_length(r.total);
                    bar.set_position(r.done);
                    bar.set_message(r.message);
                    if !wait(200).await {
                        break;
                    }
                }
                if let Ok(mut shown) = BAR.lock() {
                    *shown = None;
                }
                bar.finish_and_clear();
            } else {
                let every = std::env::var("S3REWIND_PROGRESS_SECS")
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(10.0);
                let mut next = Duration::from_secs_f64(every);
                while wait(100).await {
                    if started.elapsed() >= next {
                        let r = read();
                        eprintln!(
                            "{label} [{:>4}s] {}/{} {}",
                            started.elapsed().as_secs(),
                            r.done,
                            r.total,
                            r.message
                        );
                        next += Duration::from_secs_f64(every);
                    }
                }
            }
        });
        Progress { stop, task }
    }

    pub async fn finish(self) {
        self.stop.notify_one();
        let _ = self.task.await;
    }
}

/// `s` as one POSIX shell word: in single quotes, each `'` written `'\''`;
/// control characters (which a terminal would act on) as `$'\xNN'`.
pub fn shell_quoted(s: &str) -> String {
    let mut out = String::from("'");
    for c in s.chars() {
        match c {
            '\'' => out.push_str("'\\''"),
            c if c.is_control() => {
                let mut buf = [0u8; 4];
                out.push('\'');
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!("$'\\x{b:02x}'"));
                }
                out.push('\'');
            }
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// `s` as one POSIX shell word, bare when it is made of characters no
/// shell treats specially (`s3://b/img/`, `incident-2`), else quoted as
/// [`shell_quoted`] does.
pub fn shell_word(s: &str) -> Cow<'_, str> {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_-./:@%+=,".contains(c);
    match !s.is_empty() && s.chars().all(plain) {
        true => Cow::Borrowed(s),
        false => Cow::Owned(shell_quoted(s)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_from_strangers_cannot_reach_the_terminal_raw() {
        assert_eq!(shown("hotels/0001.jpg"), "hotels/0001.jpg");
        assert_eq!(shown("é ü 日本"), "é ü 日本");
        assert_eq!(shown("a\nb\r\t"), "a\\nb\\r\\t");
        assert_eq!(shown("\x1b[2J\x07"), "\\x1b[2J\\x07");
        assert_eq!(shown("\u{9b}31m"), "\\u{9b}31m");
        assert_eq!(shown("abc\u{202e}gpj.exe"), "abc\\u{202e}gpj.exe");
        assert_eq!(shown("a\\nb"), "a\\\\nb");
        assert_eq!(
            shown_lines("one \x1b \"a\\nb\"\ntwo"),
            "one \\x1b \"a\\nb\"\ntwo"
        );
    }

    #[test]
    fn formats_numbers_for_people() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
    }
}
