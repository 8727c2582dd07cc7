//! ONNX Runtime's CUDA execution provider (cargo feature `cuda`, on by default): registering it on
//! a session, loading the CUDA and cuDNN libraries that `pip install "infoutil[gpu]"` installs
//! beside ONNX Runtime, and saying in plain words what is missing when it cannot start. Nothing
//! here runs unless a user asks for `--device cuda` (or `--version`), so a CPU run of a build with
//! the feature is the same as one without.

use std::path::{Path, PathBuf};

use ort::ep::ExecutionProvider;
use ort::session::builder::SessionBuilder;

use super::engine::CudaOptions;
use crate::error::{Error, Result};

fn err(e: impl std::fmt::Display) -> Error {
    Error::backend("ort", e)
}

/// The libraries ONNX Runtime's CUDA provider (`libonnxruntime_providers_cuda.so`) needs, the
/// ones each depends on first: CUDA 13's, then cuDNN 9's (ort's own lists for this version).
fn needed() -> impl Iterator<Item = &'static str> {
    ort::ep::cuda::CUDA_DYLIBS
        .iter()
        .chain(ort::ep::cuda::CUDNN_DYLIBS)
        .copied()
}

/// Register the CUDA provider on `builder` for the ONNX Runtime library at `library`. It fails
/// rather than falling back to the CPU (a user who asked for CUDA must get it), with what is
/// missing and what to do about it.
pub fn register(
    builder: SessionBuilder,
    cuda: &CudaOptions,
    library: &Path,
) -> Result<SessionBuilder> {
    if !ort::ep::CUDA::is_available().map_err(err)? {
        return Err(err(format!(
            "the ONNX Runtime library {} has no CUDA execution provider (it is a CPU build); \
             install onnxruntime-gpu: pip install \"infoutil[gpu]\"",
            library.display()
        )));
    }
    let wheels = Wheels::load(library);
    let mut provider = ort::ep::CUDA::default().with_device_id(cuda.device_id as i32);
    if let Some(mib) = cuda.memory_limit_mib {
        provider = provider.with_memory_limit(mib << 20);
    }
    builder
        .with_execution_providers([provider.build().error_on_failure()])
        // The builder's error carries the builder, which is not Send: keep only the message.
        .map_err(|e| {
            let message = e.to_string();
            err(format!(
                "cannot enable CUDA: {message}\n{}",
                hint(&message, &wheels)
            ))
        })
}

/// The nvidia-* wheels (CUDA runtime, cuBLAS, cuDNN…) that `onnxruntime-gpu[cuda,cudnn]`
/// installs into the site-packages of the ONNX Runtime library.
pub struct Wheels {
    folders: Vec<PathBuf>,
    /// Libraries found there that would not load, with the loader's message.
    failed: Vec<String>,
}

impl Wheels {
    /// The wheels' `lib/` folders beside `library`, without loading anything.
    fn find(library: &Path) -> Wheels {
        Wheels {
            folders: wheel_folders(library),
            failed: Vec::new(),
        }
    }

    /// Load every library the provider needs that the wheels hold, by full path. onnxruntime-gpu
    /// leaves those folders off the loader's search path (its Python package loads them for its
    /// own process only); once loaded, the dynamic linker takes them for the provider's
    /// dependencies of the same name, so the binary needs no LD_LIBRARY_PATH. The loader keeps
    /// them for the life of the process, as the provider itself would.
    fn load(library: &Path) -> Wheels {
        let mut wheels = Wheels::find(library);
        // In ort's order, dependencies first; a library that fails is tried once more after the
        // others, in case it needs one that comes later in the list.
        let mut pending: Vec<PathBuf> = needed().filter_map(|n| wheels.locate(n)).collect();
        for round in 0..2 {
            let mut failed = Vec::new();
            for path in pending {
                match ort::util::preload_dylib(&path) {
                    Ok(()) => {}
                    Err(_) if round == 0 => failed.push(path),
                    Err(e) => wheels
                        .failed
                        .push(format!("{}: {}", path.display(), loader(&e))),
                }
            }
            pending = failed;
        }
        wheels
    }

