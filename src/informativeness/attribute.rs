//! Shapley maps of real images through the teacher: every image is a game over its patches; the
//! coalitions of a whole chunk of images go to the backend as one large batch of masked images.

use ndarray::{s, Array2, Array3, Array4, ArrayView4, Axis};
use serde::{Deserialize, Serialize};

use super::game_graph::GameGraph;
use super::grid::Grid;
use super::masking::{baseline_image, Baseline, Value};
use crate::base::valid::{Check, Valid};
use crate::data::preprocess::InputSpec;
use crate::data::reader::Reader;
use crate::data::{Record, Selection, Source, VisitReport};
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::shapley::{Coalition, Diagnostics, Estimator, GameSet, MAX_BUDGET, MAX_PLAYERS};
use crate::teacher::Teacher;

/// Everything that decides a Shapley map.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShapleyConfig {
    /// Patches per side (g×g players).
    pub grid: usize,
    /// Coalition evaluations per image, v(∅) and v(all) included.
    pub budget: usize,
    pub estimator: Estimator,
    pub baseline: Baseline,
    pub value: Value,
}

impl Default for ShapleyConfig {
    fn default() -> Self {
        ShapleyConfig {
            grid: 4,
            // With 16 players: median relative error 0.11 on the converged shipped teacher, about
            // half of Captum's at 256 (docs/benchmarks.md); the α = 2 crop noise is far larger.
            budget: 128,
            estimator: Estimator::LeverageShap,
            baseline: Baseline::Zero,
            value: Value::Logit,
        }
    }
}

impl ShapleyConfig {
    /// Most patches per side: `grid²` players must stay within [`MAX_PLAYERS`].
    pub const MAX_GRID: usize = 4;
}

/// Shapley options checked once, where they are made (the maps take only these).
pub type Shapley = Valid<ShapleyConfig>;

impl Check for ShapleyConfig {
    type Error = Error;

    /// The options' own limits, checked before any image is read (whether the grid fits the
    /// images is [`Grid::new`]'s check).
    fn check(&self) -> Result<()> {
        let g = self.grid;
        if g == 0 || g * g > MAX_PLAYERS {
            return Err(Error::Config(format!(
                "`grid` {g}: between 1 and {} patches per side (grid² players, at most \
                 {MAX_PLAYERS})",
                ShapleyConfig::MAX_GRID
            )));
        }
        crate::shapley::check_budget(self.budget).map_err(|_| {
            Error::Config(format!(
                "`budget` {}: between 2 (v(∅) and v(all)) and {MAX_BUDGET} (every coalition of \
                 {MAX_PLAYERS} players)",
                self.budget
            ))
        })
    }
}

/// Bytes of masked images one chunk of games stands for: bounds the images, baselines and values
/// held at once whatever the number of images (the masked images themselves exist only inside
/// the game graph's runs, a batch at a time).
const MASKED_BYTES: usize = 64 << 20;

/// The progress stage of Shapley attribution, counted in images explained.
pub const STAGE: &str = crate::progress::ATTRIBUTION;

/// The games of a set of images of one teacher: image i's value of coalition S is the teacher's
/// output for `labels[i]` on image i with the patches outside S replaced by its baseline
/// (computed by the game graph, src/informativeness/game_graph.rs).
struct ImageGames<'a> {
    teacher: &'a Teacher,
    images: ArrayView4<'a, f32>,
    baselines: Array4<f32>,
    labels: &'a [usize],
    grid: Grid,
    value: Value,
    /// The game as one graph around the teacher: masking, forward and value where it runs.
    graph: GameGraph,
}

impl GameSet for ImageGames<'_> {
    fn players(&self) -> usize {
        self.grid.players()
    }

    fn games(&self) -> usize {
        self.labels.len()
    }

    fn values(&self, coalitions: &[Coalition]) -> Result<Array2<f64>> {
        let v = self
            .graph
            .values(self.images, self.baselines.view(), coalitions, self.labels)?;
        self.finite(v)
    }
}

