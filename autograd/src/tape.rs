//! The reverse-mode tape: an arena of recorded values and the ops that produced them.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use smallvec::SmallVec;

use crate::error::{Error, Result};
use crate::float::Float;
use crate::op::{BackwardArgs, Op};
use crate::reduce::sum_to_shape;
use crate::tensor::Tensor;

static NEXT_TAPE_ID: AtomicU64 = AtomicU64::new(0);

struct Node<T: Float> {
    value: Tensor<T>,
    requires_grad: bool,
    op: Option<Box<dyn Op<T>>>,
    inputs: SmallVec<[usize; 4]>,
}

/// A recording of one computation, replayed backwards by [`Tape::backward`].
///
/// Values enter the tape as leaves ([`Tape::param`] for trainable ones, [`Tape::constant`] for
/// the rest) and every op applied to them appends a node. Nodes live in an arena indexed by
/// position, so a [`Var`] is a cheap `Copy` handle. A tape is meant to be short-lived: build one
/// per training step and drop it after the optimiser has read the gradients.
///
/// ```
/// use autograd::{Tape, Tensor};
///
/// let tape = Tape::<f64>::new();
/// let x = tape.param(Tensor::from_vec(vec![1.0, 2.0, 3.0], [3])?);
/// let y = x.mul(x)?.sum()?; // y = Σ x²
/// let grads = tape.backward(y)?;
/// assert_eq!(grads.get(x)?.to_vec(), vec![2.0, 4.0, 6.0]); // ∂y/∂x = 2x
/// # Ok::<(), autograd::Error>(())
/// ```
pub struct Tape<T: Float> {
    id: u64,
    nodes: RefCell<Vec<Node<T>>>,
    grad_enabled: Cell<bool>,
}

/// A handle to a value recorded on a [`Tape`].
///
/// Ops are methods on `Var` (`x.exp()`, `x.matmul(w)`) that record a new node and return its
/// handle. All of them return [`Result`] because shapes and arguments come from the user.
pub struct Var<'t, T: Float> {
    pub(crate) tape: &'t Tape<T>,
    pub(crate) id: usize,
}

impl<T: Float> Clone for Var<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T: Float> Copy for Var<'_, T> {}

impl<T: Float> std::fmt::Debug for Var<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Var(#{} on tape {}) = {:?}",
            self.id,
            self.tape.id,
            self.value()
        )
    }
}

/// Gradients of a scalar with respect to the trainable leaves of a tape, from [`Tape::backward`].
pub struct Gradients<T: Float> {
    tape_id: u64,
    grads: HashMap<usize, Tensor<T>>,
}

impl<T: Float> Gradients<T> {
    /// Returns `∂loss/∂var` for a leaf created with [`Tape::param`].
    ///
    /// A parameter that the loss does not depend on has a zero gradient.
    ///
    /// # Errors
    /// [`Error::TapeMismatch`] if `var` belongs to another tape, [`Error::NoGradient`] if it is
    /// not a trainable leaf.
    pub fn get(&self, var: Var<'_, T>) -> Result<&Tensor<T>> {
        if var.tape.id != self.tape_id {
            return Err(Error::TapeMismatch {
                op: "Gradients::get".into(),
            });
        }
        self.grads.get(&var.id).ok_or_else(|| Error::NoGradient {
            what: format!(
                "value #{} is not a trainable leaf; only values created with Tape::param have gradients",
                var.id
            ),
        })
    }

    /// Removes and returns the gradient of `var`, avoiding a copy when an optimiser consumes it.
    ///
    /// # Errors
    /// As for [`Gradients::get`].
    pub fn take(&mut self, var: Var<'_, T>) -> Result<Tensor<T>> {
        self.get(var)?;
        Ok(self.grads.remove(&var.id).expect("checked by get"))
    }
}

/// Restores gradient recording when dropped; returned by [`Tape::no_grad`].
pub struct NoGradGuard<'t, T: Float> {
    tape: &'t Tape<T>,
    previous: bool,
}

impl<T: Float> Drop for NoGradGuard<'_, T> {
    fn drop(&mut self) {
        self.tape.grad_enabled.set(self.previous);
    }
}

