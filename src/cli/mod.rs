//! Argument parsing and human-facing output. Each subcommand lives in its own file and only
//! translates arguments into a library call.

mod attribute;
mod choices;
mod distill;
mod flags;
mod inspect;
mod options_json;
mod paths;
mod progress;
mod report;
mod shapley_args;
mod teacher;
mod version;

use std::path::PathBuf;
use std::process::ExitCode;

use choices::{one_of, BACKENDS, DEVICES};
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use infoutil::teacher::{BackendChoice, Device, Teacher, TeacherOptions};

#[derive(Parser)]
#[command(
    name = "infoutil",
    version,
    about = "Distil image datasets with Shapley informativeness and gradient-norm utility (InfoUtil)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Work with a teacher network: evaluate it on a dataset.
    #[command(subcommand)]
    Teacher(teacher::TeacherCommand),
    /// Shapley maps of real images and their informative crops (Stage 1).
    Attribute(attribute::AttributeArgs),
    /// Distil a dataset: InfoUtil, or the RDED and random baselines.
    Distill(distill::DistillArgs),
    /// Combine distilled files made with --classes shards of one run into one file.
    Merge(MergeArgs),
    /// Print a readable summary of an HDF5 file that infoutil wrote.
    Inspect(inspect::InspectArgs),
    /// Write an HTML report of an HDF5 file that infoutil wrote, to open in a browser.
    Report(report::ReportArgs),
    /// Every subcommand's options as JSON, for the Python wrappers (python/infoutil).
    #[command(hide = true)]
    OptionsJson,
}

#[derive(Args)]
struct MergeArgs {
    /// Distilled files of one run, each with other classes (`distill --classes`).
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    #[arg(long)]
    out: PathBuf,
    /// Merge even when the shards together lack some of the teacher's classes.
    #[arg(long)]
    allow_missing_classes: bool,
}

fn merge(args: MergeArgs) -> anyhow::Result<()> {
    paths::check_outputs(&[("--out", &args.out)], &args.inputs)?;
    let written = infoutil::distill::merge(&args.inputs, &args.out, args.allow_missing_classes)?;
    println!("merged {} files → {}", args.inputs.len(), written.display());
    Ok(())
}

/// Which teacher, and how to run it.
#[derive(Args, Debug, Clone)]
pub struct TeacherArgs {
    /// Forward ONNX graph; its gradient graph NAME.grad.onnx is read from beside it.
    #[arg(long, default_value = paths::DEFAULT_TEACHER)]
    pub teacher: PathBuf,
    /// Inference backend: auto uses ONNX Runtime when its library loads, else tract.
    #[arg(long, default_value = "auto", value_parser = one_of(BACKENDS))]
    pub backend: BackendChoice,
    /// cuda needs ONNX Runtime with its CUDA provider; it never falls back to the CPU.
    #[arg(long, default_value = "cpu", value_parser = one_of(DEVICES))]
    pub device: Device,
    /// Images per backend call [default: 64 on the CPU, 256 with --device cuda].
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// ONNX Runtime library (default: $ORT_DYLIB_PATH).
    #[arg(long)]
    pub ort_lib: Option<PathBuf>,
    /// ONNX Runtime sessions per graph running batches at once, sharing the CPU threads.
    #[arg(long, default_value_t = 1)]
    pub ort_sessions: usize,
    /// With --device cuda: the GPU to use, as CUDA numbers them (after CUDA_VISIBLE_DEVICES).
    #[arg(long, default_value_t = 0)]
    pub cuda_device: u32,
    /// With --device cuda: the most GPU memory ONNX Runtime's arena may take, in MiB
    /// [default: no limit].
    #[arg(long)]
    pub cuda_memory_limit: Option<usize>,
}

/// The files a run reads: the teacher's graphs and the dataset's files.
pub fn inputs(teachers: &[&Teacher], source: &dyn infoutil::data::Source) -> Vec<PathBuf> {
    let mut files = source.inputs();
    for t in teachers {
        files.push(t.path.clone());
        files.extend(t.grad_path().map(std::path::Path::to_path_buf));
    }
    files
}

impl TeacherArgs {
    pub fn load(&self) -> anyhow::Result<Teacher> {
        self.load_path(&paths::shipped_or(&self.teacher, paths::DEFAULT_TEACHER))
    }

    /// Load another teacher (e.g. the soft-label one) with the same backend options.
    pub fn load_path(&self, path: &std::path::Path) -> anyhow::Result<Teacher> {
        let opts = TeacherOptions {
            backend: self.backend,
            device: self.device,
            batch_size: self
                .batch_size
                .unwrap_or_else(|| self.device.default_batch_size()),
            ort_library: self.ort_lib.clone(),
            ort_sessions: self.ort_sessions,
            cuda: infoutil::teacher::CudaOptions {
                device_id: self.cuda_device,
                memory_limit_mib: self.cuda_memory_limit,
            },
        };
        let teacher = Teacher::load(path, &opts)?;
        if let Some(note) = &teacher.backend_note {
            eprintln!("note: using tract because ONNX Runtime is unavailable: {note}");
        }
        // The library's batches are NCHW; say so when the graph takes them channels-last.
        let layout = match teacher.meta.layout {
            infoutil::teacher::Layout::Nchw => String::new(),
            other => format!(", fed to the graph as {}", other.as_str()),
        };
        eprintln!(
            "teacher {} ({} classes, input {}×{}×{}{layout}) on {}",
            teacher.path.display(),
            teacher.num_classes(),
            teacher.meta.input.channels,
            teacher.meta.input.height,
            teacher.meta.input.width,
            teacher.backend
        );
        Ok(teacher)
    }
}

