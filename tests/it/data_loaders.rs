//! Dataset loaders against small files written here, byte by byte, in each format, plus the
//! embedded Fashion-MNIST subset.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use infoutil::data::{open, Record, Selection, Source, VisitReport};
use infoutil::Error;

use crate::common::Pixels;

// ---------- helpers ----------

fn visit_all(
    src: &mut dyn Source,
    sel: Selection,
    skip_bad: bool,
) -> Result<(Vec<Record>, VisitReport), Error> {
    let mut out = Vec::new();
    let report = src.visit(&sel, skip_bad, &mut |r| {
        out.push(r);
        Ok(())
    })?;
    Ok((out, report))
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// A deterministic, poorly compressible pixel value (so that cutting a gzip cuts the records).
fn pixel(i: usize, j: usize) -> u8 {
    // splitmix64's finaliser: every output bit depends on every input bit.
    let mut x = (i as u64) << 32 | j as u64;
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (x ^ (x >> 31)) as u8
}

fn idx_images(n: usize, h: usize, w: usize, magic: u32) -> Vec<u8> {
    let mut b = Vec::new();
    for v in [magic, n as u32, h as u32, w as u32] {
        b.extend(v.to_be_bytes());
    }
    for i in 0..n {
        b.extend((0..h * w).map(|j| pixel(i, j)));
    }
    b
}

fn idx_labels(labels: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend(2049u32.to_be_bytes());
    b.extend((labels.len() as u32).to_be_bytes());
    b.extend(labels);
    b
}

fn write(path: &Path, bytes: &[u8]) -> PathBuf {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
    path.to_path_buf()
}

fn err_text(r: Result<impl Sized, Error>) -> String {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

fn open_err(path: &Path) -> String {
    err_text(open(path).map(|_| ()))
}

// ---------- idx ----------

const IDX_LABELS: [u8; 5] = [3, 0, 7, 7, 1];

/// Writes an idx pair (raw or gzip) with 5 images of 3×4; returns the images path.
fn idx_pair(dir: &Path, gz: bool) -> PathBuf {
    let (images, labels) = (idx_images(5, 3, 4, 2051), idx_labels(&IDX_LABELS));
    if gz {
        write(&dir.join("labels-idx1-ubyte.gz"), &gzip(&labels));
        write(&dir.join("images-idx3-ubyte.gz"), &gzip(&images))
    } else {
        write(&dir.join("labels-idx1-ubyte"), &labels);
        write(&dir.join("images-idx3-ubyte"), &images)
    }
}

fn check_idx_records(src: &mut dyn Source) {
    assert_eq!(src.info().len, 5);
    assert_eq!(src.info().shape, Some([1, 3, 4]));
    assert_eq!(src.labels().unwrap(), vec![3, 0, 7, 7, 1]);
    let (all, report) = visit_all(src, Selection::All, false).unwrap();
    assert_eq!(report.delivered, 5);
    for (i, r) in all.iter().enumerate() {
        assert_eq!((r.index, r.label), (i, IDX_LABELS[i] as usize));
        assert_eq!(r.image.dim(), (1, 3, 4));
        let want: Vec<u8> = (0..12).map(|j| pixel(i, j)).collect();
        assert_eq!(
            r.image.iter().copied().collect::<Vec<_>>(),
            want,
            "record {i}"
        );
    }
    let (some, _) = visit_all(src, Selection::Indices(vec![1, 4]), false).unwrap();
    assert_eq!(some.iter().map(|r| r.index).collect::<Vec<_>>(), vec![1, 4]);
    assert_eq!(some[1].image, all[4].image);
    assert_eq!(some[0].label, 0);
}

#[test]
fn idx_raw_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let images = idx_pair(dir.path(), false);
    check_idx_records(open(&images).unwrap().as_mut());
}

#[test]
fn idx_gzip_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let images = idx_pair(dir.path(), true);
    check_idx_records(open(&images).unwrap().as_mut());
}

