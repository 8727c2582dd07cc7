//! indicatif progress bars for the library's [`Progress`] events, one bar per stage, drawn on
//! stderr and hidden when stderr is not a terminal.

use std::collections::HashMap;
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use infoutil::progress::Progress;

#[derive(Default)]
pub struct Bars {
    multi: MultiProgress,
    bars: Mutex<HashMap<String, ProgressBar>>,
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
        self.with(stage, |b| b.inc(units));
    }

    fn finish(&self, stage: &str) {
        if let Some(b) = self.bars.lock().expect("no panic while held").remove(stage) {
            b.finish_and_clear();
        }
    }
}
