//! Every name in the files infoutil writes, with each dataset's axes and meaning: the one place
//! that knows them, for writing and for reading back. docs/hdf5-schema.md documents this table
//! for users; `tests/it/store.rs` checks that a written file holds exactly what is listed here.

/// A dataset of the schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    /// Absolute path in the file, e.g. `/candidates/shapley`.
    pub path: &'static str,
    /// Its axes, stored as the `layout` attribute (e.g. `NCHW`).
    pub layout: &'static str,
    /// Stored as the `description` attribute.
    pub description: &'static str,
}

const fn field(path: &'static str, layout: &'static str, description: &'static str) -> Field {
    Field {
        path,
        layout,
        description,
    }
}

impl Field {
    /// The path without its leading `/`, as `hdf5::Group::dataset` takes it.
    pub fn name(&self) -> &'static str {
        self.path.trim_start_matches('/')
    }

    /// The group holding it (`""` for the root) and its own name in that group.
    pub fn split(&self) -> (&'static str, &'static str) {
        self.path.rsplit_once('/').unwrap_or(("", self.path))
    }
}

/// What wrote a file: the root attribute `kind`.
pub mod kind {
    pub const TEACHER_EVAL: &str = "teacher_eval";
    pub const ATTRIBUTION: &str = "attribution";
    pub const DISTILLED: &str = "distilled";
    /// One finished class in a `distill` checkpoint folder.
    pub const DISTILL_CLASS: &str = "distill_class";
}

/// Attribute names.
pub mod attr {
    pub const SCHEMA_VERSION: &str = "schema_version";
    pub const CREATED_BY: &str = "created_by";
    pub const KIND: &str = "kind";
    /// JSON of the whole run configuration.
    pub const CONFIG: &str = "config";
    pub const TEACHER_SHA256: &str = "teacher_sha256";
    /// JSON list of the teacher's class names.
    pub const CLASS_NAMES: &str = "class_names";
    pub const LAYOUT: &str = "layout";
    pub const DESCRIPTION: &str = "description";
    /// `teacher_eval`: top-1 accuracy.
    pub const TOP1: &str = "top1";
    /// `distill_class`: the fingerprint of everything that decides the class's result.
    pub const FINGERPRINT: &str = "fingerprint";
}

/// `kind = teacher_eval`.
pub mod eval {
    use super::{field, Field};
    pub const LOGITS: Field = field("/logits", "N,K", "teacher logits per image");
    pub const LABELS: Field = field("/labels", "N", "dataset label per image");
    pub const SOURCE_INDEX: Field = field("/source_index", "N", "record index in the dataset");
    pub const GRAD_NORMS: Field = field(
        "/grad_norms",
        "N",
        "per-sample L2 norm of the cross-entropy gradient over all teacher parameters",
    );
}

/// `kind = attribution`: datasets in the group `/attribution`, whose attributes
/// [`ATTRIBUTES`](attribution::ATTRIBUTES) repeat the attribution and its options.
pub mod attribution {
    use super::{field, Field};
    pub const GROUP: &str = "/attribution";
    pub const SHAPLEY: Field = field(
        "/attribution/shapley",
        "N,G,G",
        "informativeness of each patch (row-major grid): its Shapley value, or its mean Grad-CAM \
         value where the group's attribute attribution is gradcam",
    );
    pub const SOURCE_INDEX: Field = field(
        "/attribution/source_index",
        "N",
        "dataset record of each image",
    );
    pub const LABEL: Field = field(
        "/attribution/label",
        "N",
        "class explained (the record's label)",
    );
    pub const CROP_BOX: Field = field(
        "/attribution/crop_box",
        "N,R,4",
        "crops (y0, x0, y1, x1) in source pixels; the last is noise-free",
    );
    /// Attributes of [`GROUP`].
    pub const ATTRIBUTES: [&str; 7] = [
        "attribution",
        "grid",
        "budget",
        "estimator",
        "baseline",
        "value",
        "seed",
    ];
}

/// `kind = distilled`.
pub mod distilled {
    use super::{field, Field};
    /// Root attributes besides the common ones; merge copies them from the first shard.
    pub const ATTRIBUTES: [&str; 5] = ["class_names", "method", "ipc", "factor", "seed"];
    /// Root attributes taken from the `distill` section of the configuration.
    pub const FROM_CONFIG: [&str; 4] = ["method", "ipc", "factor", "seed"];

    pub const IMAGES: Field = field(
        "/images",
        "NCHW",
        "distilled images in the teacher's input space",
    );
    pub const IMAGES_UINT8: Field = field(
        "/images_uint8",
        "NCHW",
        "distilled images as 0-255 pixels, for viewing",
    );
    pub const LABELS: Field = field("/labels", "N", "class of each distilled image");
    pub const SOFT_LABELS: Field = field(
        "/soft_labels",
        "N,T,K",
        "label-teacher softmax per tile (T = factor^2 tiles, row-major)",
    );
    pub const SOFT_LOGITS: Field = field("/soft_logits", "N,T,K", "label-teacher logits per tile");
    pub const SOURCE_INDEX: Field = field(
        "/provenance/source_index",
        "N,T",
        "dataset record each tile was cropped from",
    );
    pub const CROP_BOX: Field = field(
        "/provenance/crop_box",
        "N,T,4",
        "crop of each tile as (y0, x0, y1, x1), source pixels, half-open",
    );
    pub const CANDIDATE_INDEX: Field = field(
        "/candidates/source_index",
        "N",
        "dataset record of each candidate",
    );
    pub const CANDIDATE_LABEL: Field = field("/candidates/label", "N", "class of each candidate");
    pub const CANDIDATE_CROP_BOX: Field = field(
        "/candidates/crop_box",
        "N,R,4",
        "crops considered per candidate (y0, x0, y1, x1), source pixels; -1 = none",
    );
    pub const CANDIDATE_SCORE: Field = field(
        "/candidates/score",
        "N,R",
        "selection score of each crop (utility; RDED: -CE); NaN = none",
    );
    /// Only where the method computed Shapley maps (InfoUtil).
    pub const CANDIDATE_SHAPLEY: Field = field(
        "/candidates/shapley",
        "N,G,G",
        "informativeness of each patch (row-major grid): its Shapley value, or its mean Grad-CAM \
         value where config.distill.attribution is gradcam",
    );

    /// Every dataset of a distilled file. Each holds one row (or block of rows) per class in
    /// class order, so shards of classes concatenate along the first axis: what `merge` does
    /// with every entry here.
    pub const ALL: [Field; 12] = [
        IMAGES,
        IMAGES_UINT8,
        LABELS,
        SOFT_LABELS,
        SOFT_LOGITS,
        SOURCE_INDEX,
        CROP_BOX,
        CANDIDATE_INDEX,
        CANDIDATE_LABEL,
        CANDIDATE_CROP_BOX,
        CANDIDATE_SCORE,
        CANDIDATE_SHAPLEY,
    ];
}

/// `kind = distill_class`: one finished class of a checkpoint (internal; its candidates use the
/// distilled file's `/candidates/*` names).
pub mod class_part {
    use super::{field, Field};
    pub const PIXELS: Field = field("/pixels", "NCHW", "stitched images, pixel units");
    pub const SOURCE_INDEX: Field = field("/source_index", "N,T", "record of each tile");
    pub const CROP_BOX: Field = field("/crop_box", "N,T,4", "crop of each tile");
}