#[test]
fn idx_gzip_is_detected_by_magic_bytes_not_extension() {
    let dir = tempfile::tempdir().unwrap();
    write(
        &dir.path().join("x-labels-idx1-ubyte"),
        &gzip(&idx_labels(&IDX_LABELS)),
    );
    let images = write(
        &dir.path().join("x-images-idx3-ubyte"),
        &gzip(&idx_images(5, 3, 4, 2051)),
    );
    check_idx_records(open(&images).unwrap().as_mut());
}

#[test]
fn idx_folder_means_the_training_split() {
    let dir = tempfile::tempdir().unwrap();
    write(
        &dir.path().join("train-labels-idx1-ubyte.gz"),
        &gzip(&idx_labels(&IDX_LABELS)),
    );
    write(
        &dir.path().join("train-images-idx3-ubyte.gz"),
        &gzip(&idx_images(5, 3, 4, 2051)),
    );
    // A test split next to it must not be picked up.
    write(
        &dir.path().join("t10k-labels-idx1-ubyte.gz"),
        &gzip(&idx_labels(&[1])),
    );
    write(
        &dir.path().join("t10k-images-idx3-ubyte.gz"),
        &gzip(&idx_images(1, 3, 4, 2051)),
    );
    let mut src = open(dir.path()).unwrap();
    assert!(src.info().path.ends_with("train-images-idx3-ubyte.gz"));
    check_idx_records(src.as_mut());
}

#[test]
fn idx_truncated_gzip_is_caught_at_open_with_the_record() {
    let dir = tempfile::tempdir().unwrap();
    let n = 20;
    write(
        &dir.path().join("labels-idx1-ubyte.gz"),
        &gzip(&idx_labels(&[0; 20])),
    );
    let full = gzip(&idx_images(n, 28, 28, 2051));
    let images = write(
        &dir.path().join("images-idx3-ubyte.gz"),
        &full[..full.len() / 2],
    );
    // The header is intact; the whole stream is read through at open, so the cut shows there.
    {
        let msg = open(&images)
            .err()
            .expect("a cut gzip file is refused")
            .to_string();
        assert!(msg.contains(&images.display().to_string()), "{msg}");
        let record: usize = msg
            .split("record ")
            .nth(1)
            .and_then(|t| t.split_whitespace().next())
            .and_then(|t| t.parse().ok())
            .unwrap_or_else(|| panic!("no record number in: {msg}"));
        assert!(
            (5..15).contains(&record),
            "half the data should run out mid-file: {msg}"
        );
        assert!(msg.contains("of 20"), "{msg}");
    }
}

#[test]
fn idx_truncated_raw_file_is_caught_at_open_with_the_record() {
    let dir = tempfile::tempdir().unwrap();
    write(
        &dir.path().join("labels-idx1-ubyte"),
        &idx_labels(&IDX_LABELS),
    );
    let full = idx_images(5, 3, 4, 2051);
    // Header 16 bytes + 2 whole images (24 bytes) + 5 bytes of the third.
    let images = write(&dir.path().join("images-idx3-ubyte"), &full[..16 + 24 + 5]);
    let msg = open_err(&images);
    assert!(msg.contains(&images.display().to_string()), "{msg}");
    assert!(msg.contains("record 2 of 5"), "{msg}");
}

#[test]
fn idx_wrong_magic_says_found_and_expected() {
    let dir = tempfile::tempdir().unwrap();
    write(
        &dir.path().join("labels-idx1-ubyte"),
        &idx_labels(&IDX_LABELS),
    );
    let images = write(
        &dir.path().join("images-idx3-ubyte"),
        &idx_images(5, 3, 4, 2049),
    );
    let msg = open_err(&images);
    assert!(msg.contains(&images.display().to_string()), "{msg}");
    assert!(
        msg.contains("found 2049") && msg.contains("expected 2051"),
        "{msg}"
    );
}

