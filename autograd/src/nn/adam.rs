//! Adam and AdamW.

use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::float::Float;
use crate::nn::optim::{check_learning_rate, check_state_shape, pair_gradients, split_state_name};
use crate::nn::{Module, NamedGradients, Optimizer, OptimizerState};
use crate::tensor::Tensor;

/// Settings of [`Adam`]; [`Default`] gives PyTorch's `torch.optim.Adam` defaults and
/// [`AdamConfig::adamw`] those of `torch.optim.AdamW`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamConfig {
    /// The learning rate `η` (default 1e-3).
    pub lr: f64,
    /// The decay `β1` of the first-moment estimate (default 0.9).
    pub beta1: f64,
    /// The decay `β2` of the second-moment estimate (default 0.999).
    pub beta2: f64,
    /// The term `ε` added to the denominator (default 1e-8).
    pub eps: f64,
    /// The weight decay `λ` (default 0 for Adam, 0.01 for AdamW).
    pub weight_decay: f64,
    /// Whether the weight decay is decoupled from the gradient (AdamW) instead of added to it
    /// as an L2 penalty (Adam).
    pub decoupled_weight_decay: bool,
}

impl Default for AdamConfig {
    fn default() -> Self {
        AdamConfig {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            decoupled_weight_decay: false,
        }
    }
}

impl AdamConfig {
    /// PyTorch's `torch.optim.AdamW` defaults: as Adam with decoupled weight decay 0.01.
    pub fn adamw() -> Self {
        AdamConfig {
            weight_decay: 0.01,
            decoupled_weight_decay: true,
            ..AdamConfig::default()
        }
    }
}

/// Adam (Kingma & Ba, 2015) with PyTorch's semantics, and AdamW (Loshchilov & Hutter, 2019)
/// when the weight decay is decoupled.
///
/// For each parameter `p` with gradient `g`, at step `t` (counting from 1):
///
/// ```text
/// p ← p·(1 − η·λ)          (AdamW)      or      g ← g + λ·p       (Adam)
/// m ← β1·m + (1 − β1)·g
/// v ← β2·v + (1 − β2)·g²
/// p ← p − (η / (1 − β1ᵗ)) · m / (sqrt(v) / sqrt(1 − β2ᵗ) + ε)
/// ```
///
/// ```
/// use autograd::nn::{Adam, AdamConfig, Linear, NamedGradients, Optimizer};
/// use autograd::Tensor;
///
/// let mut layer = Linear::from_parts(Tensor::from_vec(vec![1.0f64], [1, 1])?, None)?;
/// let mut adam = Adam::new(AdamConfig { lr: 0.1, ..AdamConfig::default() })?;
/// let grads = NamedGradients::new(vec![("weight".into(), Tensor::from_vec(vec![3.0], [1, 1])?)]);
/// adam.step(&mut layer, &grads)?;
/// // The first step moves every parameter by about η, whatever the gradient's scale.
/// assert!((layer.weight.data()[0] - 0.9).abs() < 1e-8);
/// # Ok::<(), autograd::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Adam<T: Float> {
    config: AdamConfig,
    steps: u64,
    moments: HashMap<String, (Tensor<T>, Tensor<T>)>,
}

impl<T: Float> Adam<T> {
    /// Creates the optimiser.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] unless `0 ≤ β1, β2 < 1`, `ε > 0`, `λ ≥ 0` and the learning
    /// rate is non-negative, all finite.
    pub fn new(config: AdamConfig) -> Result<Self> {
        check_learning_rate("Adam::new", config.lr)?;
        for (arg, value) in [("beta1", config.beta1), ("beta2", config.beta2)] {
            if !(0.0..1.0).contains(&value) {
                return Err(Error::invalid(
                    "Adam::new",
                    arg,
                    value,
                    "it must lie in [0, 1)",
                ));
            }
        }
        if !(config.eps.is_finite() && config.eps > 0.0) {
            return Err(Error::invalid(
                "Adam::new",
                "eps",
                config.eps,
                "it must be finite and positive",
            ));
        }
        if !(config.weight_decay.is_finite() && config.weight_decay >= 0.0) {
            return Err(Error::invalid(
                "Adam::new",
                "weight_decay",
                config.weight_decay,
                "it must be finite and non-negative",
            ));
        }
        Ok(Adam {
            config,
            steps: 0,
            moments: HashMap::new(),
        })
    }

    /// The settings.
    pub fn config(&self) -> AdamConfig {
        self.config
    }

