//! The library's option enums as flag values. The library knows nothing of clap: its enums say
//! how files spell them (serde), and this file lists each enum's values with the line `--help`
//! shows for it; [`one_of`] turns a list into clap's parser.

use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use infoutil::distill::Method;
use infoutil::informativeness::{Attribution, Baseline, Value};
use infoutil::teacher::{BackendChoice, Device};
use infoutil::utility::Score;

/// A flag's value among `values`, each spelled as result files record it, with its help line
/// (none where it is empty).
pub fn one_of<T>(values: &'static [(T, &'static str)]) -> impl TypedValueParser<Value = T>
where
    T: serde::Serialize + Copy + Send + Sync + 'static,
{
    let possible = values.iter().map(|(v, help)| {
        // Leaked once per flag while clap builds the command: names it can hold as &'static str.
        let name: &'static str = Box::leak(name(v).into_boxed_str());
        let value = PossibleValue::new(name);
        match help.is_empty() {
            true => value,
            false => value.help(*help),
        }
    });
    PossibleValuesParser::new(possible).map(move |s| {
        let chosen = values.iter().find(|(v, _)| name(v) == s);
        chosen.expect("clap accepts only the listed names").0
    })
}

/// The value's name in result files (its serde name).
fn name<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        other => panic!("an option enum serialises as its name, not {other:?}"),
    }
}

pub const METHODS: &[(Method, &str)] = &[
    (
        Method::Infoutil,
        "Shapley-informative crops, gradient-norm utility (the paper's method)",
    ),
    (
        Method::Rded,
        "RDED: random resized crops scored by the teacher's −CE",
    ),
    (Method::Random, "IPC random real images per class"),
];

pub const SCORES: &[(Score, &str)] = &[
    (
        Score::GradNorm,
        "‖∇θ CE(f(x), y)‖₂ over all teacher parameters (the method)",
    ),
    (
        Score::LastLayer,
        "The same norm over the last (classifier) layer's parameters only (ablation)",
    ),
    (
        Score::Loss,
        "The cross-entropy itself (ablation); higher loss scores higher",
    ),
];

pub const ATTRIBUTIONS: &[(Attribution, &str)] = &[
    (
        Attribution::Shapley,
        "Shapley values of the patches (the paper's method)",
    ),
    (
        Attribution::GradCam,
        "Grad-CAM at the teacher's last convolutional block, averaged over each patch (needs the \
         teacher's Grad-CAM graph, NAME.cam.onnx)",
    ),
];

pub const BASELINES: &[(Baseline, &str)] = &[
    (
        Baseline::Zero,
        "0 in the teacher's normalised input space (Captum's default)",
    ),
    (
        Baseline::Mean,
        "The dataset's per-channel mean pixel, normalised",
    ),
    (
        Baseline::Blur,
        "The image itself, box-blurred (a quarter of the image side): removes detail, keeps colour",
    ),
    (
        Baseline::Black,
        "Pixel value 0, normalised: the empty background of dark-background data such as \
         (Fashion-)MNIST, where the zero baseline is a mid grey",
    ),
];

pub const VALUES: &[(Value, &str)] = &[(Value::Logit, ""), (Value::Prob, ""), (Value::Logprob, "")];

pub const BACKENDS: &[(BackendChoice, &str)] = &[
    (
        BackendChoice::Auto,
        "ONNX Runtime when its library loads, else tract",
    ),
    (
        BackendChoice::Tract,
        "tract, pure Rust, CPU only; always available",
    ),
    (
        BackendChoice::Ort,
        "ONNX Runtime, loaded at run time from `ORT_DYLIB_PATH`",
    ),
];

pub const DEVICES: &[(Device, &str)] = &[
    (Device::Cpu, ""),
    (
        Device::Cuda,
        "ONNX Runtime's CUDA execution provider; an error where it cannot run",
    ),
];
