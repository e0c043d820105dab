//! MNIST and Fashion-MNIST split into training, validation and test sets.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::data_source::{resolve_data_dir, DataOrigin, DataSource, DATA_ENV_VAR};
use crate::error::{Error, Result};
use crate::idx::{read_images, read_labels};
use crate::labeled_images::LabeledImages;

/// The side in pixels of the MNIST and Fashion-MNIST images that every network takes.
pub const IMAGE_SIDE: usize = 28;
use crate::sample;

/// The file name of the training images, without a `.gz` suffix.
pub const TRAIN_IMAGES: &str = "train-images-idx3-ubyte";
/// The file name of the training labels, without a `.gz` suffix.
pub const TRAIN_LABELS: &str = "train-labels-idx1-ubyte";
/// The file name of the test images, without a `.gz` suffix.
pub const TEST_IMAGES: &str = "t10k-images-idx3-ubyte";
/// The file name of the test labels, without a `.gz` suffix.
pub const TEST_LABELS: &str = "t10k-labels-idx1-ubyte";

/// The number of validation images split off the end of the 60,000 full training images.
pub const FULL_VALIDATION_LEN: usize = 5_000;

/// One of the datasets the experiments use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DatasetKind {
    /// Handwritten digits (LeCun, Cortes and Burges).
    Mnist,
    /// Images of clothing in ten classes (Xiao, Rasul and Vollgraf).
    FashionMnist,
}

impl DatasetKind {
    /// The name of the dataset's folder inside the data folder.
    pub fn dir_name(self) -> &'static str {
        match self {
            DatasetKind::Mnist => "mnist",
            DatasetKind::FashionMnist => "fashion-mnist",
        }
    }

    /// The option of `scripts/fetch-data.sh` that fetches only this dataset.
    fn fetch_option(self) -> &'static str {
        match self {
            DatasetKind::Mnist => "--mnist-only",
            DatasetKind::FashionMnist => "--fashion-only",
        }
    }
}

impl fmt::Display for DatasetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatasetKind::Mnist => f.write_str("MNIST"),
            DatasetKind::FashionMnist => f.write_str("Fashion-MNIST"),
        }
    }
}

/// A dataset split into training, validation and test sets.
///
/// The validation set is the last `round(N / 12)` images of the `N` images of the training file,
/// and the training set the rest. For the full data (`N = 60,000`) that is the usual split of
/// 55,000 training and 5,000 validation images. The embedded MNIST sample keeps the same 11 : 1
/// proportion (1,100 and 100). The test set is the whole test file.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// The dataset's kind.
    pub kind: DatasetKind,
    /// The training images.
    pub train: LabeledImages,
    /// The validation images, taken from the end of the training file.
    pub validation: LabeledImages,
    /// The test images.
    pub test: LabeledImages,
    /// The origin of the images.
    pub source: DataSource,
}

impl Dataset {
    /// Loads MNIST as [`Dataset::load`] does.
    ///
    /// # Errors
    /// As [`Dataset::load`].
    pub fn load_mnist(data_dir: Option<&Path>) -> Result<Dataset> {
        Dataset::load(DatasetKind::Mnist, data_dir)
    }

    /// Loads a dataset from the first of these that applies:
    /// 1. `data_dir`, for example from a command-line flag;
    /// 2. the folder named by the `SOFTSORT_DATA` environment variable;
    /// 3. the first `data/` folder, in the current folder or an ancestor of it, that contains
    ///    the dataset's training images;
    /// 4. for MNIST only, the sample compiled into the binary.
    ///
    /// In cases 1 to 3 the files are read from the `mnist/` or `fashion-mnist/` subfolder, raw
    /// or gzip-compressed. [`Dataset::summary`] reports which source was used, and for the
    /// sample how to fetch the full data.
    ///
    /// # Errors
    /// [`Error::Dataset`] if the chosen folder lacks a file, or if Fashion-MNIST is not found
    /// anywhere. IDX errors as in [`read_images`] and [`read_labels`].
    pub fn load(kind: DatasetKind, data_dir: Option<&Path>) -> Result<Dataset> {
        let env_value = std::env::var_os(DATA_ENV_VAR);
        let current_dir = std::env::current_dir().ok();
        let resolved =
            resolve_data_dir(data_dir, env_value.as_deref(), current_dir.as_deref(), kind);
        match resolved {
            Some((dir, origin)) => Dataset::from_dir(kind, &dir.join(kind.dir_name()), origin),
            None if kind == DatasetKind::Mnist => Dataset::embedded_mnist_sample(),
            None => Err(Error::dataset(format!(
                "{kind} not found: {DATA_ENV_VAR} is unset and no data/{}/ folder with the \
                 files exists in the current folder or its ancestors; fetch it with \
                 `scripts/fetch-data.sh {}` or pass the data folder explicitly",
                kind.dir_name(),
                kind.fetch_option()
            ))),
        }
    }

