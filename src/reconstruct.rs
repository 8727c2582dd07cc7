//! Reconstruction: crops of real images, stitched `factor × factor` into distilled images.
//!
//! Everything happens in pixel units (0–255, as f32) so that one stitched image yields both the
//! teacher-space tensor (`InputSpec::pixels_into`) and the `u8` picture people look at; a crop is
//! resized once, bilinearly, straight from the source pixels.

use ndarray::{s, Array3, ArrayView3, Axis};

use crate::base::resize::resize_bilinear;
use crate::base::PixelBox;

/// The `[C, h, w]` pixels of `bbox` in `image`, resized to `h × w`, in pixel units.
pub fn crop_resized(image: ArrayView3<u8>, bbox: &PixelBox, h: usize, w: usize) -> Array3<f32> {
    let src = image.slice(s![.., bbox.y0..bbox.y1, bbox.x0..bbox.x1]);
    let c = src.len_of(Axis(0));
    let mut out = Array3::zeros((c, h, w));
    for ch in 0..c {
        let plane = src.index_axis(Axis(0), ch).mapv(f32::from);
        resize_bilinear(plane.view(), out.index_axis_mut(Axis(0), ch));
    }
    out
}

/// The tile `k` of a `factor × factor` grid over an `h × w` image (row-major), half-open.
pub fn tile(k: usize, factor: usize, h: usize, w: usize) -> PixelBox {
    let (r, c) = (k / factor, k % factor);
    PixelBox {
        y0: r * h / factor,
        x0: c * w / factor,
        y1: (r + 1) * h / factor,
        x1: (c + 1) * w / factor,
    }
}

/// Stitch `factor²` crops (`(source image, box)`) into one `[C, h, w]` pixel-unit image, crop
/// `k` in tile `k`.
pub fn stitch(
    crops: &[(ArrayView3<u8>, PixelBox)],
    factor: usize,
    h: usize,
    w: usize,
) -> Array3<f32> {
    assert_eq!(crops.len(), factor * factor, "one crop per tile");
    let c = crops[0].0.len_of(Axis(0));
    let mut out = Array3::zeros((c, h, w));
    for (k, (image, bbox)) in crops.iter().enumerate() {
        let t = tile(k, factor, h, w);
        let piece = crop_resized(*image, bbox, t.height(), t.width());
        out.slice_mut(s![.., t.y0..t.y1, t.x0..t.x1]).assign(&piece);
    }
    out
}

/// Pixel-unit floats to viewable bytes (rounded, clamped).
pub fn to_u8<D: ndarray::Dimension>(pixels: ndarray::ArrayView<f32, D>) -> ndarray::Array<u8, D> {
    pixels.mapv(|v| v.round().clamp(0.0, 255.0) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiles_cover_the_image_once() {
        for (f, h, w) in [(1, 28, 28), (2, 28, 28), (2, 31, 30), (3, 32, 32)] {
            let mut cover = vec![0; h * w];
            for k in 0..f * f {
                let t = tile(k, f, h, w);
                for y in t.y0..t.y1 {
                    for x in t.x0..t.x1 {
                        cover[y * w + x] += 1;
                    }
                }
            }
            assert!(cover.iter().all(|&v| v == 1));
        }
    }

    #[test]
    fn a_crop_at_its_own_size_is_copied_exactly() {
        let img = Array3::from_shape_fn((1, 28, 28), |(_, y, x)| (y * 9 + x) as u8);
        let b = PixelBox {
            y0: 7,
            x0: 0,
            y1: 21,
            x1: 14,
        };
        let crop = crop_resized(img.view(), &b, 14, 14);
        assert_eq!(to_u8(crop.view()), img.slice(s![.., 7..21, 0..14]));
    }

    #[test]
    fn stitching_places_each_crop_in_its_tile() {
        let a = Array3::from_elem((1, 28, 28), 10u8);
        let b = Array3::from_elem((1, 28, 28), 200u8);
        let half = PixelBox {
            y0: 0,
            x0: 0,
            y1: 14,
            x1: 14,
        };
        let crops = [
            (a.view(), half),
            (b.view(), half),
            (b.view(), half),
            (a.view(), half),
        ];
        let out = to_u8(stitch(&crops, 2, 28, 28).view());
        assert_eq!(out[[0, 0, 0]], 10);
        assert_eq!(out[[0, 0, 27]], 200);
        assert_eq!(out[[0, 27, 0]], 200);
        assert_eq!(out[[0, 27, 27]], 10);
    }
}