    fn kind(&self) -> &'static str {
        if self.config.decoupled_weight_decay {
            "adamw"
        } else {
            "adam"
        }
    }
}

impl<T: Float> Optimizer<T> for Adam<T> {
    fn step(&mut self, model: &mut dyn Module<T>, grads: &NamedGradients<T>) -> Result<()> {
        let pairs = pair_gradients("Adam::step", model, grads)?;
        for (name, param, _) in &pairs {
            if let Some((m, v)) = self.moments.get(name) {
                check_state_shape("Adam::step", name, m, param)?;
                check_state_shape("Adam::step", name, v, param)?;
            }
        }
        let c = self.config;
        let t = self.steps + 1;
        let bias1 = 1.0 - c.beta1.powf(t as f64);
        let bias2 = 1.0 - c.beta2.powf(t as f64);
        let step_size = T::from_f64(c.lr / bias1);
        let inv_sqrt_bias2 = T::from_f64(1.0 / bias2.sqrt());
        let (beta1, beta2, eps) = (
            T::from_f64(c.beta1),
            T::from_f64(c.beta2),
            T::from_f64(c.eps),
        );
        let (one_minus_beta1, one_minus_beta2) =
            (T::from_f64(1.0 - c.beta1), T::from_f64(1.0 - c.beta2));
        let (l2, shrink) = if c.decoupled_weight_decay {
            (T::zero(), T::from_f64(1.0 - c.lr * c.weight_decay))
        } else {
            (T::from_f64(c.weight_decay), T::one())
        };

        for (name, param, grad) in pairs {
            let (m, v) = self.moments.entry(name).or_insert_with(|| {
                (
                    Tensor::zeros(param.shape().clone()),
                    Tensor::zeros(param.shape().clone()),
                )
            });
            let (m, v) = (m.data_mut(), v.data_mut());
            for (((p, &g), m), v) in param
                .data_mut()
                .iter_mut()
                .zip(grad.data())
                .zip(m.iter_mut())
                .zip(v.iter_mut())
            {
                *p *= shrink;
                let g = g + l2 * *p;
                *m = beta1 * *m + one_minus_beta1 * g;
                *v = beta2 * *v + one_minus_beta2 * g * g;
                *p -= step_size * *m / (v.sqrt() * inv_sqrt_bias2 + eps);
            }
        }
        self.steps = t;
        Ok(())
    }

    fn learning_rate(&self) -> f64 {
        self.config.lr
    }

    fn set_learning_rate(&mut self, lr: f64) -> Result<()> {
        check_learning_rate("Adam::set_learning_rate", lr)?;
        self.config.lr = lr;
        Ok(())
    }

    fn state(&self) -> OptimizerState<T> {
        let mut tensors = Vec::new();
        for (name, (m, v)) in &self.moments {
            tensors.push((format!("{name}.exp_avg"), m.clone()));
            tensors.push((format!("{name}.exp_avg_sq"), v.clone()));
        }
        tensors.sort_by(|a, b| a.0.cmp(&b.0));
        OptimizerState {
            kind: self.kind().into(),
            steps: self.steps,
            tensors,
        }
    }

    fn load_state(&mut self, state: OptimizerState<T>) -> Result<()> {
        if state.kind != self.kind() {
            return Err(Error::Checkpoint {
                path: String::new(),
                message: format!(
                    "the optimiser state is of kind {:?}, not {:?}",
                    state.kind,
                    self.kind()
                ),
            });
        }
        let mut first = HashMap::new();
        let mut second = HashMap::new();
        for (name, t) in state.tensors {
            let (param, buffer) = split_state_name(self.kind(), &name, &["exp_avg", "exp_avg_sq"])?;
            let slot = if buffer == "exp_avg" {
                &mut first
            } else {
                &mut second
            };
            slot.insert(param.to_string(), t);
        }
        let mut moments = HashMap::new();
        for (param, m) in first {
            let Some(v) = second.remove(&param) else {
                return Err(Error::Checkpoint {
                    path: String::new(),
                    message: format!(
                        "the optimiser state has exp_avg but no exp_avg_sq for {param:?}"
                    ),
                });
            };
            moments.insert(param, (m, v));
        }
        if let Some(param) = second.keys().next() {
            return Err(Error::Checkpoint {
                path: String::new(),
                message: format!("the optimiser state has exp_avg_sq but no exp_avg for {param:?}"),
            });
        }
        self.moments = moments;
        self.steps = state.steps;
        Ok(())
    }
}
