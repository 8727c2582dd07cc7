//! The examples of issue 32, each checked at the mechanism that now owns its class of fault
//! (docs/reliability.md, "Mechanisms"): sizes from files (`input`), the output policy
//! (`outputs`), class names (`data::class_names`), teacher packages (`teacher::meta`,
//! `teacher::probe`), options a method ignores. The generators that look for cases nobody
//! listed are in `fuzz_smoke.rs`.

use std::path::Path;

use ndarray::Array4;

use crate::common::*;
use infoutil::teacher::BackendChoice;

fn idx_pair(dir: &Path, [n, rows, cols]: [u32; 3], body: usize, gzip: bool) {
    let mut images: Vec<u8> = [2051, n, rows, cols]
        .iter()
        .flat_map(|w: &u32| w.to_be_bytes())
        .collect();
    images.extend(std::iter::repeat_n(7u8, body));
    let mut labels: Vec<u8> = [2049, n]
        .iter()
        .flat_map(|w: &u32| w.to_be_bytes())
        .collect();
    labels.extend(std::iter::repeat_n(1u8, body.min(64)));
    let put = |name: &str, bytes: &[u8]| {
        let (name, bytes) = match gzip {
            true => {
                use std::io::Write;
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                e.write_all(bytes).unwrap();
                (format!("{name}.gz"), e.finish().unwrap())
            }
            false => (name.to_string(), bytes.to_vec()),
        };
        std::fs::write(dir.join(name), bytes).unwrap();
    };
    put("train-images-idx3-ubyte", &images);
    put("train-labels-idx1-ubyte", &labels);
}

fn open_err(path: &Path) -> String {
    match infoutil::data::open(path) {
        Ok(_) => panic!("{} was accepted", path.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn sizes_from_idx_headers_that_wrap_or_are_zero_are_refused_naming_the_field() {
    let max = u32::MAX;
    let cases: [([u32; 3], &str); 4] = [
        ([max, max, max], "rows is 4294967295, expected 1 to 65536"),
        ([1 << 20, 1 << 16, 1 << 16], "bytes, expected at most"),
        ([3, 0, 28], "rows is 0, expected 1 to 65536"),
        ([3, 28, 0], "columns is 0"),
    ];
    for gzip in [false, true] {
        for (dims, expect) in cases {
            let dir = tempfile::tempdir().unwrap();
            idx_pair(dir.path(), dims, 100, gzip);
            let e = open_err(dir.path());
            assert!(
                e.contains("train-images") && e.contains(expect),
                "{dims:?}: {e}"
            );
        }
        // Dimensions in range whose product the file cannot back.
        let dir = tempfile::tempdir().unwrap();
        idx_pair(dir.path(), [1 << 30, 1 << 10, 1 << 10], 100, gzip);
        let e = open_err(dir.path());
        let backed = [
            "passes 2^64",
            "promises",
            "runs out in record 0 of 1073741824",
        ];
        assert!(backed.iter().any(|b| e.contains(b)), "{e}");
    }
}

#[test]
fn a_named_pipe_given_as_data_is_refused_without_opening_it() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe.gz");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    // Were the pipe opened, the open would block until a writer came: this one comes after 20 s,
    // so a regression fails the test instead of hanging the suite.
    let writer = fifo.clone();
    std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_secs(20));
        let _ = std::fs::OpenOptions::new().write(true).open(writer);
    });
    let started = std::time::Instant::now();
    let e = open_err(&fifo);
    assert!(
        e.contains("is a named pipe (FIFO), expected a dataset file"),
        "{e}"
    );
    assert!(started.elapsed().as_secs() < 10);
}

#[test]
fn cifar_files_of_the_other_variant_and_disagreeing_names_are_named() {
    let dir = tempfile::tempdir().unwrap();
    // Two CIFAR-100 records (3074 bytes each) under a CIFAR-10 name.
    std::fs::write(dir.path().join("data_batch_1.bin"), vec![1u8; 2 * 3074]).unwrap();
    let e = open_err(&dir.path().join("data_batch_1.bin"));
    assert!(e.contains("Cifar100 file under a Cifar10 name"), "{e}");

    // CIFAR-10 names in another order than the teacher's: the run stops, naming the label.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("data_batch_1.bin"), vec![1u8; 3073]).unwrap();
    let teacher: Vec<String> = ["plane", "car", "bird"].map(String::from).to_vec();
    std::fs::write(dir.path().join("batches.meta.txt"), "car\nplane\nbird\n").unwrap();
    let e = open_err(dir.path()); // 3 names where CIFAR-10 has 10
    assert!(
        e.contains("holds 3 class names, one a line; expected 10"),
        "{e}"
    );
    let names = ["car", "plane", "bird", "c", "d", "e", "f", "g", "h", "i"];
    std::fs::write(dir.path().join("batches.meta.txt"), names.join("\n")).unwrap();
    let mut teacher10 = teacher.clone();
    teacher10.extend(names[3..].iter().map(|s| s.to_string()));
    let e = infoutil::data::open_for(dir.path(), &teacher10)
        .err()
        .expect("names in another order are refused")
        .to_string();
    assert!(
        e.contains("batches.meta.txt") || e.contains("label 0 is named \"car\""),
        "{e}"
    );
    // In the teacher's order (case and punctuation aside) they agree, and the mapping is kept.
    let agreeing = ["Plane", "CAR", "bird", "c", "d", "e", "f", "g", "h", "i"];
    std::fs::write(dir.path().join("batches.meta.txt"), agreeing.join("\n")).unwrap();
    let src = infoutil::data::open_for(dir.path(), &teacher10).unwrap();
    assert_eq!(src.info().class_map.as_ref().unwrap()[1], ("CAR".into(), 1));
}

