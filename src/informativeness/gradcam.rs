//! Grad-CAM as the informativeness map (Selvaraju et al., 2017; the paper's Table 8 baseline): the
//! explained class's logit gradient, averaged over each channel of one layer (the teacher's last
//! convolutional block), weights that layer's activations; the ReLU of the weighted sum, resized
//! to the image and averaged over each patch, takes the Shapley map's place. Pooling, noise,
//! crops and utility downstream are unchanged, so the two attributions differ only here.

use ndarray::{s, Array2, Array3, ArrayView2, ArrayView3, ArrayView4, Axis};

use super::grid::Grid;
use crate::base::resize::resize_bilinear;
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::teacher::Teacher;

/// Images per call of the Grad-CAM graph: bounds the activations held at once.
const CHUNK: usize = 256;

/// The Grad-CAM map of one image, `[h, w]` at the layer's resolution: ReLU(Σ_k w_k A_k) with
/// w_k the mean of `∂ logit / ∂ A_k` over the layer's positions.
pub fn cam(activations: ArrayView3<f32>, gradients: ArrayView3<f32>) -> Array2<f32> {
    let (_, h, w) = activations.dim();
    let mut sum = Array2::<f64>::zeros((h, w));
    for (a, g) in activations.outer_iter().zip(gradients.outer_iter()) {
        let weight = g.iter().map(|&v| f64::from(v)).sum::<f64>() / (h * w) as f64;
        sum.zip_mut_with(&a, |s, &v| *s += weight * f64::from(v));
    }
    sum.mapv(|v| v.max(0.0) as f32)
}

/// A layer-resolution map resized to the image (bilinear, half-pixel centres, as PyTorch's
/// `interpolate` and the Grad-CAM reference code's `cv2.resize` do) and averaged over each patch
/// of `grid`: the `g × g` map the crops are chosen from.
pub fn to_grid(cam: ArrayView2<f32>, grid: &Grid) -> Array2<f64> {
    let mut image = Array2::<f32>::zeros((grid.height, grid.width));
    resize_bilinear(cam, image.view_mut());
    Array2::from_shape_fn((grid.g, grid.g), |(r, c)| {
        let b = grid.block(r, c, 1);
        let patch = image.slice(s![b.y0..b.y1, b.x0..b.x1]);
        patch.iter().map(|&v| f64::from(v)).sum::<f64>() / patch.len() as f64
    })
}

/// Grad-CAM maps `[n, g, g]` of `images` (teacher input space) for their `labels`.
pub fn gradcam_maps(
    teacher: &Teacher,
    images: ArrayView4<f32>,
    labels: &[usize],
    g: usize,
    progress: &dyn Progress,
) -> Result<Array3<f64>> {
    let (n, _, h, w) = images.dim();
    let grid = Grid::new(g, h, w).map_err(Error::Config)?;
    let mut maps = Array3::zeros((n, g, g));
    for start in (0..n).step_by(CHUNK) {
        let end = (start + CHUNK).min(n);
        let parts = teacher
            .cam_parts(
                images.slice(s![start..end, .., .., ..]),
                &labels[start..end],
            )
            .map_err(|e| e.map_row(|i| start + i))?;
        let per_image = parts
            .activations
            .outer_iter()
            .zip(parts.gradients.outer_iter());
        for (k, (a, gr)) in per_image.enumerate() {
            let map = to_grid(cam(a, gr).view(), &grid);
            maps.index_axis_mut(Axis(0), start + k).assign(&map);
        }
        progress.advance(crate::progress::ATTRIBUTION, (end - start) as u64);
    }
    Ok(maps)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{array, Array3};

    #[test]
    fn the_map_weights_each_channel_by_its_mean_gradient_and_clips_below_zero() {
        // Channel 0's gradients average 1, channel 1's average -2 (their layout must not matter).
        let a: Array3<f32> = array![[[1.0, 2.0], [3.0, 4.0]], [[1.0, 0.0], [2.0, 0.5]]];
        let g: Array3<f32> = array![[[4.0, 0.0], [0.0, 0.0]], [[-8.0, 0.0], [0.0, 0.0]]];
        // 1·A0 − 2·A1 = [[-1, 2], [-1, 3]] → ReLU.
        assert_eq!(cam(a.view(), g.view()), array![[0.0, 2.0], [0.0, 3.0]]);
    }

    #[test]
    fn the_patch_map_matches_pytorch_interpolate_then_average_pool() {
        // Reference: torch.nn.functional.interpolate(cam, size, mode="bilinear",
        // align_corners=False) then avg_pool2d over each patch, in float64 (torch 2.x).
        let cam = array![[0.0f32, 1.0, 2.0], [3.0, 0.5, 0.25], [1.0, 4.0, 0.0]];
        let cases: [(usize, usize, Vec<f64>); 2] = [
            (
                8,
                4,
                vec![
                    0.12158203125,
                    0.650390625,
                    1.3447265625,
                    1.915283203125,
                    1.837890625,
                    1.1328125,
                    0.76953125,
                    0.8994140625,
                    2.236328125,
                    1.9765625,
                    1.19140625,
                    0.2080078125,
                    1.15087890625,
                    2.830078125,
                    2.4345703125,
                    0.129150390625,
                ],
            ),
            (12, 2, vec![17.0 / 18.0, 11.0 / 9.0, 37.0 / 18.0, 1.0]),
        ];
        for (side, g, want) in cases {
            let grid = Grid::new(g, side, side).unwrap();
            let got = to_grid(cam.view(), &grid);
            for (got, want) in got.iter().zip(&want) {
                assert!(
                    (got - want).abs() < 1e-6,
                    "{side} px, grid {g}: {got} vs {want}"
                );
            }
        }
    }

    #[test]
    fn uneven_patches_average_their_own_pixels() {
        // A constant map stays constant on any grid; a map at the image's own resolution is
        // copied, so each patch is the plain mean of its pixels (edges ⌊i·h/g⌋: 0, 2, 5).
        let grid = Grid::new(2, 5, 5).unwrap();
        let flat = Array2::from_elem((3, 3), 2.5f32);
        assert!(to_grid(flat.view(), &grid)
            .iter()
            .all(|&v| (v - 2.5).abs() < 1e-9));
        let ramp = Array2::from_shape_fn((5, 5), |(y, _)| y as f32);
        let map = to_grid(ramp.view(), &grid);
        assert_eq!(map, array![[0.5, 0.5], [3.0, 3.0]]);
    }
}
