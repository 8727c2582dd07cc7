use std::collections::BTreeSet;
use std::path::PathBuf;

use super::choices::{one_of, METHODS, SCORES};
use super::{flags, paths};
use clap::parser::ValueSource;
use clap::{ArgMatches, Args};
use infoutil::base::valid::Valid;
use infoutil::distill::{
    default_checkpoint_dir, distill, label_teacher_for, run_identity, Checkpoint, DistillConfig,
    Distilled, Method, Opt, Reuse, SavedMaps,
};
use infoutil::informativeness::attribute::Shapley;
use infoutil::informativeness::{Attribution, CropRule};
use infoutil::provenance::Provenance;
use infoutil::teacher::Teacher;
use infoutil::utility::Score;
use infoutil::{data, report};

use super::progress::Bars;
use super::shapley_args::ShapleyArgs;
use super::TeacherArgs;

#[derive(Args)]
pub struct DistillArgs {
    #[command(flatten)]
    teacher: TeacherArgs,
    /// Teacher for the soft labels (default: the early checkpoint NAME-early.onnx beside the
    /// teacher for IPC ≤ 10, as the paper does, else the teacher itself).
    #[arg(long)]
    label_teacher: Option<PathBuf>,
    /// Dataset to distil (default: the embedded Fashion-MNIST training subset).
    #[arg(long, default_value = paths::DEFAULT_TRAIN_DATA)]
    data: PathBuf,
    #[arg(long, default_value = "infoutil", value_parser = one_of(METHODS))]
    method: Method,
    /// Distilled images per class.
    #[arg(long, default_value_t = 10)]
    ipc: usize,
    /// Crops stitched per side of a distilled image (2 for high-resolution data, 1 for 28–32 px).
    #[arg(long, default_value_t = 1)]
    factor: usize,
    /// Real candidate images drawn per class.
    #[arg(long, default_value_t = 300)]
    candidates: usize,
    /// Utility score of a crop (ablations: last-layer, loss).
    #[arg(long, default_value = "grad-norm", value_parser = one_of(SCORES))]
    score: Score,
    /// Select among the crops the teacher assigns to their own class first, and take others only
    /// when too few are (InfoUtil; an option of this toolkit, not of the paper).
    #[arg(long)]
    only_recognised: bool,
    #[command(flatten)]
    shapley: ShapleyArgs,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Skip bad records (and report how many) instead of stopping at the first.
    #[arg(long)]
    skip_bad: bool,
    #[arg(long, default_value = "distilled.h5")]
    out: PathBuf,
    /// Only these classes, e.g. "0-499" (one machine's share; combine the files with `infoutil merge`).
    #[arg(long)]
    classes: Option<String>,
    /// Take the classes that an interrupted run with the same options already finished (kept in
    /// OUT.parts/ until the output is written).
    #[arg(long)]
    resume: bool,
    /// Contact sheet of the distilled images (default: OUT with .png; with many classes one
    /// sheet per block of classes, FILE-classes-A-B.png).
    #[arg(long)]
    png: Option<PathBuf>,
    /// Also write the HTML report of the result (`infoutil report`) into OUT-report/.
    #[arg(long)]
    report: bool,
    /// Reuse the informativeness maps of an earlier InfoUtil run (same teacher, data,
    /// attribution, Shapley options and seed; any IPC, score, noise or label teacher): ablations
    /// then skip the costly stage.
    #[arg(long, value_name = "FILE.h5")]
    maps_from: Option<PathBuf>,
    /// The options a method may not read that were given (on the command line, or as keywords
    /// of the Python wrappers, which pass only those): [`given`].
    #[arg(skip)]
    pub given: BTreeSet<Opt>,
}

/// The argument of `distill` (its `command`) that sets `opt`: the one with the flag cli/flags.rs
/// maps the option's field to, so that no second table names them (every option has one: the
/// test below looks each up).
fn argument(command: &clap::Command, opt: Opt) -> &clap::Arg {
    let flag = flags::flag(opt.field())
        .unwrap_or_else(|| panic!("cli/flags.rs maps no flag to `{}`", opt.field()));
    let long = flag.trim_start_matches("--");
    command
        .get_arguments()
        .find(|a| a.get_long() == Some(long))
        .unwrap_or_else(|| panic!("distill has no {flag}"))
}

