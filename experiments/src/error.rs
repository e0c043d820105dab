//! The error type of the experiments crate.

use std::path::PathBuf;

/// Every way loading data, generating batches or computing a metric can fail.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be opened or read.
    #[error("reading {path} failed: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// An IDX file whose header or length is invalid.
    #[error("{source_name}: invalid IDX file: {message}")]
    Idx {
        /// The file path, or a name for in-memory data.
        source_name: String,
        /// What is wrong, with the values involved.
        message: String,
    },
    /// Dataset files that are missing or do not fit together.
    #[error("{message}")]
    Dataset {
        /// What is wrong and how to fix it.
        message: String,
    },
    /// An argument outside the function's domain.
    #[error("{op}: invalid {arg} = {value}: {hint}")]
    InvalidArgument {
        /// The function that rejected the argument.
        op: String,
        /// The argument's name.
        arg: String,
        /// The rejected value, formatted.
        value: String,
        /// What the function expects instead.
        hint: String,
    },
    /// A file or folder could not be written or created.
    #[error("writing {path} failed: {source}")]
    Write {
        /// The file or folder.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// A JSON file could not be encoded or parsed.
    #[error("JSON of {path}: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The underlying serde_json error.
        source: serde_json::Error,
    },
    /// An error from the tensor library.
    #[error(transparent)]
    Tensor(#[from] autograd::Error),
}

impl Error {
    /// Builds an [`Error::Idx`].
    pub fn idx(source_name: &str, message: impl Into<String>) -> Self {
        Error::Idx {
            source_name: source_name.to_string(),
            message: message.into(),
        }
    }

    /// Builds an [`Error::Dataset`].
    pub fn dataset(message: impl Into<String>) -> Self {
        Error::Dataset {
            message: message.into(),
        }
    }

    /// Builds an [`Error::InvalidArgument`].
    pub fn invalid(
        op: &str,
        arg: &str,
        value: impl std::fmt::Display,
        hint: impl Into<String>,
    ) -> Self {
        Error::InvalidArgument {
            op: op.to_string(),
            arg: arg.to_string(),
            value: value.to_string(),
            hint: hint.into(),
        }
    }
}

/// The result type of the experiments crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
