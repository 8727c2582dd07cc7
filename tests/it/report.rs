//! `infoutil report`: the pages of a real small run hold every distilled image, its class and
//! its sources (read as text, and as a browser shows them, in headless Chromium); hostile class
//! names are escaped; a 1 000-class file gives pages of bounded size in bounded time.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use infoutil::store::{self, schema::attr, schema::distilled as d, Header, Writer};
use ndarray::{Array1, Array2, Array3, Array4, Ix1, Ix2};

use crate::common::*;

/// Every page of a report folder: (name, text).
fn pages(dir: &Path) -> Vec<(String, String)> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "html"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&p).unwrap())
        })
        .collect();
    out.sort();
    out
}

/// A small real InfoUtil run with its report (`distill --report`), shared by the tests here.
fn small_run() -> &'static (tempfile::TempDir, PathBuf) {
    static RUN: std::sync::OnceLock<(tempfile::TempDir, PathBuf)> = std::sync::OnceLock::new();
    RUN.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let args = [
            "distill",
            "--backend",
            "tract",
            "--candidates",
            "6",
            "--budget",
            "64",
            "--ipc",
            "2",
            "--out",
            "d.h5",
            "--report",
        ];
        let out = infoutil(&args, dir.path());
        assert!(out.status.success(), "{}", text(&out));
        assert!(text(&out).contains("d-report/index.html"), "{}", text(&out));
        let report = dir.path().join("d-report");
        (dir, report)
    })
}

fn names(h5: &Path) -> Vec<String> {
    let f = store::open(h5).unwrap();
    serde_json::from_str(&store::read_attr(&f, attr::CLASS_NAMES).unwrap()).unwrap()
}

#[test]
fn the_pages_of_a_run_hold_every_distilled_image_its_class_and_its_sources() {
    let (dir, report) = small_run();
    let h5 = dir.path().join("d.h5");
    let f = store::open(&h5).unwrap();
    let labels = store::read::<i64, Ix1>(&f, &h5, &d::LABELS).unwrap();
    let records = store::read::<i64, Ix2>(&f, &h5, &d::SOURCE_INDEX).unwrap();
    let all: String = pages(report).into_iter().map(|(_, t)| t).collect();
    let names = names(&h5);
    for (i, &c) in labels.iter().enumerate() {
        let img = format!("img/d{i}.png");
        assert!(
            all.contains(&format!("src=\"{img}\"")),
            "{img} not on any page"
        );
        assert!(report.join(&img).is_file());
        let name = infoutil::report::html::esc(&names[c as usize]);
        assert!(
            all.contains(&format!("<span class=\"cls\">{name}</span> · image {i}")),
            "{name}"
        );
        for (t, &r) in records.row(i).iter().enumerate() {
            let src = format!("img/s{i}-{t}.png");
            assert!(report.join(&src).is_file(), "{src}");
            assert!(all.contains(&format!(
                "alt=\"source record {r} with the crop of tile {t}\""
            )));
            assert!(report.join(format!("img/m{i}-{t}.png")).is_file());
        }
    }
    // Candidates that were not kept are shown beside the kept ones, with the run's options.
    assert!(all.contains("Not kept: the"), "no candidates not kept");
    assert!(all.contains("rank") && all.contains("soft label: "));
    let index = std::fs::read_to_string(report.join("index.html")).unwrap();
    assert!(index.contains("distill.ipc") && index.contains("fmnist-convnet3"));
    // The contact sheet names its classes: the labels' rows hold ink.
    assert!(dir.path().join("d.png").is_file());
}

