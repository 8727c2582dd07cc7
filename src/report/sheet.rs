//! Contact sheets of distilled images that a person can read: each class a labelled cell of its
//! images, cells flowing across a sheet of bounded size, one sheet per block of classes where
//! one would be too large. Images are drawn at the teacher's native size, enlarged by a whole
//! factor when tiny (Fashion-MNIST's 28 px four times), so no pixel is invented.

use std::path::{Path, PathBuf};

use ndarray::{ArrayView4, Axis};

use super::font;
use crate::error::Result;
use crate::render::{self, RgbImage};

/// Images at least this many pixels on their longer side after enlarging.
pub const MIN_SIDE: u32 = 96;
/// A sheet is at most this wide unless one class's single image is wider.
pub const MAX_WIDTH: u32 = 1600;
/// A sheet is cut below this height; a class taller than it gets a sheet of its own.
pub const MAX_HEIGHT: u32 = 2400;
const GAP: u32 = 4;
const TEXT_SCALE: u32 = 2;
/// A class cell is at least this wide, so that its name can be read with one image.
const MIN_CELL_WIDTH: u32 = 164;
const LABEL_HEIGHT: u32 = font::HEIGHT * TEXT_SCALE + 6;
const TITLE_HEIGHT: u32 = font::HEIGHT * TEXT_SCALE + 12;

/// The whole factor an image of `side` pixels is enlarged by.
pub fn native_scale(side: usize) -> u32 {
    (MIN_SIDE as usize).div_ceil(side.max(1)).max(1) as u32
}

/// One sheet: its picture and the classes it shows, in order.
pub struct Sheet {
    pub image: RgbImage,
    pub classes: Vec<usize>,
}

/// Where the cells go: images per row of a cell, cell size, cells per row, rows per sheet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    pub tile: (u32, u32),
    pub cols: usize,
    pub cell: (u32, u32),
    pub cells_per_row: usize,
    pub rows_per_sheet: usize,
}

impl Layout {
    /// The layout for classes of at most `per_class` images of `tile` pixels (drawn size).
    pub fn new(tile: (u32, u32), per_class: usize) -> Layout {
        let per_class = per_class.max(1);
        let fits = ((MAX_WIDTH - GAP) / (tile.0 + GAP)).max(1) as usize;
        let cols = per_class.min(fits);
        let rows = per_class.div_ceil(cols) as u32;
        let cell = (
            (cols as u32 * (tile.0 + GAP) - GAP).max(MIN_CELL_WIDTH),
            LABEL_HEIGHT + rows * (tile.1 + GAP) - GAP,
        );
        let cells_per_row = ((MAX_WIDTH - GAP) / (cell.0 + 3 * GAP)).max(1) as usize;
        let rows_per_sheet = ((MAX_HEIGHT - TITLE_HEIGHT) / (cell.1 + 3 * GAP)).max(1) as usize;
        Layout {
            tile,
            cols,
            cell,
            cells_per_row,
            rows_per_sheet,
        }
    }

    pub fn classes_per_sheet(&self) -> usize {
        self.cells_per_row * self.rows_per_sheet
    }

    /// Top-left corner of cell `i` of a sheet.
    fn cell_at(&self, i: usize) -> (u32, u32) {
        let (c, r) = (
            (i % self.cells_per_row) as u32,
            (i / self.cells_per_row) as u32,
        );
        (
            GAP + c * (self.cell.0 + 3 * GAP),
            TITLE_HEIGHT + r * (self.cell.1 + 3 * GAP),
        )
    }

    fn size(&self, cells: usize) -> (u32, u32) {
        let cols = cells.min(self.cells_per_row) as u32;
        let rows = cells.div_ceil(self.cells_per_row) as u32;
        let width = (GAP + cols * (self.cell.0 + 3 * GAP)).max(font::width("classes", 2) + 2 * GAP);
        (width, TITLE_HEIGHT + rows * (self.cell.1 + 3 * GAP))
    }
}

/// The images of each class (rows of `images` whose label it is), classes in order of first
/// appearance.
fn by_class(labels: &[i64]) -> Vec<(usize, Vec<usize>)> {
    let mut order: Vec<(usize, Vec<usize>)> = Vec::new();
    for (i, &l) in labels.iter().enumerate() {
        match order.iter_mut().rev().find(|(c, _)| *c as i64 == l) {
            Some((_, rows)) => rows.push(i),
            None => order.push((l.max(0) as usize, vec![i])),
        }
    }
    order
}

