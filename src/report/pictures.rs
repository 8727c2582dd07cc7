//! The pictures of a report page: sources with their crop, maps, score strips and a confusion
//! matrix, all drawn with `render`'s RGB image and PNG writer.

use ndarray::{Array2, Array3, ArrayView2, ArrayView3};

use super::font;
use crate::informativeness::PixelBox;
use crate::render::{self, RgbImage};

/// Pictures on a page are at least this many pixels on their longer side (28-px images 5×).
pub const PAGE_SIDE: u32 = 140;
/// And at most this many (photos are shrunk).
pub const MAX_SIDE: u32 = 320;

/// The whole factor a `side`-pixel image is drawn at on a page.
pub fn page_scale(side: usize) -> u32 {
    (PAGE_SIDE as usize).div_ceil(side.max(1)).max(1) as u32
}

/// A stored box (y0, x0, y1, x1) as a pixel box; None for the −1 padding of absent crops.
pub fn pixel_box(b: &[i32]) -> Option<PixelBox> {
    if b.len() != 4 || b.iter().any(|&v| v < 0) || b[2] <= b[0] || b[3] <= b[1] {
        return None;
    }
    Some(PixelBox {
        y0: b[0] as usize,
        x0: b[1] as usize,
        y1: b[2] as usize,
        x1: b[3] as usize,
    })
}

/// The image at page size.
pub fn plain(image: ArrayView3<u8>) -> RgbImage {
    let (_, h, w) = image.dim();
    render::fitted(image, page_scale(h.max(w)), MAX_SIDE).0
}

/// The source image in colour with `kept` outlined in green, two pixels thick.
pub fn with_box(image: ArrayView3<u8>, kept: &[PixelBox]) -> RgbImage {
    let (_, h, w) = image.dim();
    let (mut out, f) = render::fitted(image, page_scale(h.max(w)), MAX_SIDE);
    for b in kept {
        render::outline(&mut out, b, f, [0, 220, 0], 0);
        render::outline(&mut out, b, f, [0, 120, 0], 1);
    }
    out
}

/// The informativeness map over the image (or over grey where the image is not available, then
/// without crops, whose pixels would mean nothing): the last crop green, the others yellow.
pub fn map_over(
    image: Option<ArrayView3<u8>>,
    map: ArrayView2<f64>,
    crops: &[PixelBox],
) -> RgbImage {
    match image {
        Some(img) => {
            let (_, h, w) = img.dim();
            render::heatmap(img, map, crops, page_scale(h.max(w)))
        }
        None => {
            let grey = Array3::from_elem((1, PAGE_SIDE as usize, PAGE_SIDE as usize), 128u8);
            render::heatmap(grey.view(), map, &[], 1)
        }
    }
}

/// Every crop score of a class, best first, as a strip of bars: kept crops green, the others
/// grey. `scores` must be sorted best first.
pub fn score_strip(scores: &[(f64, bool)]) -> RgbImage {
    let (w, h) = (480u32, 70u32);
    let mut img = RgbImage::filled(w, h, [255; 3]);
    let finite: Vec<f64> = scores
        .iter()
        .map(|s| s.0)
        .filter(|v| v.is_finite())
        .collect();
    let (lo, hi) = finite
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    if scores.is_empty() || !lo.is_finite() {
        font::draw(&mut img, 4, 30, "no scores", 1, [0; 3]);
        return img;
    }
    let base = lo.min(0.0);
    let span = (hi - base).max(1e-12);
    let n = scores.len();
    let bar_w = (w as usize / n).clamp(1, 12) as u32;
    let used = (bar_w as usize * n).min(w as usize) as u32;
    for x in 0..used {
        // Each column shows the crop at its rank; with more crops than columns, kept ones win.
        let (a, b) = (
            x as usize * n / used as usize,
            ((x + 1) as usize * n / used as usize).max(x as usize * n / used as usize + 1),
        );
        let (v, kept) = scores[a..b.min(n)]
            .iter()
            .fold((f64::NEG_INFINITY, false), |(m, k), s| {
                (m.max(s.0), k || s.1)
            });
        let colour = if kept { [30, 150, 40] } else { [170, 170, 170] };
        let top = h - 2 - (((v - base) / span) * (h - 4) as f64).clamp(1.0, (h - 4) as f64) as u32;
        for y in top..h - 2 {
            img.put_pixel(x, y, colour);
        }
    }
    img
}

/// Row-normalised confusion matrix (rows: true class, columns: predicted), white to dark blue,
/// each cell at least 2 pixels, at most 600 pixels across.
pub fn confusion(counts: &Array2<u64>) -> RgbImage {
    let k = counts.nrows().max(1);
    let cell = (600 / k as u32).clamp(1, 40);
    RgbImage::from_fn(k as u32 * cell, k as u32 * cell, |x, y| {
        let (r, c) = ((y / cell) as usize, (x / cell) as usize);
        let total: u64 = counts.row(r).sum();
        let f = if total == 0 {
            0.0
        } else {
            counts[[r, c]] as f64 / total as f64
        };
        let t = f.sqrt();
        let mix = |a: f64, b: f64| (a + (b - a) * t).round() as u8;
        [mix(255.0, 13.0), mix(255.0, 71.0), mix(255.0, 161.0)]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_boxes_become_pixel_boxes_and_padding_none() {
        assert_eq!(pixel_box(&[-1, -1, -1, -1]), None);
        assert_eq!(
            pixel_box(&[1, 2, 15, 16]),
            Some(PixelBox {
                y0: 1,
                x0: 2,
                y1: 15,
                x1: 16
            })
        );
    }

    #[test]
    fn kept_crops_are_green_in_the_strip_and_scores_set_heights() {
        let s = score_strip(&[(3.0, true), (2.0, false), (1.0, false)]);
        // First bar (kept, best) green and taller than the third.
        let col = |x: u32| (0..70).filter(|&y| s.get_pixel(x, y) != [255; 3]).count();
        assert_eq!(s.get_pixel(2, 66), [30, 150, 40]);
        assert_eq!(s.get_pixel(15, 66), [170, 170, 170]);
        assert!(col(2) > col(26) && col(26) > 0);
    }

    #[test]
    fn the_confusion_diagonal_is_darkest_for_a_good_teacher() {
        let counts = Array2::from_shape_vec((2, 2), vec![9, 1, 0, 10]).unwrap();
        let m = confusion(&counts);
        assert!(m.get_pixel(0, 0)[0] < m.get_pixel(m.width() - 1, 0)[0]);
        assert_eq!(m.get_pixel(0, m.height() - 1), [255; 3]);
    }
}
