//! Zero padding of a batch of tiles to the teacher's input (RDED scores a crop this way).

use ndarray::{s, Array4, Axis};

/// Put each `[C, th, tw]` tile at the top-left of a zero `[C, H, W]` canvas (zero = the
/// normalised input's zero, as RDED pads).
pub fn zero_padded(tiles: &Array4<f32>, h: usize, w: usize) -> Array4<f32> {
    let (n, c, th, tw) = tiles.dim();
    let mut out = Array4::zeros((n, c, h, w));
    for (i, t) in tiles.outer_iter().enumerate() {
        out.index_axis_mut(Axis(0), i)
            .slice_mut(s![.., ..th, ..tw])
            .assign(&t);
    }
    out
}
