//! Pictures for people: distilled images as a contact sheet, Shapley maps as heat-maps over
//! their image with the chosen crops outlined. PNG only.

use std::path::{Path, PathBuf};

use ndarray::{ArrayView2, ArrayView3};

use crate::base::PixelBox;
use crate::error::{Error, Result};
use crate::informativeness::attribute::Attributed;

/// An 8-bit RGB picture, rows top to bottom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RgbImage {
    width: u32,
    height: u32,
    pixels: Vec<[u8; 3]>,
}

impl RgbImage {
    pub fn filled(width: u32, height: u32, colour: [u8; 3]) -> RgbImage {
        RgbImage {
            width,
            height,
            pixels: vec![colour; width as usize * height as usize],
        }
    }

    pub fn from_fn(width: u32, height: u32, f: impl Fn(u32, u32) -> [u8; 3]) -> RgbImage {
        let pixels = (0..height)
            .flat_map(|y| (0..width).map(move |x| (x, y)))
            .map(|(x, y)| f(x, y))
            .collect();
        RgbImage {
            width,
            height,
            pixels,
        }
    }

    pub fn dimensions(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    pub fn width(&self) -> u32 {
        self.width
    }

    pub fn height(&self) -> u32 {
        self.height
    }

    fn at(&self, x: u32, y: u32) -> usize {
        assert!(
            x < self.width && y < self.height,
            "pixel {x},{y} outside the picture"
        );
        y as usize * self.width as usize + x as usize
    }

    pub fn get_pixel(&self, x: u32, y: u32) -> [u8; 3] {
        self.pixels[self.at(x, y)]
    }

    pub fn put_pixel(&mut self, x: u32, y: u32, colour: [u8; 3]) {
        let i = self.at(x, y);
        self.pixels[i] = colour;
    }

    /// Every pixel with its coordinates, to change in place.
    fn enumerate_pixels_mut(&mut self) -> impl Iterator<Item = (u32, u32, &mut [u8; 3])> {
        let w = self.width as usize;
        self.pixels
            .iter_mut()
            .enumerate()
            .map(move |(i, p)| ((i % w) as u32, (i / w) as u32, p))
    }

    /// `tile` drawn with its top-left corner at (x0, y0), clipped to this picture.
    pub fn paste(&mut self, tile: &RgbImage, x0: u32, y0: u32) {
        let w = tile.width.min(self.width.saturating_sub(x0)) as usize;
        for y in 0..tile.height.min(self.height.saturating_sub(y0)) {
            let from = tile.at(0, y);
            let to = self.at(x0, y0 + y);
            self.pixels[to..to + w].copy_from_slice(&tile.pixels[from..from + w]);
        }
    }

    /// The RGB bytes, row after row.
    pub fn as_bytes(&self) -> &[u8] {
        self.pixels.as_flattened()
    }
}

/// `[C, H, W]` bytes (1 or 3 channels) to RGB, each pixel drawn `scale × scale`.
pub fn to_rgb(image: ArrayView3<u8>, scale: u32) -> RgbImage {
    let (c, h, w) = image.dim();
    RgbImage::from_fn(w as u32 * scale, h as u32 * scale, |x, y| {
        let (yy, xx) = ((y / scale) as usize, (x / scale) as usize);
        let px = |ch: usize| image[[ch.min(c - 1), yy, xx]];
        [px(0), px(1), px(2)]
    })
}

/// `image` as RGB drawn `scale` times its size, or smaller so that its longest side is at most
/// `side` (bilinear where the factor is not a whole number), with the factor it was drawn at.
pub fn fitted(image: ArrayView3<u8>, scale: u32, side: u32) -> (RgbImage, f64) {
    let (_, h, w) = image.dim();
    let f = (scale.max(1) as f64).min(side as f64 / h.max(w) as f64);
    if f >= 1.0 && f.fract() == 0.0 {
        return (to_rgb(image, f as u32), f);
    }
    let (oh, ow) = (
        ((h as f64 * f).round() as u32).max(1),
        ((w as f64 * f).round() as u32).max(1),
    );
    (resize(&to_rgb(image, 1), ow, oh), f)
}

/// `img` resized to `w × h` by a triangle (tent) filter as wide as the larger of one source
/// pixel and one output pixel: bilinear when enlarging, an average over the pixels each output
/// pixel covers when shrinking (a 1024-px photo drawn at 448 px without aliasing). Rows, then
/// columns. Pictures only: the teacher's input is resized by `data::preprocess`, without
/// antialiasing, as torchvision does.
pub fn resize(img: &RgbImage, w: u32, h: u32) -> RgbImage {
    let (sw, sh) = img.dimensions();
    let cols = tent_weights(sw, w);
    let rows = tent_weights(sh, h);
    let mut across = vec![[0f32; 3]; w as usize * sh as usize];
    for y in 0..sh {
        for (x, taps) in cols.iter().enumerate() {
            across[y as usize * w as usize + x] =
                blend(taps, |sx| img.get_pixel(sx, y).map(f32::from));
        }
    }
    RgbImage::from_fn(w, h, |x, y| {
        let v = blend(&rows[y as usize], |sy| {
            across[sy as usize * w as usize + x as usize]
        });
        v.map(|c| c.round().clamp(0.0, 255.0) as u8)
    })
}

/// Σ weight · value(source index) over one output pixel's taps.
fn blend(taps: &[(u32, f32)], value: impl Fn(u32) -> [f32; 3]) -> [f32; 3] {
    taps.iter().fold([0.0; 3], |mut acc, &(i, wt)| {
        let v = value(i);
        (0..3).for_each(|c| acc[c] += wt * v[c]);
        acc
    })
}

/// For each of `to` output positions along an axis of `from` source pixels: the source pixels
/// it reads and their weights (summing to 1), pixel centres aligned.
fn tent_weights(from: u32, to: u32) -> Vec<Vec<(u32, f32)>> {
    let ratio = from as f32 / to as f32;
    let radius = ratio.max(1.0);
    (0..to)
        .map(|o| {
            let centre = (o as f32 + 0.5) * ratio - 0.5;
            let lo = (centre - radius).floor().max(0.0) as u32;
            let hi = ((centre + radius).ceil() as u32).min(from - 1);
            // Never empty: the source pixel nearest the centre is within half a pixel of it.
            let mut taps: Vec<_> = (lo..=hi)
                .map(|i| (i, 1.0 - (i as f32 - centre).abs() / radius))
                .filter(|&(_, wt)| wt > 0.0)
                .collect();
            let total: f32 = taps.iter().map(|t| t.1).sum();
            taps.iter_mut().for_each(|t| t.1 /= total);
            taps
        })
        .collect()
}

/// Images in rows of `cols`, separated by a 2-pixel white gap.
pub fn contact_sheet(tiles: &[RgbImage], cols: usize) -> RgbImage {
    let gap = 2u32;
    let (tw, th) = tiles.first().map_or((1, 1), |t| t.dimensions());
    let cols = cols.clamp(1, tiles.len().max(1));
    let rows = tiles.len().div_ceil(cols);
    let mut sheet = RgbImage::filled(
        cols as u32 * (tw + gap) + gap,
        rows as u32 * (th + gap) + gap,
        [255, 255, 255],
    );
    for (i, t) in tiles.iter().enumerate() {
        let (x0, y0) = (
            gap + (i % cols) as u32 * (tw + gap),
            gap + (i / cols) as u32 * (th + gap),
        );
        sheet.paste(t, x0, y0);
    }
    sheet
}

/// Red for positive, blue for negative values, with an opacity that grows with |v| / `max_abs`:
/// patches that matter stand out, the rest keep the image visible.
fn tint(v: f64, max_abs: f64) -> ([f64; 3], f64) {
    let t = (v / max_abs.max(1e-12)).clamp(-1.0, 1.0);
    let colour = if t >= 0.0 {
        [230.0, 30.0, 30.0]
    } else {
        [30.0, 80.0, 230.0]
    };
    (colour, 0.7 * t.abs())
}

/// Longest side of a heat-map: small images are enlarged up to it (at most `scale` times),
/// large ones (ImageNet photos) shrunk to it, so a folder of maps or a contact sheet of 100 of
/// them stays a size any viewer opens.
pub const HEATMAP_SIDE: u32 = 448;

/// The image in grey, tinted by the g×g Shapley map (red: raises the class score, blue: lowers
/// it), with `crops` outlined: the last (the noise-free crop) in green, the others in yellow.
/// Drawn at `scale` times the image, or smaller, so that its longest side is at most
/// [`HEATMAP_SIDE`].
pub fn heatmap(
    image: ArrayView3<u8>,
    map: ArrayView2<f64>,
    crops: &[PixelBox],
    scale: u32,
) -> RgbImage {
    let g = map.nrows();
    let (mut out, f) = fitted(image, scale, HEATMAP_SIDE);
    let (ow, oh) = out.dimensions();
    let max_abs = map.iter().fold(0.0f64, |a, &v| a.max(v.abs()));
    for (x, y, px) in out.enumerate_pixels_mut() {
        let cell = (y as usize * g / oh as usize, x as usize * g / ow as usize);
        let (colour, alpha) = tint(map[cell], max_abs);
        let grey = px.iter().map(|&v| v as f64).sum::<f64>() / 3.0;
        for (ch, c) in colour.iter().enumerate() {
            px[ch] = ((1.0 - alpha) * grey + alpha * c).round() as u8;
        }
    }
    for (i, b) in crops.iter().enumerate() {
        let colour = if i + 1 == crops.len() {
            [0, 200, 0]
        } else {
            [230, 200, 0]
        };
        outline(&mut out, b, f, colour, i as u32);
    }
    out
}

/// A rectangle outline of `b` drawn `f` times its size, inset by `inset` pixels so that equal
/// boxes stay visible.
pub fn outline(img: &mut RgbImage, b: &PixelBox, f: f64, colour: [u8; 3], inset: u32) {
    let at = |v: usize| (v as f64 * f).round() as u32;
    let (x0, y0) = (at(b.x0) + inset, at(b.y0) + inset);
    let x1 = at(b.x1).saturating_sub(1 + inset).max(x0);
    let y1 = at(b.y1).saturating_sub(1 + inset).max(y0);
    let (x0, y0) = (x0.min(img.width() - 1), y0.min(img.height() - 1));
    for x in x0..=x1.min(img.width() - 1) {
        img.put_pixel(x, y0, colour);
        img.put_pixel(x, y1.min(img.height() - 1), colour);
    }
    for y in y0..=y1.min(img.height() - 1) {
        img.put_pixel(x0, y, colour);
        img.put_pixel(x1.min(img.width() - 1), y, colour);
    }
}

/// `img` as an RGB PNG at `path` (its folder made if missing), written to a temporary file
/// beside it and renamed into place, so that an interrupted run leaves no half picture.
pub fn save(img: &RgbImage, path: &Path) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    let fail = |e: &dyn std::fmt::Display| Error::store(path, format!("cannot write PNG: {e}"));
    // Encoded in memory (pictures are bounded in size), so that a failed write to the file is
    // an error here, not lost in a buffered writer's drop.
    let mut encoded = Vec::new();
    let mut encoder = png::Encoder::new(&mut encoded, img.width, img.height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(|e| fail(&e))?;
    writer
        .write_image_data(img.as_bytes())
        .map_err(|e| fail(&e))?;
    writer.finish().map_err(|e| fail(&e))?;
    let tmp = crate::outputs::temporary(path)?;
    std::fs::write(tmp.path(), &encoded).map_err(|e| fail(&e))?;
    tmp.persist(path).map_err(|e| fail(&e))?;
    Ok(())
}

/// `attribute --png`: a heat-map per explained image, named by its record and class, and when
/// finished a contact sheet of the first [`HeatmapFolder::SHEET_TILES`].
pub struct HeatmapFolder {
    dir: PathBuf,
    tiles: Vec<RgbImage>,
}

impl HeatmapFolder {
    pub const SHEET: &'static str = "contact-sheet.png";
    pub const SHEET_TILES: usize = 100;

