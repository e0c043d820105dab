//! Parameters recorded on a tape for one step, and the gradients read back from it.

use std::collections::HashMap;
use std::rc::Rc;

use crate::error::{Error, Result};
use crate::float::Float;
use crate::nn::Module;
use crate::tape::{Tape, Var};
use crate::tensor::Tensor;

/// A model's parameters recorded as trainable leaves of one tape, looked up by name.
///
/// Recording clones each tensor, which only shares its buffer. A `scope` is a view that
/// prepends a prefix to every lookup, so a layer's `forward` reads `"weight"` and finds
/// `"conv1.weight"`.
pub struct Params<'t, T: Float> {
    tape: &'t Tape<T>,
    vars: Rc<Vec<(String, Var<'t, T>)>>,
    index: Rc<HashMap<String, usize>>,
    prefix: String,
}

impl<'t, T: Float> Params<'t, T> {
    /// Records every parameter of `model` on `tape` with [`Tape::param`].
    pub fn new(tape: &'t Tape<T>, model: &(impl Module<T> + ?Sized)) -> Self {
        let vars: Vec<(String, Var<'t, T>)> = model
            .named_parameters()
            .into_iter()
            .map(|(name, t)| (name, tape.param(t.clone())))
            .collect();
        let index = vars
            .iter()
            .enumerate()
            .map(|(i, (name, _))| (name.clone(), i))
            .collect();
        Params {
            tape,
            vars: Rc::new(vars),
            index: Rc::new(index),
            prefix: String::new(),
        }
    }

    /// The tape the parameters are recorded on.
    pub fn tape(&self) -> &'t Tape<T> {
        self.tape
    }

    /// Returns the parameter `name`, relative to this view's prefix.
    ///
    /// # Errors
    /// [`Error::Shape`] naming the full path if the model has no such parameter.
    pub fn get(&self, name: &str) -> Result<Var<'t, T>> {
        let full = self.full_name(name);
        match self.index.get(&full) {
            Some(&i) => Ok(self.vars[i].1),
            None => Err(Error::shape(
                "Params::get",
                format!(
                    "the model has no parameter {full:?}; its parameters are {:?}",
                    self.vars
                        .iter()
                        .map(|(n, _)| n.as_str())
                        .collect::<Vec<_>>()
                ),
            )),
        }
    }

    /// Returns a view whose lookups are prefixed with `name.`.
    pub fn scope(&self, name: &str) -> Self {
        Params {
            tape: self.tape,
            vars: Rc::clone(&self.vars),
            index: Rc::clone(&self.index),
            prefix: self.full_name(name),
        }
    }

    /// Runs [`Tape::backward`] from `loss` and returns the gradient of every parameter, by name.
    ///
    /// # Errors
    /// As for [`Tape::backward`].
    pub fn backward(&self, loss: Var<'t, T>) -> Result<NamedGradients<T>> {
        let mut grads = self.tape.backward(loss)?;
        let named = self
            .vars
            .iter()
            .map(|(name, var)| Ok((name.clone(), grads.take(*var)?)))
            .collect::<Result<Vec<_>>>()?;
        Ok(NamedGradients::new(named))
    }

    fn full_name(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.prefix)
        }
    }
}

/// Gradients of a loss with respect to named parameters, independent of the tape they came
/// from.
#[derive(Clone, Debug)]
pub struct NamedGradients<T: Float> {
    grads: Vec<(String, Tensor<T>)>,
    index: HashMap<String, usize>,
}

impl<T: Float> NamedGradients<T> {
    /// Wraps a list of (name, gradient) pairs.
    pub fn new(grads: Vec<(String, Tensor<T>)>) -> Self {
        let index = grads
            .iter()
            .enumerate()
            .map(|(i, (name, _))| (name.clone(), i))
            .collect();
        NamedGradients { grads, index }
    }

    /// Returns the gradient of the parameter `name`, if present.
    pub fn get(&self, name: &str) -> Option<&Tensor<T>> {
        self.index.get(name).map(|&i| &self.grads[i].1)
    }

    /// The (name, gradient) pairs in the model's parameter order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Tensor<T>)> {
        self.grads.iter().map(|(n, t)| (n.as_str(), t))
    }

    /// The Euclidean norm of all gradients taken together, `sqrt(Σ g²)`.
    pub fn global_norm(&self) -> f64 {
        self.grads
            .iter()
            .flat_map(|(_, t)| t.data().iter())
            .map(|g| g.as_f64() * g.as_f64())
            .sum::<f64>()
            .sqrt()
    }
}
