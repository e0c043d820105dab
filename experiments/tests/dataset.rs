//! Loading datasets from IDX files on disk and from the embedded sample.

use std::path::{Path, PathBuf};

use experiments::dataset::{
    read_labeled_images, validation_len, TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS,
};
use experiments::idx::{encode_images, encode_labels, gzip, read_images, IdxImages};
use experiments::sample::{embedded_sample, select_sample};
use experiments::{DataOrigin, DataSource, Dataset, DatasetKind, Error};

/// A fresh folder under Cargo's temporary folder for integration tests.
fn temp_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("dataset-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `count` 3 × 2 images; image `i` has label `i % 10` and every pixel equal to `i % 256`.
fn synthetic(count: usize) -> (IdxImages, Vec<u8>) {
    let pixels = (0..count).flat_map(|i| [(i % 256) as u8; 6]).collect();
    let labels = (0..count).map(|i| (i % 10) as u8).collect();
    (IdxImages::new(count, 3, 2, pixels).unwrap(), labels)
}

/// Writes a dataset folder with `train` and `test` images. The training files are gzipped and
/// the test files raw, so that both kinds are read.
fn write_dataset(dir: &Path, train: usize, test: usize) {
    std::fs::create_dir_all(dir).unwrap();
    let (images, labels) = synthetic(train);
    std::fs::write(
        dir.join(format!("{TRAIN_IMAGES}.gz")),
        gzip(&encode_images(&images)),
    )
    .unwrap();
    std::fs::write(
        dir.join(format!("{TRAIN_LABELS}.gz")),
        gzip(&encode_labels(&labels)),
    )
    .unwrap();
    let (images, labels) = synthetic(test);
    std::fs::write(dir.join(TEST_IMAGES), encode_images(&images)).unwrap();
    std::fs::write(dir.join(TEST_LABELS), encode_labels(&labels)).unwrap();
}

#[test]
fn validation_len_matches_full_and_sample() {
    assert_eq!(validation_len(60_000), 5_000);
    assert_eq!(validation_len(1_200), 100);
    assert_eq!(validation_len(6), 1);
    assert_eq!(validation_len(5), 0);
}

#[test]
fn explicit_folder_loads_and_splits() {
    let root = temp_dir("explicit");
    write_dataset(&root.join("mnist"), 120, 30);

    let data = Dataset::load(DatasetKind::Mnist, Some(&root)).unwrap();
    assert_eq!(data.train.len(), 110);
    assert_eq!(data.validation.len(), 10);
    assert_eq!(data.test.len(), 30);
    assert_eq!((data.train.rows(), data.train.cols()), (3, 2));
    // The validation set is the end of the training file: image 110 has pixels 110, label 0.
    assert_eq!(data.validation.image(0), &[110; 6]);
    assert_eq!(data.validation.label(0), 0);
    assert_eq!(data.test.image(29), &[29; 6]);
    assert_eq!(
        data.source,
        DataSource::Files {
            dir: root.join("mnist"),
            origin: DataOrigin::Argument
        }
    );
    let summary = data.summary();
    assert!(
        summary.contains("110 training, 10 validation, 30 test images"),
        "{summary}"
    );
}

#[test]
fn fashion_mnist_reads_its_own_folder() {
    let root = temp_dir("fashion");
    write_dataset(&root.join("fashion-mnist"), 24, 12);
    let data = Dataset::load(DatasetKind::FashionMnist, Some(&root)).unwrap();
    assert_eq!(data.kind, DatasetKind::FashionMnist);
    assert_eq!(data.train.len(), 22);
    assert_eq!(data.validation.len(), 2);

    let error = Dataset::load(DatasetKind::Mnist, Some(&root)).unwrap_err();
    assert!(matches!(error, Error::Dataset { .. }), "{error}");
}

#[test]
fn missing_file_names_file_and_fix() {
    let root = temp_dir("missing");
    write_dataset(&root.join("mnist"), 24, 12);
    std::fs::remove_file(root.join("mnist").join(TEST_LABELS)).unwrap();

    let message = Dataset::load(DatasetKind::Mnist, Some(&root))
        .unwrap_err()
        .to_string();
    assert!(message.contains(TEST_LABELS), "{message}");
    assert!(message.contains("not found"), "{message}");
    assert!(
        message.contains("scripts/fetch-data.sh --mnist-only"),
        "{message}"
    );
}

#[test]
fn count_mismatch_names_both_files() {
    let root = temp_dir("mismatch");
    let dir = root.join("mnist");
    write_dataset(&dir, 24, 12);
    std::fs::write(dir.join(TEST_LABELS), encode_labels(&[1; 11])).unwrap();

    let message = Dataset::load(DatasetKind::Mnist, Some(&root))
        .unwrap_err()
        .to_string();
    assert!(message.contains("12 images"), "{message}");
    assert!(message.contains("11 labels"), "{message}");
    assert!(message.contains(TEST_IMAGES), "{message}");
    assert!(message.contains(TEST_LABELS), "{message}");
}

#[test]
fn corrupt_file_error_names_path() {
    let root = temp_dir("corrupt");
    let dir = root.join("mnist");
    write_dataset(&dir, 24, 12);
    let path = dir.join(TEST_IMAGES);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 1]).unwrap();

    let error = read_images(&path).unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, Error::Idx { .. }), "{message}");
    assert!(
        message.starts_with(&path.display().to_string()),
        "{message}"
    );
    assert!(message.contains("truncated"), "{message}");

    let message = Dataset::load(DatasetKind::Mnist, Some(&root))
        .unwrap_err()
        .to_string();
    assert!(message.contains("truncated"), "{message}");
}

