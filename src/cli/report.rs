use std::path::PathBuf;

use clap::Args;

#[derive(Args)]
pub struct ReportArgs {
    /// An HDF5 file written by infoutil (distilled, attribution or teacher eval).
    pub file: PathBuf,
    /// The report folder, index.html inside [default: FILE-report beside the file].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// The dataset the file's records come from, where it is not at the path the file records.
    #[arg(long)]
    pub data: Option<PathBuf>,
}

pub fn run(args: ReportArgs) -> anyhow::Result<()> {
    write(&args.file, &options(args.out, args.data))?;
    Ok(())
}

/// The report's options as the command line sets them: relative paths a file records are also
/// looked for in the source tree (the shipped data and teachers).
pub fn options(out: Option<PathBuf>, data: Option<PathBuf>) -> infoutil::report::Options {
    infoutil::report::Options {
        out,
        data,
        roots: vec![super::paths::source_tree()],
    }
}

/// Write the report and say where it is (also what `distill --report` calls).
pub fn write(
    file: &std::path::Path,
    opts: &infoutil::report::Options,
) -> anyhow::Result<infoutil::report::Written> {
    let started = std::time::Instant::now();
    let w = infoutil::report::write(file, opts)?;
    for p in w.problems.iter().take(5) {
        eprintln!("note: {p}");
    }
    if w.problems.len() > 5 {
        eprintln!(
            "note: … and {} more (listed on the pages)",
            w.problems.len() - 5
        );
    }
    eprintln!("{}", w.sources);
    println!(
        "report: {} ({} pages, {} pictures, {:.1} s); open it in a browser",
        w.index.display(),
        w.pages,
        w.pictures,
        started.elapsed().as_secs_f64()
    );
    Ok(w)
}
