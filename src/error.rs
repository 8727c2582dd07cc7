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