#[test]
fn unreadable_path_is_io_error() {
    let root = temp_dir("io");
    let error = read_images(&root.join("absent")).unwrap_err();
    assert!(matches!(error, Error::Io { .. }), "{error}");
    assert!(error.to_string().contains("absent"), "{error}");
}

#[test]
fn training_file_too_small_to_split() {
    let root = temp_dir("tiny");
    write_dataset(&root.join("mnist"), 5, 3);
    let message = Dataset::load(DatasetKind::Mnist, Some(&root))
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("too few to split off a validation set"),
        "{message}"
    );
}

#[test]
fn embedded_sample_loads_with_message() {
    let data = Dataset::embedded_mnist_sample().unwrap();
    assert_eq!(data.train.len(), 1_100);
    assert_eq!(data.validation.len(), 100);
    assert_eq!(data.test.len(), 500);
    assert!(data.source.is_sample());
    assert_eq!(data.train.label_counts(), [110; 10]);
    assert_eq!(data.validation.label_counts(), [10; 10]);

    let summary = data.summary();
    assert!(summary.contains("embedded sample"), "{summary}");
    assert!(summary.contains("scripts/fetch-data.sh"), "{summary}");
    assert!(summary.contains("SOFTSORT_DATA"), "{summary}");
}

/// Checks the full data in the folder named by `SOFTSORT_DATA` (as filled by
/// `scripts/fetch-data.sh`) and that the embedded sample is the selection from it.
#[test]
#[ignore = "needs the full MNIST and Fashion-MNIST files in $SOFTSORT_DATA"]
fn full_data_and_sample_selection() {
    let root = PathBuf::from(std::env::var_os("SOFTSORT_DATA").expect("set SOFTSORT_DATA"));
    let data = Dataset::load(DatasetKind::Mnist, Some(&root)).unwrap();
    assert_eq!(data.train.len(), 55_000);
    assert_eq!(data.validation.len(), 5_000);
    assert_eq!(data.test.len(), 10_000);
    assert_eq!((data.train.rows(), data.train.cols()), (28, 28));

    let fashion = Dataset::load(DatasetKind::FashionMnist, Some(&root)).unwrap();
    assert_eq!(fashion.train.len(), 55_000);
    assert_eq!(fashion.validation.len(), 5_000);
    assert_eq!(fashion.test.len(), 10_000);

    let mnist_dir = root.join("mnist");
    let full_train =
        read_labeled_images(DatasetKind::Mnist, &mnist_dir, TRAIN_IMAGES, TRAIN_LABELS).unwrap();
    let (train, test) = select_sample(&full_train, &data.test).unwrap();
    let (embedded_train, embedded_test) = embedded_sample().unwrap();
    assert!(train == embedded_train, "embedded training sample differs");
    assert!(test == embedded_test, "embedded test sample differs");
}