/// The options a method may not read ([`Opt`]) that `distill`'s matches got from the user rather
/// than from clap's defaults: the method refuses those it does not read, at any value, the
/// default's included.
pub fn given(command: &clap::Command, matches: &ArgMatches) -> BTreeSet<Opt> {
    Opt::ALL
        .into_iter()
        .filter(|&opt| {
            let id = argument(command, opt).get_id().as_str();
            !matches!(
                matches.value_source(id),
                None | Some(ValueSource::DefaultValue)
            )
        })
        .collect()
}

impl DistillArgs {
    fn crop_rule(&self) -> CropRule {
        self.shapley
            .crop_rule(self.ipc * self.factor * self.factor, self.candidates)
    }

    /// The typed options, checked (once: the run takes them as they are); `classes` is the
    /// teacher's class count (for `--classes`), `shapley` the Shapley options checked already.
    fn config(&self, classes: usize, shapley: Shapley) -> anyhow::Result<Valid<DistillConfig>> {
        let cfg = DistillConfig {
            method: self.method,
            ipc: self.ipc,
            factor: self.factor,
            candidates: self.candidates,
            attribution: self.shapley.attribution,
            shapley,
            crops: self.crop_rule(),
            score: self.score,
            only_recognised: self.only_recognised,
            seed: self.seed,
            skip_bad: self.skip_bad,
            classes: match &self.classes {
                Some(spec) => Some(super::parse_list(
                    spec,
                    classes,
                    "--classes",
                    "the teacher's classes",
                )?),
                None => None,
            },
            given: self.given.clone(),
        };
        Ok(Valid::new(cfg)?)
    }
}

pub fn run(args: DistillArgs) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    // The Shapley options' limits first: a typo should not wait for a teacher to load.
    let shapley = Shapley::new(args.shapley.config())?;
    let teacher = args.teacher.load()?;
    let label_teacher = load_label_teacher(&args, &teacher)?;
    let data_path = paths::shipped_or(&args.data, paths::DEFAULT_TRAIN_DATA);
    let mut source = data::open_for(&data_path, &teacher.meta.class_names)?;
    let cfg = args.config(teacher.num_classes(), shapley)?;
    if cfg.attribution == Attribution::GradCam {
        teacher.cam_layer()?; // before any image is read
    }
    let labels_by = label_teacher.as_ref().unwrap_or(&teacher);
    let png = args
        .png
        .clone()
        .unwrap_or_else(|| args.out.with_extension("png"));
    let mut inputs = super::inputs(&[&teacher, labels_by], source.as_ref());
    inputs.extend(args.maps_from.clone());
    paths::check_outputs(&[("--out", &args.out), ("--png", &png)], &inputs)?;
    if args.report {
        report::check_out(&report::default_dir(&args.out))?;
    }
    // The data by content, not by path: a file changed in place must not resume or reuse maps.
    let run = Provenance::new("distill", &teacher, source.as_ref())?;
    // One identity for the checkpoint, the reused maps and (recorded) a later merge.
    let identity = run_identity(&run, &cfg, &teacher, labels_by, args.maps_from.as_deref());
    let checkpoint = Checkpoint::new(default_checkpoint_dir(&args.out), args.resume, &identity)?;
    let saved_maps = match &args.maps_from {
        Some(path) => Some(SavedMaps::load(path, &identity)?),
        None => None,
    };
    let reuse = Reuse {
        checkpoint: Some(&checkpoint),
        maps: saved_maps.as_ref(),
    };
    let set = distill(
        &teacher,
        labels_by,
        source.as_mut(),
        &cfg,
        reuse,
        &Bars::default(),
    )?;
    let written = set.write(&args.out, &teacher, &run)?;
    checkpoint.remove()?;
    let sheets = contact_sheets(&set, &teacher.meta.class_names, &png)?;
    summary(
        &set, &cfg, &teacher, &data_path, &written, &sheets[0], started,
    );
    if args.report {
        super::report::write(&written, &super::report::options(None, None))?;
    }
    Ok(())
}

/// The contact sheets of the distilled images (one per block of classes where there are many);
/// returns their paths.
fn contact_sheets(
    set: &Distilled,
    names: &[String],
    png: &std::path::Path,
) -> anyhow::Result<Vec<PathBuf>> {
    let labels = set.labels.to_vec();
    let sheets = report::sheet::save_sheets(set.images_u8.view(), &labels, names, png)?;
    if sheets.len() > 1 {
        eprintln!(
            "note: {} contact sheets, one per block of classes, beside {}",
            sheets.len(),
            png.display()
        );
    }
    Ok(sheets)
}

