//! How every reader touches a user's file, in one place, so that no reader can crash, hang or
//! allocate without bound on what the file says.
//!
//! - A file is opened only when it is a regular file (after following links): opening a named
//!   pipe blocks until something writes to it, a device can be endless, and a socket cannot be
//!   opened at all. Folders are accepted only where a folder is expected.
//! - A size that comes from a file (a header's dimensions, a record count) is checked here before
//!   anything is allocated from it: every dimension at least 1 and at most a bound that no real
//!   image reaches, every product computed with checked arithmetic, and the total compared with
//!   what the file can hold. The error names the file and the field.
//!
//! The bounds are generous: they refuse what cannot be an image (a side of 0 or 100 000 pixels),
//! not what is merely large.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use crate::error::{Error, Result};

/// Largest image side accepted from a header (pixels): 16× a 4K frame, far above any dataset.
pub const MAX_SIDE: u64 = 1 << 16;
/// Largest channel count accepted from a header (grey, grey+alpha, RGB, RGBA and then some).
pub const MAX_CHANNELS: u64 = 16;
/// Largest decoded size of one image (bytes), as the PNG decoder's limit: 512 MiB.
pub const MAX_IMAGE_BYTES: u64 = 512 << 20;

/// What a path is, in words, for an error saying it is not what was expected.
fn kind_of(meta: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_dir() {
        "a folder"
    } else if t.is_fifo() {
        "a named pipe (FIFO)"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_block_device() || t.is_char_device() {
        "a device"
    } else {
        "not a regular file"
    }
}

/// The metadata of `path` when it is a regular file (links followed), else an error saying what
/// it is instead. Nothing is opened, so a named pipe cannot block.
pub fn regular(path: &Path) -> Result<std::fs::Metadata> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if !meta.is_file() {
        return Err(Error::data(
            path,
            None,
            format!("is {}, expected a regular file", kind_of(&meta)),
        ));
    }
    Ok(meta)
}

/// Open `path` for reading if it is a regular file.
pub fn open(path: &Path) -> Result<File> {
    regular(path)?;
    File::open(path).map_err(|e| Error::io(path, e))
}

/// Length in bytes of the regular file `path`.
pub fn len(path: &Path) -> Result<u64> {
    Ok(regular(path)?.len())
}

/// The whole of the regular file `path`.
pub fn read(path: &Path) -> Result<Vec<u8>> {
    let mut file = open(path)?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .map_err(|e| Error::io(path, e))?;
    Ok(bytes)
}

/// `path` is a folder (links followed), or an error saying what it is instead.
pub fn folder(path: &Path) -> Result<()> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if !meta.is_dir() {
        return Err(Error::data(
            path,
            None,
            format!("is {}, expected a folder", kind_of(&meta)),
        ));
    }
    Ok(())
}

/// Whether `path` is a folder or a regular file: what [`crate::data::open`] accepts. Anything
/// else (a pipe, a device, a socket) is refused before it is opened.
pub fn file_or_folder(path: &Path) -> Result<bool> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    match (meta.is_dir(), meta.is_file()) {
        (true, _) => Ok(true),
        (_, true) => Ok(false),
        _ => Err(Error::data(
            path,
            None,
            format!("is {}, expected a dataset file or folder", kind_of(&meta)),
        )),
    }
}

/// One dimension read from a file: `name` (as the format's documentation calls it) = `value`.
pub type Field<'a> = (&'a str, u64);

/// Check each field is in `1..=max`, naming the file and the field that is not.
pub fn dims(path: &Path, fields: &[Field], max: u64) -> Result<Vec<usize>> {
    fields
        .iter()
        .map(|&(name, value)| {
            if value == 0 || value > max {
                return Err(Error::data(
                    path,
                    None,
                    format!("{name} is {value}, expected 1 to {max}"),
                ));
            }
            usize::try_from(value).map_err(|_| too_large(path, name))
        })
        .collect()
}

/// The bytes of one image of `[c, h, w]` fields: each dimension checked by [`dims`] (channels
/// against [`MAX_CHANNELS`], sides against [`MAX_SIDE`]) and the product against
/// [`MAX_IMAGE_BYTES`].
pub fn image(path: &Path, channels: Field, height: Field, width: Field) -> Result<[usize; 3]> {
    let c = dims(path, &[channels], MAX_CHANNELS)?[0];
    let hw = dims(path, &[height, width], MAX_SIDE)?;
    let bytes = product(path, "one image", &[c as u64, hw[0] as u64, hw[1] as u64])?;
    if bytes > MAX_IMAGE_BYTES {
        return Err(Error::data(
            path,
            None,
            format!(
                "one image of {c}×{}×{} is {bytes} bytes, expected at most {MAX_IMAGE_BYTES}",
                hw[0], hw[1]
            ),
        ));
    }
    Ok([c, hw[0], hw[1]])
}

/// The product of `factors`, or an error naming `what` when it passes 2⁶⁴.
pub fn product(path: &Path, what: &str, factors: &[u64]) -> Result<u64> {
    factors
        .iter()
        .try_fold(1u64, |acc, &f| acc.checked_mul(f))
        .ok_or_else(|| too_large(path, what))
}

/// `header + count × record` bytes, checked, must be at most `available` (what the file holds,
/// or can decompress to): else an error naming the count field and both sizes. Returns the total.
pub fn holds(path: &Path, header: u64, count: Field, record: u64, available: u64) -> Result<u64> {
    let (name, n) = count;
    let need = n
        .checked_mul(record)
        .and_then(|b| b.checked_add(header))
        .ok_or_else(|| too_large(path, name))?;
    if need > available {
        return Err(Error::data(
            path,
            None,
            format!(
                "{name} is {n}: {n} records of {record} bytes need {need} bytes, but the file \
                 holds {available}; truncated file or wrong header?"
            ),
        ));
    }
    Ok(need)
}

fn too_large(path: &Path, what: &str) -> Error {
    Error::data(
        path,
        None,
        format!("{what}: the size its header gives passes 2^64 bytes; a damaged header?"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn products_that_wrap_are_refused_not_wrapped() {
        let p = Path::new("x");
        let e = product(p, "images", &[u32::MAX as u64, u32::MAX as u64, 2]).unwrap_err();
        assert!(e.to_string().contains("images"), "{e}");
        assert_eq!(product(p, "a", &[3, 4]).unwrap(), 12);
    }

    #[test]
    fn zero_and_absurd_dimensions_name_the_field() {
        let p = Path::new("f.idx");
        let e = image(p, ("channels", 1), ("rows", 0), ("columns", 5)).unwrap_err();
        assert!(e.to_string().contains("rows is 0"), "{e}");
        let e = image(p, ("channels", 1), ("rows", 4), ("columns", 1 << 20)).unwrap_err();
        assert!(e.to_string().contains("columns is 1048576"), "{e}");
        let e = image(p, ("channels", 16), ("rows", 65536), ("columns", 65536)).unwrap_err();
        assert!(e.to_string().contains("bytes, expected at most"), "{e}");
    }

    #[test]
    fn a_count_the_file_cannot_hold_is_refused() {
        let p = Path::new("f");
        assert_eq!(holds(p, 16, ("n", 2), 784, 16 + 2 * 784).unwrap(), 1584);
        let e = holds(p, 16, ("number of images", 3), 784, 1584).unwrap_err();
        assert!(e.to_string().contains("number of images is 3"), "{e}");
        let e = holds(p, 16, ("n", u64::MAX), 784, u64::MAX).unwrap_err();
        assert!(e.to_string().contains("passes 2^64"), "{e}");
    }
}
