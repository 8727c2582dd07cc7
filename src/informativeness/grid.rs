//! Images as players: a g×g grid of patches over an image, and the boxes of patch blocks.

use serde::{Deserialize, Serialize};

pub use crate::base::PixelBox;

/// `g × g` patches over an `h × w` image. Patch edges are `⌊i·h/g⌋`, so sizes differ by at most
/// one pixel when `g` does not divide the side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grid {
    pub g: usize,
    pub height: usize,
    pub width: usize,
}

impl Grid {
    pub fn new(g: usize, height: usize, width: usize) -> Result<Grid, String> {
        if g == 0 || g > height || g > width {
            return Err(format!(
                "a {g}×{g} grid does not fit a {height}×{width} image"
            ));
        }
        Ok(Grid { g, height, width })
    }

    pub fn players(&self) -> usize {
        self.g * self.g
    }

    fn edge(&self, i: usize, side: usize) -> usize {
        i * side / self.g
    }

    /// The block of `span × span` patches whose top-left patch is (`row`, `col`).
    pub fn block(&self, row: usize, col: usize, span: usize) -> PixelBox {
        PixelBox {
            y0: self.edge(row, self.height),
            x0: self.edge(col, self.width),
            y1: self.edge(row + span, self.height),
            x1: self.edge(col + span, self.width),
        }
    }

    /// Patch `p` (row-major player index).
    pub fn patch(&self, p: usize) -> PixelBox {
        self.block(p / self.g, p % self.g, 1)
    }

    /// The patch holding pixel (`y`, `x`): the inverse of [`patch`](Self::patch).
    pub fn patch_of(&self, y: usize, x: usize) -> usize {
        let index = |pos: usize, side: usize| (0..self.g).rposition(|i| self.edge(i, side) <= pos);
        let row = index(y, self.height).expect("row 0 starts at 0");
        let col = index(x, self.width).expect("column 0 starts at 0");
        row * self.g + col
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patches_tile_the_image_exactly() {
        for (g, h, w) in [(4, 28, 28), (4, 30, 29), (3, 32, 32), (1, 5, 7)] {
            let grid = Grid::new(g, h, w).unwrap();
            let mut covered = vec![0u8; h * w];
            for p in 0..grid.players() {
                let b = grid.patch(p);
                for y in b.y0..b.y1 {
                    for x in b.x0..b.x1 {
                        covered[y * w + x] += 1;
                    }
                }
            }
            assert!(covered.iter().all(|&c| c == 1), "g={g} {h}×{w}");
        }
    }

    #[test]
    fn every_pixel_belongs_to_the_patch_whose_box_holds_it() {
        for (g, h, w) in [(4, 28, 28), (4, 30, 29), (3, 32, 32), (1, 5, 7)] {
            let grid = Grid::new(g, h, w).unwrap();
            for p in 0..grid.players() {
                let b = grid.patch(p);
                for y in b.y0..b.y1 {
                    for x in b.x0..b.x1 {
                        assert_eq!(grid.patch_of(y, x), p, "g={g} {h}×{w} ({y}, {x})");
                    }
                }
            }
        }
    }

    #[test]
    fn a_two_by_two_block_on_28_pixels_is_half_the_side() {
        let grid = Grid::new(4, 28, 28).unwrap();
        assert_eq!(
            grid.block(1, 2, 2),
            PixelBox {
                y0: 7,
                x0: 14,
                y1: 21,
                x1: 28
            }
        );
    }

    #[test]
    fn too_fine_a_grid_is_refused() {
        assert!(Grid::new(5, 4, 28).is_err());
        assert!(Grid::new(0, 4, 4).is_err());
    }
}
