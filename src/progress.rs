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

/// For library callers and tests that want no output.
pub struct Silent;

impl Progress for Silent {
    fn start(&self, _: &str, _: u64) {}
    fn advance(&self, _: &str, _: u64) {}
    fn finish(&self, _: &str) {}
}