    /// Loads a dataset from the four IDX files in `dir` (raw or with a `.gz` suffix) and splits
    /// it. `origin` is recorded in [`Dataset::source`].
    ///
    /// # Errors
    /// [`Error::Dataset`] if a file is missing or the training file has fewer than 6 images,
    /// IDX errors as in [`read_images`] and [`read_labels`].
    pub fn from_dir(kind: DatasetKind, dir: &Path, origin: DataOrigin) -> Result<Dataset> {
        let full_train = read_labeled_images(kind, dir, TRAIN_IMAGES, TRAIN_LABELS)?;
        let test = read_labeled_images(kind, dir, TEST_IMAGES, TEST_LABELS)?;
        let source = DataSource::Files {
            dir: dir.to_path_buf(),
            origin,
        };
        Dataset::split(kind, full_train, test, source)
    }

    /// Loads the MNIST sample compiled into the binary, split 1,100 / 100 / 500.
    ///
    /// Its training file has 1,200 images: 110 of each digit from the first 55,000 and 10 of each
    /// digit from the last 5,000 images of the full training file. Its test file has 50 images of
    /// each digit.
    ///
    /// # Errors
    /// Only if the embedded files are corrupt, which the tests rule out.
    pub fn embedded_mnist_sample() -> Result<Dataset> {
        let (full_train, test) = sample::embedded_sample()?;
        Dataset::split(
            DatasetKind::Mnist,
            full_train,
            test,
            DataSource::EmbeddedSample,
        )
    }

    /// Splits the images of a training file into training and validation sets (see
    /// [`validation_len`]).
    ///
    /// # Errors
    /// [`Error::Dataset`] if the training file has fewer than 6 images, so that the validation
    /// set would be empty, or if the image sizes of the two files differ.
    pub fn split(
        kind: DatasetKind,
        full_train: LabeledImages,
        test: LabeledImages,
        source: DataSource,
    ) -> Result<Dataset> {
        let total = full_train.len();
        let validation = validation_len(total);
        if validation == 0 {
            return Err(Error::dataset(format!(
                "{kind}: the training file has {total} images, too few to split off a \
                 validation set (at least 6 are needed)"
            )));
        }
        if (full_train.rows(), full_train.cols()) != (test.rows(), test.cols()) {
            return Err(Error::dataset(format!(
                "{kind}: training images are {} × {} pixels but test images are {} × {}",
                full_train.rows(),
                full_train.cols(),
                test.rows(),
                test.cols()
            )));
        }
        let boundary = total - validation;
        Ok(Dataset {
            kind,
            train: full_train.slice(0..boundary),
            validation: full_train.slice(boundary..total),
            test,
            source,
        })
    }

    /// Names where the images came from, for error messages: the folder, or the embedded
    /// sample.
    pub fn origin(&self) -> String {
        match &self.source {
            DataSource::Files { dir, .. } => format!("the folder {}", dir.display()),
            DataSource::EmbeddedSample => "the embedded MNIST sample".to_string(),
        }
    }

