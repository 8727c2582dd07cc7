//! ONNX Runtime: the fast backend, CPU or CUDA. The library is loaded at run time, so the crate
//! builds and its tract tests run on machines without it.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use ndarray::{ArrayD, ArrayView1, ArrayView4};
use ort::environment::Environment;
use ort::session::Session;
use ort::value::TensorRef;

use super::engine::{Device, Engine, Feed, Placement};
use super::onnx_file::OnnxFile;
use crate::error::{Error, Result};

fn err(e: impl std::fmt::Display) -> Error {
    Error::backend("ort", e)
}

/// ONNX Runtime allows one environment per process; the first caller's library path wins, and
/// is kept with it (the CUDA provider's libraries are looked for beside that library).
static ENV: OnceLock<(PathBuf, std::result::Result<Environment, String>)> = OnceLock::new();

/// The ONNX Runtime library this process has loaded (or tried to); where it would look if none
/// is loaded yet.
#[cfg(feature = "cuda")]
fn loaded_library() -> PathBuf {
    ENV.get()
        .map_or_else(|| library_path(None), |(path, _)| path.clone())
}

/// Where the ONNX Runtime library is looked for: the given path, else `ORT_DYLIB_PATH`, else the
/// `onnxruntime` Python package of the environment this binary is installed in (what `pip install
/// infoutil` puts beside it), else the system loader's search path.
pub fn library_path(explicit: Option<&Path>) -> PathBuf {
    explicit
        .map(Path::to_path_buf)
        .or_else(|| {
            std::env::var_os("ORT_DYLIB_PATH")
                .filter(|s| !s.is_empty())
                .map(PathBuf::from)
        })
        .or_else(|| beside_executable(&std::env::current_exe().ok()?))
        .unwrap_or_else(|| PathBuf::from("libonnxruntime.so"))
}

/// `libonnxruntime.so*` of the `onnxruntime` (or `onnxruntime-gpu`, same folder) package in the
/// site-packages of the Python environment whose `bin/` holds `exe`: a venv, a `--user` install
/// (`~/.local/bin` beside `~/.local/lib/python3.X`) or a system prefix. The wheel depends on
/// onnxruntime, so a plain `pip install infoutil` runs ONNX Runtime with no setting.
pub fn beside_executable(exe: &Path) -> Option<PathBuf> {
    let prefix = exe.parent()?.parent()?;
    std::fs::read_dir(prefix.join("lib"))
        .ok()?
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("python3"))
        .find_map(|e| in_site_packages(&e.path().join("site-packages")))
}

/// The ONNX Runtime library of one site-packages folder. `pip install "infoutil[gpu]"` installs
/// both `onnxruntime` (the wheel's dependency) and `onnxruntime-gpu` into the same
/// `onnxruntime/capi/`, each with its own versioned library when their versions differ: the GPU
/// build's (named in onnxruntime-gpu's RECORD) is taken, since it runs the CPU provider too and
/// is the only one with CUDA's. Otherwise the newest version there.
fn in_site_packages(site: &Path) -> Option<PathBuf> {
    if let Some(gpu) = gpu_package_library(site) {
        return Some(gpu);
    }
    let capi = site.join("onnxruntime/capi");
    std::fs::read_dir(capi)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("libonnxruntime.so"))
        })
        // The versioned file (libonnxruntime.so.1.31.1) ranks above the bare name; versions
        // are compared as numbers (1.9 < 1.10).
        .max_by_key(|p| library_version(p))
}

/// The library file onnxruntime-gpu's installed RECORD lists, if that package is installed and
/// the file is there.
fn gpu_package_library(site: &Path) -> Option<PathBuf> {
    let record = std::fs::read_dir(site)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name().is_some_and(|n| {
                let n = n.to_string_lossy();
                n.starts_with("onnxruntime_gpu-") && n.ends_with(".dist-info")
            })
        })?
        .join("RECORD");
    let text = std::fs::read_to_string(record).ok()?;
    text.lines()
        .filter_map(|line| line.split(',').next())
        .filter(|f| f.starts_with("onnxruntime/capi/libonnxruntime.so"))
        .map(|f| site.join(f))
        .filter(|p| p.is_file())
        .max_by_key(|p| library_version(p))
}

/// The numbers after `libonnxruntime.so.` (none for the bare name).
fn library_version(path: &Path) -> Vec<u64> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    name.trim_start_matches("libonnxruntime.so")
        .split('.')
        .filter_map(|part| part.parse().ok())
        .collect()
}

/// The ONNX Runtime build this process can load, as the library describes itself, or why not.
pub fn describe(library: Option<&Path>) -> std::result::Result<String, String> {
    environment(library).map_err(|e| e.to_string())?;
    Ok(ort::info().to_string())
}