    /// `name` in one of the wheels' folders.
    fn locate(&self, name: &str) -> Option<PathBuf> {
        self.folders
            .iter()
            .map(|f| f.join(name))
            .find(|p| p.is_file())
    }

    /// How many of the provider's libraries the wheels hold, in words.
    fn summary(&self) -> String {
        if self.folders.is_empty() {
            return "no nvidia-* wheels beside it (the CUDA 13 and cuDNN 9 libraries must then be \
                    on the loader's path)"
                .into();
        }
        let total = needed().count();
        let found = needed().filter(|n| self.locate(n).is_some()).count();
        format!("{found} of the {total} CUDA 13 and cuDNN 9 libraries it needs in the nvidia-* wheels beside it")
    }
}

/// The loader's own message behind a libloading error ("dlopen failed" alone names nothing).
fn loader(e: &(dyn std::error::Error + 'static)) -> String {
    match e.source() {
        Some(source) => format!("{e}: {source}"),
        None => e.to_string(),
    }
}

/// The `lib/` folders of the nvidia-* wheels in the site-packages that holds `library`
/// (`site-packages/onnxruntime/capi/libonnxruntime.so.*`), sorted; none for a library elsewhere.
pub fn wheel_folders(library: &Path) -> Vec<PathBuf> {
    let Some(site) = library
        .parent()
        .and_then(Path::parent)
        .and_then(Path::parent)
    else {
        return Vec::new();
    };
    let mut folders: Vec<PathBuf> = std::fs::read_dir(site.join("nvidia"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("lib"))
        .filter(|p| p.is_dir())
        .collect();
    folders.sort();
    folders
}

/// What to do about a CUDA provider that did not start, from the loader's message in `error`.
pub fn hint(error: &str, wheels: &Wheels) -> String {
    let mut hint = match missing_library(error) {
        Some(lib) if lib.starts_with("libcuda.so") => format!(
            "{lib} is the NVIDIA driver's library: this machine has no NVIDIA GPU driver. Run on \
             a machine with an NVIDIA GPU (where `nvidia-smi` works), or use --device cpu."
        ),
        Some(lib) => format!(
            "{lib} is one of the CUDA 13 / cuDNN 9 libraries ONNX Runtime's CUDA provider needs, \
             and it was not found: ONNX Runtime has {}. `pip install \"infoutil[gpu]\"` installs \
             them (the nvidia-* wheels) beside onnxruntime-gpu, where infoutil loads them \
             itself; or put a CUDA 13 and cuDNN 9 installation's lib folders on LD_LIBRARY_PATH.",
            wheels.summary()
        ),
        None => "Check that `nvidia-smi` works and that the driver supports CUDA 13 (what \
                 onnxruntime-gpu >= 1.31 is built for)."
            .into(),
    };
    // Libraries of the wheels that would not load for another reason than the one above (a
    // cuDNN engine that needs the driver's library says nothing new on a machine without one).
    let missing = missing_library(error).unwrap_or("\0");
    for failure in wheels.failed.iter().filter(|f| !f.contains(missing)) {
        hint.push_str(&format!("\n(could not load {failure})"));
    }
    hint
}

/// The library a loader message names as missing: `…: libX.so.N: cannot open shared object
/// file: No such file or directory`.
fn missing_library(message: &str) -> Option<&str> {
    let end = message.find(": cannot open shared object file")?;
    let start = message[..end]
        .rfind(|c: char| c.is_whitespace() || c == ':' || c == '/')
        .map_or(0, |i| i + 1);
    Some(&message[start..end]).filter(|name| !name.is_empty())
}

/// `infoutil --version`'s line for the provider, given the ONNX Runtime library this process
/// loaded: whether that library has it, whether the CUDA libraries are beside it and whether the
/// NVIDIA driver's library loads here. Loads nothing but the driver's library.
pub fn describe(library: &Path) -> String {
    match ort::ep::CUDA::is_available() {
        Ok(true) => {
            let driver = match ort::util::preload_dylib("libcuda.so.1") {
                Ok(()) => "the NVIDIA driver's libcuda.so.1 loads".to_string(),
                Err(_) => "no NVIDIA driver here (libcuda.so.1 does not load)".to_string(),
            };
            format!(
                "compiled in; in this ONNX Runtime library, with {}; {driver}",
                Wheels::find(library).summary()
            )
        }
        Ok(false) => "compiled in; not in this ONNX Runtime library (a CPU build: pip install \
                      \"infoutil[gpu]\" for onnxruntime-gpu)"
            .into(),
        Err(e) => format!("compiled in; ONNX Runtime cannot list its providers ({e})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_wheels() -> Wheels {
        Wheels {
            folders: Vec::new(),
            failed: Vec::new(),
        }
    }

    #[test]
    fn the_missing_library_is_read_from_the_loaders_message() {
        // ONNX Runtime 1.31.1's message without the nvidia-* wheels, then without a driver.
        let m = "Failed to load library /v/lib/python3.11/site-packages/onnxruntime/capi/\
                 libonnxruntime_providers_cuda.so with error: libcublasLt.so.13: cannot open \
                 shared object file: No such file or directory";
        assert_eq!(missing_library(m), Some("libcublasLt.so.13"));
        let m = "with error: libcuda.so.1: cannot open shared object file: No such file";
        assert_eq!(missing_library(m), Some("libcuda.so.1"));
        assert_eq!(
            missing_library("CUDA failure 100: no CUDA-capable device"),
            None
        );
    }

    #[test]
    fn the_hint_names_the_library_and_the_remedy() {
        let h = hint(
            "error: libcudnn.so.9: cannot open shared object file",
            &no_wheels(),
        );
        assert!(
            h.starts_with("libcudnn.so.9 is one of the CUDA 13 / cuDNN 9"),
            "{h}"
        );
        assert!(h.contains("pip install \"infoutil[gpu]\"") && h.contains("no nvidia-* wheels"));
        let h = hint(
            "error: libcuda.so.1: cannot open shared object file",
            &no_wheels(),
        );
        assert!(
            h.contains("NVIDIA driver") && h.contains("--device cpu"),
            "{h}"
        );
        // A wheel's library that failed for the same missing library adds nothing; another does.
        let mut wheels = no_wheels();
        wheels.failed = vec![
            "/n/libcudnn_engines_runtime_compiled.so.9: dlopen failed: libcuda.so.1: cannot open"
                .into(),
            "/n/libcufft.so.12: dlopen failed: libnvJitLink.so.13: cannot open".into(),
        ];
        let h = hint(
            "error: libcuda.so.1: cannot open shared object file",
            &wheels,
        );
        assert!(
            !h.contains("engines_runtime") && h.contains("(could not load /n/libcufft"),
            "{h}"
        );
        assert!(hint("out of memory", &no_wheels()).contains("nvidia-smi"));
    }

    #[test]
    fn the_wheels_are_found_beside_the_onnx_runtime_library() {
        let dir = std::env::temp_dir().join(format!("infoutil-ort-cuda-{}", std::process::id()));
        let site = dir.join("site-packages");
        for d in [
            "onnxruntime/capi",
            "nvidia/cublas/lib",
            "nvidia/cudnn/lib",
            "nvidia/x",
        ] {
            std::fs::create_dir_all(site.join(d)).unwrap();
        }
        std::fs::write(site.join("nvidia/cublas/lib/libcublasLt.so.13"), b"").unwrap();
        let library = site.join("onnxruntime/capi/libonnxruntime.so.1.31.1");
        let folders = wheel_folders(&library);
        assert_eq!(
            folders,
            [
                site.join("nvidia/cublas/lib"),
                site.join("nvidia/cudnn/lib")
            ]
        );
        let wheels = Wheels::find(&library);
        assert_eq!(
            wheels.locate("libcublasLt.so.13"),
            Some(site.join("nvidia/cublas/lib/libcublasLt.so.13"))
        );
        assert!(
            wheels.summary().starts_with("1 of the 14 "),
            "{}",
            wheels.summary()
        );
        assert!(wheel_folders(Path::new("libonnxruntime.so")).is_empty());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
