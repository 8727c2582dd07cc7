//! The `infoutil` command: parses arguments and calls the library.

#![warn(clippy::too_many_lines)]

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
