use std::path::PathBuf;

use clap::Args;

#[derive(Args)]
pub struct InspectArgs {
    /// An HDF5 file written by infoutil.
    pub file: PathBuf,
}

pub fn run(args: InspectArgs) -> anyhow::Result<()> {
    print!("{}", infoutil::store::summary(&args.file)?);
    Ok(())
}
