use std::path::PathBuf;

use super::paths;
use clap::{Args, Subcommand};
use infoutil::data;
use infoutil::evaluate::{evaluate, output_warning, EvalOptions};
use infoutil::provenance::Provenance;

use super::progress::Bars;
use super::TeacherArgs;

#[derive(Subcommand)]
pub enum TeacherCommand {
    /// Top-1 accuracy of a teacher on a labelled dataset; optionally logits and gradient norms to HDF5.
    Eval(EvalArgs),
}

#[derive(Args)]
pub struct EvalArgs {
    #[command(flatten)]
    teacher: TeacherArgs,
    /// Dataset: idx file, CIFAR binary, image folder or HDF5 (default: the embedded Fashion-MNIST test subset).
    #[arg(long, default_value = paths::DEFAULT_TEST_DATA)]
    data: PathBuf,
    /// Skip bad records (and report how many) instead of stopping at the first.
    #[arg(long)]
    skip_bad: bool,
    /// Do not compute per-sample gradient norms (they need the gradient graph).
    #[arg(long)]
    no_grad_norms: bool,
    /// Write /logits, /labels, /grad_norms and /source_index to this HDF5 file.
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn run(cmd: TeacherCommand) -> anyhow::Result<()> {
    match cmd {
        TeacherCommand::Eval(args) => eval(args),
    }
}

fn eval(args: EvalArgs) -> anyhow::Result<()> {
    let teacher = args.teacher.load()?;
    let data_path = paths::shipped_or(&args.data, paths::DEFAULT_TEST_DATA);
    let mut source = data::open_for(&data_path, &teacher.meta.class_names)?;
    if let Some(out) = &args.out {
        paths::check_outputs(
            &[("--out", out)],
            &super::inputs(&[&teacher], source.as_ref()),
        )?;
    }
    let opts = EvalOptions {
        data: data_path.clone(),
        skip_bad: args.skip_bad,
        grad_norms: !args.no_grad_norms && teacher.grad_meta().is_ok(),
    };
    if !args.no_grad_norms && !opts.grad_norms {
        eprintln!(
            "note: no gradient norms: {}",
            teacher.grad_meta().unwrap_err()
        );
    }
    let result = evaluate(&teacher, source.as_mut(), &opts, &Bars::default())?;
    println!(
        "{}: top-1 {:.2}% on {} images of {} ({:.1} s, {:.0} images/s, {})",
        teacher.path.display(),
        100.0 * result.top1(),
        result.len(),
        data_path.display(),
        result.seconds,
        result.len() as f64 / result.seconds.max(1e-9),
        teacher.backend,
    );
    if let Some(g) = &result.grad_norms {
        let mean = g.mean().unwrap_or(0.0);
        println!("mean per-sample gradient norm {mean:.4}");
    }
    if let Some(why) = output_warning(result.logits.view()) {
        eprintln!(
            "warning: {}'s outputs on these {} images {why}; its last op is {}. infoutil treats \
             outputs as logits (cross-entropy of their softmax), so gradient norms and \
             informativeness would be those of another loss: export the graph before that op",
            teacher.path.display(),
            result.len(),
            teacher.output_op.as_deref().unwrap_or("unknown"),
        );
    }
    if result.report.skipped > 0 {
        println!("skipped {} bad record(s), e.g.:", result.report.skipped);
        for ex in &result.report.skipped_examples {
            println!("  {ex}");
        }
    }
    if let Some(out) = &args.out {
        let run = Provenance::new("teacher eval", &teacher, source.as_ref())?;
        let written = result.write(out, &teacher, &run)?;
        println!("wrote {}", written.display());
    }
    Ok(())
}