#[test]
fn idx_count_mismatch_names_both_files() {
    let dir = tempfile::tempdir().unwrap();
    let labels = write(
        &dir.path().join("labels-idx1-ubyte"),
        &idx_labels(&IDX_LABELS[..4]),
    );
    let images = write(
        &dir.path().join("images-idx3-ubyte"),
        &idx_images(5, 3, 4, 2051),
    );
    let msg = open_err(&images);
    assert!(msg.contains(&images.display().to_string()), "{msg}");
    assert!(msg.contains(&labels.display().to_string()), "{msg}");
    assert!(
        msg.contains("5 images") && msg.contains("4 labels"),
        "{msg}"
    );
}

#[test]
fn bad_selections_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let mut src = open(&idx_pair(dir.path(), false)).unwrap();
    let msg = err_text(visit_all(
        src.as_mut(),
        Selection::Indices(vec![3, 1]),
        true,
    ));
    assert!(msg.contains("not sorted"), "{msg}");
    let msg = err_text(visit_all(
        src.as_mut(),
        Selection::Indices(vec![1, 5]),
        true,
    ));
    assert!(msg.contains("index 5 is out of range (5 records)"), "{msg}");
}

// ---------- CIFAR ----------

/// A CIFAR record: label bytes, then 3072 pixels derived from `seed`.
fn cifar_record(labels: &[u8], seed: usize) -> Vec<u8> {
    let mut r = labels.to_vec();
    r.extend((0..3072).map(|j| pixel(seed, j)));
    r
}

#[test]
fn cifar10_folder_reads_batches_in_number_order() {
    let dir = tempfile::tempdir().unwrap();
    // Batch 10 sorts before batch 2 by name; by number it comes last.
    let batches = [(1, vec![4u8, 9, 0]), (2, vec![2, 2]), (10, vec![5])];
    let mut seed = 0;
    for (k, labels) in &batches {
        let bytes: Vec<u8> = labels
            .iter()
            .flat_map(|&l| {
                seed += 1;
                cifar_record(&[l], seed - 1)
            })
            .collect();
        write(&dir.path().join(format!("data_batch_{k}.bin")), &bytes);
    }
    write(&dir.path().join("test_batch.bin"), &cifar_record(&[1], 99));
    let names: Vec<String> = (0..10).map(|c| format!("class{c}")).collect();
    write(
        &dir.path().join("batches.meta.txt"),
        format!("{}\n\n", names.join("\n")).as_bytes(),
    );

    let mut src = open(dir.path()).unwrap();
    assert_eq!(src.info().len, 6);
    assert_eq!(src.info().shape, Some([3, 32, 32]));
    assert_eq!(src.info().class_names.as_ref(), Some(&names));
    assert_eq!(src.labels().unwrap(), vec![4, 9, 0, 2, 2, 5]);
    let (all, _) = visit_all(src.as_mut(), Selection::All, false).unwrap();
    for (i, r) in all.iter().enumerate() {
        let want: Vec<u8> = (0..3072).map(|j| pixel(i, j)).collect();
        assert_eq!(r.image.as_slice().unwrap(), want.as_slice(), "record {i}");
        // CHW: the first pixel of the green plane is byte 1024 of the record's pixels.
        assert_eq!(r.image[[1, 0, 0]], pixel(i, 1024));
    }
    let (some, _) = visit_all(src.as_mut(), Selection::Indices(vec![2, 3, 5]), false).unwrap();
    assert_eq!(
        some.iter().map(|r| (r.index, r.label)).collect::<Vec<_>>(),
        vec![(2, 0), (3, 2), (5, 5)]
    );
    assert_eq!(some[2].image, all[5].image);
}

