//! The source of a loaded dataset, and the search for its data folder.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use crate::dataset::{find_idx_file, DatasetKind, TRAIN_IMAGES};

/// The environment variable that names the data folder, the folder that contains `mnist/` and
/// `fashion-mnist/` (as filled by `scripts/fetch-data.sh`).
pub const DATA_ENV_VAR: &str = "SOFTSORT_DATA";

/// The name of the data folder searched for in the current folder and its ancestors.
pub const DEFAULT_DATA_DIR: &str = "data";

/// The rule that chose the data folder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataOrigin {
    /// Passed by the caller, for example from a command-line flag.
    Argument,
    /// Named by the [`DATA_ENV_VAR`] environment variable.
    Environment,
    /// A `data/` folder found in the current folder or one of its ancestors.
    Search,
}

/// The origin of the images of a loaded dataset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DataSource {
    /// The full IDX files in `dir` (for example `data/mnist`).
    Files {
        /// The folder that contains the four IDX files.
        dir: PathBuf,
        /// The rule that chose the data folder above `dir`.
        origin: DataOrigin,
    },
    /// The small MNIST sample compiled into the binary, used when no full data was found.
    EmbeddedSample,
}

impl DataSource {
    /// Whether the data is the embedded sample rather than the full dataset.
    pub fn is_sample(&self) -> bool {
        matches!(self, DataSource::EmbeddedSample)
    }
}

/// Chooses the data folder: `explicit` if given, else `env_value` (the value of
/// [`DATA_ENV_VAR`]) if set and non-empty, else the first `data/` folder, looking in `start` and
/// then its ancestors, that contains the training images of `kind`. Returns `None` if none
/// applies.
///
/// An explicit folder or one from the environment is returned even if it lacks the files, so
/// that loading reports them missing instead of silently using other data.
pub fn resolve_data_dir(
    explicit: Option<&Path>,
    env_value: Option<&OsStr>,
    start: Option<&Path>,
    kind: DatasetKind,
) -> Option<(PathBuf, DataOrigin)> {
    if let Some(dir) = explicit {
        return Some((dir.to_path_buf(), DataOrigin::Argument));
    }
    if let Some(value) = env_value.filter(|value| !value.is_empty()) {
        return Some((PathBuf::from(value), DataOrigin::Environment));
    }
    for ancestor in start?.ancestors() {
        let candidate = ancestor.join(DEFAULT_DATA_DIR);
        if find_idx_file(&candidate.join(kind.dir_name()), TRAIN_IMAGES).is_some() {
            return Some((candidate, DataOrigin::Search));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_tree(name: &str) -> PathBuf {
        let root = std::env::temp_dir().join(format!(
            "experiments-data-source-{name}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("a/b/c")).unwrap();
        root
    }

    #[test]
    fn explicit_folder_wins() {
        let found = resolve_data_dir(
            Some(Path::new("/explicit")),
            Some(OsStr::new("/from-env")),
            Some(Path::new("/")),
            DatasetKind::Mnist,
        );
        assert_eq!(
            found,
            Some((PathBuf::from("/explicit"), DataOrigin::Argument))
        );
    }

    #[test]
    fn environment_beats_search() {
        let found = resolve_data_dir(
            None,
            Some(OsStr::new("/from-env")),
            None,
            DatasetKind::Mnist,
        );
        assert_eq!(
            found,
            Some((PathBuf::from("/from-env"), DataOrigin::Environment))
        );
    }

    #[test]
    fn empty_environment_is_ignored() {
        let found = resolve_data_dir(None, Some(OsStr::new("")), None, DatasetKind::Mnist);
        assert_eq!(found, None);
    }

    #[test]
    fn search_walks_up_to_data_folder() {
        let root = temp_tree("walk");
        let mnist_dir = root.join("a/data/mnist");
        std::fs::create_dir_all(&mnist_dir).unwrap();
        std::fs::write(mnist_dir.join("train-images-idx3-ubyte.gz"), b"").unwrap();

        let start = root.join("a/b/c");
        let found = resolve_data_dir(None, None, Some(&start), DatasetKind::Mnist);
        assert_eq!(found, Some((root.join("a/data"), DataOrigin::Search)));

        let fashion = resolve_data_dir(None, None, Some(&start), DatasetKind::FashionMnist);
        assert_eq!(fashion, None, "data/ has no fashion-mnist/ folder");
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn search_skips_data_folder_without_files() {
        let root = temp_tree("skip");
        std::fs::create_dir_all(root.join("a/b/data/mnist")).unwrap();
        let start = root.join("a/b/c");
        let found = resolve_data_dir(None, None, Some(&start), DatasetKind::Mnist);
        // Ancestors above the temporary tree hold no data/mnist with files on a clean machine.
        assert_ne!(found.map(|(dir, _)| dir), Some(root.join("a/b/data")));
        std::fs::remove_dir_all(&root).unwrap();
    }
}
