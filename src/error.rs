//! One error type for the library. Every variant names the file (and the record, where there
//! is one) so that a person can find and fix the input.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A dataset file that cannot be read as what it claims to be.
    #[error("{}{}: {msg}", path.display(), record.map(|r| format!(", record {r}")).unwrap_or_default())]
    Data {
        path: PathBuf,
        record: Option<usize>,
        msg: String,
    },

    /// A teacher model file that is missing, unsafe, inconsistent or malformed.
    #[error("teacher {}: {msg}", path.display())]
    Teacher { path: PathBuf, msg: String },

    /// The inference backend failed (or cannot run as asked).
    #[error("{backend} backend: {msg}")]
    Backend { backend: &'static str, msg: String },

    /// An HDF5 result file that cannot be written or read.
    #[error("{}: {msg}", path.display())]
    Store { path: PathBuf, msg: String },

    /// Options that contradict each other or the inputs.
    #[error("{0}")]
    Config(String),

    /// A teacher output that is NaN or infinite: never passed on as a result. `row` is the input
    /// within the call that produced it; callers that know which dataset record and stage that
    /// was fill them in with [`Error::locate`].
    #[error(
        "teacher {}: its {output} {value} is not finite, for {}{}; check the teacher (its export, or weights with NaN/inf) on this input",
        teacher.display(),
        record.map(|r| format!("dataset record {r}")).unwrap_or_else(|| format!("input {row} of a batch")),
        stage.map(|s| format!(" in {s}")).unwrap_or_default()
    )]
    NonFinite {
        teacher: PathBuf,
        output: &'static str,
        value: f32,
        row: usize,
        record: Option<usize>,
        stage: Option<&'static str>,
    },

    /// The cause follows in the error chain (`{:#}` prints "path: cause").
    #[error("{}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub fn data(path: impl Into<PathBuf>, record: Option<usize>, msg: impl Into<String>) -> Self {
        Error::Data {
            path: path.into(),
            record,
            msg: msg.into(),
        }
    }

    pub fn teacher(path: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        Error::Teacher {
            path: path.into(),
            msg: msg.into(),
        }
    }

    pub fn backend(backend: &'static str, msg: impl ToString) -> Self {
        Error::Backend {
            backend,
            msg: msg.to_string(),
        }
    }

    pub fn store(path: impl Into<PathBuf>, msg: impl ToString) -> Self {
        Error::Store {
            path: path.into(),
            msg: msg.to_string(),
        }
    }

    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// Name the stage and the dataset record of a [`Error::NonFinite`] (its `row`, mapped by
    /// `record_of`); every other error passes through unchanged.
    pub fn locate(mut self, at: &'static str, record_of: impl Fn(usize) -> Option<usize>) -> Self {
        if let Error::NonFinite {
            row, record, stage, ..
        } = &mut self
        {
            *record = record.or_else(|| record_of(*row));
            *stage = stage.or(Some(at));
        }
        self
    }

    /// Map a [`Error::NonFinite`]'s row through `f` (e.g. from a masked image to its image)
    /// while the record is still unknown.
    pub fn map_row(mut self, f: impl Fn(usize) -> usize) -> Self {
        if let Error::NonFinite {
            row, record: None, ..
        } = &mut self
        {
            *row = f(*row);
        }
        self
    }

    /// True for errors about one bad record, which `--skip-bad` may skip.
    pub fn is_record_error(&self) -> bool {
        matches!(
            self,
            Error::Data {
                record: Some(_),
                ..
            }
        )
    }
}
