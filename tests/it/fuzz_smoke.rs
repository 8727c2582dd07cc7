//! The fuzz targets' smoke run, in the suite: the saved corpus (`fuzz/corpus/`), every input a
//! fuzzer once crashed on (`fuzz/regressions/`), and seeded mutations of both go through the
//! same functions the coverage-guided targets call (`infoutil::fuzz`), so a fault found once
//! stays found without an instrumented build. Generators of hostile inputs, one per mechanism:
//! idx headers (sizes from a file), output paths (the output policy).

use std::path::{Path, PathBuf};

use infoutil::fuzz::TARGETS;
use proptest::prelude::*;
use rand::{Rng, SeedableRng};

use crate::common::repo;

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| Some(e.ok()?.path())).collect())
        .unwrap_or_default();
    files.sort();
    files
}

/// Small damage of the kinds a disk, a download or a person makes: flipped bytes, a cut, bytes
/// set to 0 or 0xFF, a run repeated.
fn mutate(bytes: &[u8], rng: &mut rand::rngs::StdRng) -> Vec<u8> {
    let mut b = bytes.to_vec();
    for _ in 0..rng.random_range(1..4) {
        if b.is_empty() {
            b.push(rng.random());
            continue;
        }
        let at = rng.random_range(0..b.len());
        match rng.random_range(0..5) {
            0 => b[at] ^= 1 << rng.random_range(0..8),
            1 => b.truncate(at),
            2 => b[at] = 0,
            3 => b[at] = 0xFF,
            _ => {
                let run = b[at..].iter().take(8).copied().collect::<Vec<_>>();
                b.splice(at..at, run);
            }
        }
    }
    b
}

#[test]
fn every_fuzz_target_survives_its_corpus_its_regressions_and_their_mutations() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(32);
    for (name, target) in TARGETS {
        let mut inputs = files_in(&repo(&format!("fuzz/corpus/{name}")));
        assert!(!inputs.is_empty(), "fuzz/corpus/{name} is empty");
        inputs.extend(files_in(&repo(&format!("fuzz/regressions/{name}"))));
        for path in inputs {
            let bytes = std::fs::read(&path).unwrap();
            target(&bytes);
            // Onnx seeds are large and their decoding slow; fewer mutations of them.
            let rounds = if name == "onnx" { 3 } else { 25 };
            for _ in 0..rounds {
                target(&mutate(&bytes, &mut rng));
            }
        }
    }
}