/// Runs the command. A panic is a bug, never the user's fault: it is reported in one line with
/// where it happened, and the exit code is 2 (1 is an error the user can fix).
pub fn main() -> ExitCode {
    if version::asked() {
        // Not println!, which panics when the reader has gone (`infoutil --version | head -1`).
        use std::io::Write;
        let _ = writeln!(std::io::stdout(), "{}", version::report());
        return ExitCode::SUCCESS;
    }
    let cli = match parse() {
        Ok(cli) => cli,
        // clap ends a usage error with exit code 2, which this tool keeps for bugs (a panic,
        // below): a bad option is bad input like any other, exit 1. --help prints and exits 0.
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(u8::from(e.use_stderr()));
        }
    };
    // Every interruption is said the same way and leaves no temporary behind (outputs.rs).
    infoutil::outputs::remove_temporaries_on_signal();
    std::panic::set_hook(Box::new(|info| {
        eprintln!(
            "error: internal error in infoutil (a bug; please report it with the command that \
             caused it): {info}"
        );
    }));
    match std::panic::catch_unwind(|| run(cli)) {
        Ok(code) => code,
        Err(_) => ExitCode::from(2),
    }
}

/// The command line, with what clap's derive does not keep: which options of `distill` were
/// given rather than defaulted (a method refuses a given option it does not read).
fn parse() -> Result<Cli, clap::Error> {
    parse_from(std::env::args_os())
}

fn parse_from(
    argv: impl IntoIterator<Item = impl Into<std::ffi::OsString> + Clone>,
) -> Result<Cli, clap::Error> {
    let mut command = Cli::command();
    let matches = command.try_get_matches_from_mut(argv)?;
    let mut cli = Cli::from_arg_matches(&matches)?;
    if let (Command::Distill(args), Some(m)) =
        (&mut cli.command, matches.subcommand_matches("distill"))
    {
        let distill = command.find_subcommand("distill").expect("a subcommand");
        args.given = distill::given(distill, m);
    }
    Ok(cli)
}

fn run(cli: Cli) -> ExitCode {
    let result = match cli.command {
        Command::Teacher(cmd) => teacher::run(cmd),
        Command::Attribute(args) => attribute::run(args),
        Command::Distill(args) => distill::run(args),
        Command::Merge(args) => merge(args),
        Command::Inspect(args) => inspect::run(args),
        Command::Report(args) => report::run(args),
        Command::OptionsJson => {
            println!("{}", options_json::all(&Cli::command()));
            Ok(())
        }
    };
    for note in infoutil::progress::take_notes() {
        eprintln!("note: {note}");
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let message = flags::in_message(&format!("{e:#}"));
            eprintln!("error: {message}");
            // The Python wrappers leave stderr to the terminal (progress bars draw only there)
            // and read the message from here, to raise it as infoutil.Error.
            if let Some(path) = std::env::var_os("INFOUTIL_ERROR_FILE") {
                let _ = std::fs::write(path, &message);
            }
            ExitCode::FAILURE
        }
    }
}

/// Peak resident memory of this process, from /proc (Linux); "unknown" elsewhere.
pub fn peak_memory() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(|l| l[6..].trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

/// A list of indices and inclusive ranges, e.g. "0,5,10-19", each below `len`; sorted, distinct
/// and never empty. `option` (e.g. "--indices") and `what` name them in errors.
pub fn parse_list(spec: &str, len: usize, option: &str, what: &str) -> anyhow::Result<Vec<usize>> {
    const SYNTAX: &str = "a comma-separated list of numbers and ranges a-b, e.g. \"0,5,10-19\"";
    let number = |text: &str| {
        text.trim().parse::<usize>().map_err(|_| {
            anyhow::anyhow!(
                "{option} {spec:?}: {:?} is not a number; expected {SYNTAX}",
                text.trim()
            )
        })
    };
    let mut out = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (number(a)?, number(b)?),
            None => {
                let v = number(part)?;
                (v, v)
            }
        };
        anyhow::ensure!(
            a <= b,
            "{option} {spec:?}: the range {part:?} runs backwards"
        );
        anyhow::ensure!(
            b < len,
            "{option} {spec:?}: {part:?} is outside {what} (0 to {})",
            len.saturating_sub(1)
        );
        out.extend(a..=b);
    }
    anyhow::ensure!(
        !out.is_empty(),
        "{option} {spec:?} selects nothing; expected {SYNTAX}"
    );
    out.sort_unstable();
    out.dedup();
    Ok(out)
}
