//! indicatif progress bars for the library's [`Progress`] events, drawn on stderr and hidden
//! when stderr is not a terminal.

use indicatif::{ProgressBar, ProgressStyle};
use infoutil::progress::Progress;
use std::sync::Mutex;

#[derive(Default)]
pub struct Bar(Mutex<Option<ProgressBar>>);

impl Progress for Bar {
    fn start(&self, stage: &str, total: u64) {
        let bar = ProgressBar::new(total).with_style(
            ProgressStyle::with_template("{msg:>14} [{bar:40}] {pos}/{len} ({per_sec}, eta {eta})")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_message(stage.to_string());
        *self.0.lock().expect("no panic while held") = Some(bar);
    }

    fn advance(&self, units: u64) {
        if let Some(b) = &*self.0.lock().expect("no panic while held") {
            b.inc(units);
        }
    }

    fn finish(&self) {
        if let Some(b) = self.0.lock().expect("no panic while held").take() {
            b.finish_and_clear();
        }
    }
}