/// A distilled file as the schema lays it out, written directly: `classes` classes of `ipc`
/// 28-px images and `cands` candidates each, class names `names`, dataset path `data`.
fn synthetic(path: &Path, names: &[String], ipc: usize, cands: usize, data: &Path) {
    let k = names.len();
    let n = k * ipc;
    let config = serde_json::json!({
        "command": "distill", "teacher": "t<script>.onnx", "backend": "tract (cpu)",
        "data": data, "data_sha256": "", "distill": {"method": "infoutil", "ipc": ipc,
        "factor": 1, "score": "grad-norm", "attribution": "shapley"},
        "label_teacher": "t.onnx", "label_teacher_sha256": "",
    });
    let w = Writer::create(
        path,
        &Header {
            kind: "distilled",
            config: &config,
            teacher_sha256: "x",
        },
    )
    .unwrap();
    w.attr(
        "/",
        attr::CLASS_NAMES,
        &serde_json::to_string(names).unwrap(),
    )
    .unwrap();
    let labels = Array1::from_iter((0..n).map(|i| (i / ipc) as i64));
    let images = Array4::from_shape_fn((n, 1, 28, 28), |(i, _, y, x)| {
        ((i * 7 + y * 9 + x * 3) % 256) as u8
    });
    let m = k * cands;
    // Candidate j of class c is record c·cands + j; the first `ipc` of each class are kept, whole.
    let rec = |c: usize, j: usize| (c * cands + j) as i64;
    let mut soft = Array3::<f32>::from_elem((n, 1, k), 0.1 / k as f32);
    for i in 0..n {
        soft[[i, 0, i / ipc]] = 0.9;
    }
    w.put(&d::IMAGES, images.mapv(f32::from).view()).unwrap();
    w.put(&d::IMAGES_UINT8, images.view()).unwrap();
    w.put(&d::LABELS, labels.view()).unwrap();
    w.put(&d::SOFT_LABELS, soft.view()).unwrap();
    w.put(&d::SOFT_LOGITS, soft.view()).unwrap();
    w.put(
        &d::SOURCE_INDEX,
        Array2::from_shape_fn((n, 1), |(i, _)| rec(i / ipc, i % ipc)).view(),
    )
    .unwrap();
    w.put(
        &d::CROP_BOX,
        Array3::from_shape_fn((n, 1, 4), |(_, _, q)| [0, 0, 28, 28][q]).view(),
    )
    .unwrap();
    w.put(
        &d::CANDIDATE_INDEX,
        Array1::from_iter((0..m).map(|r| r as i64)).view(),
    )
    .unwrap();
    w.put(
        &d::CANDIDATE_LABEL,
        Array1::from_iter((0..m).map(|r| (r / cands) as i64)).view(),
    )
    .unwrap();
    w.put(
        &d::CANDIDATE_CROP_BOX,
        Array3::from_shape_fn((m, 2, 4), |(_, j, q)| {
            [[0, 0, 28, 28], [0, 0, 14, 14]][j][q]
        })
        .view(),
    )
    .unwrap();
    w.put(
        &d::CANDIDATE_SCORE,
        Array2::from_shape_fn((m, 2), |(r, j)| (cands - r % cands) as f32 - j as f32 * 0.5).view(),
    )
    .unwrap();
    w.put(
        &d::CANDIDATE_SHAPLEY,
        Array3::from_shape_fn((m, 4, 4), |(r, y, x)| ((r + y * 4 + x) % 7) as f32 - 3.0).view(),
    )
    .unwrap();
    w.finish().unwrap();
}

/// An HDF5 dataset (`/images`, `/labels`) with `cands` 28-px records per class, as the
/// synthetic file's candidates number them.
fn synthetic_data(path: &Path, classes: usize, cands: usize) {
    let n = classes * cands;
    let file = hdf5::File::create(path).unwrap();
    let images = Array4::from_shape_fn((n, 1, 28, 28), |(i, _, y, x)| ((i + y * x) % 256) as u8);
    file.new_dataset_builder()
        .with_data(images.view())
        .create("images")
        .unwrap();
    let labels = Array1::from_iter((0..n).map(|i| (i / cands) as i64));
    file.new_dataset_builder()
        .with_data(labels.view())
        .create("labels")
        .unwrap();
}