impl ImageGames<'_> {
    /// The game graph's values, or the first non-finite one as an error naming its image.
    fn finite(&self, values: Array2<f64>) -> Result<Array2<f64>> {
        for (row, v) in values.rows().into_iter().enumerate() {
            if let Some(&bad) = v.iter().find(|v| !v.is_finite()) {
                return Err(Error::NonFinite {
                    teacher: self.teacher.path.clone(),
                    output: self.value.output_name(),
                    value: bad as f32,
                    row,
                    record: None,
                    stage: None,
                });
            }
        }
        Ok(values)
    }
}

/// Shapley maps `[n, g, g]` of `images` (teacher input space) for their `labels`, with one plan
/// (one coalition sample, drawn from `seed`) shared by all of them.
pub fn shapley_maps(
    teacher: &Teacher,
    images: ArrayView4<f32>,
    labels: &[usize],
    cfg: &Shapley,
    mean_pixel: &[f32],
    seed: u64,
    progress: &dyn Progress,
) -> Result<(Array3<f64>, Vec<Diagnostics>)> {
    let (n, _, h, w) = images.dim();
    let grid = Grid::new(cfg.grid, h, w).map_err(Error::Config)?;
    let plan = cfg.estimator.plan(grid.players(), cfg.budget, seed)?;
    let image_bytes = images.len() / n.max(1) * std::mem::size_of::<f32>();
    let per_chunk = (MASKED_BYTES / (plan.coalitions().len() * image_bytes).max(1)).max(1);
    let g = cfg.grid;
    let mut maps = Array3::zeros((n, g, g));
    let mut diagnostics = Vec::with_capacity(n);
    for start in (0..n).step_by(per_chunk) {
        let end = (start + per_chunk).min(n);
        let chunk = images.slice(s![start..end, .., .., ..]);
        let games = ImageGames {
            teacher,
            images: chunk,
            baselines: baselines(chunk, cfg.baseline, teacher, mean_pixel),
            labels: &labels[start..end],
            grid,
            value: cfg.value,
            graph: GameGraph::load(teacher, &grid, cfg.value)?,
        };
        let estimates = plan.run_set(&games).map_err(|e| e.map_row(|i| start + i))?;
        for (k, est) in estimates.into_iter().enumerate() {
            let map = Array2::from_shape_vec((g, g), est.phi).expect("g² players");
            maps.index_axis_mut(Axis(0), start + k).assign(&map);
            diagnostics.push(est.diagnostics);
        }
        progress.advance(STAGE, (end - start) as u64);
    }
    Ok((maps, diagnostics))
}

/// What decides an image's informativeness map besides the image, its label and the seed.
#[derive(Debug, Clone, Copy)]
pub struct MapOptions<'a> {
    pub attribution: super::Attribution,
    /// The Shapley options; with Grad-CAM only the grid applies.
    pub shapley: &'a Shapley,
    /// The dataset's mean pixel (the mean baseline).
    pub mean_pixel: &'a [f32],
}

/// Informativeness maps `[n, g, g]` of `images` (teacher input space) for their `labels`: Shapley
/// values (one coalition plan drawn from `seed` for all of them) or Grad-CAM, as `opts` says.
pub fn informative_maps(
    teacher: &Teacher,
    images: ArrayView4<f32>,
    labels: &[usize],
    opts: &MapOptions,
    seed: u64,
    progress: &dyn Progress,
) -> Result<Array3<f64>> {
    match opts.attribution {
        super::Attribution::Shapley => {
            let shapley = opts.shapley;
            shapley_maps(
                teacher,
                images,
                labels,
                shapley,
                opts.mean_pixel,
                seed,
                progress,
            )
            .map(|(maps, _)| maps)
        }
        super::Attribution::GradCam => {
            super::gradcam::gradcam_maps(teacher, images, labels, opts.shapley.grid, progress)
        }
    }
}

