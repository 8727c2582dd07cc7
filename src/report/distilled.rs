//! The report of a distilled file: per class its distilled images with their soft labels, each
//! tile's source record with the crop cut from it, the candidate's informativeness map, the
//! crop's score and rank among everything the class considered, and the best candidates that
//! were not kept; an index page with the run's options and every class.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write;
use std::path::Path;

use ndarray::{s, Array2, Array3, Array4, ArrayView1, Axis};

use super::folder::Folder;
use super::html::{self, class_name, esc, nav, num, page_name, top_classes};
use super::pictures::{self, pixel_box};
use super::run::{Options, Run};
use super::sources::Sources;
use crate::error::{Error, Result};
use crate::informativeness::PixelBox;
use crate::store::{self, schema::distilled as d};

/// Tiles on one class page at most (a class with more gets a page of its own).
pub const PAGE_TILES: usize = 40;
/// Candidates not kept shown per class: the best-scoring ones.
pub const NOT_KEPT: usize = 4;

/// What the file holds, but the images (read a page at a time).
pub struct Set {
    file: hdf5::File,
    labels: Vec<i64>,
    soft: Array3<f32>,
    source_index: Array2<i64>,
    crop_box: Array3<i32>,
    cand_index: Vec<i64>,
    cand_box: Array3<i32>,
    cand_score: Array2<f32>,
    maps: Option<Array3<f32>>,
    /// Per class: its image rows and its candidate rows.
    classes: BTreeMap<usize, (Vec<usize>, Vec<usize>)>,
}

impl Set {
    pub fn read(path: &Path, file: hdf5::File) -> Result<Set> {
        let rd = |f| store::read::<i64, ndarray::Ix1>(&file, path, f).map(|a| a.to_vec());
        let labels = rd(&d::LABELS)?;
        let cand_index = rd(&d::CANDIDATE_INDEX)?;
        let cand_label = rd(&d::CANDIDATE_LABEL)?;
        let maps = match store::has(&file, &d::CANDIDATE_SHAPLEY) {
            true => Some(store::read(&file, path, &d::CANDIDATE_SHAPLEY)?),
            false => None,
        };
        let mut classes: BTreeMap<usize, (Vec<usize>, Vec<usize>)> = BTreeMap::new();
        for (i, &l) in labels.iter().enumerate() {
            classes.entry(l.max(0) as usize).or_default().0.push(i);
        }
        for (i, &l) in cand_label.iter().enumerate() {
            if let Some(c) = classes.get_mut(&(l.max(0) as usize)) {
                c.1.push(i);
            }
        }
        let set = Set {
            soft: store::read(&file, path, &d::SOFT_LABELS)?,
            source_index: store::read(&file, path, &d::SOURCE_INDEX)?,
            crop_box: store::read(&file, path, &d::CROP_BOX)?,
            cand_box: store::read(&file, path, &d::CANDIDATE_CROP_BOX)?,
            cand_score: store::read(&file, path, &d::CANDIDATE_SCORE)?,
            file,
            labels,
            cand_index,
            maps,
            classes,
        };
        let n = set.labels.len();
        if set.soft.dim().0 != n || set.source_index.nrows() != n || set.crop_box.dim().0 != n {
            return Err(Error::store(
                path,
                "datasets disagree on the number of images",
            ));
        }
        Ok(set)
    }

    /// `images_uint8` rows `rows` (a range), `[n, C, H, W]`.
    fn images(&self, path: &Path, rows: std::ops::Range<usize>) -> Result<Array4<u8>> {
        self.file
            .dataset(d::IMAGES_UINT8.name())
            .and_then(|ds| ds.read_slice::<u8, _, ndarray::Ix4>(s![rows, .., .., ..]))
            .map_err(|e| Error::store(path, format!("{}: {e}", d::IMAGES_UINT8.path)))
    }

    fn tiles(&self) -> usize {
        self.source_index.ncols()
    }
}

/// The crops a class considered, ranked best first, and which of them were kept.
struct Ranking {
    /// (candidate row, crop) → rank (1 = best).
    rank: HashMap<(usize, usize), usize>,
    /// Every distinct crop's (score, kept), best first.
    strip: Vec<(f64, bool)>,
    kept_rows: HashSet<usize>,
}

