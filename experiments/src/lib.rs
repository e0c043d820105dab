//! Shared code of the experiment binaries: IDX reading, the MNIST and Fashion-MNIST datasets,
//! the large-MNIST sorting task and its metrics, the score CNN, the differentiable kNN
//! experiment, and the run helpers (flags, output files, progress bar, checkpoints).

pub mod cnn;
pub mod data_source;
pub mod dataset;
mod error;
pub mod grid;
pub mod idx;
pub mod knn;
pub mod knn_cnn;
pub mod labeled_images;
pub mod large_mnist;
pub mod limits;
pub mod metrics;
pub mod quantile;
pub mod report;
pub mod run;
pub mod sample;
pub mod sort_mnist;
pub mod speed;

pub use data_source::{DataOrigin, DataSource, DATA_ENV_VAR};
pub use dataset::{Dataset, DatasetKind};
pub use error::{Error, Result};
pub use labeled_images::LabeledImages;
