//! Progress of the long commands (`seed`, `purge`, `backup`) on standard error, where it does not mix with
//! their results: a bar (`indicatif`) when standard error is a terminal; otherwise plain lines, at the start,
//! at most every few seconds and at the end, which read well in a log or a cron mail.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Time between two plain lines.
const PLAIN_EVERY: Duration = Duration::from_secs(5);

pub struct Progress {
    bar: Option<ProgressBar>,
    /// The command, at the start of each plain line.
    what: &'static str,
    unit: &'static str,
    /// Unknown for a purge, which learns how much there is as it goes.
    total: Option<u64>,
    done: u64,
    started: Instant,
    last_line: Instant,
}

impl Progress {
    /// Progress of `what` counted in `unit`, towards `total` if it is known.
    pub fn new(what: &'static str, unit: &'static str, total: Option<u64>) -> Progress {
        let now = Instant::now();
        let bar = std::io::stderr()
            .is_terminal()
            .then(|| bar(what, unit, total));
        let p = Progress {
            bar,
            what,
            unit,
            total,
            done: 0,
            started: now,
            last_line: now,
        };
        if p.bar.is_none() {
            p.line("started");
        }
        p
    }

    /// `done` units so far (and the total, for work that learns it as it goes).
    pub fn set(&mut self, done: u64, total: Option<u64>) {
        self.done = done;
        let learnt = self.total.is_none() && total.is_some();
        if total.is_some() {
            self.total = total;
        }
        match &self.bar {
            Some(bar) => {
                if let Some(t) = self.total {
                    bar.set_length(t);
                }
                if learnt {
                    // From a spinner to a bar.
                    bar.disable_steady_tick();
                    style(bar, self.unit, true);
                }
                bar.set_position(done);
            }
            None if self.last_line.elapsed() >= PLAIN_EVERY => {
                self.last_line = Instant::now();
                self.line("");
            }
            None => {}
        }
    }

    /// A step worth telling whatever the time, e.g. "rewriting the database file".
    pub fn note(&mut self, message: &str) {
        match &self.bar {
            Some(bar) => bar.set_message(message.to_string()),
            None => {
                self.last_line = Instant::now();
                self.line(message);
            }
        }
    }

    /// The work is done: the bar is cleared, or a last plain line says how long it took.
    pub fn finish(self) {
        match self.bar {
            Some(bar) => bar.finish_and_clear(),
            None => self.line(&format!(
                "done in {:.1} s",
                self.started.elapsed().as_secs_f64()
            )),
        }
    }

    fn line(&self, message: &str) {
        let counted = match self.total {
            Some(t) if t > 0 => format!(
                "{}/{t} {} ({}%)",
                self.done,
                self.unit,
                self.done.saturating_mul(100) / t
            ),
            _ => format!("{} {}", self.done, self.unit),
        };
        let sep = if message.is_empty() { "" } else { ", " };
        // Progress is a courtesy: a closed standard error must not fail the command.
        let _ = writeln!(std::io::stderr(), "{}: {counted}{sep}{message}", self.what);
    }
}

fn bar(what: &'static str, unit: &'static str, total: Option<u64>) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
    style(&bar, unit, total.is_some());
    bar.set_prefix(what);
    if total.is_none() {
        bar.enable_steady_tick(Duration::from_millis(120));
    }
    bar
}

fn style(bar: &ProgressBar, unit: &str, bounded: bool) {
    let template = if bounded {
        format!("{{prefix}} [{{bar:30}}] {{human_pos}}/{{human_len}} {unit} ({{eta}} left) {{msg}}")
    } else {
        format!("{{prefix}} {{spinner}} {{human_pos}} {unit} {{elapsed}} {{msg}}")
    };
    // The templates are fixed strings known to parse; a failure would only lose the styling.
    if let Ok(style) = ProgressStyle::with_template(&template) {
        bar.set_style(style.progress_chars("=> "));
    }
}