impl<T: Float> Default for Tape<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Float> Tape<T> {
    /// Creates an empty tape.
    pub fn new() -> Self {
        Tape {
            id: NEXT_TAPE_ID.fetch_add(1, Ordering::Relaxed),
            nodes: RefCell::new(Vec::new()),
            grad_enabled: Cell::new(true),
        }
    }

    /// Records a trainable leaf: [`Tape::backward`] returns its gradient.
    pub fn param(&self, value: Tensor<T>) -> Var<'_, T> {
        let requires_grad = self.grad_enabled.get();
        self.push(value, requires_grad, None, SmallVec::new())
    }

    /// Records a leaf that takes no gradient, such as input data or a target.
    pub fn constant(&self, value: Tensor<T>) -> Var<'_, T> {
        self.push(value, false, None, SmallVec::new())
    }

    /// Stops recording gradients until the returned guard is dropped: values computed meanwhile
    /// are constants, and [`Tape::param`] creates leaves that take no gradient.
    ///
    /// ```
    /// use autograd::{Tape, Tensor};
    ///
    /// let tape = Tape::<f32>::new();
    /// let w = tape.param(Tensor::ones([2]));
    /// let frozen = {
    ///     let _guard = tape.no_grad();
    ///     w.exp()?
    /// };
    /// assert!(!frozen.requires_grad());
    /// assert!(w.exp()?.requires_grad());
    /// # Ok::<(), autograd::Error>(())
    /// ```
    pub fn no_grad(&self) -> NoGradGuard<'_, T> {
        let previous = self.grad_enabled.replace(false);
        NoGradGuard {
            tape: self,
            previous,
        }
    }

    /// Returns whether ops applied now are recorded for differentiation.
    pub fn is_grad_enabled(&self) -> bool {
        self.grad_enabled.get()
    }

    /// The number of recorded values.
    pub fn len(&self) -> usize {
        self.nodes.borrow().len()
    }

    /// Returns whether nothing has been recorded yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Runs `op` on `inputs` and records the result.
    ///
    /// The result requires a gradient when gradients are enabled and any input requires one.
    ///
    /// # Errors
    /// [`Error::TapeMismatch`] if an input belongs to another tape,
    /// [`Error::NotDifferentiable`] if the op has no backward and an input requires a gradient,
    /// and any error of the op's forward.
    pub fn apply(&self, mut op: impl Op<T>, inputs: &[Var<'_, T>]) -> Result<Var<'_, T>> {
        for input in inputs {
            if input.tape.id != self.id {
                return Err(Error::TapeMismatch {
                    op: op.name().to_string(),
                });
            }
        }
        let (values, tracked): (Vec<Tensor<T>>, Vec<bool>) = {
            let nodes = self.nodes.borrow();
            inputs
                .iter()
                .map(|v| (nodes[v.id].value.clone(), nodes[v.id].requires_grad))
                .unzip()
        };
        let requires_grad = self.grad_enabled.get() && tracked.iter().any(|&t| t);
        if requires_grad && !op.is_differentiable() {
            let input = tracked.iter().position(|&t| t).unwrap_or(0);
            return Err(Error::NotDifferentiable {
                op: op.name().to_string(),
                input,
            });
        }

        let value = op.forward(&values)?;

        let ids = inputs.iter().map(|v| v.id).collect();
        let op: Option<Box<dyn Op<T>>> = if requires_grad {
            Some(Box::new(op))
        } else {
            None
        };
        Ok(self.push(value, requires_grad, op, ids))
    }

    /// Computes the gradient of the scalar `loss` with respect to every trainable leaf it
    /// depends on.
    ///
    /// Nodes are visited in reverse order of recording. A node's gradient is dropped as soon as
    /// its op has passed it on, so at most the gradients of one "frontier" are alive at once.
    /// Gradients reaching a value used several times are summed.
    ///
    /// # Errors
    /// [`Error::TapeMismatch`] if `loss` belongs to another tape, [`Error::NotScalar`] if it has
    /// more than one element, [`Error::NoGradient`] if it does not depend on any trainable leaf,
    /// and any error an op's backward returns.
    pub fn backward(&self, loss: Var<'_, T>) -> Result<Gradients<T>> {
        if loss.tape.id != self.id {
            return Err(Error::TapeMismatch {
                op: "backward".into(),
            });
        }
        let nodes = self.nodes.borrow();
        let root = &nodes[loss.id];
        if root.value.numel() != 1 {
            return Err(Error::NotScalar {
                shape: root.value.shape().clone(),
            });
        }
        if !root.requires_grad {
            return Err(Error::NoGradient {
                what: "the loss does not depend on any trainable leaf (created with Tape::param outside no_grad)".into(),
            });
        }

        let mut pending: Vec<Option<Tensor<T>>> = vec![None; loss.id + 1];
        pending[loss.id] = Some(Tensor::ones(root.value.shape().clone()));
        let mut leaves = HashMap::new();
        // Every trainable leaf gets an entry, including those recorded after the loss, so that
        // a parameter the loss does not use has a zero gradient as `Gradients::get` documents.
        for (id, node) in nodes.iter().enumerate() {
            if node.requires_grad && node.op.is_none() {
                leaves.insert(id, Tensor::zeros(node.value.shape().clone()));
            }
        }

        for id in (0..=loss.id).rev() {
            let Some(grad) = pending[id].take() else {
                continue;
            };
            let node = &nodes[id];
            let Some(op) = node.op.as_ref() else {
                if node.requires_grad {
                    leaves.insert(id, grad);
                }
                continue;
            };

            let inputs: Vec<Tensor<T>> = node
                .inputs
                .iter()
                .map(|&i| nodes[i].value.clone())
                .collect();
            let needs_grad: Vec<bool> = node
                .inputs
                .iter()
                .map(|&i| nodes[i].requires_grad)
                .collect();
            let input_grads = op.backward(&BackwardArgs {
                inputs: &inputs,
                output: &node.value,
                grad_output: &grad,
                needs_grad: &needs_grad,
            })?;
            drop(grad);
            if input_grads.len() != inputs.len() {
                return Err(Error::shape(
                    op.name(),
                    format!(
                        "backward returned {} gradients for {} inputs",
                        input_grads.len(),
                        inputs.len()
                    ),
                ));
            }

            for (k, input_grad) in input_grads.into_iter().enumerate() {
                let Some(input_grad) = input_grad else {
                    if needs_grad[k] {
                        return Err(Error::shape(
                            op.name(),
                            format!(
                                "backward returned no gradient for input {k}, which requires one"
                            ),
                        ));
                    }
                    continue;
                };
                if !needs_grad[k] {
                    continue;
                }
                let target = inputs[k].shape();
                let input_grad = if input_grad.shape() == target {
                    input_grad
                } else {
                    sum_to_shape(op.name(), &input_grad, target)?
                };
                accumulate(&mut pending[node.inputs[k]], input_grad);
            }
        }

        Ok(Gradients {
            tape_id: self.id,
            grads: leaves,
        })
    }

    fn push(
        &self,
        value: Tensor<T>,
        requires_grad: bool,
        op: Option<Box<dyn Op<T>>>,
        inputs: SmallVec<[usize; 4]>,
    ) -> Var<'_, T> {
        let mut nodes = self.nodes.borrow_mut();
        nodes.push(Node {
            value,
            requires_grad,
            op,
            inputs,
        });
        Var {
            tape: self,
            id: nodes.len() - 1,
        }
    }
}

fn accumulate<T: Float>(slot: &mut Option<Tensor<T>>, grad: Tensor<T>) {
    match slot {
        None => *slot = Some(grad),
        Some(existing) => {
            for (a, b) in existing.data_mut().iter_mut().zip(grad.data()) {
                *a += *b;
            }
        }
    }
}

impl<'t, T: Float> Var<'t, T> {
    /// A copy of the recorded value (cheap: the elements are shared).
    pub fn value(&self) -> Tensor<T> {
        self.tape.nodes.borrow()[self.id].value.clone()
    }

    /// The shape of the recorded value.
    pub fn shape(&self) -> crate::Shape {
        self.tape.nodes.borrow()[self.id].value.shape().clone()
    }

    /// The tape this value is recorded on.
    pub fn tape(&self) -> &'t Tape<T> {
        self.tape
    }

    /// Returns whether gradients flow back through this value.
    pub fn requires_grad(&self) -> bool {
        self.tape.nodes.borrow()[self.id].requires_grad
    }

    /// Returns the same value as a new constant leaf: gradients stop here.
    pub fn detach(&self) -> Var<'t, T> {
        self.tape.constant(self.value())
    }
}
