//! The library's [`Progress`] events for a person: indicatif bars, one per stage, when stderr is
//! a terminal; plain periodic lines when it is a log file or a pipe (a bar would be invisible
//! there, and a long run would print nothing for minutes).

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use infoutil::progress::Progress;

pub struct Bars {
    multi: MultiProgress,
    bars: Mutex<HashMap<String, ProgressBar>>,
    /// Set when stderr is not a terminal: stages reported as lines instead.
    lines: Option<Lines>,
}

impl Default for Bars {
    fn default() -> Self {
        Bars {
            multi: MultiProgress::new(),
            bars: Mutex::default(),
            lines: (!std::io::stderr().is_terminal()).then(Lines::from_env),
        }
    }
}

/// Plain progress lines, at most one per stage every `every`.
struct Lines {
    every: Duration,
    stages: Mutex<HashMap<String, Stage>>,
}

struct Stage {
    total: u64,
    done: u64,
    started: Instant,
    printed: Instant,
}

impl Lines {
    /// Every 30 s, or every `INFOUTIL_PROGRESS_SECS` seconds.
    fn from_env() -> Lines {
        let secs = std::env::var("INFOUTIL_PROGRESS_SECS")
            .ok()
            .and_then(|s| s.parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0)
            .unwrap_or(30.0);
        Lines {
            every: Duration::from_secs_f64(secs),
            stages: Mutex::default(),
        }
    }

    fn line(name: &str, s: &Stage) -> String {
        let secs = s.started.elapsed().as_secs_f64();
        let rate = s.done as f64 / secs.max(1e-9);
        let eta = match rate > 0.0 {
            true => format!(
                ", eta {:.0} s",
                (s.total.saturating_sub(s.done)) as f64 / rate
            ),
            false => String::new(),
        };
        format!(
            "progress: {name} {}/{} ({:.1}/s, {secs:.0} s{eta})",
            s.done, s.total, rate
        )
    }

    fn start(&self, stage: &str, total: u64) {
        let now = Instant::now();
        eprintln!("progress: {stage} 0/{total}");
        let s = Stage {
            total,
            done: 0,
            started: now,
            printed: now,
        };
        self.stages
            .lock()
            .expect("no panic while held")
            .insert(stage.into(), s);
    }

    fn advance(&self, stage: &str, units: u64) {
        let mut stages = self.stages.lock().expect("no panic while held");
        if let Some(s) = stages.get_mut(stage) {
            s.done += units;
            if s.printed.elapsed() >= self.every {
                s.printed = Instant::now();
                eprintln!("{}", Self::line(stage, s));
            }
        }
    }

    fn finish(&self, stage: &str) {
        if let Some(s) = self
            .stages
            .lock()
            .expect("no panic while held")
            .remove(stage)
        {
            eprintln!("{} done", Self::line(stage, &s));
        }
    }
}

impl Bars {
    fn with(&self, stage: &str, f: impl FnOnce(&ProgressBar)) {
        if let Some(bar) = self.bars.lock().expect("no panic while held").get(stage) {
            f(bar);
        }
    }
}

impl Progress for Bars {
    fn start(&self, stage: &str, total: u64) {
        if let Some(lines) = &self.lines {
            return lines.start(stage, total);
        }
        let bar = ProgressBar::new(total).with_style(
            ProgressStyle::with_template("{msg:>14} [{bar:40}] {pos}/{len} ({per_sec}, eta {eta})")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_message(stage.to_string());
        let bar = self.multi.add(bar);
        if let Some(old) = self
            .bars
            .lock()
            .expect("no panic while held")
            .insert(stage.to_string(), bar)
        {
            old.finish_and_clear();
        }
    }

    fn advance(&self, stage: &str, units: u64) {
        if let Some(lines) = &self.lines {
            return lines.advance(stage, units);
        }
        self.with(stage, |b| b.inc(units));
    }

    fn finish(&self, stage: &str) {
        if let Some(lines) = &self.lines {
            return lines.finish(stage);
        }
        if let Some(b) = self.bars.lock().expect("no panic while held").remove(stage) {
            b.finish_and_clear();
        }
    }
}
