//! Learning to sort four-digit handwritten numbers (the large-MNIST experiment of NeuralSort,
//! Grover et al. 2019, repeated as Table 1 of SoftSort, Prillo & Eisenschlos 2020).
//!
//! A CNN ([`ScoreCnn`](crate::cnn::ScoreCnn)) gives each of the `n` images of a sequence one
//! score. A relaxed sorting operator turns the `n` scores into a soft permutation matrix `P`
//! (`[n, n]`, row `i` is sorted position `i`). The loss is the mean over rows of the
//! cross-entropy between the true permutation (numbers in descending order) and
//! `log(P + 1e-20)`. The metrics take the argmax of each row of `P`: "all correct" is the
//! fraction of sequences whose whole permutation is right, "any correct" the fraction of
//! positions that are right.
//!
//! ```no_run
//! use experiments::sort_mnist::{run, Config, Method};
//!
//! let config = Config {
//!     method: Method::DetSoftsort,
//!     steps: 100,
//!     ..Config::default()
//! };
//! let result = run(&config)?;
//! println!("{}", result.summary());
//! # Ok::<(), experiments::Error>(())
//! ```

mod config;
mod relaxation;
mod result;
mod train;

pub use config::{default_tau, Config, Method};
pub use relaxation::{fast_softsort_loss, log_alpha, loss, predict, relax, Relaxed};
pub use result::{Evaluation, SortMnistResult, EXPERIMENT};
pub use train::{evaluate, run, run_with_data, TEST_SEED, VALIDATION_SEED};