    /// Make the folder (and its parents) now, so a bad path fails before the long run.
    pub fn create(dir: &Path) -> Result<HeatmapFolder> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        Ok(HeatmapFolder {
            dir: dir.to_path_buf(),
            tiles: Vec::new(),
        })
    }

    /// Where the contact sheet will be written.
    pub fn sheet_path(&self) -> PathBuf {
        self.dir.join(Self::SHEET)
    }

    /// Draw and save one chunk of explained images.
    pub fn add(&mut self, chunk: &Attributed) -> Result<()> {
        let maps = chunk.maps.outer_iter();
        for ((r, map), crops) in chunk.records.iter().zip(maps).zip(chunk.crops) {
            let picture = heatmap(r.image.view(), map, crops, 8);
            save(
                &picture,
                &self
                    .dir
                    .join(format!("{:06}-class{}.png", r.index, r.label)),
            )?;
            if self.tiles.len() < Self::SHEET_TILES {
                self.tiles.push(picture);
            }
        }
        Ok(())
    }

    /// Write the contact sheet; returns how many maps it shows.
    pub fn finish(self) -> Result<usize> {
        save(&contact_sheet(&self.tiles, 10), &self.sheet_path())?;
        Ok(self.tiles.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array2, Array3};

    #[test]
    fn fitted_images_are_enlarged_by_the_scale_or_shrunk_to_the_side() {
        let img = |h, w| Array3::from_elem((3, h, w), 9u8);
        assert_eq!(
            fitted(img(28, 28).view(), 4, 112).0.dimensions(),
            (112, 112)
        );
        assert_eq!(
            fitted(img(224, 224).view(), 4, 112).0.dimensions(),
            (112, 112)
        );
        let (out, f) = fitted(img(375, 500).view(), 4, 112);
        assert_eq!((out.dimensions(), f), ((112, 84), 112.0 / 500.0));
        assert_eq!(out.get_pixel(50, 40), [9, 9, 9]);
    }

    #[test]
    fn resize_matches_pillows_bilinear_enlarging_and_shrinking() {
        // Pillow 13's Image.resize(..., BILINEAR) of these rows, as mode "F" images:
        // [0, 100] → 4: [0, 25, 75, 100]; [0, 100, 200, 255] → 2: [71.4, 209.3];
        // [0, 10, …, 90] → 4: [10, 32.4, 57.6, 80].
        let row = |v: &[u8]| RgbImage::from_fn(v.len() as u32, 1, |x, _| [v[x as usize]; 3]);
        let red = |img: RgbImage| {
            (0..img.width())
                .map(|x| img.get_pixel(x, 0)[0])
                .collect::<Vec<_>>()
        };
        assert_eq!(red(resize(&row(&[0, 100]), 4, 1)), [0, 25, 75, 100]);
        assert_eq!(red(resize(&row(&[0, 100, 200, 255]), 2, 1)), [71, 209]);
        let tens: Vec<u8> = (0..10).map(|i| 10 * i).collect();
        assert_eq!(red(resize(&row(&tens), 4, 1)), [10, 32, 58, 80]);
        // Columns as rows: the same filter on the other axis.
        let col = RgbImage::from_fn(1, 2, |_, y| [[0, 100][y as usize]; 3]);
        let tall = resize(&col, 1, 4);
        assert_eq!(
            (0..4).map(|y| tall.get_pixel(0, y)[1]).collect::<Vec<_>>(),
            [0, 25, 75, 100]
        );
    }

    #[test]
    fn contact_sheet_lays_tiles_in_rows_with_gaps() {
        let tile = to_rgb(Array3::from_elem((1, 4, 4), 0u8).view(), 2);
        let sheet = contact_sheet(&vec![tile; 5], 3);
        assert_eq!(sheet.dimensions(), (3 * 10 + 2, 2 * 10 + 2));
        assert_eq!(sheet.get_pixel(0, 0), [255, 255, 255]);
        assert_eq!(sheet.get_pixel(2, 2), [0, 0, 0]);
    }

    #[test]
    fn positive_cells_are_red_and_negative_blue() {
        let img = Array3::from_elem((1, 4, 4), 128u8);
        let mut map = Array2::zeros((2, 2));
        map[[0, 0]] = 1.0;
        map[[1, 1]] = -1.0;
        let h = heatmap(img.view(), map.view(), &[], 1);
        let (tl, br) = (h.get_pixel(0, 0), h.get_pixel(3, 3));
        assert!(tl[0] > tl[2] && br[2] > br[0], "{tl:?} {br:?}");
    }

    #[test]
    fn heatmaps_are_enlarged_or_shrunk_to_a_bounded_side() {
        let map = Array2::from_elem((4, 4), 1.0);
        let crop = PixelBox {
            y0: 0,
            x0: 0,
            y1: 683,
            x1: 512,
        };
        // A 28 px image at scale 8: 224 px. A 1024×683 photo: 448 px wide, not 8192.
        let small = heatmap(
            Array3::from_elem((1, 28, 28), 9u8).view(),
            map.view(),
            &[],
            8,
        );
        assert_eq!(small.dimensions(), (224, 224));
        let photo = Array3::from_elem((3, 683, 1024), 9u8);
        let big = heatmap(photo.view(), map.view(), &[crop], 8);
        assert_eq!(big.dimensions(), (HEATMAP_SIDE, 299));
        // The crop (the left half) is outlined where it is, in the shrunk picture.
        assert_eq!(big.get_pixel(0, 100), [0, 200, 0]);
        assert_eq!(big.get_pixel(223, 100), [0, 200, 0]);
        assert_ne!(big.get_pixel(300, 100), [0, 200, 0]);
    }
}