#[test]
fn class_names_and_paths_from_the_file_are_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let hostile = vec![
        "<script>alert(1)</script>".to_string(),
        "\"><img src=x onerror=alert(2)>".to_string(),
        "Tom & 'Jerry'".to_string(),
    ];
    let data = dir.path().join("data<b>.h5");
    synthetic_data(&data, 3, 3);
    let h5 = dir.path().join("x.h5");
    synthetic(&h5, &hostile, 1, 3, &data);
    let w = infoutil::report::write(&h5, &Default::default()).unwrap();
    let all: String = pages(w.index.parent().unwrap())
        .into_iter()
        .map(|(_, t)| t)
        .collect();
    assert!(
        !all.contains("<script"),
        "a script tag from the file reached a page"
    );
    assert!(!all.contains("<img src=x") && !all.contains("<b>"));
    assert!(all.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(all.contains("&quot;&gt;&lt;img src=x onerror=alert(2)&gt;"));
    assert!(all.contains("Tom &amp; &#39;Jerry&#39;"));
    assert!(all.contains("t&lt;script&gt;.onnx"));
    // The sources were read from the recorded dataset: every tile's source picture exists.
    assert!(w.problems.is_empty(), "{:?}", w.problems);
    for i in 0..3 {
        assert!(w
            .index
            .parent()
            .unwrap()
            .join(format!("img/s{i}-0.png"))
            .is_file());
    }
}

#[test]
fn a_missing_dataset_is_said_on_the_page_instead_of_failing() {
    let dir = tempfile::tempdir().unwrap();
    let h5 = dir.path().join("x.h5");
    synthetic(
        &h5,
        &["a".into(), "b".into()],
        2,
        3,
        Path::new("/nonexistent/data.h5"),
    );
    let w = infoutil::report::write(&h5, &Default::default()).unwrap();
    let all: String = pages(w.index.parent().unwrap())
        .into_iter()
        .map(|(_, t)| t)
        .collect();
    assert!(
        all.contains("/nonexistent/data.h5, which is not found here"),
        "{}",
        w.sources
    );
    assert!(all.contains("source image not available"));
    assert!(all.contains("img/d3.png"));
    // A second report replaces the first; a folder that is not a report is refused.
    infoutil::report::write(&h5, &Default::default()).unwrap();
    let other = dir.path().join("mine");
    std::fs::create_dir(&other).unwrap();
    let opts = infoutil::report::Options {
        out: Some(other),
        ..Default::default()
    };
    let e = infoutil::report::write(&h5, &opts).unwrap_err().to_string();
    assert!(e.contains("is not a report written by infoutil"), "{e}");
}

/// A 1 000-class file: (report folder, seconds to write it).
fn thousand_classes() -> &'static (tempfile::TempDir, PathBuf, f64) {
    static RUN: std::sync::OnceLock<(tempfile::TempDir, PathBuf, f64)> = std::sync::OnceLock::new();
    RUN.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let names: Vec<String> = (0..1000).map(|c| format!("class number {c}")).collect();
        let data = dir.path().join("data.h5");
        synthetic_data(&data, 1000, 3);
        let h5 = dir.path().join("big.h5");
        synthetic(&h5, &names, 1, 3, &data);
        let started = Instant::now();
        let w = infoutil::report::write(&h5, &Default::default()).unwrap();
        let secs = started.elapsed().as_secs_f64();
        (dir, w.index.parent().unwrap().to_path_buf(), secs)
    })
}

/// Bytes of the files in `dir` and below.
fn du(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| match e.file_type().unwrap().is_dir() {
            true => du(&e.path()),
            false => e.metadata().unwrap().len(),
        })
        .sum()
}

