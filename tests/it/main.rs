//! The integration tests, as one test binary with a module per subject.
//!
//! One binary, not one per file: every integration-test binary links the whole dependency tree
//! (tract, ONNX Runtime's bindings, HDF5) and instantiates its generics again, so fourteen of them
//! cost the suite's cold build minutes on a 2-core CI machine, and one binary also lets a long
//! test (Slurm, distill) share the cores with short ones instead of running alone. Run a subject
//! with `cargo test --release --test it slurm::`.

mod common;

mod attribution;
mod cli;
mod data_loaders;
mod distill;
mod fuzz_smoke;
mod game_graph;
mod gradcam;
mod hostile;
mod layers;
mod mechanisms;
mod one_identity;
mod package_binding;
mod precision;
mod report;
mod shapley;
mod signals;
mod slurm;
mod store;
mod teacher_files;
mod teacher_numerics;
mod tract_device;
mod zoo;