/// Load ONNX Runtime (once per process). The error says where it looked and how to fix it.
pub fn environment(library: Option<&Path>) -> Result<&'static Environment> {
    let (_, env) = ENV.get_or_init(|| {
        let path = library_path(library);
        let env = ort::init_from(&path)
            .map_err(|e| {
                format!(
                    "cannot load ONNX Runtime ({e}); install it with `pip install onnxruntime==1.31.1` and set \
                     ORT_DYLIB_PATH to its capi/libonnxruntime.so.* (see README)"
                )
            })
            .and_then(|builder| builder.with_name("infoutil").build().map_err(|e| e.to_string()));
        (path, env)
    });
    env.as_ref().map_err(err)
}

pub struct OrtEngine {
    /// Sessions that may run at once (`--ort-sessions`), each behind its own lock: ONNX
    /// Runtime's run takes the session mutably.
    sessions: Vec<Mutex<Session>>,
    /// The image input's name, then "y" for gradient graphs: inputs are fed by name.
    input_names: Vec<String>,
    output_names: Vec<String>,
}

impl OrtEngine {
    /// `sessions` sessions for `file`, whose inputs are `inputs` (the image input's declared
    /// name, then "y" for gradient graphs), by name.
    pub fn load(
        file: &OnnxFile,
        inputs: &[&str],
        place: Placement,
        library: Option<&Path>,
        sessions: usize,
    ) -> Result<Self> {
        let sessions = (0..sessions.max(1))
            .map(|_| session(file, inputs, place, library, sessions.max(1)).map(Mutex::new))
            .collect::<Result<_>>()?;
        Ok(OrtEngine {
            sessions,
            input_names: inputs.iter().map(|s| s.to_string()).collect(),
            output_names: file.output_names(),
        })
    }

    /// A free session, else the first (whose lock then waits).
    fn session(&self) -> std::sync::MutexGuard<'_, Session> {
        self.sessions
            .iter()
            .find_map(|s| s.try_lock().ok())
            .unwrap_or_else(|| self.sessions[0].lock().expect("a previous run panicked"))
    }
}

/// One session of `file`, sharing the process's threads with `of - 1` others.
fn session(
    file: &OnnxFile,
    inputs: &[&str],
    place: Placement,
    library: Option<&Path>,
    of: usize,
) -> Result<Session> {
    let env = environment(library)?;
    // One thread count for the whole process, rayon's: RAYON_NUM_THREADS where set (what a
    // Slurm task sets from SLURM_CPUS_PER_TASK), else the CPUs the process may use. ORT's
    // own default ignores the variable and oversubscribes tasks Slurm does not bind.
    // Builder errors carry the builder itself, which is not Send: keep only the message.
    let threads = (rayon::current_num_threads() / of).max(1);
    let builder = Session::builder(env)
        .map_err(err)?
        .with_intra_threads(threads)
        .map_err(|e| err(e.to_string()))?;
    let mut builder = register_device(builder, place)?;
    let session = match file.inlined()? {
        Some(bytes) => builder.commit_from_memory(&bytes),
        None => builder.commit_from_file(&file.path),
    }
    .map_err(|e| Error::teacher(&file.path, format!("ONNX Runtime cannot load it: {e}")))?;
    let found: Vec<&str> = session.inputs().iter().map(|o| o.name()).collect();
    if found != inputs {
        return Err(Error::teacher(
            &file.path,
            format!("ONNX Runtime sees the inputs {found:?}, but the metadata declares {inputs:?}"),
        ));
    }
    Ok(session)
}

#[cfg(feature = "cuda")]
fn register_device(
    builder: ort::session::builder::SessionBuilder,
    place: Placement,
) -> Result<ort::session::builder::SessionBuilder> {
    match place.device {
        Device::Cpu => Ok(builder),
        Device::Cuda => super::ort_cuda::register(builder, &place.cuda, &loaded_library()),
    }
}

#[cfg(not(feature = "cuda"))]
fn register_device(
    builder: ort::session::builder::SessionBuilder,
    place: Placement,
) -> Result<ort::session::builder::SessionBuilder> {
    match place.device {
        Device::Cpu => Ok(builder),
        Device::Cuda => Err(err(
            "this build of infoutil has no CUDA support: it was built without the cargo feature \
             `cuda` (on by default; rebuild without --no-default-features, or with --features cuda)",
        )),
    }
}

/// `infoutil --version`'s line for the CUDA provider, once [`describe`] has loaded the library.
#[cfg(feature = "cuda")]
pub fn describe_cuda() -> String {
    super::ort_cuda::describe(&loaded_library())
}

#[cfg(not(feature = "cuda"))]
pub fn describe_cuda() -> String {
    "not compiled in (built without the cargo feature `cuda`, which is on by default)".into()
}