#[test]
fn a_thousand_classes_give_pages_of_bounded_size_in_bounded_time() {
    let (_, report, secs) = thousand_classes();
    let pages = pages(report);
    let largest = pages.iter().map(|(_, t)| t.len()).max().unwrap();
    let total = du(report);
    eprintln!(
        "1000-class report: {} pages, largest {} kB, folder {:.1} MB, written in {secs:.1} s",
        pages.len(),
        largest / 1000,
        total as f64 / 1e6
    );
    assert!(pages.len() > 10, "{} pages", pages.len());
    assert!(largest < 600_000, "a page of {largest} bytes");
    assert!(total < 60_000_000, "{total} bytes");
    assert!(*secs < 120.0, "{secs} s");
    // Every class is linked from the index.
    let index = &pages.iter().find(|(n, _)| n == "index.html").unwrap().1;
    for c in [0, 499, 999] {
        assert!(
            index.contains(&format!("#c{c}\"")),
            "class {c} not in the index"
        );
    }
}

// ---- Headless Chromium -------------------------------------------------------------------

/// Chromium's path, or None after a visible SKIP (a failure where scripts/test installed it:
/// INFOUTIL_REQUIRE_CHROMIUM=1).
fn chromium(test: &str) -> Option<PathBuf> {
    let path = std::env::var_os("INFOUTIL_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    if path.is_file() {
        return Some(path);
    }
    if std::env::var_os("INFOUTIL_REQUIRE_CHROMIUM").is_some() {
        panic!(
            "{test}: Chromium is required here but {} is missing",
            path.display()
        );
    }
    eprintln!(
        "SKIP {test}: no Chromium at {} (apt-get install chromium)",
        path.display()
    );
    None
}

/// Injected into a copy of a page: after load, what the browser shows, as JSON in a <pre>.
const PROBE: &str = r#"<script>
window.addEventListener('load', () => {
  const shown = e => { const r = e.getBoundingClientRect(), s = getComputedStyle(e);
    return r.width > 0 && r.height > 0 && s.visibility === 'visible' && s.display !== 'none'; };
  const imgs = [...document.images].map(i => ({src: i.getAttribute('src'),
    ok: i.complete && i.naturalWidth > 0 && shown(i)}));
  const pre = document.createElement('pre');
  pre.id = 'probe';
  pre.textContent = JSON.stringify({imgs, text: document.body.innerText});
  document.body.appendChild(pre);
});
</script>"#;

/// The page `page` of `dir` as headless Chromium renders it: (images with their state, text).
fn rendered(chromium: &Path, dir: &Path, page: &str) -> (Vec<(String, bool)>, String) {
    let html = std::fs::read_to_string(dir.join(page)).unwrap();
    let probe = dir.join(format!("probe-{page}"));
    std::fs::write(&probe, html.replace("</body>", &format!("{PROBE}</body>"))).unwrap();
    let profile = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=10000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("file://{}", probe.display()))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut dom = String::new();
    let reader = {
        let mut out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut out, &mut s).map(|_| s)
        })
    };
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(90) {
            let _ = child.kill();
            panic!("Chromium did not finish {page} in 90 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    dom.push_str(&reader.join().unwrap().unwrap());
    std::fs::remove_file(&probe).unwrap();
    let start = dom
        .find("<pre id=\"probe\">")
        .unwrap_or_else(|| panic!("no probe in {page}: {dom}"));
    let body = &dom[start + 16..];
    let json = &body[..body.find("</pre>").unwrap()];
    let json = json
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&amp;", "&");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let imgs = v["imgs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["src"].as_str().unwrap().to_string(),
                i["ok"].as_bool().unwrap(),
            )
        })
        .collect();
    (imgs, v["text"].as_str().unwrap().to_string())
}