#[test]
fn cifar100_uses_the_fine_label() {
    let dir = tempfile::tempdir().unwrap();
    let bytes: Vec<u8> = [[3u8, 77], [19, 0], [0, 99]]
        .iter()
        .enumerate()
        .flat_map(|(i, l)| cifar_record(l, i))
        .collect();
    let path = write(&dir.path().join("test.bin"), &bytes);
    let mut src = open(&path).unwrap();
    assert_eq!(src.labels().unwrap(), vec![77, 0, 99]);
    let (recs, _) = visit_all(src.as_mut(), Selection::Indices(vec![2]), false).unwrap();
    assert_eq!((recs[0].index, recs[0].label), (2, 99));
    assert_eq!(recs[0].image[[2, 31, 31]], pixel(2, 3071));
    // A folder with train.bin is CIFAR-100's training set.
    write(&dir.path().join("train.bin"), &bytes[..3074]);
    assert_eq!(open(dir.path()).unwrap().labels().unwrap(), vec![77]);
}

#[test]
fn cifar_truncated_file_names_the_cut_record() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes: Vec<u8> = (0..3).flat_map(|i| cifar_record(&[1], i)).collect();
    bytes.truncate(2 * 3073 + 100);
    let path = write(&dir.path().join("data_batch_1.bin"), &bytes);
    let msg = open_err(&path);
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(msg.contains("record 2 is cut after 100 bytes"), "{msg}");
}

#[test]
fn cifar_label_out_of_range_is_a_record_error_that_skip_bad_skips() {
    let dir = tempfile::tempdir().unwrap();
    let bytes: Vec<u8> = [1u8, 10, 3]
        .iter()
        .enumerate()
        .flat_map(|(i, &l)| cifar_record(&[l], i))
        .collect();
    let path = write(&dir.path().join("test_batch.bin"), &bytes);
    let mut src = open(&path).unwrap();
    let msg = err_text(visit_all(src.as_mut(), Selection::All, false));
    assert!(
        msg.contains(&format!("{}, record 1", path.display())),
        "{msg}"
    );
    assert!(
        msg.contains("label 10 is out of range for 10 classes"),
        "{msg}"
    );

    let (recs, report) = visit_all(src.as_mut(), Selection::All, true).unwrap();
    assert_eq!(recs.iter().map(|r| r.index).collect::<Vec<_>>(), vec![0, 2]);
    assert_eq!((report.delivered, report.skipped), (2, 1));
    assert!(report.skipped_examples[0].contains("record 1"));

    let bytes100 = cifar_record(&[0, 100], 0);
    let path100 = write(&dir.path().join("train.bin"), &bytes100);
    let msg = err_text(visit_all(
        open(&path100).unwrap().as_mut(),
        Selection::All,
        false,
    ));
    assert!(
        msg.contains("record 0") && msg.contains("label 100 is out of range for 100"),
        "{msg}"
    );
}

#[test]
fn cifar_file_name_must_tell_the_variant() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir.path().join("batch.bin"), &cifar_record(&[1], 0));
    let msg = open_err(&path);
    assert!(
        msg.contains("batch.bin") && msg.contains("CIFAR-100"),
        "{msg}"
    );
}

// ---------- ImageFolder ----------

/// Every (x, y, channel) of `p`.
fn every(p: &Pixels) -> impl Iterator<Item = (u32, u32, usize)> + '_ {
    (0..p.height)
        .flat_map(move |y| (0..p.width).flat_map(move |x| (0..p.channels).map(move |c| (x, y, c))))
}

fn rgb_pattern(w: u32, h: u32) -> Pixels {
    Pixels::from_fn(w, h, 3, |x, y| vec![(x * 40) as u8, (y * 50) as u8, 200])
}