    /// Returns the training, validation and test sets with their names.
    pub fn splits(&self) -> [(&'static str, &LabeledImages); 3] {
        [
            ("training", &self.train),
            ("validation", &self.validation),
            ("test", &self.test),
        ]
    }

    /// Checks that every image is [`IMAGE_SIDE`] × [`IMAGE_SIDE`] pixels, the input size of
    /// the experiments' networks.
    ///
    /// # Errors
    /// [`Error::Dataset`] naming the split, the folder and the size found.
    pub fn check_image_size(&self) -> Result<()> {
        for (name, images) in self.splits() {
            if (images.rows(), images.cols()) != (IMAGE_SIDE, IMAGE_SIDE) {
                return Err(Error::dataset(format!(
                    "the {name} images of {} are {} × {} pixels, but the networks take \
                     {IMAGE_SIDE} × {IMAGE_SIDE} MNIST or Fashion-MNIST images; pass --data \
                     a folder with those IDX files",
                    self.origin(),
                    images.rows(),
                    images.cols()
                )));
            }
        }
        Ok(())
    }

    /// Checks that each split contains at least one image of every digit 0–9, which the
    /// large-MNIST sequences need (their digits are drawn per label).
    ///
    /// # Errors
    /// [`Error::Dataset`] naming the split, the folder and the missing digit.
    pub fn check_every_digit(&self) -> Result<()> {
        for (name, images) in self.splits() {
            let counts = images.label_counts();
            if let Some(digit) = counts.iter().position(|&count| count == 0) {
                return Err(Error::dataset(format!(
                    "the {name} split of {} ({} images) has no image of digit {digit}; the \
                     large-MNIST sequences need every digit 0–9 in each split, so pass --data a \
                     folder with the full MNIST files (scripts/fetch-data.sh)",
                    self.origin(),
                    images.len()
                )));
            }
        }
        Ok(())
    }

    /// A one-line description of the data: which dataset, where it came from and the sizes of
    /// the splits. For the embedded sample it also gives the command that fetches the full data.
    pub fn summary(&self) -> String {
        let sizes = format!(
            "{} training, {} validation, {} test images",
            self.train.len(),
            self.validation.len(),
            self.test.len()
        );
        match &self.source {
            DataSource::Files { dir, origin } => {
                let how = match origin {
                    DataOrigin::Argument => "given data folder".to_string(),
                    DataOrigin::Environment => DATA_ENV_VAR.to_string(),
                    DataOrigin::Search => "found by searching upwards".to_string(),
                };
                format!("{} from {} ({how}): {sizes}", self.kind, dir.display())
            }
            DataSource::EmbeddedSample => format!(
                "{}: full data not found, using the embedded sample ({sizes}, split in the full \
                 data's 11 : 1 training : validation proportion); results on it are not \
                 comparable to published ones. Fetch the full data with `scripts/fetch-data.sh \
                 {}` (into data/ at the repository root) or set {DATA_ENV_VAR} to a folder \
                 that contains {}/",
                self.kind,
                self.kind.fetch_option(),
                self.kind.dir_name()
            ),
        }
    }
}

/// Computes the size of the validation set split off a training file of `total` images:
/// `total / 12` rounded to the nearest integer (halves up), which is 5,000 for the full 60,000
/// images.
pub fn validation_len(total: usize) -> usize {
    total / 12 + usize::from(total % 12 >= 6)
}

/// Returns the path of `name` in `dir`, or of `name.gz` if only that exists.
pub fn find_idx_file(dir: &Path, name: &str) -> Option<PathBuf> {
    let raw = dir.join(name);
    if raw.is_file() {
        return Some(raw);
    }
    let gzipped = dir.join(format!("{name}.gz"));
    gzipped.is_file().then_some(gzipped)
}

/// Reads an image file and its label file from `dir` (raw or with a `.gz` suffix).
///
/// # Errors
/// [`Error::Dataset`] if a file is missing, IDX errors as in [`read_images`] and [`read_labels`].
pub fn read_labeled_images(
    kind: DatasetKind,
    dir: &Path,
    images_name: &str,
    labels_name: &str,
) -> Result<LabeledImages> {
    let find = |name: &str| {
        find_idx_file(dir, name).ok_or_else(|| {
            Error::dataset(format!(
                "{kind}: {} (or {name}.gz) not found; fetch the data with \
                 `scripts/fetch-data.sh {} DATA_DIR`, which fills DATA_DIR/{}/",
                dir.join(name).display(),
                kind.fetch_option(),
                kind.dir_name()
            ))
        })
    };
    let images_path = find(images_name)?;
    let labels_path = find(labels_name)?;
    let images = read_images(&images_path)?;
    let labels = read_labels(&labels_path)?;
    if images.count() != labels.len() {
        return Err(Error::dataset(format!(
            "{kind}: {} has {} images but {} has {} labels; the two files must come from the \
             same release",
            images_path.display(),
            images.count(),
            labels_path.display(),
            labels.len()
        )));
    }
    LabeledImages::new(images, labels)
}
