//! The differentiable k-nearest-neighbours experiment of the SoftSort paper (Prillo &
//! Eisenschlos 2020, after Grover et al. 2019).
//!
//! An embedding network ([`EmbeddingCnn`](crate::knn_cnn::EmbeddingCnn)) is trained so that,
//! under the relaxed top-`k` of negative squared distances, each query's nearest neighbours
//! share its label ([`knn_loss`]). It is evaluated by exact kNN with a majority vote over the
//! embeddings of the training images ([`knn_classify`]).

mod classify;
mod embed;
mod loss;
mod train;

pub use classify::{accuracy, knn_classify, majority_vote, nearest_neighbours, Neighbour};
pub use embed::{embed_all, images_to_tensor};
pub use loss::{knn_loss, negative_squared_distances, Sorter};
pub use train::{train_and_test, Evaluation, KnnConfig, KnnOutcome, SizeCap};