#[test]
fn image_folder_reads_png_and_jpeg_grey_and_colour() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("cat")).unwrap();
    std::fs::create_dir_all(root.join("dog")).unwrap();
    std::fs::create_dir_all(root.join(".hidden")).unwrap();
    let rgb = rgb_pattern(5, 3);
    rgb.save(&root.join("cat/b.png"));
    let grey = Pixels::from_fn(4, 2, 1, |x, y| vec![(x * 10 + y * 100) as u8]);
    grey.save(&root.join("cat/a.PNG"));
    let rgba = Pixels::from_fn(2, 2, 4, |x, y| vec![x as u8, y as u8, 7, 9]);
    rgba.save(&root.join("cat/c.png"));
    // Smooth content so that JPEG's loss stays small.
    let smooth = Pixels::from_fn(16, 16, 3, |x, y| vec![100 + x as u8, 120, 140 + y as u8]);
    smooth.save(&root.join("dog/x.JPG"));
    Pixels::from_fn(8, 8, 1, |_, _| vec![90]).save(&root.join("dog/y.jpeg"));
    write(&root.join("dog/notes.txt"), b"not an image");

    let mut src = open(root).unwrap();
    let names = vec!["cat".to_string(), "dog".to_string()];
    assert_eq!(src.info().class_names.as_ref(), Some(&names));
    assert_eq!(src.info().len, 5);
    assert_eq!(src.info().shape, None);
    assert_eq!(src.labels().unwrap(), vec![0, 0, 0, 1, 1]);
    let (recs, _) = visit_all(src.as_mut(), Selection::All, false).unwrap();

    assert_eq!(recs[0].image.dim(), (1, 2, 4)); // a.PNG, grey
    assert_eq!(recs[0].image[[0, 1, 3]], 130);
    assert_eq!(recs[1].image.dim(), (3, 3, 5)); // b.png, colour, exact
    for (x, y, c) in every(&rgb) {
        assert_eq!(recs[1].image[[c, y as usize, x as usize]], rgb.get(x, y, c));
    }
    assert_eq!(recs[2].image.dim(), (3, 2, 2)); // c.png, alpha dropped
    assert_eq!(recs[2].image[[0, 1, 1]], 1);
    assert_eq!(recs[2].image[[2, 1, 1]], 7);
    assert_eq!(recs[3].image.dim(), (3, 16, 16)); // x.JPG, approximately
    for (x, y, c) in every(&smooth) {
        let (got, want) = (
            recs[3].image[[c, y as usize, x as usize]],
            smooth.get(x, y, c),
        );
        assert!(
            got.abs_diff(want) <= 8,
            "jpeg pixel {x},{y},{c}: {got} vs {want}"
        );
    }
    assert_eq!(recs[4].image.dim(), (1, 8, 8)); // y.jpeg, grey
    assert!(recs[4].image.iter().all(|&v| (v as i32 - 90).abs() <= 2));

    let (some, _) = visit_all(src.as_mut(), Selection::Indices(vec![1, 3]), false).unwrap();
    assert_eq!(
        some.iter().map(|r| (r.index, r.label)).collect::<Vec<_>>(),
        vec![(1, 0), (3, 1)]
    );
    assert_eq!(some[0].image, recs[1].image);
}

#[test]
fn image_folder_delivers_records_in_order_across_decoding_chunks() {
    // More images than one parallel decoding chunk (64), each recognisable by its size, with a
    // bad one in the second chunk: records arrive in index order, the bad one skipped or named.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("a")).unwrap();
    std::fs::create_dir_all(root.join("b")).unwrap();
    let n = 150;
    for i in 0..n {
        let class = if i < 90 { "a" } else { "b" };
        let path = root.join(format!("{class}/{i:03}.png"));
        if i == 100 {
            write(&path, b"not a png");
        } else {
            rgb_pattern(1 + i as u32 % 13, 1 + i as u32 / 13).save(&path);
        }
    }
    let mut src = open(root).unwrap();
    let (recs, report) = visit_all(src.as_mut(), Selection::All, true).unwrap();
    let want: Vec<usize> = (0..n).filter(|&i| i != 100).collect();
    assert_eq!(recs.iter().map(|r| r.index).collect::<Vec<_>>(), want);
    for r in &recs {
        let (_, h, w) = r.image.dim();
        assert_eq!(
            (w, h),
            (1 + r.index % 13, 1 + r.index / 13),
            "record {}",
            r.index
        );
        assert_eq!(r.label, usize::from(r.index >= 90));
    }
    assert_eq!((report.delivered, report.skipped), (n - 1, 1));
    let msg = err_text(visit_all(src.as_mut(), Selection::All, false));
    assert!(msg.contains("100.png, record 100"), "{msg}");
}

