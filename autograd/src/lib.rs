//! Reverse-mode automatic differentiation on CPU tensors of `f32` and `f64`.
//!
//! A [`Tape`] records every op applied to the values on it; [`Tape::backward`] replays the
//! record in reverse to compute the gradient of a scalar with respect to the trainable leaves.
//! Ops are methods on the [`Var`] handles, and new ones can be added from any crate through the
//! [`Op`] trait. [`GradCheck`] compares any op's backward with central finite differences.
//!
//! ```
//! use autograd::{Tape, Tensor};
//!
//! let tape = Tape::<f64>::new();
//! let w = tape.param(Tensor::from_vec(vec![0.5, -0.25], [2, 1])?);
//! let x = tape.constant(Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], [2, 2])?);
//! let loss = x.matmul(w)?.relu()?.sum()?; // relu(x·w) = [0, 0.5]
//! let grads = tape.backward(loss)?;
//! assert_eq!(grads.get(w)?.to_vec(), vec![3.0, 4.0]); // only the second row is active
//! # Ok::<(), autograd::Error>(())
//! ```
//!
//! Kernels split work by problem size, never by thread count, so results are bit-identical for
//! any size of the rayon thread pool.
//!
//! # Memory allocator
//!
//! Every op allocates its output, and a training step frees them all when its tape drops. With
//! glibc's default `malloc`, blocks of a few megabytes go back to the operating system on free,
//! so the next step faults in and zeroes fresh pages. In the SoftSort paper's CNN step on
//! 2 cores, this kernel work took half of the process's CPU time. An allocator that keeps
//! freed memory for reuse removes it. The project's binaries and benchmarks use
//! [mimalloc](https://crates.io/crates/mimalloc), and a training program can do the same:
//!
//! ```
//! #[global_allocator]
//! static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
//!
//! fn main() -> autograd::Result<()> {
//!     let tape = autograd::Tape::<f32>::new();
//!     let x = tape.param(autograd::Tensor::full([1024, 1024], 0.5));
//!     let grads = tape.backward(x.mul(x)?.sum()?)?;
//!     assert_eq!(grads.get(x)?.data()[0], 1.0); // d(x²)/dx = 2x
//!     Ok(())
//! }
//! ```

mod concat;
mod conv;
mod dropout;
mod elementwise;
mod error;
mod float;
mod gradcheck;
mod im2col;
mod indexing;
mod layout;
mod matmul;
pub mod nn;
mod op;
pub mod parallel;
mod pool;
mod reduce;
mod shape;
mod softmax;
mod sort;
mod tape;
mod tensor;

pub use concat::{concat, stack};
pub use conv::Padding;
pub use elementwise::{broadcast_tensor, broadcast_zip};
pub use error::{Error, Result};
pub use float::Float;
pub use gradcheck::{CheckedFn, GradCheck, GradCheckError, GradCheckReport};
pub use indexing::IndexTensor;
pub use matmul::matmul_tensors;
pub use op::{BackwardArgs, Op};
pub use reduce::{reduce_axis, sum_to_shape};
pub use shape::{broadcast_shapes, broadcast_strides, Shape};
pub use sort::argsort;
pub use tape::{Gradients, NoGradGuard, Tape, Var};
pub use tensor::Tensor;
