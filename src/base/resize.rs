//! Bilinear sampling of one image plane: the resize every layer uses (teacher input, Grad-CAM
//! maps, crops), in one place so that they all agree with PyTorch's convention.

/// Where the teacher's pixels sit on one source axis: the source of length `s` is resized to
/// `r` and the teacher sees `offset..offset + out` of that, so its pixel `i` samples the source
/// at `(i + offset + 0.5) · s / r − 0.5` (half-pixel centres).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Axis1 {
    pub s: usize,
    pub r: usize,
    pub offset: usize,
}

impl Axis1 {
    /// A teacher-input edge `e` (`0..=out`) in source pixels, rounded.
    pub fn edge(&self, e: usize) -> usize {
        (((e + self.offset) * self.s) as f64 / self.r as f64).round() as usize
    }
}

/// Bilinear resize with half-pixel centres and edge clamping, the convention of PyTorch's
/// `interpolate(mode="bilinear", align_corners=False, antialias=False)`.
pub fn resize_bilinear(src: ndarray::ArrayView2<f32>, dst: ndarray::ArrayViewMut2<f32>) {
    let ((sh, sw), (dh, dw)) = (src.dim(), dst.dim());
    let axis = |s, r| Axis1 { s, r, offset: 0 };
    sample_bilinear(src, dst, [axis(sh, dh), axis(sw, dw)]);
}

/// `dst` sampled bilinearly from `src` where `axes` place it (a resize, or a crop of one).
pub fn sample_bilinear(
    src: ndarray::ArrayView2<f32>,
    mut dst: ndarray::ArrayViewMut2<f32>,
    axes: [Axis1; 2],
) {
    let (dh, dw) = dst.dim();
    let taps = |d: usize, a: Axis1| -> Vec<(usize, usize, f32)> {
        (0..d)
            .map(|i| {
                let x = (((i + a.offset) as f32 + 0.5) * a.s as f32 / a.r as f32 - 0.5).max(0.0);
                let i0 = (x.floor() as usize).min(a.s - 1);
                let i1 = (i0 + 1).min(a.s - 1);
                (i0, i1, x - i0 as f32)
            })
            .collect()
    };
    let (ty, tx) = (taps(dh, axes[0]), taps(dw, axes[1]));
    for (y, &(y0, y1, fy)) in ty.iter().enumerate() {
        for (x, &(x0, x1, fx)) in tx.iter().enumerate() {
            let top = src[[y0, x0]] * (1.0 - fx) + src[[y0, x1]] * fx;
            let bottom = src[[y1, x0]] * (1.0 - fx) + src[[y1, x1]] * fx;
            dst[[y, x]] = top * (1.0 - fy) + bottom * fy;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{array, Array2};

    #[test]
    fn bilinear_matches_hand_computed_upsample() {
        // 2×2 → 4×4 with half-pixel centres: sample positions -0.25, 0.25, 0.75, 1.25 (clamped).
        let src = array![[0.0f32, 4.0], [8.0, 12.0]];
        let mut dst = Array2::zeros((4, 4));
        resize_bilinear(src.view(), dst.view_mut());
        assert_eq!(dst.row(0).to_vec(), vec![0.0, 1.0, 3.0, 4.0]);
        assert_eq!(dst.column(0).to_vec(), vec![0.0, 2.0, 6.0, 8.0]);
        assert_eq!(dst[[3, 3]], 12.0);
    }

    #[test]
    fn bilinear_downsample_by_two_averages_pairs() {
        let src = Array2::from_shape_fn((4, 4), |(y, x)| (y * 4 + x) as f32);
        let mut dst = Array2::zeros((2, 2));
        resize_bilinear(src.view(), dst.view_mut());
        // centre of output pixel 0 sits at source 0.5: mean of rows/cols 0 and 1.
        assert_eq!(dst[[0, 0]], 2.5);
        assert_eq!(dst[[1, 1]], 12.5);
    }
}