/// A [`Feed`] in standard layout.
enum Contiguous<'a> {
    F32(ndarray::CowArray<'a, f32, ndarray::IxDyn>),
    I64(ndarray::CowArray<'a, i64, ndarray::IxDyn>),
}

impl Engine for OrtEngine {
    fn run_feeds(&self, feeds: &[Feed]) -> Result<Vec<ArrayD<f32>>> {
        if feeds.len() != self.input_names.len() {
            return Err(err(format!(
                "{} inputs given to a graph of {}",
                feeds.len(),
                self.input_names.len()
            )));
        }
        // Contiguous copies only where a feed is a strided view (a permuted NHWC batch); they
        // must outlive the tensor references ONNX Runtime reads.
        let owned: Vec<_> = feeds
            .iter()
            .map(|f| match f {
                Feed::F32(a) => Contiguous::F32(a.as_standard_layout()),
                Feed::I64(a) => Contiguous::I64(a.as_standard_layout()),
            })
            .collect();
        let mut inputs: Vec<(std::borrow::Cow<str>, ort::session::SessionInputValue)> = Vec::new();
        for (name, feed) in self.input_names.iter().zip(&owned) {
            let value: ort::session::SessionInputValue = match feed {
                Contiguous::F32(a) => TensorRef::from_array_view(a.view()).map_err(err)?.into(),
                Contiguous::I64(a) => TensorRef::from_array_view(a.view()).map_err(err)?.into(),
            };
            inputs.push((name.as_str().into(), value));
        }
        let mut session = self.session();
        let outputs = session.run(inputs).map_err(err)?;
        self.output_names
            .iter()
            .map(|name| {
                let view = outputs[name.as_str()]
                    .try_extract_array::<f32>()
                    .map_err(err)?;
                Ok(view.to_owned())
            })
            .collect()
    }

    fn run(&self, x: ArrayView4<f32>, y: Option<ArrayView1<i64>>) -> Result<Vec<ArrayD<f32>>> {
        // The image input under its declared name, then the labels (a permuted NHWC view is
        // copied to standard layout there; an NCHW batch already is).
        let mut feeds = vec![Feed::F32(x.into_dyn())];
        feeds.extend(y.map(|y| Feed::I64(y.into_dyn())));
        self.run_feeds(&feeds)
    }
}

#[cfg(test)]
mod tests {
    use super::beside_executable;
    use std::fs;

    #[test]
    fn finds_the_onnxruntime_package_of_the_environment_holding_the_binary() {
        let env = tempfile::tempdir().unwrap();
        let exe = env.path().join("bin/infoutil");
        let capi = env
            .path()
            .join("lib/python3.11/site-packages/onnxruntime/capi");
        fs::create_dir_all(exe.parent().unwrap()).unwrap();
        assert_eq!(beside_executable(&exe), None, "no lib/ yet");
        fs::create_dir_all(&capi).unwrap();
        // Its neighbours in capi/ (the providers' bridge, Python modules) are not the library.
        for name in [
            "libonnxruntime_providers_shared.so",
            "onnxruntime_pybind11_state.so",
        ] {
            fs::write(capi.join(name), b"").unwrap();
        }
        assert_eq!(beside_executable(&exe), None);
        fs::write(capi.join("libonnxruntime.so.1.31.1"), b"").unwrap();
        assert_eq!(
            beside_executable(&exe),
            Some(capi.join("libonnxruntime.so.1.31.1"))
        );
        // Versions compare as numbers, not as text.
        fs::write(capi.join("libonnxruntime.so.1.9.0"), b"").unwrap();
        fs::write(capi.join("libonnxruntime.so.1.32.0"), b"").unwrap();
        assert_eq!(
            beside_executable(&exe),
            Some(capi.join("libonnxruntime.so.1.32.0"))
        );
    }

    #[test]
    fn prefers_the_library_of_onnxruntime_gpu_when_both_packages_are_installed() {
        // What `pip install "infoutil[gpu]"` leaves: onnxruntime 1.32.0 (the wheel's dependency)
        // and onnxruntime-gpu 1.31.1 share onnxruntime/capi/.
        let env = tempfile::tempdir().unwrap();
        let exe = env.path().join("bin/infoutil");
        let site = env.path().join("lib/python3.11/site-packages");
        let capi = site.join("onnxruntime/capi");
        fs::create_dir_all(&capi).unwrap();
        for name in ["libonnxruntime.so.1.32.0", "libonnxruntime.so.1.31.1"] {
            fs::write(capi.join(name), b"").unwrap();
        }
        let record = site.join("onnxruntime_gpu-1.31.1.dist-info/RECORD");
        fs::create_dir_all(record.parent().unwrap()).unwrap();
        fs::write(
            &record,
            "onnxruntime/__init__.py,sha256=x,10\n\
             onnxruntime/capi/libonnxruntime.so.1.31.1,sha256=y,20\n\
             onnxruntime/capi/libonnxruntime_providers_cuda.so,sha256=z,30\n",
        )
        .unwrap();
        assert_eq!(
            beside_executable(&exe),
            Some(capi.join("libonnxruntime.so.1.31.1"))
        );
        // A RECORD naming a file that is gone (uninstalled by the other package) is passed over.
        fs::remove_file(capi.join("libonnxruntime.so.1.31.1")).unwrap();
        assert_eq!(
            beside_executable(&exe),
            Some(capi.join("libonnxruntime.so.1.32.0"))
        );
    }
}
