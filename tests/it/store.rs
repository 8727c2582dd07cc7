//! The HDF5 store: files read back as written, carry their header, and never appear half-written.

use infoutil::store::schema::Field;
use infoutil::store::{self, Header, Writer};
use ndarray::{Array1, Array2, Array4};

fn header(config: &serde_json::Value) -> Header<'_> {
    Header {
        kind: "test",
        config,
        teacher_sha256: "abc123",
    }
}

#[test]
fn datasets_and_attributes_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.h5");
    let config = serde_json::json!({"seed": 7, "ipc": 10});
    let images = Array4::from_shape_fn((5, 1, 4, 3), |(n, c, h, w)| {
        (n * 100 + c * 10 + h * 3 + w) as f32
    });
    let labels = Array1::from(vec![0i64, 1, 2, 3, 4]);
    let w = Writer::create(&path, &header(&config)).unwrap();
    w.put(
        &Field {
            path: "/images",
            layout: "NCHW",
            description: "pixels",
        },
        images.view(),
    )
    .unwrap();
    w.put(
        &Field {
            path: "/nested/deeper/labels",
            layout: "N",
            description: "labels",
        },
        labels.view(),
    )
    .unwrap();
    w.put(
        &Field {
            path: "/empty",
            layout: "N,K",
            description: "nothing",
        },
        Array2::<f32>::zeros((0, 3)).view(),
    )
    .unwrap();
    w.attr("/nested", "note", "hello").unwrap();
    assert_eq!(w.finish().unwrap(), path);

    let f = store::open(&path).unwrap();
    assert_eq!(
        store::read_attr(&f, "schema_version").unwrap(),
        store::SCHEMA_VERSION.to_string()
    );
    assert_eq!(store::read_attr(&f, "teacher_sha256").unwrap(), "abc123");
    assert_eq!(store::read_attr(&f, "kind").unwrap(), "test");
    let back: serde_json::Value =
        serde_json::from_str(&store::read_attr(&f, "config").unwrap()).unwrap();
    assert_eq!(back, config);
    let ds = f.dataset("images").unwrap();
    assert_eq!(ds.read::<f32, ndarray::Ix4>().unwrap(), images);
    assert_eq!(store::read_attr(&ds, "layout").unwrap(), "NCHW");
    assert!(ds.chunk().is_some(), "chunked");
    let l = f
        .dataset("nested/deeper/labels")
        .unwrap()
        .read_1d::<i64>()
        .unwrap();
    assert_eq!(l, labels);
    assert_eq!(f.dataset("empty").unwrap().shape(), vec![0, 3]);
    assert_eq!(
        store::read_attr(&f.group("nested").unwrap(), "note").unwrap(),
        "hello"
    );

    let text = store::summary(&path).unwrap();
    for want in [
        "images",
        "NCHW",
        "[5, 1, 4, 3]",
        "labels",
        "\"seed\": 7",
        "@teacher_sha256: abc123",
    ] {
        assert!(text.contains(want), "summary lacks {want:?}:\n{text}");
    }
}

#[test]
fn an_unfinished_file_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.h5");
    let config = serde_json::json!({});
    {
        let w = Writer::create(&path, &header(&config)).unwrap();
        w.put(
            &Field {
                path: "/x",
                layout: "N",
                description: "x",
            },
            Array1::from(vec![1.0f32; 10]).view(),
        )
        .unwrap();
        assert!(!path.exists(), "nothing under the final name while writing");
        // dropped here without finish(), as when a run fails half-way
    }
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn finishing_replaces_an_older_file_whole() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.h5");
    let config = serde_json::json!({});
    for n in [3usize, 5] {
        let w = Writer::create(&path, &header(&config)).unwrap();
        w.put(
            &Field {
                path: "/x",
                layout: "N",
                description: "x",
            },
            Array1::from(vec![n as i64; n]).view(),
        )
        .unwrap();
        w.finish().unwrap();
    }
    let f = store::open(&path).unwrap();
    assert_eq!(
        f.dataset("x").unwrap().read_1d::<i64>().unwrap().to_vec(),
        vec![5; 5]
    );
}

#[test]
fn foreign_files_are_refused_with_their_name() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("text.h5");
    std::fs::write(&text, "not hdf5").unwrap();
    let msg = store::open(&text).unwrap_err().to_string();
    assert!(
        msg.contains("text.h5") && msg.contains("not a readable HDF5"),
        "{msg}"
    );

    let other = dir.path().join("other.h5");
    hdf5::File::create(&other).unwrap();
    let msg = store::open(&other).unwrap_err().to_string();
    assert!(
        msg.contains("other.h5") && msg.contains("not written by infoutil"),
        "{msg}"
    );
}

/// A child process spawned while a file is being written inherits its descriptor (HDF5 opens
/// without O_CLOEXEC); with HDF5's lock on, the finished file stayed locked while that child ran
/// and reading it back failed with EAGAIN (seen when tests spawning the CLI ran beside this one).
#[test]
fn a_child_spawned_during_a_write_does_not_lock_the_result() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.h5");
    let config = serde_json::json!({});
    let w = Writer::create(&path, &header(&config)).unwrap();
    let mut child = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    w.finish().unwrap();
    let read = store::open(&path);
    let written = Writer::create(&path, &header(&config)).and_then(|w| w.finish());
    child.kill().unwrap();
    child.wait().unwrap();
    read.unwrap();
    written.unwrap();
}
