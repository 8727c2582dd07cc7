//! The base layer: small shared types and arithmetic that every layer may use (pixel boxes,
//! bilinear resizing, zero padding, logits, digests, options checked once). It imports nothing
//! of this crate, so no arrow can point up from here and no stage has to borrow them from a
//! sibling.

pub mod hash;
pub mod logits;
pub mod pad;
pub mod pixel_box;
pub mod resize;
pub mod valid;

pub use pixel_box::PixelBox;