/// The candidate row and crop that a tile (`record`, `bbox`) was cut from.
fn locate(
    set: &Set,
    cands: &[usize],
    record: i64,
    bbox: ArrayView1<i32>,
) -> Option<(usize, usize)> {
    cands
        .iter()
        .filter(|&&r| set.cand_index[r] == record)
        .find_map(|&r| {
            set.cand_box
                .index_axis(Axis(0), r)
                .outer_iter()
                .position(|b| b == bbox)
                .map(|j| (r, j))
        })
}

fn ranking(set: &Set, images: &[usize], cands: &[usize]) -> Ranking {
    let mut kept = HashSet::new();
    for &i in images {
        for t in 0..set.tiles() {
            let b = set.crop_box.slice(s![i, t, ..]);
            kept.extend(locate(set, cands, set.source_index[[i, t]], b));
        }
    }
    let mut all: Vec<(usize, usize, f64)> = Vec::new();
    for &r in cands {
        let mut seen = HashSet::new();
        for (j, b) in set.cand_box.index_axis(Axis(0), r).outer_iter().enumerate() {
            let score = set.cand_score[[r, j]] as f64;
            if pixel_box(b.as_slice().unwrap_or(&[])).is_some()
                && score.is_finite()
                && seen.insert(b.to_vec())
            {
                all.push((r, j, score));
            }
        }
    }
    // Best first; ties in stored order, as the selection breaks them.
    all.sort_by(|a, b| b.2.total_cmp(&a.2));
    Ranking {
        rank: all
            .iter()
            .enumerate()
            .map(|(k, &(r, j, _))| ((r, j), k + 1))
            .collect(),
        strip: all
            .iter()
            .map(|&(r, j, s)| (s, kept.contains(&(r, j))))
            .collect(),
        kept_rows: kept.iter().map(|&(r, _)| r).collect(),
    }
}

/// Classes in pages of at most [`PAGE_TILES`] tiles (at least one class a page).
fn paginate(set: &Set) -> Vec<Vec<usize>> {
    let mut pages: Vec<Vec<usize>> = Vec::new();
    let mut count = 0;
    for (&c, (images, _)) in &set.classes {
        let tiles = images.len() * set.tiles();
        match pages.last_mut() {
            Some(p) if count + tiles <= PAGE_TILES => p.push(c),
            _ => {
                pages.push(vec![c]);
                count = 0;
            }
        }
        count += tiles;
    }
    pages
}

/// Everything one page's classes need while they are written.
struct Ctx<'a> {
    set: &'a Set,
    run: &'a Run,
    folder: &'a mut Folder,
    sources: HashMap<usize, Array3<u8>>,
    images: Array4<u8>,
    first_row: usize,
}

pub fn write(
    run: &Run,
    set: &Set,
    opts: &Options,
    folder: &mut Folder,
) -> Result<(Vec<String>, String)> {
    let mut sources = Sources::open(opts.data.as_deref(), run);
    let pages = paginate(set);
    let mut problems = Vec::new();
    let mut thumbs = Vec::new();
    for (p, classes) in pages.iter().enumerate() {
        let rows: Vec<usize> = classes
            .iter()
            .flat_map(|c| set.classes[c].0.clone())
            .collect();
        let lo = rows.iter().copied().min().unwrap_or(0);
        let hi = rows.iter().copied().max().map_or(lo, |m| m + 1);
        let wanted = wanted_records(set, classes);
        let (found, trouble) = sources.read(&wanted);
        problems.extend(trouble.iter().cloned());
        let mut ctx = Ctx {
            set,
            run,
            folder: &mut *folder,
            sources: found,
            images: set.images(&run.path, lo..hi)?,
            first_row: lo,
        };
        let mut body = notes(&sources.status, &trouble);
        for &c in classes {
            body.push_str(&class_section(&mut ctx, c)?);
            thumbs.push((c, p));
        }
        let nav = nav(p, pages.len());
        let title = format!("{} — page {} of {}", run.title(), p + 1, pages.len());
        folder.page(
            &page_name(p),
            &html::page(&title, &nav, &format!("{body}{nav}")),
        )?;
    }
    let index = index_body(run, set, &sources, &thumbs);
    folder.page(
        "index.html",
        &html::page(&run.title(), &nav(usize::MAX, pages.len()), &index),
    )?;
    Ok((problems, sources.status))
}

