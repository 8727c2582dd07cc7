//! Progress reporting for long work. The library says what it is doing; the CLI draws it.

/// Receives progress from long jobs, by stage (a job's stages may interleave: a distillation runs
/// attribution and utility class after class). Implementations must be cheap to call per batch.
pub trait Progress: Sync {
    /// Stage `stage` will do `total` units of work (images, crops…).
    fn start(&self, stage: &str, total: u64);
    fn advance(&self, stage: &str, units: u64);
    /// Stage `stage` is done.
    fn finish(&self, stage: &str);
}

/// The stage that computes informativeness maps, counted in images.
pub const ATTRIBUTION: &str = "attribution";
/// The stage that scores crops, counted in crops.
pub const UTILITY: &str = "utility";

/// Things the person running a job should hear that are neither progress nor errors (a stale
/// temporary file removed). The library never prints: it records them here, and whoever runs it
/// takes them ([`take_notes`]) and shows them where it shows the rest (the command line: on stderr,
/// once the command is over).
static NOTES: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// Record a note for the caller (see [`take_notes`]).
pub fn note(text: String) {
    NOTES.lock().unwrap_or_else(|e| e.into_inner()).push(text);
}

/// The notes recorded since the last call, oldest first.
pub fn take_notes() -> Vec<String> {
    std::mem::take(&mut *NOTES.lock().unwrap_or_else(|e| e.into_inner()))
}

/// For library callers and tests that want no output.
pub struct Silent;

impl Progress for Silent {
    fn start(&self, _: &str, _: u64) {}
    fn advance(&self, _: &str, _: u64) {}
    fn finish(&self, _: &str) {}
}