#[test]
fn chromium_shows_every_distilled_image_its_class_name_and_its_sources() {
    let Some(chromium) = chromium("report::chromium_shows_every_distilled_image") else {
        return;
    };
    let (dir, report) = small_run();
    let h5 = dir.path().join("d.h5");
    let f = store::open(&h5).unwrap();
    let labels = store::read::<i64, Ix1>(&f, &h5, &d::LABELS).unwrap();
    let names = names(&h5);
    let mut shown = HashSet::new();
    let mut text = String::new();
    for (page, _) in pages(report) {
        let (imgs, t) = rendered(&chromium, report, &page);
        for (src, ok) in imgs {
            assert!(ok, "{page}: {src} is not shown");
            shown.insert(src);
        }
        text.push_str(&t);
    }
    for (i, &c) in labels.iter().enumerate() {
        assert!(
            shown.contains(&format!("img/d{i}.png")),
            "distilled image {i} not shown"
        );
        assert!(
            shown.contains(&format!("img/s{i}-0.png")),
            "source of image {i} not shown"
        );
        assert!(
            shown.contains(&format!("img/m{i}-0.png")),
            "map of image {i} not shown"
        );
        assert!(
            text.contains(&format!("{} · image {i}", names[c as usize])),
            "class of image {i}"
        );
    }
}

#[test]
fn chromium_opens_a_thousand_class_report_quickly() {
    let Some(chromium) = chromium("report::chromium_opens_a_thousand_class_report") else {
        return;
    };
    let (_, report, _) = thousand_classes();
    for page in ["index.html", "page-0013.html"] {
        let started = Instant::now();
        let (imgs, text) = rendered(&chromium, report, page);
        let secs = started.elapsed().as_secs_f64();
        eprintln!(
            "Chromium: {page} of the 1000-class report, {} images, in {secs:.1} s",
            imgs.len()
        );
        assert!(imgs.iter().all(|i| i.1), "{page}: an image is not shown");
        assert!(secs < 30.0, "{page} took {secs} s");
        assert!(text.contains("class number"), "{page}");
    }
}

#[test]
fn a_teacher_eval_report_has_its_confusion_matrix_and_worst_records() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data.h5");
    synthetic_data(&data, 3, 4);
    let h5 = dir.path().join("e.h5");
    let config = serde_json::json!({"command": "teacher eval", "teacher": "t.onnx",
        "backend": "tract (cpu)", "data": data});
    let w = Writer::create(
        &h5,
        &Header {
            kind: "teacher_eval",
            config: &config,
            teacher_sha256: "x",
        },
    )
    .unwrap();
    let names = ["cat", "<dog>", "emu"];
    w.attr(
        "/",
        attr::CLASS_NAMES,
        &serde_json::to_string(&names).unwrap(),
    )
    .unwrap();
    // Records 0..12, labels r / 4; the teacher says class 0 for everything but record 5.
    let logits = Array2::from_shape_fn((12, 3), |(r, k)| match (r, k) {
        (5, 1) => 5.0f32,
        (5, _) => 0.0,
        (_, 0) => 3.0,
        _ => 0.0,
    });
    w.put(&store::schema::eval::LOGITS, logits.view()).unwrap();
    let labels = Array1::from_iter((0..12).map(|r| r / 4));
    w.put(&store::schema::eval::LABELS, labels.view()).unwrap();
    w.put(
        &store::schema::eval::SOURCE_INDEX,
        Array1::from_iter(0..12i64).view(),
    )
    .unwrap();
    w.finish().unwrap();
    let out = infoutil::report::write(&h5, &Default::default()).unwrap();
    let page = std::fs::read_to_string(&out.index).unwrap();
    // Class 0's four records and record 5 (class 1) are right: 5 of 12.
    assert!(
        page.contains("top-1 accuracy 41.67 % (5 correct)"),
        "{page}"
    );
    assert!(page.contains("img/confusion.png") && page.contains("&lt;dog&gt;"));
    assert!(!page.contains("<dog>"));
    // The worst records are shown with their pictures, read from the dataset.
    assert!(
        page.contains("src=\"img/r11.png\""),
        "record 11 not among the worst"
    );
    assert!(out.index.parent().unwrap().join("img/r11.png").is_file());
}