/// Sheets of `images` (`[N, C, H, W]` bytes) labelled by class with `names` (a missing name
/// is drawn as `class N`).
pub fn sheets(images: ArrayView4<u8>, labels: &[i64], names: &[String]) -> Vec<Sheet> {
    let (_, _, h, w) = images.dim();
    let scale = native_scale(h.max(w));
    let tile = (w as u32 * scale, h as u32 * scale);
    let classes = by_class(labels);
    let most = classes.iter().map(|(_, r)| r.len()).max().unwrap_or(1);
    let layout = Layout::new(tile, most);
    let total = classes.len();
    classes
        .chunks(layout.classes_per_sheet())
        .map(|block| {
            let (sw, sh) = layout.size(block.len());
            let mut image = RgbImage::filled(sw, sh, [255; 3]);
            let title = format!(
                "classes {}-{} of {total} (images x{scale})",
                block[0].0,
                block[block.len() - 1].0
            );
            font::draw(&mut image, GAP, 6, &title, TEXT_SCALE, [90; 3]);
            for (i, (class, rows)) in block.iter().enumerate() {
                let (x0, y0) = layout.cell_at(i);
                let name = names
                    .get(*class)
                    .cloned()
                    .unwrap_or_else(|| format!("class {class}"));
                let text = font::fit(&format!("{class} {name}"), layout.cell.0, TEXT_SCALE);
                font::draw(&mut image, x0, y0 + 2, &text, TEXT_SCALE, [0; 3]);
                for (k, &row) in rows.iter().enumerate() {
                    let (c, r) = ((k % layout.cols) as u32, (k / layout.cols) as u32);
                    let pic = render::to_rgb(images.index_axis(Axis(0), row), scale);
                    image.paste(
                        &pic,
                        x0 + c * (tile.0 + GAP),
                        y0 + LABEL_HEIGHT + r * (tile.1 + GAP),
                    );
                }
            }
            Sheet {
                image,
                classes: block.iter().map(|(c, _)| *c).collect(),
            }
        })
        .collect()
}

/// Where sheet `k` of `n` is saved: `path` itself for a single sheet, else `STEM-classes-A-B.png`
/// beside it, named by the classes it shows.
pub fn sheet_path(path: &Path, sheet: &Sheet, n: usize) -> PathBuf {
    if n == 1 {
        return path.to_path_buf();
    }
    let stem = path.file_stem().unwrap_or_default().to_string_lossy();
    let (a, b) = (sheet.classes[0], sheet.classes[sheet.classes.len() - 1]);
    path.with_file_name(format!("{stem}-classes-{a}-{b}.png"))
}

/// Draw and save the sheets of a distilled set; returns the files written, in class order.
pub fn save_sheets(
    images: ArrayView4<u8>,
    labels: &[i64],
    names: &[String],
    path: &Path,
) -> Result<Vec<PathBuf>> {
    let all = sheets(images, labels, names);
    let mut written = Vec::with_capacity(all.len());
    for s in &all {
        let p = sheet_path(path, s, all.len());
        render::save(&s.image, &p)?;
        written.push(p);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array4;

    #[test]
    fn tiny_images_are_enlarged_by_a_whole_factor_and_large_ones_kept() {
        assert_eq!(native_scale(28), 4);
        assert_eq!(native_scale(32), 3);
        assert_eq!(native_scale(224), 1);
        assert_eq!(native_scale(500), 1);
    }

    #[test]
    fn one_image_per_class_flows_across_the_sheet_instead_of_down_one_column() {
        // The case: IPC 1, 19 classes of 224-px images made one 116×2168 column.
        let l = Layout::new((224, 224), 1);
        assert!(l.cells_per_row >= 5, "{l:?}");
        let images = Array4::<u8>::zeros((19, 3, 224, 224));
        let labels: Vec<i64> = (0..19).collect();
        let s = sheets(images.view(), &labels, &[]);
        assert_eq!(s.len(), 1);
        let (w, h) = s[0].image.dimensions();
        assert!(w <= MAX_WIDTH && h <= MAX_HEIGHT && w > h / 2, "{w}×{h}");
    }

    #[test]
    fn many_classes_are_cut_into_sheets_of_bounded_size_named_by_their_classes() {
        let images = Array4::<u8>::zeros((1000 * 2, 1, 28, 28));
        let labels: Vec<i64> = (0..2000).map(|i| i / 2).collect();
        let s = sheets(images.view(), &labels, &[]);
        assert!(s.len() > 1);
        let shown: Vec<usize> = s.iter().flat_map(|s| s.classes.clone()).collect();
        assert_eq!(shown, (0..1000).collect::<Vec<_>>());
        for sheet in &s {
            let (w, h) = sheet.image.dimensions();
            assert!(w <= MAX_WIDTH && h <= MAX_HEIGHT, "{w}×{h}");
        }
        let p = sheet_path(Path::new("out/d.png"), &s[1], s.len());
        let b = s[1].classes.clone();
        assert_eq!(
            p,
            Path::new(&format!("out/d-classes-{}-{}.png", b[0], b[b.len() - 1]))
        );
    }

    #[test]
    fn many_images_of_one_class_wrap_into_rows_and_the_name_is_inked() {
        let mut images = Array4::<u8>::zeros((50, 1, 28, 28));
        images.fill(200);
        let s = sheets(
            images.view(),
            &[3; 50],
            &["a".into(), "b".into(), "c".into(), "Dress".into()],
        );
        let (w, _) = s[0].image.dimensions();
        assert!(w <= MAX_WIDTH);
        let l = Layout::new((112, 112), 50);
        assert!(l.cols < 50 && l.cols * 112 <= MAX_WIDTH as usize);
        // The label row holds dark pixels (the name), the image area the images' grey.
        let img = &s[0].image;
        let (x0, y0) = l.cell_at(0);
        let dark = (x0..x0 + 100)
            .flat_map(|x| (y0..y0 + LABEL_HEIGHT).map(move |y| (x, y)))
            .filter(|&(x, y)| img.get_pixel(x, y) == [0; 3])
            .count();
        assert!(dark > 20, "{dark}");
        assert_eq!(img.get_pixel(x0 + 5, y0 + LABEL_HEIGHT + 5), [200; 3]);
    }
}