/// The soft-label teacher (`--label-teacher`, or the paper's choice, said on stderr); None when
/// it is the teacher itself.
fn load_label_teacher(args: &DistillArgs, teacher: &Teacher) -> anyhow::Result<Option<Teacher>> {
    let (label_path, why) = match &args.label_teacher {
        Some(p) => (p.clone(), "given with --label-teacher".to_string()),
        None => label_teacher_for(&teacher.path, args.ipc),
    };
    let why = super::flags::in_message(&why);
    eprintln!("soft labels from {}: {why}", label_path.display());
    Ok(if label_path == teacher.path {
        None
    } else {
        Some(args.teacher.load_path(&label_path)?)
    })
}

/// What a person reads at the end of a run: what was written, how fast, where the time went.
fn summary(
    set: &Distilled,
    cfg: &DistillConfig,
    teacher: &Teacher,
    data: &std::path::Path,
    written: &std::path::Path,
    png: &std::path::Path,
    started: std::time::Instant,
) {
    if set.resumed_classes > 0 {
        println!(
            "resumed {} finished class(es) from the checkpoint",
            set.resumed_classes
        );
    }
    print_absent_classes(set, teacher);
    let t = &set.timings;
    println!(
        "{:?}: {} images ({} per class, factor {}) from {} → {} and {}",
        cfg.method,
        set.len(),
        cfg.ipc,
        cfg.factor,
        data.display(),
        written.display(),
        png.display()
    );
    let total = started.elapsed().as_secs_f64();
    let per_s = |secs: f64| set.candidates() as f64 / secs.max(1e-9);
    println!(
        "{} candidate images: {:.1} images/s end to end{}",
        set.candidates(),
        per_s(total),
        if t.attribution > 0.0 {
            format!(", {:.1} images/s through attribution", per_s(t.attribution))
        } else {
            String::new()
        }
    );
    println!(
        "time {:.1} s: read {:.1}, attribution {:.1}, utility {:.1}, reconstruction {:.1}, soft labels {:.1}; peak memory {}; {}",
        total,
        t.read,
        t.attribution,
        t.utility,
        t.reconstruction,
        t.soft_labels,
        super::peak_memory(),
        teacher.backend
    );
    if set.report.skipped > 0 {
        println!(
            "skipped {} bad record(s), e.g. {}",
            set.report.skipped,
            set.report.skipped_examples.join("; ")
        );
    }
}

/// The teacher's classes the data did not hold (distilled without them), when any.
fn print_absent_classes(set: &Distilled, teacher: &infoutil::teacher::Teacher) {
    if set.absent_classes.is_empty() {
        return;
    }
    let names = &teacher.meta.class_names;
    let k = names.len();
    let absent: Vec<String> = set
        .absent_classes
        .iter()
        .take(10)
        .map(|&c| format!("{c} ({})", names[c]))
        .collect();
    let more = set.absent_classes.len().saturating_sub(absent.len());
    println!(
        "the data holds {} of the teacher's {k} classes: distilled those; absent (recorded \
         as config.absent_classes): {}{}",
        k - set.absent_classes.len(),
        absent.join(", "),
        if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        }
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn given_by(argv: &[&str]) -> BTreeSet<Opt> {
        let mut full = vec!["infoutil", "distill"];
        full.extend_from_slice(argv);
        match super::super::parse_from(full).expect("parses").command {
            super::super::Command::Distill(args) => args.given,
            _ => unreachable!("distill"),
        }
    }

    /// Each option a method may not read is seen as given when on the command line, at any
    /// value (its default's too), and not when left to clap's default; each has its argument
    /// (found through cli/flags.rs: [`argument`] panics for one without).
    #[test]
    fn options_given_are_told_from_defaults_for_every_option_a_method_may_not_read() {
        assert!(given_by(&[]).is_empty());
        let cmd = super::super::Cli::command();
        let distill = cmd.find_subcommand("distill").expect("distill");
        for opt in Opt::ALL {
            let arg = argument(distill, opt);
            let flag = format!("--{}", arg.get_long().expect("a long flag"));
            let mut argv = vec![flag.as_str()];
            let default = arg
                .get_default_values()
                .first()
                .map(|v| v.to_string_lossy());
            let value = match (arg.get_action(), opt) {
                (clap::ArgAction::SetTrue, _) => None,
                (_, Opt::MapsFrom) => Some("x.h5".to_string()),
                (_, Opt::PerImage) => Some("3".to_string()),
                _ => Some(default.expect("a default").into_owned()),
            };
            argv.extend(value.as_deref());
            assert_eq!(given_by(&argv), BTreeSet::from([opt]), "{argv:?}");
        }
    }
}