/// The records a page shows: every kept tile's and the best candidates not kept, with the
/// class the file gives each.
fn wanted_records(set: &Set, classes: &[usize]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    for &c in classes {
        let (images, cands) = &set.classes[&c];
        for &i in images {
            out.extend(
                set.source_index
                    .row(i)
                    .iter()
                    .map(|&r| (r.max(0) as usize, c)),
            );
        }
        let rank = ranking(set, images, cands);
        out.extend(
            not_kept(&rank)
                .iter()
                .map(|&(r, _, _)| (set.cand_index[r].max(0) as usize, c)),
        );
    }
    out
}

/// Candidates of a class with no kept crop, by their best crop's rank, the best [`NOT_KEPT`].
fn not_kept(rank: &Ranking) -> Vec<(usize, usize, usize)> {
    let mut best: HashMap<usize, (usize, usize)> = HashMap::new();
    for (&(r, j), &k) in &rank.rank {
        if !rank.kept_rows.contains(&r) && best.get(&r).is_none_or(|b| k < b.1) {
            best.insert(r, (j, k));
        }
    }
    let mut out: Vec<_> = best.into_iter().map(|(r, (j, k))| (r, j, k)).collect();
    out.sort_by_key(|&(_, _, k)| k);
    out.truncate(NOT_KEPT);
    out
}

fn notes(status: &str, problems: &[String]) -> String {
    let mut out = format!("<p class=\"note sources\">{}</p>", esc(status));
    for p in problems.iter().take(10) {
        let _ = write!(out, "<p class=\"note\">{}</p>", esc(p));
    }
    if problems.len() > 10 {
        let _ = write!(
            out,
            "<p class=\"note\">… and {} more such notes.</p>",
            problems.len() - 10
        );
    }
    out
}

fn class_section(ctx: &mut Ctx, c: usize) -> Result<String> {
    let set = ctx.set;
    let (images, cands) = &set.classes[&c];
    let rank = ranking(set, images, cands);
    let name = class_name(&ctx.run.names, c);
    let mut out = format!(
        "<section class=\"class\" id=\"c{c}\" data-class=\"{c}\"><h2>{c} · <span class=\"cls\">{}</span></h2>\
         <p>{} distilled image(s); {} candidate image(s) with {} distinct scored crop(s); kept crops ranked by {}.</p>",
        esc(&name),
        images.len(),
        cands.len(),
        rank.strip.len(),
        esc(&ctx.run.score_name()),
    );
    for &i in images {
        out.push_str(&image_row(ctx, c, i, cands, &rank)?);
    }
    out.push_str(&not_kept_row(ctx, c, cands, &rank)?);
    let (w, h) = ctx.folder.png(
        &format!("img/scores-{c}.png"),
        &pictures::score_strip(&rank.strip),
    )?;
    let _ = write!(
        out,
        "<figure class=\"chart\">{}<figcaption>Every crop scored for this class, best first (bar \
         height: score); green: kept.</figcaption></figure></section>",
        html::img(
            &format!("img/scores-{c}.png"),
            (w, h),
            "chart",
            &format!("scores of class {name}")
        )
    );
    Ok(out)
}