#[test]
fn image_folder_corrupt_image_is_a_record_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("a")).unwrap();
    rgb_pattern(2, 2).save(&root.join("a/1.png"));
    let bad = write(&root.join("a/2.png"), b"\x89PNG\r\n\x1a\n garbage");
    rgb_pattern(3, 3).save(&root.join("a/3.png"));
    let mut src = open(root).unwrap();
    let msg = err_text(visit_all(src.as_mut(), Selection::All, false));
    assert!(
        msg.contains(&format!("{}, record 1", bad.display())),
        "{msg}"
    );
    assert!(msg.contains("unreadable image"), "{msg}");
    let (recs, report) = visit_all(src.as_mut(), Selection::All, true).unwrap();
    assert_eq!(recs.iter().map(|r| r.index).collect::<Vec<_>>(), vec![0, 2]);
    assert_eq!((report.delivered, report.skipped), (2, 1));
}

#[test]
fn an_empty_folder_is_an_error_saying_what_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let msg = open_err(dir.path());
    assert!(
        msg.contains("root/<class>/<image>") && msg.contains("data_batch_"),
        "{msg}"
    );
}

// ---------- HDF5 ----------

fn write_h5(path: &Path, images: ndarray::ArrayViewD<u8>, labels: &[i32], names: Option<&str>) {
    let f = hdf5::File::create(path).unwrap();
    f.new_dataset_builder()
        .with_data(&images)
        .create("images")
        .unwrap();
    f.new_dataset_builder()
        .with_data(labels)
        .create("labels")
        .unwrap();
    if let Some(names) = names {
        let v: hdf5::types::VarLenUnicode = names.parse().unwrap();
        f.new_attr::<hdf5::types::VarLenUnicode>()
            .shape(())
            .create("class_names")
            .unwrap()
            .write_scalar(&v)
            .unwrap();
    }
}

#[test]
fn hdf5_nchw_round_trips_with_class_names() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.h5");
    let images =
        ndarray::Array4::from_shape_fn((4, 3, 2, 5), |(i, c, y, x)| pixel(i, c * 10 + y * 5 + x));
    write_h5(
        &path,
        images.view().into_dyn(),
        &[2, 0, 1, 2],
        Some(r#"["a","b","c"]"#),
    );
    let mut src = open(&path).unwrap();
    assert_eq!(src.info().len, 4);
    assert_eq!(src.info().shape, Some([3, 2, 5]));
    assert_eq!(
        src.info().class_names,
        Some(vec!["a".into(), "b".into(), "c".into()])
    );
    assert_eq!(src.labels().unwrap(), vec![2, 0, 1, 2]);
    let (all, _) = visit_all(src.as_mut(), Selection::All, false).unwrap();
    for (i, r) in all.iter().enumerate() {
        assert_eq!(
            r.image,
            images.index_axis(ndarray::Axis(0), i),
            "record {i}"
        );
    }
    let (some, _) = visit_all(src.as_mut(), Selection::Indices(vec![0, 3]), false).unwrap();
    assert_eq!(
        some.iter().map(|r| (r.index, r.label)).collect::<Vec<_>>(),
        vec![(0, 2), (3, 2)]
    );
    assert_eq!(some[1].image, images.index_axis(ndarray::Axis(0), 3));
}

