//! The one documented conversion from stored pixels to a teacher's input.
//!
//! `u8` pixels `p` in CHW order become `((p / 255) - mean[c]) / std[c]`, after a bilinear resize
//! to the teacher's `H × W` when the sizes differ. Teachers whose graph normalises internally
//! declare `Normalization::Baked` and get `p / 255`. The channel count must match: converting
//! grey to colour (or back) silently would change what the teacher sees, so it is an error.

use ndarray::{Array3, ArrayView3, ArrayViewMut3};
use serde::{Deserialize, Serialize};

/// How a teacher expects its input normalised (stored in the model's metadata).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Normalization {
    /// `(x - mean[c]) / std[c]` on pixels scaled to `[0, 1]`.
    MeanStd { mean: Vec<f32>, std: Vec<f32> },
    /// The graph takes pixels scaled to `[0, 1]` and normalises itself.
    Baked,
}

/// A teacher's input: `[C, H, W]` and its normalisation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputSpec {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub normalization: Normalization,
}

impl InputSpec {
    /// Per-channel `(scale, shift)` so that `x = p * scale + shift` does the whole conversion.
    fn affine(&self) -> Vec<(f32, f32)> {
        (0..self.channels)
            .map(|c| match &self.normalization {
                Normalization::MeanStd { mean, std } => (1.0 / (255.0 * std[c]), -mean[c] / std[c]),
                Normalization::Baked => (1.0 / 255.0, 0.0),
            })
            .collect()
    }

    /// The value of a `u8` pixel of channel `c` in the teacher's input space (e.g. to express a
    /// pixel-space baseline).
    pub fn normalize_value(&self, c: usize, pixel: f32) -> f32 {
        let (scale, shift) = self.affine()[c];
        pixel * scale + shift
    }

    /// Write the teacher input for `image` (`[C, h, w]`, any size) into `out` (`[C, H, W]`).
    /// Errors with a message naming both shapes when the channel counts differ.
    pub fn convert_into(
        &self,
        image: ArrayView3<u8>,
        out: ArrayViewMut3<f32>,
    ) -> Result<(), String> {
        let (c, h, w) = image.dim();
        if c != self.channels {
            return Err(format!(
                "image has {c} channel(s) ({c}×{h}×{w}) but the teacher expects {} ({}×{}×{})",
                self.channels, self.channels, self.height, self.width
            ));
        }
        self.pixels_into(image.mapv(f32::from).view(), out);
        Ok(())
    }

    /// Pixel-unit floats (0–255, `[C, h, w]`, any size) to the teacher input in `out`
    /// (`[C, H, W]`): bilinear resize when the sizes differ, then the normalisation.
    pub fn pixels_into(&self, pixels: ArrayView3<f32>, mut out: ArrayViewMut3<f32>) {
        debug_assert_eq!(out.dim(), (self.channels, self.height, self.width));
        let same_size = pixels.dim() == out.dim();
        for (ch, (scale, shift)) in self.affine().into_iter().enumerate() {
            let src = pixels.index_axis(ndarray::Axis(0), ch);
            let mut dst = out.index_axis_mut(ndarray::Axis(0), ch);
            if same_size {
                dst.assign(&src);
            } else {
                resize_bilinear(src, dst.view_mut());
            }
            dst.mapv_inplace(|v| v * scale + shift);
        }
    }

    /// The same input at another size (e.g. a tile of a stitched image).
    pub fn with_size(&self, height: usize, width: usize) -> InputSpec {
        InputSpec {
            height,
            width,
            ..self.clone()
        }
    }

    /// Like [`convert_into`](Self::convert_into), allocating the output.
    pub fn convert(&self, image: ArrayView3<u8>) -> Result<Array3<f32>, String> {
        let mut out = Array3::zeros((self.channels, self.height, self.width));
        self.convert_into(image, out.view_mut())?;
        Ok(out)
    }
}

/// Bilinear resize with half-pixel centres and edge clamping, the convention of PyTorch's
/// `interpolate(mode="bilinear", align_corners=False, antialias=False)`.
pub fn resize_bilinear(src: ndarray::ArrayView2<f32>, mut dst: ndarray::ArrayViewMut2<f32>) {
    let (sh, sw) = src.dim();
    let (dh, dw) = dst.dim();
    let taps = |d: usize, s: usize| -> Vec<(usize, usize, f32)> {
        (0..d)
            .map(|i| {
                let x = ((i as f32 + 0.5) * s as f32 / d as f32 - 0.5).max(0.0);
                let i0 = (x.floor() as usize).min(s - 1);
                let i1 = (i0 + 1).min(s - 1);
                (i0, i1, x - i0 as f32)
            })
            .collect()
    };
    let (ty, tx) = (taps(dh, sh), taps(dw, sw));
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

    fn spec(c: usize, h: usize, w: usize) -> InputSpec {
        InputSpec {
            channels: c,
            height: h,
            width: w,
            normalization: Normalization::MeanStd {
                mean: vec![0.5; c],
                std: vec![0.25; c],
            },
        }
    }

    #[test]
    fn normalises_same_size() {
        let img = Array3::from_shape_vec((1, 1, 3), vec![0u8, 255, 51]).unwrap();
        let out = spec(1, 1, 3).convert(img.view()).unwrap();
        let want = [-2.0f32, 2.0, (0.2 - 0.5) / 0.25];
        for (a, b) in out.iter().zip(want) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
    }

    #[test]
    fn channel_mismatch_is_an_error_naming_shapes() {
        let img = Array3::<u8>::zeros((3, 4, 4));
        let err = spec(1, 4, 4).convert(img.view()).unwrap_err();
        assert!(
            err.contains("3 channel") && err.contains("expects 1"),
            "{err}"
        );
    }

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