fn image_row(ctx: &mut Ctx, c: usize, i: usize, cands: &[usize], rank: &Ranking) -> Result<String> {
    let name = class_name(&ctx.run.names, c);
    let img = ctx.images.index_axis(Axis(0), i - ctx.first_row).to_owned();
    let src = format!("img/d{i}.png");
    let size = ctx.folder.png(&src, &pictures::plain(img.view()))?;
    let soft = ctx
        .set
        .soft
        .index_axis(Axis(0), i)
        .mean_axis(Axis(0))
        .expect("tiles");
    let soft: Vec<f64> = soft.iter().map(|&v| v as f64).collect();
    let mut out = format!(
        "<div class=\"row\"><figure class=\"distilled\" data-image=\"{i}\">{}<figcaption>\
         <span class=\"cls\">{}</span> · image {i}<br>soft label: {}</figcaption></figure>",
        html::img(
            &src,
            size,
            "distilled",
            &format!("distilled image {i}: {name}")
        ),
        esc(&name),
        esc(&top_classes(&soft, &ctx.run.names, 3)),
    );
    for t in 0..ctx.set.tiles() {
        out.push_str(&tile(ctx, i, t, cands, rank)?);
    }
    out.push_str("</div>");
    Ok(out)
}

fn tile(ctx: &mut Ctx, i: usize, t: usize, cands: &[usize], rank: &Ranking) -> Result<String> {
    let set = ctx.set;
    let record = set.source_index[[i, t]];
    let b = set.crop_box.slice(s![i, t, ..]);
    let bbox = pixel_box(&b.to_vec());
    let found = locate(set, cands, record, b);
    let image = ctx.sources.get(&(record.max(0) as usize)).cloned();
    let mut out = format!("<div class=\"tile\" data-record=\"{record}\">");
    match (&image, bbox) {
        (Some(img), Some(bx)) => {
            let name = format!("img/s{i}-{t}.png");
            let size = ctx
                .folder
                .png(&name, &pictures::with_box(img.view(), &[bx]))?;
            let _ = write!(
                out,
                "<figure>{}<figcaption>source, kept crop</figcaption></figure>",
                html::img(
                    &name,
                    size,
                    "source",
                    &format!("source record {record} with the crop of tile {t}")
                )
            );
        }
        _ => {
            let _ = write!(
                out,
                "<p class=\"note nosource\">record {record}: source image not available</p>"
            );
        }
    }
    if let (Some(maps), Some((r, j))) = (&set.maps, found) {
        let crops = crops_kept_last(set, r, j);
        let map = maps.index_axis(Axis(0), r).mapv(f64::from);
        let pic = pictures::map_over(image.as_ref().map(|a| a.view()), map.view(), &crops);
        let name = format!("img/m{i}-{t}.png");
        let size = ctx.folder.png(&name, &pic)?;
        let _ = write!(
            out,
            "<figure>{}<figcaption>{} map, crops</figcaption></figure>",
            html::img(&name, size, "map", &format!("map of record {record}")),
            esc(&ctx.run.map_name())
        );
    }
    out.push_str(&tile_facts(ctx, i, t, record, bbox, found, rank));
    out.push_str("</div>");
    Ok(out)
}

/// The candidate's crops with the kept one `j` last (drawn green, the others yellow).
fn crops_kept_last(set: &Set, r: usize, j: usize) -> Vec<PixelBox> {
    let boxes = set.cand_box.index_axis(Axis(0), r);
    let mut crops: Vec<PixelBox> = boxes
        .outer_iter()
        .enumerate()
        .filter(|&(k, _)| k != j)
        .filter_map(|(_, b)| pixel_box(&b.to_vec()))
        .collect();
    crops.extend(pixel_box(&boxes.row(j).to_vec()));
    crops
}

/// The tile's record, crop, score, rank and soft-label top class.
fn tile_facts(
    ctx: &Ctx,
    i: usize,
    t: usize,
    record: i64,
    bbox: Option<PixelBox>,
    found: Option<(usize, usize)>,
    rank: &Ranking,
) -> String {
    let set = ctx.set;
    let p: Vec<f64> = set
        .soft
        .slice(s![i, t, ..])
        .iter()
        .map(|&v| v as f64)
        .collect();
    let crop = bbox.map_or("none".into(), |b| {
        format!("rows {}–{}, cols {}–{}", b.y0, b.y1, b.x0, b.x1)
    });
    let (score, place) = match found {
        Some((r, j)) if ctx.run.method == "random" => (
            format!("{}", set.cand_score[[r, j]]),
            "drawn at random".to_string(),
        ),
        Some((r, j)) => (
            num(set.cand_score[[r, j]] as f64),
            rank.rank.get(&(r, j)).map_or("unranked".into(), |k| {
                format!("{k} of {}", rank.strip.len())
            }),
        ),
        None => ("not among the candidates".into(), "-".into()),
    };
    let mut out = String::from("<dl>");
    for (k, v) in [
        ("tile", format!("{} of {}", t + 1, set.tiles())),
        ("record", format!("{record}")),
        ("crop", crop),
        ("score", score),
        ("rank", place),
        ("tile label", top_classes(&p, &ctx.run.names, 1)),
    ] {
        let _ = write!(out, "<dt>{}</dt><dd>{}</dd>", esc(k), esc(&v));
    }
    out.push_str("</dl>");
    out
}