fn h5_input(path: &Path, shape: &[usize], chunked: bool, write: bool, names: Option<&str>) {
    let f = hdf5::File::create(path).unwrap();
    let mut b = f.new_dataset::<u8>().shape(shape.to_vec());
    if chunked {
        b = b.chunk(shape.iter().map(|&d| d.clamp(1, 4)).collect::<Vec<_>>());
    }
    let images = b.create("images").unwrap();
    if write {
        let n: usize = shape.iter().product();
        images.write_raw(&vec![3u8; n]).unwrap();
    }
    let labels = f.new_dataset::<i64>().shape([shape[0]]);
    let labels = match chunked {
        true => labels.chunk([shape[0].clamp(1, 1024)]),
        false => labels,
    };
    let labels = labels.create("labels").unwrap();
    if write {
        labels.write_raw(&vec![1i64; shape[0]]).unwrap();
    }
    if let Some(names) = names {
        let v: hdf5::types::VarLenUnicode = names.parse().unwrap();
        f.new_attr::<hdf5::types::VarLenUnicode>()
            .create("class_names")
            .unwrap()
            .write_scalar(&v)
            .unwrap();
    }
}

#[test]
fn hdf5_inputs_with_empty_images_unstored_records_or_other_names_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("d.h5");
    h5_input(&p, &[4, 1, 0, 5], false, true, None);
    assert!(open_err(&p).contains("/images height is 0, expected 1 to 65536"));
    h5_input(&p, &[4, 1, 5, 0], false, true, None);
    assert!(open_err(&p).contains("/images width is 0"));
    // 2^36 records, chunked, nothing written: refused before the labels are allocated.
    h5_input(&p, &[1 << 36, 1, 8, 8], true, false, None);
    let e = open_err(&p);
    assert!(e.contains("records never written"), "{e}");
    // class_names that put the teacher's classes in another order.
    let teacher: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
    h5_input(&p, &[2, 1, 4, 4], false, true, Some(r#"["b", "a", "c"]"#));
    let e = infoutil::data::open_for(&p, &teacher)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("label 0 is named \"b\" in the file but the teacher's class 0 is \"a\""),
        "{e}"
    );
    h5_input(&p, &[2, 1, 4, 4], false, true, Some(r#"["A", "b"]"#));
    let src = infoutil::data::open_for(&p, &teacher).unwrap();
    assert_eq!(src.info().class_map.as_ref().unwrap().len(), 2);
}

#[test]
fn image_folders_name_the_file_and_a_class_without_images_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let class = dir.path().join("Bag");
    std::fs::create_dir(&class).unwrap();
    std::fs::write(class.join("a.bmp"), b"BM").unwrap();
    std::fs::write(class.join("b.bmp"), b"BM").unwrap();
    let e = open_err(dir.path());
    assert!(
        e.contains("Bag: class folder holds 2 entries but no .png"),
        "{e}"
    );
    assert!(e.contains("found: .bmp"), "{e}");

    // An RGB image for a grey teacher: the error names the image's file, not the root.
    std::fs::remove_dir_all(&class).unwrap();
    std::fs::create_dir(&class).unwrap();
    let rgb = std::fs::read(repo("fuzz/corpus/image/rgb.png")).unwrap();
    std::fs::write(class.join("colour.png"), rgb).unwrap();
    let teacher = tract("models/fmnist-convnet3.onnx");
    let mut src = infoutil::data::open_for(dir.path(), &teacher.meta.class_names).unwrap();
    let reader = infoutil::data::reader::Reader::new(&teacher.meta.input, teacher.num_classes());
    let e = reader
        .read_all(src.as_mut(), vec![0])
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("Bag/colour.png, record 0: image has 3 channel"),
        "{e}"
    );
}

