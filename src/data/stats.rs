//! Dataset statistics that methods need (the `mean` baseline).

use super::{Selection, Source};
use crate::error::Result;

/// Per-channel mean pixel (0–255) over up to `max_records` records spread evenly over the
/// dataset; bad records are skipped.
pub fn mean_pixel(
    source: &mut dyn Source,
    channels: usize,
    max_records: usize,
) -> Result<Vec<f32>> {
    let len = source.info().len;
    let step = (len / max_records.max(1)).max(1);
    let (mut sum, mut count) = (vec![0f64; channels], vec![0usize; channels]);
    let selection = Selection::Indices((0..len).step_by(step).collect());
    source.visit(&selection, true, &mut |r| {
        for (ch, plane) in r.image.outer_iter().enumerate().take(channels) {
            sum[ch] += plane.iter().map(|&v| v as f64).sum::<f64>();
            count[ch] += plane.len();
        }
        Ok(())
    })?;
    Ok(sum
        .iter()
        .zip(&count)
        .map(|(s, &n)| (s / n.max(1) as f64) as f32)
        .collect())
}
