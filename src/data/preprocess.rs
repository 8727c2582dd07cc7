//! The one documented conversion from stored pixels to a teacher's input.
//!
//! `u8` pixels `p` in CHW order become `((p / 255) - mean[c]) / std[c]`, after a bilinear resize
//! to the teacher's `H × W` when the sizes differ: of the whole image ([`Resize::Stretch`], the
//! default), or torchvision's ImageNet recipe, the shorter side to a size and the centred `H × W`
//! ([`Resize::ShorterSide`]). Teachers whose graph normalises internally
//! declare `Normalization::Baked` and get `p / 255`. The channel count must match: converting
//! grey to colour (or back) silently would change what the teacher sees, so it is an error.

use ndarray::{Array3, ArrayView3, ArrayViewMut3};
use serde::{Deserialize, Serialize};

use crate::base::resize::{sample_bilinear, Axis1};
use crate::base::PixelBox;

/// How a teacher expects its input normalised (stored in the model's metadata).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Normalization {
    /// `(x - mean[c]) / std[c]` on pixels scaled to `[0, 1]`.
    MeanStd { mean: Vec<f32>, std: Vec<f32> },
    /// The graph takes pixels scaled to `[0, 1]` and normalises itself.
    Baked,
}

/// How an image of another size becomes the teacher's `H × W` (stored in the model's metadata).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Resize {
    /// The whole image, bilinearly resized to `H × W` (the aspect ratio is not kept).
    #[default]
    Stretch,
    /// torchvision's `Resize(size)` then `CenterCrop((H, W))`: the shorter side scaled to `size`
    /// (the longer to `⌊size · long / short⌋`), then the centred `H × W` of that.
    ShorterSide { size: usize },
}

/// A teacher's input: `[C, H, W]`, how other sizes are brought to it, and its normalisation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputSpec {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    #[serde(default)]
    pub resize: Resize,
    pub normalization: Normalization,
}

/// Python's `int(round(x / 2))` for the centre crop's offset (ties to even), as torchvision.
fn half_to_even(excess: usize) -> usize {
    let half = excess / 2;
    if excess % 2 == 1 && half % 2 == 1 {
        half + 1
    } else {
        half
    }
}

impl InputSpec {
    /// The two axes (rows, columns) of a `h × w` source as the teacher sees it.
    fn axes(&self, h: usize, w: usize) -> [Axis1; 2] {
        match self.resize {
            Resize::Stretch => [
                Axis1 {
                    s: h,
                    r: self.height,
                    offset: 0,
                },
                Axis1 {
                    s: w,
                    r: self.width,
                    offset: 0,
                },
            ],
            Resize::ShorterSide { size } => {
                let short = h.min(w).max(1);
                let long = |l: usize| if l == short { size } else { size * l / short };
                let (rh, rw) = if h <= w {
                    (size, long(w))
                } else {
                    (long(h), size)
                };
                let crop = |r: usize, out: usize| half_to_even(r.saturating_sub(out));
                [
                    Axis1 {
                        s: h,
                        r: rh,
                        offset: crop(rh, self.height),
                    },
                    Axis1 {
                        s: w,
                        r: rw,
                        offset: crop(rw, self.width),
                    },
                ]
            }
        }
    }

