//! Stochastic gradient descent with momentum.

use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::float::Float;
use crate::nn::optim::{check_learning_rate, check_state_shape, pair_gradients, split_state_name};
use crate::nn::{Module, NamedGradients, Optimizer, OptimizerState};
use crate::tensor::Tensor;

/// Settings of [`Sgd`], with PyTorch's defaults apart from the learning rate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SgdConfig {
    /// The learning rate `η`.
    pub lr: f64,
    /// The momentum factor `μ` (0 for plain SGD).
    pub momentum: f64,
    /// The dampening `τ` of the gradient added to the momentum buffer.
    pub dampening: f64,
    /// Whether to use Nesterov momentum.
    pub nesterov: bool,
    /// The L2 penalty `λ` added to the gradient.
    pub weight_decay: f64,
}

impl SgdConfig {
    /// Plain SGD with learning rate `lr`.
    pub fn new(lr: f64) -> Self {
        SgdConfig {
            lr,
            momentum: 0.0,
            dampening: 0.0,
            nesterov: false,
            weight_decay: 0.0,
        }
    }
}

/// Stochastic gradient descent with PyTorch's `torch.optim.SGD` semantics.
///
/// For each parameter `p` with gradient `g`, at step `t` (counting from 1):
///
/// ```text
/// g ← g + λ·p
/// b ← g                        if t = 1
/// b ← μ·b + (1 − τ)·g          otherwise          (only when μ ≠ 0)
/// g ← g + μ·b  (Nesterov)   or   g ← b             (only when μ ≠ 0)
/// p ← p − η·g
/// ```
///
/// ```
/// use autograd::nn::{Linear, NamedGradients, Optimizer, Sgd, SgdConfig};
/// use autograd::Tensor;
///
/// let mut layer = Linear::from_parts(Tensor::from_vec(vec![1.0f64], [1, 1])?, None)?;
/// let mut sgd = Sgd::new(SgdConfig { momentum: 0.9, ..SgdConfig::new(0.1) })?;
/// let grads = NamedGradients::new(vec![("weight".into(), Tensor::from_vec(vec![1.0], [1, 1])?)]);
/// sgd.step(&mut layer, &grads)?; // b = 1, p = 1 − 0.1·1
/// sgd.step(&mut layer, &grads)?; // b = 0.9·1 + 1 = 1.9, p = 0.9 − 0.1·1.9
/// assert!((layer.weight.data()[0] - 0.71).abs() < 1e-12);
/// # Ok::<(), autograd::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Sgd<T: Float> {
    config: SgdConfig,
    steps: u64,
    momentum_buffers: HashMap<String, Tensor<T>>,
}

impl<T: Float> Sgd<T> {
    /// Creates the optimiser.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a negative or non-finite setting, or Nesterov momentum
    /// without momentum or with dampening (which PyTorch rejects too).
    pub fn new(config: SgdConfig) -> Result<Self> {
        check_learning_rate("Sgd::new", config.lr)?;
        for (arg, value) in [
            ("momentum", config.momentum),
            ("dampening", config.dampening),
            ("weight_decay", config.weight_decay),
        ] {
            if !(value.is_finite() && value >= 0.0) {
                return Err(Error::invalid(
                    "Sgd::new",
                    arg,
                    value,
                    "it must be finite and non-negative",
                ));
            }
        }
        if config.nesterov && (config.momentum == 0.0 || config.dampening != 0.0) {
            return Err(Error::invalid(
                "Sgd::new",
                "nesterov",
                format!(
                    "true with momentum {} and dampening {}",
                    config.momentum, config.dampening
                ),
                "Nesterov momentum needs a positive momentum and zero dampening",
            ));
        }
        Ok(Sgd {
            config,
            steps: 0,
            momentum_buffers: HashMap::new(),
        })
    }

    /// The settings.
    pub fn config(&self) -> SgdConfig {
        self.config
    }
}

impl<T: Float> Optimizer<T> for Sgd<T> {
    fn step(&mut self, model: &mut dyn Module<T>, grads: &NamedGradients<T>) -> Result<()> {
        let pairs = pair_gradients("Sgd::step", model, grads)?;
        for (name, param, _) in &pairs {
            if let Some(buffer) = self.momentum_buffers.get(name) {
                check_state_shape("Sgd::step", name, buffer, param)?;
            }
        }
        let c = self.config;
        let (lr, momentum, weight_decay) = (
            T::from_f64(c.lr),
            T::from_f64(c.momentum),
            T::from_f64(c.weight_decay),
        );
        let damped = T::from_f64(1.0 - c.dampening);
        for (name, param, grad) in pairs {
            let p = param.data_mut();
            let g = grad.data();
            if c.momentum == 0.0 {
                for (p, &g) in p.iter_mut().zip(g) {
                    let d = g + weight_decay * *p;
                    *p -= lr * d;
                }
                continue;
            }
            match self.momentum_buffers.get_mut(&name) {
                None => {
                    let mut buffer = Vec::with_capacity(p.len());
                    for (p, &g) in p.iter_mut().zip(g) {
                        let d = g + weight_decay * *p;
                        let update = if c.nesterov { d + momentum * d } else { d };
                        buffer.push(d);
                        *p -= lr * update;
                    }
                    let buffer = Tensor::from_vec(buffer, param.shape().clone())?;
                    self.momentum_buffers.insert(name, buffer);
                }
                Some(buffer) => {
                    for ((p, &g), b) in p.iter_mut().zip(g).zip(buffer.data_mut()) {
                        let d = g + weight_decay * *p;
                        *b = momentum * *b + damped * d;
                        let update = if c.nesterov { d + momentum * *b } else { *b };
                        *p -= lr * update;
                    }
                }
            }
        }
        self.steps += 1;
        Ok(())
    }

    fn learning_rate(&self) -> f64 {
        self.config.lr
    }

    fn set_learning_rate(&mut self, lr: f64) -> Result<()> {
        check_learning_rate("Sgd::set_learning_rate", lr)?;
        self.config.lr = lr;
        Ok(())
    }

    fn state(&self) -> OptimizerState<T> {
        let mut tensors: Vec<(String, Tensor<T>)> = self
            .momentum_buffers
            .iter()
            .map(|(name, b)| (format!("{name}.momentum_buffer"), b.clone()))
            .collect();
        tensors.sort_by(|a, b| a.0.cmp(&b.0));
        OptimizerState {
            kind: "sgd".into(),
            steps: self.steps,
            tensors,
        }
    }

    fn load_state(&mut self, state: OptimizerState<T>) -> Result<()> {
        if state.kind != "sgd" {
            return Err(Error::Checkpoint {
                path: String::new(),
                message: format!(
                    "the optimiser state is of kind {:?}, not \"sgd\"",
                    state.kind
                ),
            });
        }
        let mut buffers = HashMap::new();
        for (name, t) in state.tensors {
            let (param, _) = split_state_name("sgd", &name, &["momentum_buffer"])?;
            buffers.insert(param.to_string(), t);
        }
        self.momentum_buffers = buffers;
        self.steps = state.steps;
        Ok(())
    }
}