#[test]
fn hdf5_nhw_is_one_channel_and_blocks_split_correctly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.hdf5");
    // 256 KiB images: a 16 MiB block holds 64 of them, so 150 records span three blocks.
    let n = 150;
    let images = ndarray::Array3::from_shape_fn((n, 512, 512), |(i, y, x)| pixel(i, y * 512 + x));
    let labels: Vec<i32> = (0..n as i32).map(|i| i % 7).collect();
    write_h5(&path, images.view().into_dyn(), &labels, None);
    let mut src = open(&path).unwrap();
    assert_eq!(src.info().shape, Some([1, 512, 512]));
    assert_eq!(src.info().class_names, None);
    let pick = vec![0, 63, 64, 65, 127, 128, 149];
    let (some, _) = visit_all(src.as_mut(), Selection::Indices(pick.clone()), false).unwrap();
    assert_eq!(some.iter().map(|r| r.index).collect::<Vec<_>>(), pick);
    for r in &some {
        assert_eq!(r.label, r.index % 7);
        assert_eq!(
            r.image.index_axis(ndarray::Axis(0), 0),
            images.index_axis(ndarray::Axis(0), r.index)
        );
    }
    let mut count = 0;
    src.visit(&Selection::All, false, &mut |r| {
        assert_eq!(r.index, count);
        assert_eq!(r.image[[0, 511, 511]], pixel(count, 512 * 512 - 1));
        count += 1;
        Ok(())
    })
    .unwrap();
    assert_eq!(count, n);
}

#[test]
fn hdf5_bad_inputs_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let mismatch = dir.path().join("m.h5");
    write_h5(
        &mismatch,
        ndarray::Array3::<u8>::zeros((3, 2, 2)).view().into_dyn(),
        &[0, 1],
        None,
    );
    let msg = open_err(&mismatch);
    assert!(
        msg.contains("m.h5") && msg.contains("3 images") && msg.contains("2 labels"),
        "{msg}"
    );

    let negative = dir.path().join("n.h5");
    write_h5(
        &negative,
        ndarray::Array3::<u8>::zeros((3, 2, 2)).view().into_dyn(),
        &[0, -4, 1],
        None,
    );
    let mut src = open(&negative).unwrap();
    let msg = err_text(visit_all(src.as_mut(), Selection::All, false));
    assert!(
        msg.contains("n.h5, record 1") && msg.contains("label -4"),
        "{msg}"
    );
    let (recs, report) = visit_all(src.as_mut(), Selection::All, true).unwrap();
    assert_eq!((recs.len(), report.skipped), (2, 1));

    let names = dir.path().join("c.h5");
    write_h5(
        &names,
        ndarray::Array3::<u8>::zeros((1, 2, 2)).view().into_dyn(),
        &[0],
        Some("a,b"),
    );
    let msg = open_err(&names);
    assert!(msg.contains("c.h5") && msg.contains("JSON list"), "{msg}");
}

// ---------- dispatch ----------

#[test]
fn unknown_file_says_what_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir.path().join("notes.txt"), b"hello");
    let msg = open_err(&path);
    assert!(
        msg.contains("notes.txt") && msg.contains("idx") && msg.contains(".h5"),
        "{msg}"
    );
    let missing = open_err(&dir.path().join("nope.h5"));
    assert!(missing.contains("nope.h5"), "{missing}");
}

// ---------- the embedded Fashion-MNIST subset ----------

#[test]
fn embedded_fashion_mnist_test_split() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/fashion-mnist-mini");
    let mut src = open(&root.join("t10k-images-idx3-ubyte.gz")).unwrap();
    assert_eq!(src.info().len, 1000);
    assert_eq!(src.info().shape, Some([1, 28, 28]));

    // The first label, read here straight from the labels file: byte 8 after the idx header.
    let mut raw = Vec::new();
    flate2::read::GzDecoder::new(
        std::fs::File::open(root.join("t10k-labels-idx1-ubyte.gz")).unwrap(),
    )
    .read_to_end(&mut raw)
    .unwrap();
    assert_eq!(raw[8], 9, "Ankle boot");

    let labels = src.labels().unwrap();
    assert_eq!(labels[0], 9);
    let mut counts = [0; 10];
    labels.iter().for_each(|&l| counts[l] += 1);
    assert_eq!(counts, [100; 10]);

    let (recs, report) = visit_all(src.as_mut(), Selection::All, false).unwrap();
    assert_eq!(report.delivered, 1000);
    assert!(recs
        .iter()
        .enumerate()
        .all(|(i, r)| r.index == i && r.label == raw[8 + i] as usize));
    assert!(
        recs[0].image.iter().any(|&p| p > 0),
        "a real image is not blank"
    );
}

