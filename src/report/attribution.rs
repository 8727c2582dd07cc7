//! The report of an attribution file: each explained image's map over the image, with its
//! informative crops, grouped by class in pages of bounded size.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;

use ndarray::{s, Array3, Ix1, Ix3};

use super::distilled::PAGE_TILES;
use super::folder::Folder;
use super::html::{self, class_name, esc, nav, num, page_name};
use super::pictures::{self, pixel_box};
use super::run::{Options, Run};
use super::sources::Sources;
use crate::error::Result;
use crate::store::{self, schema::attribution as a};

struct Maps {
    maps: Array3<f32>,
    records: Vec<i64>,
    labels: Vec<usize>,
    boxes: Array3<i32>,
}

pub fn write(
    run: &Run,
    h5: &hdf5::File,
    opts: &Options,
    folder: &mut Folder,
) -> Result<(Vec<String>, String)> {
    let m = Maps {
        maps: store::read::<f32, Ix3>(h5, &run.path, &a::SHAPLEY)?,
        records: store::read::<i64, Ix1>(h5, &run.path, &a::SOURCE_INDEX)?.to_vec(),
        labels: store::read::<i64, Ix1>(h5, &run.path, &a::LABEL)?
            .iter()
            .map(|&l| l.max(0) as usize)
            .collect(),
        boxes: store::read::<i32, Ix3>(h5, &run.path, &a::CROP_BOX)?,
    };
    let mut by_class: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (i, &l) in m.labels.iter().enumerate() {
        by_class.entry(l).or_default().push(i);
    }
    let rows: Vec<(usize, usize)> = by_class
        .iter()
        .flat_map(|(&c, v)| v.iter().map(move |&i| (c, i)))
        .collect();
    let pages: Vec<&[(usize, usize)]> = rows.chunks(PAGE_TILES).collect();
    let mut sources = Sources::open(opts.data.as_deref(), run);
    let mut problems = Vec::new();
    for (p, page) in pages.iter().enumerate() {
        let wanted: Vec<_> = page
            .iter()
            .map(|&(c, i)| (m.records[i].max(0) as usize, c))
            .collect();
        let (images, trouble) = sources.read(&wanted);
        problems.extend(trouble);
        let body = page_body(run, &m, page, &images, &sources.status, folder)?;
        let nav = nav(p, pages.len());
        let body = format!("{body}{nav}");
        folder.page(&page_name(p), &html::page(&run.title(), &nav, &body))?;
    }
    let index = index(run, &m, &rows, &sources.status);
    folder.page(
        "index.html",
        &html::page(&run.title(), &nav(usize::MAX, pages.len()), &index),
    )?;
    Ok((problems, sources.status))
}

/// The index: every class with a link to its first page, and the run's options.
fn index(run: &Run, m: &Maps, rows: &[(usize, usize)], status: &str) -> String {
    let mut classes: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for &(c, i) in rows {
        classes.entry(c).or_default().push(i);
    }
    let mut index = format!(
        "<p>{} explained images of {} classes. Red: patches that raise the class score; blue: \
         patches that lower it; yellow: the noisy informative crops; green: the noise-free one.</p>\
         <p class=\"note sources\">{}</p><h2>Classes</h2><ul>",
        m.labels.len(),
        classes.len(),
        esc(status)
    );
    for (&c, v) in &classes {
        let first = rows.iter().position(|&(k, _)| k == c).unwrap_or(0) / PAGE_TILES;
        let _ = write!(
            index,
            "<li><a href=\"{}#c{c}\">{c} · {}</a> ({} images)</li>",
            page_name(first),
            esc(&class_name(&run.names, c)),
            v.len()
        );
    }
    index.push_str("</ul>");
    index.push_str(&run.options_tables());
    index
}

/// One page's classes, each a section of its explained images.
fn page_body(
    run: &Run,
    m: &Maps,
    page: &[(usize, usize)],
    images: &HashMap<usize, Array3<u8>>,
    status: &str,
    folder: &mut Folder,
) -> Result<String> {
    let mut body = format!("<p class=\"note sources\">{}</p>", esc(status));
    let mut current = usize::MAX;
    for &(c, i) in page.iter() {
        if c != current {
            if current != usize::MAX {
                body.push_str("</div></section>");
            }
            let _ = write!(
                body,
                "<section class=\"class\" id=\"c{c}\"><h2>{c} · <span class=\"cls\">{}</span></h2>\
                 <div class=\"row\">",
                esc(&class_name(&run.names, c))
            );
            current = c;
        }
        body.push_str(&figure(m, i, images, folder)?);
    }
    body.push_str("</div></section>");
    Ok(body)
}

fn figure(
    m: &Maps,
    i: usize,
    images: &HashMap<usize, Array3<u8>>,
    folder: &mut Folder,
) -> Result<String> {
    let record = m.records[i];
    let crops: Vec<_> = m
        .boxes
        .slice(s![i, .., ..])
        .outer_iter()
        .filter_map(|b| pixel_box(&b.to_vec()))
        .collect();
    let map = m.maps.index_axis(ndarray::Axis(0), i).mapv(f64::from);
    let image = images.get(&(record.max(0) as usize));
    let mut out = format!("<figure data-record=\"{record}\">");
    if let Some(img) = image {
        let name = format!("img/s{i}.png");
        let size = folder.png(
            &name,
            &pictures::with_box(img.view(), &crops[crops.len().saturating_sub(1)..]),
        )?;
        out.push_str(&html::img(
            &name,
            size,
            "source",
            &format!("record {record}"),
        ));
    }
    let name = format!("img/m{i}.png");
    let size = folder.png(
        &name,
        &pictures::map_over(image.map(|a| a.view()), map.view(), &crops),
    )?;
    out.push_str(&html::img(
        &name,
        size,
        "map",
        &format!("map of record {record}"),
    ));
    let best = map.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b));
    let _ = write!(
        out,
        "<figcaption>record {record}; largest patch value {}</figcaption></figure>",
        num(best)
    );
    Ok(out)
}