fn baselines(
    images: ArrayView4<f32>,
    kind: Baseline,
    teacher: &Teacher,
    mean_pixel: &[f32],
) -> Array4<f32> {
    let mut out = Array4::zeros(images.raw_dim());
    for (i, image) in images.outer_iter().enumerate() {
        let b = baseline_image(kind, image, &teacher.meta.input, mean_pixel);
        out.index_axis_mut(Axis(0), i).assign(&b);
    }
    out
}

/// Informativeness maps and crops of chosen dataset records, streamed in chunks: `sink` receives
/// each chunk's records (as stored), maps `[n, g, g]` and crop boxes (source pixels), so memory
/// does not grow with the number of records.
pub struct Attributed<'a> {
    pub records: &'a [Record],
    pub maps: &'a Array3<f64>,
    pub crops: &'a [Vec<super::PixelBox>],
}

/// What [`attribute_records`] does with each record besides reading it.
#[derive(Debug, Clone, Copy)]
pub struct RecordOptions<'a> {
    /// How the maps are made.
    pub maps: &'a MapOptions<'a>,
    /// How the crops are chosen from a map.
    pub rule: &'a super::CropRule,
    /// Draws the coalition plan and the crops' noise.
    pub seed: u64,
    /// Skip bad records (counted in the report) instead of stopping at the first.
    pub skip_bad: bool,
}

impl RecordOptions<'_> {
    /// The crop rule's limits, and the Grad-CAM graph where it is needed, before any image is
    /// read (the Shapley options were checked when they were made).
    fn check(&self, teacher: &Teacher) -> Result<()> {
        self.rule.check(self.maps.shapley.grid)?;
        if self.maps.attribution == super::Attribution::GradCam {
            teacher.cam_layer()?;
        }
        Ok(())
    }
}

pub fn attribute_records(
    teacher: &Teacher,
    source: &mut dyn Source,
    indices: Vec<usize>,
    job: &RecordOptions,
    progress: &dyn Progress,
    sink: &mut dyn FnMut(Attributed) -> Result<()>,
) -> Result<VisitReport> {
    use rand::SeedableRng;
    let RecordOptions {
        maps: opts,
        rule,
        seed,
        skip_bad,
    } = *job;
    let spec = &teacher.meta.input;
    source.match_classes(&teacher.meta.class_names)?;
    job.check(teacher)?;
    let grid = Grid::new(opts.shapley.grid, spec.height, spec.width).map_err(Error::Config)?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    progress.start(STAGE, indices.len() as u64);
    let report = Reader::new(spec, teacher.num_classes())
        .skip_bad(skip_bad)
        .batches_of(CHUNK)
        .keep_stored()
        .read(source, &Selection::Indices(indices), &mut |batch| {
            let (records, x) = batch.into_records();
            let labels: Vec<usize> = records.iter().map(|r| r.label).collect();
            let maps = informative_maps(teacher, x.view(), &labels, opts, seed, progress)
                .map_err(|e| e.locate(STAGE, |i| records.get(i).map(|r| r.index)))?;
            let crops = source_crops(&maps, &records, &grid, rule, spec, &mut rng);
            sink(Attributed {
                records: &records,
                maps: &maps,
                crops: &crops,
            })
        })?;
    progress.finish(STAGE);
    Ok(report)
}

/// Records explained at once.
const CHUNK: usize = 256;

/// Each record's informative crops from its map, in source pixels.
fn source_crops(
    maps: &Array3<f64>,
    records: &[Record],
    grid: &Grid,
    rule: &super::CropRule,
    spec: &InputSpec,
    rng: &mut rand::rngs::StdRng,
) -> Vec<Vec<super::PixelBox>> {
    maps.outer_iter()
        .zip(records)
        .map(|(m, r)| {
            let (_, h, w) = r.image.dim();
            super::crops::choose(m, grid, rule, rng)
                .into_iter()
                .map(|b| spec.box_to_source(b, (h, w)))
                .collect()
        })
        .collect()
}