    /// A box in the teacher's input (`H × W` pixels) as the box of a `source` (`h, w`) image
    /// that the teacher saw there: through the resize and the centre crop.
    pub fn box_to_source(&self, b: PixelBox, source: (usize, usize)) -> PixelBox {
        let [ay, ax] = self.axes(source.0, source.1);
        let (y0, x0) = (
            ay.edge(b.y0).min(source.0 - 1),
            ax.edge(b.x0).min(source.1 - 1),
        );
        PixelBox {
            y0,
            x0,
            y1: ay.edge(b.y1).clamp(y0 + 1, source.0),
            x1: ax.edge(b.x1).clamp(x0 + 1, source.1),
        }
    }

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
        let (_, h, w) = pixels.dim();
        let [ay, ax] = self.axes(h, w);
        // Only a source the teacher sees whole and unscaled is copied: with ShorterSide, a source
        // already H × W is still resized to the size and cropped, as torchvision does.
        let same_size =
            [ay, ax].iter().all(|a| a.offset == 0 && a.s == a.r) && pixels.dim() == out.dim();
        for (ch, (scale, shift)) in self.affine().into_iter().enumerate() {
            let src = pixels.index_axis(ndarray::Axis(0), ch);
            let mut dst = out.index_axis_mut(ndarray::Axis(0), ch);
            if same_size {
                dst.assign(&src);
            } else {
                sample_bilinear(src, dst.view_mut(), [ay, ax]);
            }
            dst.mapv_inplace(|v| v * scale + shift);
        }
    }

    /// The same input at another size, the whole source stretched to it (a tile of a stitched
    /// image is a crop already cut from its source).
    pub fn with_size(&self, height: usize, width: usize) -> InputSpec {
        InputSpec {
            height,
            width,
            resize: Resize::Stretch,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(c: usize, h: usize, w: usize) -> InputSpec {
        InputSpec {
            channels: c,
            height: h,
            width: w,
            resize: Resize::Stretch,
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

    /// `(p · 37) mod 256` over an `h × w` image, `p` the pixel's row-major position.
    fn ramp(h: usize, w: usize) -> Array3<f32> {
        Array3::from_shape_fn((1, h, w), |(_, y, x)| ((y * w + x) * 37 % 256) as f32)
    }

    #[test]
    fn shorter_side_and_centre_crop_match_torchvision() {
        // torchvision 0.29: F.center_crop(F.resize(img, 4, antialias=False), [3, 3]) of ramp().
        let want = [
            (
                (7, 10),
                [
                    135.25, 113.25, 107.25, 78.75, 136.75, 194.75, 54.25, 112.25, 170.25,
                ],
            ),
            (
                (10, 7),
                [
                    21.375, 86.125, 150.875, 27.375, 92.125, 156.875, 33.375, 98.125, 162.875,
                ],
            ),
        ];
        let shorter = InputSpec {
            resize: Resize::ShorterSide { size: 4 },
            normalization: Normalization::Baked,
            ..spec(1, 3, 3)
        };
        // A source of the teacher's own size is resized and cropped too, not copied.
        let want = want.into_iter().chain([(
            (3, 3),
            [
                0.0, 23.125, 50.875, 69.375, 92.5, 120.25, 152.625, 115.75, 107.5,
            ],
        )]);
        for ((h, w), values) in want {
            let mut out = Array3::zeros((1, 3, 3));
            shorter.pixels_into(ramp(h, w).view(), out.view_mut());
            for (got, want) in out.iter().zip(values) {
                assert!(
                    (got * 255.0 - want).abs() < 1e-3,
                    "{h}×{w}: {got} vs {want}"
                );
            }
        }
    }

    #[test]
    fn a_box_maps_back_through_the_resize_and_the_crop() {
        // 7×10 → shorter side 4: 4×5 (rows ×4/7, columns ×1/2), centre 3×3 at row 0 (round(0.5)
        // is 0), column 1. The whole crop is source rows 0..5.25 and columns 2..8.
        let shorter = InputSpec {
            resize: Resize::ShorterSide { size: 4 },
            ..spec(1, 3, 3)
        };
        let b = |y0, x0, y1, x1| PixelBox { y0, x0, y1, x1 };
        assert_eq!(shorter.box_to_source(b(0, 0, 3, 3), (7, 10)), b(0, 2, 5, 8));
        assert_eq!(shorter.box_to_source(b(1, 1, 2, 2), (7, 10)), b(2, 4, 4, 6));
        // Stretch: the proportional rescale.
        let stretch = spec(1, 28, 28);
        assert_eq!(
            stretch.box_to_source(b(7, 14, 21, 28), (56, 112)),
            b(14, 56, 42, 112)
        );
        assert_eq!(
            stretch.box_to_source(b(0, 7, 14, 21), (56, 112)),
            b(0, 28, 28, 84)
        );
    }
}