#[test]
fn outputs_that_are_one_file_or_a_device_and_ignored_options_are_refused_first() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = repo("data/fashion-mnist-mini/t10k-images-idx3-ubyte.gz");
    let data = data.to_str().unwrap();
    let run = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--data", data, "--backend", "tract", "--candidates", "2"]);
        let out = infoutil(&all, d);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", text(&out));
        text(&out)
    };
    // --out r.png: the contact sheet defaults to the same name.
    let t = run(&["distill", "--out", "r.png"]);
    assert!(t.contains("--png r.png is also this run's --out"), "{t}");
    let t = run(&["distill", "--out", "r.h5", "--png", "r.h5"]);
    assert!(t.contains("is also this run's --out"), "{t}");
    let t = run(&["distill", "--out", "/dev/null"]);
    assert!(t.contains("--out /dev/null is a device"), "{t}");
    let t = run(&["distill", "--method", "random", "--maps-from", "m.h5"]);
    assert!(
        t.contains("--candidates 2, --maps-from: --method random does not use them"),
        "{t}"
    );
    let long = format!("{}.h5", "o".repeat(246));
    let t = run(&["distill", "--out", &long]);
    assert!(t.contains("temporary name"), "{t}");
    assert!(
        std::fs::read_dir(d).unwrap().next().is_none(),
        "nothing written"
    );
    // A folder where a result file is expected: said so, not HDF5's "file read failed".
    for cmd in [&["inspect", "."][..], &["merge", ".", ".", "--out", "m.h5"]] {
        let out = infoutil(cmd, d);
        let t = text(&out);
        assert!(
            t.contains("is a folder, expected a regular file"),
            "{cmd:?}: {t}"
        );
    }
}

#[test]
fn teacher_metadata_out_of_range_and_negative_gradient_norms_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (std, expect) in [
        ("1e39", "std[0] is inf"),
        ("1e-40", "std[0] is 0.0000"),
        ("NaN", "is not valid"),
    ] {
        let mut m = decode("models/fmnist-convnet3.onnx");
        let norm = format!(r#"{{"kind": "mean_std", "mean": [0.286], "std": [{std}]}}"#);
        set_meta(&mut m, "normalization", &norm);
        let path = write(d, "t.onnx", &m);
        let e = infoutil::teacher::Teacher::load(&path, &options(BackendChoice::Tract))
            .err()
            .expect("refused")
            .to_string();
        assert!(e.contains("teacher") && e.contains("t.onnx"), "{std}: {e}");
        assert!(
            e.contains("'infoutil.normalization'") && e.contains(expect),
            "{std}: {e}"
        );
    }
    // Class names data is matched by: distinct and non-empty (the probe's ten classes "x").
    let ten_x = serde_json::to_string(&vec!["x"; 10]).unwrap();
    let mut nine = serde_json::to_value(vec!["a"; 9]).unwrap();
    for (k, v) in nine.as_array_mut().unwrap().iter_mut().enumerate() {
        *v = format!("c{k}").into();
    }
    let mut one_empty = nine.as_array().unwrap().clone();
    one_empty.push("".into());
    for (names, expect) in [
        (ten_x, "classes 0 and 1 both \"x\""),
        (
            serde_json::to_string(&one_empty).unwrap(),
            "names class 9 \"\"",
        ),
    ] {
        let mut m = decode("models/fmnist-convnet3.onnx");
        set_meta(&mut m, "class_names", &names);
        let path = write(d, "names.onnx", &m);
        let e = infoutil::teacher::Teacher::load(&path, &options(BackendChoice::Tract))
            .err()
            .expect("refused")
            .to_string();
        assert!(
            e.contains("names.onnx") && e.contains(expect),
            "{names}: {e}"
        );
    }
    // A gradient graph whose norms come out negative: an error naming both files.
    let mut g = decode("models/fmnist-convnet3.grad.onnx");
    negate_output(&mut g, "norms");
    write(d, "n.grad.onnx", &g);
    std::fs::copy(repo("models/fmnist-convnet3.onnx"), d.join("n.onnx")).unwrap();
    let t = infoutil::teacher::Teacher::load(&d.join("n.onnx"), &options(BackendChoice::Tract))
        .unwrap();
    let x = Array4::<f32>::from_elem((2, 1, 28, 28), 0.3);
    let e = t.grad_norms(x.view(), &[1, 2]).unwrap_err().to_string();
    assert!(e.contains("n.onnx") && e.contains("n.grad.onnx"), "{e}");
    assert!(e.contains("a norm is at least 0"), "{e}");
}

/// `name` multiplied by −1 (a Constant node, so the weights hash still holds).
fn negate_output(model: &mut tract_onnx::pb::ModelProto, name: &str) {
    use tract_onnx::pb::attribute_proto::AttributeType;
    use tract_onnx::pb::{AttributeProto, NodeProto, TensorProto};
    let g = model.graph.as_mut().unwrap();
    let raw = format!("{name}_positive");
    for node in &mut g.node {
        for o in node.output.iter_mut().filter(|o| *o == name) {
            *o = raw.clone();
        }
    }
    let minus = TensorProto {
        data_type: 1,
        float_data: vec![-1.0],
        ..Default::default()
    };
    g.node.push(NodeProto {
        op_type: "Constant".into(),
        output: vec![format!("{name}_minus")],
        attribute: vec![AttributeProto {
            name: "value".into(),
            r#type: AttributeType::Tensor as i32,
            t: Some(minus),
            ..Default::default()
        }],
        ..Default::default()
    });
    g.node.push(NodeProto {
        op_type: "Mul".into(),
        input: vec![raw, format!("{name}_minus")],
        output: vec![name.into()],
        ..Default::default()
    });
}
