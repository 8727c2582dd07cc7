//! `infoutil --version`: what a bug report needs, namely the version, the commit built and which
//! backends this process can load where it runs (ONNX Runtime is found at run time, so the same
//! binary answers differently on different machines).

use infoutil::teacher;

/// The report, one line per fact.
pub fn report() -> String {
    let ort_path = teacher::ort_library_path(None);
    let (ort, cuda) = match teacher::describe_ort(None) {
        // Whether the library has the CUDA provider can only be asked of a loaded library.
        Ok(info) => (
            format!("loads from {} ({info})", ort_path.display()),
            teacher::describe_ort_cuda(),
        ),
        Err(e) => (
            format!("not loadable here ({e})"),
            if cfg!(feature = "cuda") {
                "compiled in (needs onnxruntime-gpu and a GPU)".into()
            } else {
                teacher::describe_ort_cuda()
            },
        ),
    };
    format!(
        "infoutil {} (commit {})\nbackends:\n  tract: built in, CPU\n  ONNX Runtime: {ort}\n  \
         ONNX Runtime CUDA provider: {cuda}",
        env!("CARGO_PKG_VERSION"),
        env!("INFOUTIL_GIT_COMMIT"),
    )
}

/// Whether the command line asks for the version (there are no options before the subcommand).
pub fn asked() -> bool {
    std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == "--version" || a == "-V")
}
