//! Entry points for fuzzing every parser that reads a user's file: each takes arbitrary bytes,
//! turns them into the file(s) the parser reads, and runs the parser the way a command does.
//! Any outcome but a panic (or a hang, or an allocation without bound) is fine: errors are the
//! point. The coverage-guided targets in `fuzz/` are one line each around these, and the test
//! suite feeds the saved corpus and generated inputs through the same functions
//! (`tests/it/fuzz_smoke.rs`), so a crash found once stays found.

use std::io::Write;
use std::path::Path;
use std::sync::OnceLock;

use crate::data::{self, preprocess, Selection};
use crate::teacher::meta::{GradMeta, TeacherMeta};
use crate::teacher::onnx_file::OnnxFile;

/// A byte cursor: fuzz inputs are split into fields with it (missing bytes read as 0).
struct Bytes<'a>(&'a [u8]);

impl<'a> Bytes<'a> {
    fn u8(&mut self) -> u8 {
        let (first, rest) = self.0.split_first().map_or((0, &[][..]), |(f, r)| (*f, r));
        self.0 = rest;
        first
    }

    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    /// The next `n` bytes (fewer at the end).
    fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        head
    }

    fn rest(&mut self) -> &'a [u8] {
        self.take(self.0.len())
    }
}

fn write(path: &Path, bytes: &[u8], gzip: bool) {
    let bytes = if gzip {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(bytes).expect("in memory");
        enc.finish().expect("in memory")
    } else {
        bytes.to_vec()
    };
    std::fs::write(path, bytes).expect("the fuzz scratch folder is writable");
}

fn scratch() -> tempfile::TempDir {
    tempfile::tempdir().expect("a scratch folder")
}

/// Open a dataset, read its labels, match classes, visit every record and convert the first few
/// to a teacher's input (the resize is where a 0-pixel image used to panic).
fn exercise(path: &Path) {
    let Ok(mut source) = data::open(path) else {
        return;
    };
    let names: Vec<String> = (0..10).map(|c| format!("class{c}")).collect();
    let _ = source.match_classes(&names);
    let _ = source.labels();
    let _ = data::fingerprint(source.as_ref());
    let spec = preprocess::InputSpec {
        channels: 1,
        height: 7,
        width: 5,
        resize: preprocess::Resize::ShorterSide { size: 9 },
        normalization: preprocess::Normalization::MeanStd {
            mean: vec![0.5],
            std: vec![0.25],
        },
    };
    let mut converted = 0;
    let _ = source.visit(&Selection::All, true, &mut |r| {
        if converted < 4 {
            converted += 1;
            let _ = spec.convert(r.image.view());
            let _ = spec.with_size(3, 3).convert(r.image.view());
        }
        Ok(())
    });
}

/// An idx pair: byte 0 says which files are gzip (bit 0: images, bit 1: labels), a u16 gives
/// the labels file's length, then the labels file and the images file.
pub fn idx(input: &[u8]) {
    let mut b = Bytes(input);
    let flags = b.u8();
    let labels_len = b.u16() as usize;
    let labels = b.take(labels_len);
    let images = b.rest();
    let dir = scratch();
    let (gz_i, gz_l) = (flags & 1 != 0, flags & 2 != 0);
    let name = |stem: &str, gz: bool| {
        dir.path()
            .join(format!("{stem}{}", if gz { ".gz" } else { "" }))
    };
    let images_path = name("train-images-idx3-ubyte", gz_i);
    write(&images_path, images, gz_i);
    write(&name("train-labels-idx1-ubyte", gz_l), labels, gz_l);
    exercise(&images_path);
}

/// A CIFAR folder: byte 0 picks the file name (CIFAR-10 or -100), a u16 gives the length of the
/// class-names file (none when 0), then that file and the batch.
pub fn cifar(input: &[u8]) {
    let mut b = Bytes(input);
    let which = b.u8() % 3;
    let meta_len = b.u16() as usize;
    let meta = b.take(meta_len);
    let batch = b.rest();
    let dir = scratch();
    let (file, meta_name) = match which {
        0 => ("data_batch_1.bin", "batches.meta.txt"),
        1 => ("test_batch.bin", "batches.meta.txt"),
        _ => ("train.bin", "fine_label_names.txt"),
    };
    write(&dir.path().join(file), batch, false);
    if meta_len > 0 {
        write(&dir.path().join(meta_name), meta, false);
    }
    exercise(&dir.path().join(file));
    exercise(dir.path());
}