/// An idx images header: magic, then dimensions drawn from the values that break arithmetic
/// (0, 1, 2^16, 2^32 − 1) and small ones, over a body of a few bytes.
fn idx_header() -> impl Strategy<Value = (u32, [u32; 3], usize)> {
    let dim = prop_oneof![Just(0u32), Just(1), Just(1 << 16), Just(u32::MAX), 0u32..40];
    (
        prop_oneof![Just(2051u32), any::<u32>()],
        [dim.clone(), dim.clone(), dim],
        0usize..2000,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Sizes from a file: whatever the header says, opening the pair either refuses it or holds
    /// only sizes the file backs (no wrap, no allocation past the file, no 0-pixel image).
    #[test]
    fn idx_headers_are_refused_or_backed_by_the_file(
        (magic, [n, rows, cols], body) in idx_header(),
        gzip in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut images = Vec::new();
        for word in [magic, n, rows, cols] {
            images.extend(word.to_be_bytes());
        }
        images.extend((0..body).map(|i| i as u8));
        let mut labels = 2049u32.to_be_bytes().to_vec();
        labels.extend(n.to_be_bytes());
        labels.extend((0..body.min(n as usize)).map(|i| (i % 10) as u8));
        let mut input = vec![if gzip { 3 } else { 0 }];
        input.extend((labels.len() as u16).to_le_bytes());
        input.extend(&labels);
        input.extend(&images);
        infoutil::fuzz::idx(&input);
        // And directly, to look at what was accepted.
        std::fs::write(dir.path().join("train-images-idx3-ubyte"), &images).unwrap();
        std::fs::write(dir.path().join("train-labels-idx1-ubyte"), &labels).unwrap();
        if let Ok(src) = infoutil::data::open(&dir.path().join("train-images-idx3-ubyte")) {
            let [c, h, w] = src.info().shape.unwrap();
            prop_assert!(h >= 1 && w >= 1 && c == 1);
            prop_assert!((src.info().len * h * w) as u64 + 16 <= images.len() as u64);
        }
    }
}

/// The `/images` shape of the HDF5 input `h5_layout` wrote at `path`, and whether every prefix
/// of its product (0 counted as 1) stays within what the generator may declare.
fn declared_shape(path: &Path) -> (Vec<usize>, bool) {
    let file = hdf5::File::open(path).unwrap();
    let shape = file.dataset("images").unwrap().shape();
    let fits = shape
        .iter()
        .try_fold(1u64, |a, &d| a.checked_mul(d.max(1) as u64))
        .is_some_and(|n| n <= infoutil::fuzz::MAX_DECLARED_ELEMENTS);
    (shape, fits)
}

/// The `h5_layout` target's own generator (its finding in the first real round): an input whose
/// shape's element count passes 2^64 made hdf5-metno's `SimpleExtents::size` overflow while the
/// target *wrote* the file (a panic with debug assertions, a wrapped size without). Every saved
/// input and 300 random ones now build a file (the generator must not give up, or HDF5's reader,
/// the point of the target, is not fuzzed) whose shape fits, and the regression's file (five
/// axes, one of them 0) reaches the reader, which refuses it naming the file.
#[test]
fn h5_layout_writes_only_shapes_hdf5_can_count_and_reaches_the_reader() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.h5");
    let mut inputs: Vec<Vec<u8>> = ["corpus", "regressions"]
        .iter()
        .flat_map(|k| files_in(&repo(&format!("fuzz/{k}/h5_layout"))))
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let saved = inputs.len();
    inputs.extend((0..300).map(|_| {
        let n = rng.random_range(0..48);
        (0..n).map(|_| rng.random()).collect::<Vec<u8>>()
    }));
    let mut built = 0;
    for (i, input) in inputs.iter().enumerate() {
        let made = infoutil::fuzz::h5_input(input, &path);
        assert!(i >= saved || made.is_ok(), "{input:?}: {made:?}");
        if made.is_ok() {
            built += 1;
            let (shape, fits) = declared_shape(&path);
            assert!(fits, "{input:?} declared {shape:?}");
        }
        std::fs::remove_file(&path).ok();
    }
    assert!(
        built >= saved + 270,
        "{built} of {} inputs built",
        inputs.len()
    );
    let regression =
        repo("fuzz/regressions/h5_layout/crash-df416efe506f69aa3e1d04894271ae20f5b341f3");
    infoutil::fuzz::h5_input(&std::fs::read(regression).unwrap(), &path).unwrap();
    assert_eq!(declared_shape(&path).0.len(), 5);
    let e = infoutil::data::open(&path).err().expect("refused");
    let e = e.to_string();
    assert!(e.contains(path.to_str().unwrap()), "{e}");
}

/// What an output path can be that must never be written: every kind of non-file, a link to
/// one, an input, another output of the same run, a name too long for its temporary, a missing
/// folder. Each is refused by the one policy before any work, naming the option.
#[test]
fn hostile_output_paths_are_refused_by_the_one_policy() {
    use std::os::unix::net::UnixListener;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let fifo = d.join("fifo");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let _socket = UnixListener::bind(d.join("sock")).unwrap();
    std::os::unix::fs::symlink("/dev/null", d.join("null-link")).unwrap();
    std::fs::create_dir(d.join("folder")).unwrap();
    let input = d.join("data.gz");
    std::fs::write(&input, b"x").unwrap();
    std::os::unix::fs::symlink(&input, d.join("input-link")).unwrap();
    let long = d.join(format!("{}.h5", "a".repeat(246)));
    let cases: [(&str, PathBuf, &str); 9] = [
        ("--out", PathBuf::from("/dev/null"), "is a device"),
        ("--out", PathBuf::from("/dev/stdout"), "is "), // a pipe, a terminal or a log file
        ("--out", fifo, "named pipe"),
        ("--png", d.join("sock"), "socket"),
        ("--png", d.join("null-link"), "is a device"),
        ("--out", d.join("folder"), "is a folder"),
        ("--out", d.join("input-link"), "is an input"),
        ("--out", long, "temporary name"),
        ("--out", d.join("missing/x.h5"), "does not exist"),
    ];
    for (option, path, expect) in cases {
        let e = infoutil::outputs::check(&[(option, &path)], std::slice::from_ref(&input))
            .expect_err(&format!("{} was accepted", path.display()))
            .to_string();
        assert!(e.starts_with(option) && e.contains(expect), "{path:?}: {e}");
    }
    // Two outputs that are one file, through another spelling.
    let out = d.join("r.png");
    let same = d.join("folder/../r.png");
    let e = infoutil::outputs::check(&[("--out", &out), ("--png", &same)], &[]).unwrap_err();
    assert!(e.to_string().contains("is also this run's --out"), "{e}");
    infoutil::outputs::check(&[("--out", &d.join("r.h5")), ("--png", &out)], &[]).unwrap();
}