fn not_kept_row(ctx: &mut Ctx, c: usize, cands: &[usize], rank: &Ranking) -> Result<String> {
    let set = ctx.set;
    let others = not_kept(rank);
    if others.is_empty() {
        return Ok(String::new());
    }
    let mut out = format!(
        "<h3>Not kept: the {} best-scoring of {} candidates with no crop kept</h3><div class=\"row notkept\">",
        others.len(),
        cands.len() - rank.kept_rows.len()
    );
    for (r, j, k) in others {
        let record = set.cand_index[r];
        let image = ctx.sources.get(&(record.max(0) as usize)).cloned();
        let crops = crops_kept_last(set, r, j);
        let pic = match (&set.maps, &image) {
            (Some(maps), _) => pictures::map_over(
                image.as_ref().map(|a| a.view()),
                maps.index_axis(Axis(0), r).mapv(f64::from).view(),
                &crops,
            ),
            (None, Some(img)) => {
                pictures::with_box(img.view(), &crops[crops.len().saturating_sub(1)..])
            }
            (None, None) => {
                let _ = write!(
                    out,
                    "<p class=\"note nosource\">record {record}: source image not available</p>"
                );
                continue;
            }
        };
        let name = format!("img/n{c}-{r}.png");
        let size = ctx.folder.png(&name, &pic)?;
        let _ = write!(
            out,
            "<figure class=\"notkept\" data-record=\"{record}\">{}<figcaption>record {record}<br>best crop: score {}, rank {k} of {}</figcaption></figure>",
            html::img(&name, size, "candidate", &format!("candidate record {record}, not kept")),
            num(set.cand_score[[r, j]] as f64),
            rank.strip.len()
        );
    }
    out.push_str("</div>");
    Ok(out)
}

fn index_body(run: &Run, set: &Set, sources: &Sources, thumbs: &[(usize, usize)]) -> String {
    let factor = (set.tiles() as f64).sqrt().round() as usize;
    let mut out = format!(
        "<p>{} distilled images of {} classes, each stitched from {factor}×{factor} crop(s).</p>",
        set.labels.len(),
        set.classes.len(),
    );
    out.push_str(&notes(&sources.status, &[]));
    out.push_str(LEGEND);
    out.push_str("<h2>Classes</h2><div class=\"index\">");
    for &(c, p) in thumbs {
        let name = class_name(&run.names, c);
        let first = set.classes[&c].0[0];
        let thumb = format!("img/d{first}.png");
        let _ = write!(
            out,
            "<a href=\"{}#c{c}\">{}<span>{c} · {}</span></a>",
            page_name(p),
            html::img(&thumb, (72, 72), "thumb", &format!("class {name}")),
            esc(&name)
        );
    }
    out.push_str("</div>");
    out.push_str(&run.options_tables());
    out
}

const LEGEND: &str = "<h2>How to read a class</h2><p>Each row is one distilled image (left, \
outlined), labelled with its class and the three classes its soft label weighs most. Beside it, \
for each tile: the real image the tile was cut from, with the crop outlined in green; the \
candidate's informativeness map (red: patches that raise the class score, blue: patches that \
lower it) with every crop considered in yellow and the kept one in green; and the crop's score \
and rank among all crops of the class. Below: the best candidates that were not kept, and a strip \
of every crop's score, kept ones in green.</p>";