/// One PNG or JPEG through the image-folder loader: decoded from memory, then in a one-class
/// folder as a dataset.
pub fn image(input: &[u8]) {
    if let Ok(image) = data::folder::decode_bytes(input) {
        let spec = preprocess::InputSpec {
            channels: image.dim().0,
            height: 6,
            width: 4,
            resize: preprocess::Resize::Stretch,
            normalization: preprocess::Normalization::Baked,
        };
        let _ = spec.convert(image.view());
    }
    let dir = scratch();
    let class = dir.path().join("class3");
    std::fs::create_dir(&class).expect("scratch");
    write(&class.join("a.png"), input, false);
    exercise(dir.path());
}

/// An HDF5 input built from the bytes (a structured target: random bytes are almost never an
/// HDF5 file, and the layout checks are what is tested, not the HDF5 library): the shape of
/// `/images` (rank, dimensions up to 2^32), chunked or not, written or not, the type and length
/// of `/labels`, and a `class_names` attribute.
pub fn h5_layout(input: &[u8]) {
    let dir = scratch();
    let path = dir.path().join("d.h5");
    if h5_input(input, &path).is_ok() {
        exercise(&path);
    }
}

/// Most elements an `/images` shape may declare: far more than any fuzzed file stores (so it is
/// the reader's comparison with the file that refuses the shape, as for the 2^36 records
/// never written), and far below 2^64, so that neither hdf5-metno's unchecked product of the
/// extents (`SimpleExtents::size`: with debug assertions on it panicked on a shape whose product
/// passes 2^64, while this generator wrote its input) nor HDF5's own sizes overflow.
pub const MAX_DECLARED_ELEMENTS: u64 = 1 << 48;

/// The shape of `/images` from the bytes, and the byte of wide axes (bit 7: the pixels are
/// written): rank 2..=5 (3 and 4 are valid), small dimensions mostly and a wide one (up to 2^32,
/// where nothing is written) where `wide`'s bit says so. Each dimension is cut to what
/// keeps the running product within [`MAX_DECLARED_ELEMENTS`], with 0 counted as 1: a product
/// taken in any order (hdf5-metno's runs left to right) then never passes it before a 0 ends it.
fn h5_shape(b: &mut Bytes) -> (Vec<usize>, u8) {
    let rank = 2 + (b.u8() % 4) as usize;
    let wide = b.u8();
    let mut room = MAX_DECLARED_ELEMENTS;
    let shape: Vec<usize> = (0..rank)
        .map(|k| {
            let d = match wide & (1 << k) != 0 {
                true => u64::from(b.u32()),
                false => u64::from(b.u8() % 8),
            };
            let d = d.min(room);
            room /= d.max(1);
            d as usize
        })
        .collect();
    (shape, wide)
}

/// Writes the HDF5 input that [`h5_layout`] reads, from the fuzzer's bytes (public for the
/// suite, which checks what it makes).
pub fn h5_input(input: &[u8], path: &Path) -> hdf5::Result<()> {
    build_h5(path, &mut Bytes(input))
}

