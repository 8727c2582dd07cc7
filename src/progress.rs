//! Progress reporting for long work. The library says what it is doing; the CLI draws it.

/// Receives progress from long jobs. Implementations must be cheap to call per batch.
pub trait Progress: Sync {
    /// A new stage begins with `total` units of work (images, coalitions…).
    fn start(&self, stage: &str, total: u64);
    fn advance(&self, units: u64);
    fn finish(&self);
}

/// For library callers and tests that want no output.
pub struct Silent;

impl Progress for Silent {
    fn start(&self, _: &str, _: u64) {}
    fn advance(&self, _: u64) {}
    fn finish(&self) {}
}