fn strings(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

#[test]
fn class_folders_match_the_teachers_names_not_their_sorted_position() {
    use infoutil::data::folder::match_folders;
    let classes = strings(&["T-shirt/top", "Trouser", "Ankle boot", "Bag"]);
    // Sorted folder order differs from the teacher's; "/" cannot be in a folder name.
    let folders = strings(&["Ankle boot", "Bag", "Trouser", "t-shirt_top"]);
    assert_eq!(match_folders(&folders, &classes).unwrap(), vec![2, 3, 1, 0]);
    // Numbers: a missing class shifts nothing, and "10" sorting before "2" changes nothing.
    let classes: Vec<String> = (0..11).map(|c| format!("class {c}")).collect();
    let folders = strings(&["0", "1", "10", "3"]);
    assert_eq!(
        match_folders(&folders, &classes).unwrap(),
        vec![0, 1, 10, 3]
    );
}

#[test]
fn class_folders_that_match_nothing_or_twice_are_refused() {
    use infoutil::data::folder::match_folders;
    let classes = strings(&["cat", "dog"]);
    let msg = match_folders(&strings(&["cat", "wolf"]), &classes).unwrap_err();
    assert!(
        msg.contains("wolf") && msg.contains("cat, dog") && msg.contains("0–1"),
        "{msg}"
    );
    let msg = match_folders(&strings(&["2"]), &classes).unwrap_err();
    assert!(msg.contains("match no class: 2"), "{msg}");
    let msg = match_folders(&strings(&["Cat", "cat "]), &classes).unwrap_err();
    assert!(msg.contains("both mean class 0"), "{msg}");
}

#[test]
fn an_image_folder_takes_the_teachers_class_numbers_and_records_them() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for (folder, n) in [("dog", 2), ("cat", 1)] {
        std::fs::create_dir_all(root.join(folder)).unwrap();
        for i in 0..n {
            rgb_pattern(3, 3).save(&root.join(format!("{folder}/{i}.png")));
        }
    }
    let teacher = strings(&["dog", "cat"]);
    let src = infoutil::data::open_for(root, &teacher).unwrap();
    let mut src = src;
    // Records in folder order (cat, then dog); labels are the teacher's numbers.
    assert_eq!(src.labels().unwrap(), vec![1, 0, 0]);
    let map = src.info().class_map.clone().unwrap();
    assert_eq!(map, vec![("cat".to_string(), 1), ("dog".to_string(), 0)]);
    let (recs, _) = visit_all(src.as_mut(), Selection::All, false).unwrap();
    assert_eq!(
        recs.iter().map(|r| r.label).collect::<Vec<_>>(),
        vec![1, 0, 0]
    );
}

#[test]
fn idx_fingerprint_follows_the_content_not_the_folder() {
    // The labels file beside an idx images file once entered the hash by its full path, so the
    // same dataset in another folder (a checkout, an installed wheel) looked like another one.
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let fingerprint = |images: &Path| infoutil::data::fingerprint(open(images).unwrap().as_ref());
    let (in_a, in_b) = (idx_pair(a.path(), true), idx_pair(b.path(), true));
    assert_eq!(fingerprint(&in_a).unwrap(), fingerprint(&in_b).unwrap());
    let mut labels = IDX_LABELS;
    labels[0] = (labels[0] + 1) % 10;
    write(
        &b.path().join("labels-idx1-ubyte.gz"),
        &gzip(&idx_labels(&labels)),
    );
    assert_ne!(fingerprint(&in_a).unwrap(), fingerprint(&in_b).unwrap());
}
