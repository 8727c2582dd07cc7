use std::path::PathBuf;

use clap::Args;
use infoutil::data;
use infoutil::informativeness::attribute::{attribute_records, MapOptions, RecordOptions, Shapley};
use infoutil::informativeness::Attributions;
use infoutil::provenance::Provenance;
use infoutil::render::HeatmapFolder;

use super::paths;

use super::progress::Bars;
use super::shapley_args::ShapleyArgs;
use super::TeacherArgs;

#[derive(Args)]
pub struct AttributeArgs {
    #[command(flatten)]
    teacher: TeacherArgs,
    /// Dataset (default: the embedded Fashion-MNIST test subset).
    #[arg(long, default_value = paths::DEFAULT_TEST_DATA)]
    data: PathBuf,
    /// Records to explain: a list and/or ranges, e.g. "0,5,10-19" (default: all, or --per-class).
    #[arg(long)]
    indices: Option<String>,
    /// The first N records of each class (applied after --indices).
    #[arg(long)]
    per_class: Option<usize>,
    #[command(flatten)]
    shapley: ShapleyArgs,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[arg(long)]
    skip_bad: bool,
    #[arg(long, default_value = "attribution.h5")]
    out: PathBuf,
    /// Folder for a heat-map PNG per image and a contact sheet of them all.
    #[arg(long)]
    png: Option<PathBuf>,
}

pub fn run(args: AttributeArgs) -> anyhow::Result<()> {
    let cfg = Shapley::new(args.shapley.config())?;
    let rule = args.shapley.crop_rule(1, 1); // crops of one image: the plain default
    let teacher = args.teacher.load()?;
    let data_path = paths::shipped_or(&args.data, paths::DEFAULT_TEST_DATA);
    let mut source = data::open_for(&data_path, &teacher.meta.class_names)?;
    let indices = selected(&args, source.as_mut())?;
    let inputs = super::inputs(&[&teacher], source.as_ref());
    paths::check_outputs(&[("--out", &args.out)], &inputs)?;
    let mut pictures = match &args.png {
        Some(dir) => {
            let folder = HeatmapFolder::create(dir).map_err(|e| anyhow::anyhow!("--png: {e}"))?;
            paths::check_outputs(&[("--png", &folder.sheet_path())], &inputs)?;
            Some(folder)
        }
        None => None,
    };
    let mean = data::stats::mean_pixel(source.as_mut(), teacher.meta.input.channels, 1000)?;
    let maps = MapOptions {
        attribution: args.shapley.attribution,
        shapley: &cfg,
        mean_pixel: &mean,
    };
    let mut found = Attributions::new(&maps, &rule, args.seed);
    let report = attribute_records(
        &teacher,
        source.as_mut(),
        indices,
        &RecordOptions {
            maps: &maps,
            rule: &rule,
            seed: args.seed,
            skip_bad: args.skip_bad,
        },
        &Bars::default(),
        &mut |chunk| {
            found.push(&chunk);
            pictures.as_mut().map_or(Ok(()), |p| p.add(&chunk))
        },
    )?;
    let run = Provenance::new("attribute", &teacher, source.as_ref())?;
    let written = found.write(&args.out, &teacher.file_sha256, &run)?;
    println!("{} images explained → {}", found.len(), written.display());
    if let (Some(p), Some(dir)) = (pictures, &args.png) {
        let shown = p.finish()?;
        println!(
            "heat-maps in {} (contact sheet of the first {shown}: {})",
            dir.display(),
            HeatmapFolder::SHEET
        );
    }
    if report.skipped > 0 {
        println!(
            "skipped {} bad record(s), e.g. {}",
            report.skipped,
            report.skipped_examples.join("; ")
        );
    }
    Ok(())
}

/// The records `--indices` and `--per-class` choose; an empty choice is an error.
fn selected(args: &AttributeArgs, source: &mut dyn data::Source) -> anyhow::Result<Vec<usize>> {
    let len = source.info().len;
    let mut indices = match &args.indices {
        Some(spec) => super::parse_list(spec, len, "--indices", "the dataset's records")?,
        None => (0..len).collect(),
    };
    if let Some(n) = args.per_class {
        indices = data::first_per_class(source, indices, n)?;
    }
    anyhow::ensure!(
        !indices.is_empty(),
        "--per-class {}: selects no image of {}",
        args.per_class.unwrap_or(0),
        source.info().path.display()
    );
    Ok(indices)
}
