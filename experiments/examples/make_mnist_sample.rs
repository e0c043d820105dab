//! Writes the MNIST sample that the experiments crate embeds, selected from the full MNIST files.
//!
//! Usage: `cargo run -p experiments --example make_mnist_sample -- DATA_DIR [OUT_DIR]`
//!
//! DATA_DIR is the data folder filled by `scripts/fetch-data.sh` (the one containing `mnist/`).
//! OUT_DIR defaults to `experiments/data/mnist-sample`. The selection rule is
//! `experiments::sample::select_sample`; the output is gzipped IDX files.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use experiments::dataset::{
    read_labeled_images, DatasetKind, TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS,
};
use experiments::idx::{encode_images, encode_labels, gzip};
use experiments::labeled_images::LabeledImages;
use experiments::sample::{select_sample, SAMPLE_DIR};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() || args.len() > 2 || args[0] == "--help" || args[0] == "-h" {
        eprintln!("usage: make_mnist_sample DATA_DIR [OUT_DIR]");
        return ExitCode::from(2);
    }
    let data_dir = PathBuf::from(&args[0]);
    let out_dir = match args.get(1) {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join(SAMPLE_DIR),
    };
    match run(&data_dir, &out_dir) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("make_mnist_sample: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run(data_dir: &Path, out_dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let mnist_dir = data_dir.join(DatasetKind::Mnist.dir_name());
    let full_train =
        read_labeled_images(DatasetKind::Mnist, &mnist_dir, TRAIN_IMAGES, TRAIN_LABELS)?;
    let full_test = read_labeled_images(DatasetKind::Mnist, &mnist_dir, TEST_IMAGES, TEST_LABELS)?;
    let (train, test) = select_sample(&full_train, &full_test)?;

    std::fs::create_dir_all(out_dir)?;
    write_pair(out_dir, TRAIN_IMAGES, TRAIN_LABELS, &train)?;
    write_pair(out_dir, TEST_IMAGES, TEST_LABELS, &test)?;
    Ok(())
}

fn write_pair(
    out_dir: &Path,
    images_name: &str,
    labels_name: &str,
    set: &LabeledImages,
) -> std::io::Result<()> {
    let (images, labels) = set.to_idx();
    for (name, bytes) in [
        (images_name, encode_images(&images)),
        (labels_name, encode_labels(&labels)),
    ] {
        let path = out_dir.join(format!("{name}.gz"));
        let compressed = gzip(&bytes);
        std::fs::write(&path, &compressed)?;
        println!("{} ({} bytes)", path.display(), compressed.len());
    }
    Ok(())
}