fn build_h5(path: &Path, b: &mut Bytes) -> hdf5::Result<()> {
    let file = crate::store::unlocked().create(path)?;
    let (mut shape, wide) = h5_shape(b);
    let chunked = b.u8() % 2 == 1 || wide & 0x80 == 0;
    if chunked && shape.contains(&0) {
        shape[0] = shape[0].max(1);
    }
    let elements = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    let written = wide & 0x80 != 0 && elements.is_some_and(|n| n <= 1 << 16);
    let mut images = file.new_dataset::<u8>().shape(shape.clone());
    if chunked {
        let chunk: Vec<usize> = shape.iter().map(|&d| d.clamp(1, 4)).collect();
        images = images.chunk(chunk);
    }
    let images = images.create("images")?;
    if written {
        let n: usize = shape.iter().product();
        let pixels: Vec<u8> = (0..n).map(|i| i as u8).collect();
        images.write_raw(&pixels)?;
    }
    let n_labels = match b.u8() % 3 {
        0 => shape[0].min(1 << 16),
        1 => shape[0].saturating_add(1).min(1 << 16),
        _ => (b.u8() % 8) as usize,
    };
    let label_bytes: Vec<u8> = (0..n_labels).map(|_| b.u8()).collect();
    match b.u8() % 3 {
        0 => {
            let v: Vec<u8> = label_bytes.clone();
            file.new_dataset_builder().with_data(&v).create("labels")?;
        }
        1 => {
            let v: Vec<i64> = label_bytes.iter().map(|&l| l as i8 as i64).collect();
            file.new_dataset_builder().with_data(&v).create("labels")?;
        }
        _ => {
            let v: Vec<f32> = label_bytes.iter().map(|&l| l as f32).collect();
            file.new_dataset_builder().with_data(&v).create("labels")?;
        }
    }
    let names = String::from_utf8_lossy(b.rest()).into_owned();
    if !names.is_empty() {
        let value: hdf5::types::VarLenUnicode = names.parse().unwrap_or_default();
        file.new_attr::<hdf5::types::VarLenUnicode>()
            .create("class_names")?
            .write_scalar(&value)?;
    }
    Ok(())
}

/// The shipped teacher's graph, decoded once: metadata fuzzing swaps only its metadata.
fn shipped_teacher() -> &'static OnnxFile {
    static TEACHER: OnceLock<OnnxFile> = OnceLock::new();
    TEACHER.get_or_init(|| {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/fmnist-convnet3.onnx");
        OnnxFile::read(&path).expect("the shipped teacher reads")
    })
}

/// Teacher metadata: the bytes as `key=value` lines (`infoutil.` is added to keys without it)
/// replace the shipped teacher's metadata, which is then read as a forward, gradient and
/// Grad-CAM graph's, and checked as a pair.
pub fn teacher_meta(input: &[u8]) {
    let text = String::from_utf8_lossy(input);
    let teacher = shipped_teacher();
    let mut proto = teacher.proto.clone();
    proto.metadata_props = text
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| tract_onnx::pb::StringStringEntryProto {
            key: match k.starts_with("infoutil.") {
                true => k.to_string(),
                false => format!("infoutil.{k}"),
            },
            value: v.to_string(),
        })
        .collect();
    let file = teacher.derived(proto);
    let forward = TeacherMeta::from_file(&file, "forward");
    for role in ["grad", "cam"] {
        if let (Ok(f), Ok(g)) = (&forward, TeacherMeta::from_file(&file, role)) {
            let _ = f.check_pair(&g, &file.path);
        }
    }
    let _ = GradMeta::from_file(&file);
    if let Some(raw) = file.metadata().get("infoutil.sibling_weights_sha256") {
        let _ = crate::teacher::binding::parse_siblings(raw);
    }
    if let Ok(meta) = forward {
        let _ = meta
            .input
            .convert(ndarray::Array3::<u8>::zeros((1, 3, 3)).view());
    }
}

/// An ONNX file as a teacher package is checked before any backend sees it: decoded, its
/// external data kept inside its folder (one 64-byte `w.bin` is there to be referenced), its
/// metadata read and its weights hashed.
pub fn onnx(input: &[u8]) {
    let dir = scratch();
    write(&dir.path().join("w.bin"), &[7; 64], false);
    let path = dir.path().join("t.onnx");
    let Ok(file) = OnnxFile::from_bytes(&path, input) else {
        return;
    };
    let _ = file.weights_sha256();
    let _ = file.weights_fp16_sha256();
    let _ = file.own_weights_sha256();
    let _ = file.input_names();
    if let Ok(meta) = TeacherMeta::from_file(&file, "forward") {
        let _ = file.dims(&meta.input_name);
    }
    let _ = GradMeta::from_file(&file);
}

/// A fuzz target: any bytes, no panic.
pub type Target = fn(&[u8]);

/// Every target, by the name of its folder under `fuzz/corpus/`.
pub const TARGETS: [(&str, Target); 6] = [
    ("idx", idx),
    ("cifar", cifar),
    ("image", image),
    ("h5_layout", h5_layout),
    ("teacher_meta", teacher_meta),
    ("onnx", onnx),
];
