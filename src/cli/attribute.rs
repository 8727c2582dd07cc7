use std::path::PathBuf;

use clap::Args;
use infoutil::informativeness::attribute::attribute_records;
use infoutil::informativeness::Attributions;
use infoutil::{data, paths, render};

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
    let cfg = args.shapley.config();
    let rule = args.shapley.crop_rule();
    cfg.check()?;
    rule.check(cfg.grid)?;
    let teacher = args.teacher.load()?;
    let data_path = paths::shipped_or(&args.data, paths::DEFAULT_TEST_DATA);
    let mut source = data::open_for(&data_path, &teacher.meta.class_names)?;
    let len = source.info().len;
    let mut indices = match &args.indices {
        Some(spec) => super::parse_list(spec, len, "--indices", "the dataset's records")?,
        None => (0..len).collect(),
    };
    if let Some(n) = args.per_class {
        let labels = source.labels()?;
        let mut seen = std::collections::HashMap::new();
        indices.retain(|&i| {
            let c = seen.entry(labels[i]).or_insert(0usize);
            *c += 1;
            *c <= n
        });
    }
    anyhow::ensure!(
        !indices.is_empty(),
        "--per-class {}: selects no image of {}",
        args.per_class.unwrap_or(0),
        data_path.display()
    );
    paths::check_outputs(
        &[("--out", &args.out)],
        &super::inputs(&[&teacher], source.as_ref()),
    )?;
    if let Some(dir) = &args.png {
        std::fs::create_dir_all(dir).map_err(|e| {
            anyhow::anyhow!("--png {}: cannot make the folder ({e})", dir.display())
        })?;
        let probe = dir.join("contact-sheet.png");
        paths::check_outputs(
            &[("--png", &probe)],
            &super::inputs(&[&teacher], source.as_ref()),
        )?;
    }
    let mean = data::stats::mean_pixel(source.as_mut(), teacher.meta.input.channels, 1000)?;
    let mut found = Attributions::new(cfg.grid, rule.per_image);
    let mut tiles = Vec::new();
    let png_dir = args.png.clone();
    let report = attribute_records(
        &teacher,
        source.as_mut(),
        indices,
        &cfg,
        &rule,
        &mean,
        args.seed,
        args.skip_bad,
        &Bars::default(),
        &mut |chunk| {
            found.push(&chunk);
            if let Some(dir) = &png_dir {
                for ((r, map), crops) in chunk
                    .records
                    .iter()
                    .zip(chunk.maps.outer_iter())
                    .zip(chunk.crops)
                {
                    let picture = render::heatmap(r.image.view(), map, crops, 8);
                    render::save(
                        &picture,
                        &dir.join(format!("{:06}-class{}.png", r.index, r.label)),
                    )?;
                    if tiles.len() < 100 {
                        tiles.push(picture);
                    }
                }
            }
            Ok(())
        },
    )?;
    let config = serde_json::json!({
        "command": "attribute",
        "teacher": teacher.path,
        "data": data_path,
        "data_sha256": data::fingerprint(source.as_ref())?,
        "class_folders": source.info().class_map,
        "backend": teacher.backend,
        "shapley": cfg,
        "crops": rule,
        "seed": args.seed,
        "mean_pixel": mean,
    });
    let n = found.len();
    let written = found.write(&args.out, &teacher.file_sha256, &cfg, args.seed, &config)?;
    println!("{n} images explained → {}", written.display());
    if let Some(dir) = &png_dir {
        render::save(
            &render::contact_sheet(&tiles, 10),
            &dir.join("contact-sheet.png"),
        )?;
        println!(
            "heat-maps in {} (contact sheet of the first {}: contact-sheet.png)",
            dir.display(),
            tiles.len()
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
