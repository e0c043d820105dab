//! The two networks of the quantile experiment, saved and restored as one model.

use autograd::nn::{self, Module, NamedGradients, Params};
use autograd::{Tensor, Var};
use rand::Rng;

use crate::cnn::{CnnInit, ScoreCnn};
use crate::error::{Error, Result};

/// The parameter-name prefix of the score network.
pub const SCORE_SCOPE: &str = "score";
/// The parameter-name prefix of the value network.
pub const VALUE_SCOPE: &str = "value";

/// The score network and the value network: two copies of [`ScoreCnn`], each mapping an
/// image to one number. Their parameters are named `score.*` and `value.*`, so one
/// safetensors checkpoint contains both.
#[derive(Clone, Debug)]
pub struct QuantileModel {
    /// Maps each image to the sorting score `s_j`.
    pub scorer: ScoreCnn,
    /// Maps each image to the predicted value `v_j = number_j / 10⁴`.
    pub valuer: ScoreCnn,
}

impl QuantileModel {
    /// Builds both networks for `rows × cols` images, the score network first, drawing from
    /// `rng`.
    ///
    /// # Errors
    /// As [`ScoreCnn::new`].
    pub fn new(rows: usize, cols: usize, init: CnnInit, rng: &mut impl Rng) -> Result<Self> {
        let scorer = ScoreCnn::new(rows, cols, init, rng)?;
        let valuer = ScoreCnn::new(rows, cols, init, rng)?;
        Ok(QuantileModel { scorer, valuer })
    }

    /// Computes the scores `[B]` and values `[B]` of images `[B, 1, rows, cols]` on the
    /// tape of `params`, which must record this model.
    ///
    /// # Errors
    /// As [`ScoreCnn::forward`].
    pub fn forward<'t>(
        &self,
        params: &Params<'t, f32>,
        images: Var<'t, f32>,
    ) -> Result<(Var<'t, f32>, Var<'t, f32>)> {
        let scores = self.scorer.forward(&params.scope(SCORE_SCOPE), images)?;
        let values = self.valuer.forward(&params.scope(VALUE_SCOPE), images)?;
        Ok((scores, values))
    }

    /// Computes the scores and values of `images` without recording gradients.
    ///
    /// # Errors
    /// As [`ScoreCnn::forward`].
    pub fn predict(&self, images: &Tensor<f32>) -> Result<(Tensor<f32>, Tensor<f32>)> {
        Ok((self.scorer.scores(images)?, self.valuer.scores(images)?))
    }
}

impl Module<f32> for QuantileModel {
    fn named_parameters(&self) -> Vec<(String, &Tensor<f32>)> {
        let mut all = nn::scoped(SCORE_SCOPE, self.scorer.named_parameters());
        all.extend(nn::scoped(VALUE_SCOPE, self.valuer.named_parameters()));
        all
    }

    fn named_parameters_mut(&mut self) -> Vec<(String, &mut Tensor<f32>)> {
        let mut all = nn::scoped(SCORE_SCOPE, self.scorer.named_parameters_mut());
        all.extend(nn::scoped(VALUE_SCOPE, self.valuer.named_parameters_mut()));
        all
    }
}

/// Splits the gradients of a [`QuantileModel`] into those of the score network and those of
/// the value network, with the `score.` and `value.` prefixes removed, so that each network
/// can take a step with its own optimiser.
///
/// # Errors
/// [`Error::InvalidArgument`] if a name has neither prefix.
pub fn split_gradients(
    grads: &NamedGradients<f32>,
) -> Result<(NamedGradients<f32>, NamedGradients<f32>)> {
    let score_prefix = format!("{SCORE_SCOPE}.");
    let value_prefix = format!("{VALUE_SCOPE}.");
    let mut score = Vec::new();
    let mut value = Vec::new();
    for (name, grad) in grads.iter() {
        if let Some(rest) = name.strip_prefix(&score_prefix) {
            score.push((rest.to_string(), grad.clone()));
        } else if let Some(rest) = name.strip_prefix(&value_prefix) {
            value.push((rest.to_string(), grad.clone()));
        } else {
            return Err(Error::invalid(
                "split_gradients",
                "parameter name",
                name,
                format!("expected a name starting with {score_prefix:?} or {value_prefix:?}"),
            ));
        }
    }
    Ok((NamedGradients::new(score), NamedGradients::new(value)))
}
