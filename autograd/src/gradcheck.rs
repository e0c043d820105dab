//! A finite-difference gradient checker, public so that crates adding ops through
//! [`Op`](crate::Op) can prove their backward.

use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};

use crate::error::Error;
use crate::tape::{Tape, Var};
use crate::tensor::Tensor;

/// Settings of a gradient check; the defaults are PyTorch gradcheck's.
///
/// An analytic value `a` passes against the numeric value `n` when `|a - n| <= atol + rtol·|n|`.
#[derive(Clone, Debug)]
pub struct GradCheck {
    /// Step of the central differences `(f(x + ε) - f(x - ε)) / 2ε`.
    pub eps: f64,
    /// Absolute tolerance.
    pub atol: f64,
    /// Relative tolerance.
    pub rtol: f64,
    /// Largest Jacobian (outputs × inputs) that is checked entry by entry; larger functions are
    /// checked along random directions.
    pub max_jacobian_entries: usize,
    /// Number of random directions checked for large functions.
    pub directions: usize,
    /// Seed of the random cotangent and directions.
    pub seed: u64,
}

impl Default for GradCheck {
    fn default() -> Self {
        GradCheck {
            eps: 1e-6,
            atol: 1e-5,
            rtol: 1e-3,
            max_jacobian_entries: 20_000,
            directions: 8,
            seed: 0,
        }
    }
}

/// What a passing check compared.
#[derive(Clone, Debug, PartialEq)]
pub struct GradCheckReport {
    /// Number of (analytic, numeric) pairs compared.
    pub compared: usize,
    /// Largest `|analytic - numeric|` seen.
    pub max_abs_error: f64,
    /// Whether the full Jacobian was compared (otherwise random directions).
    pub full_jacobian: bool,
}

/// Why a gradient check failed.
#[derive(Debug, thiserror::Error)]
pub enum GradCheckError {
    /// The function itself failed.
    #[error("gradcheck {op}: evaluating the function failed: {source}")]
    Eval {
        /// The checked op.
        op: String,
        /// The function's error.
        source: Error,
    },
    /// An analytic derivative disagrees with its finite-difference estimate.
    #[error("gradcheck {op}: {location}: numeric {numeric:.9e}, analytic {analytic:.9e} (|diff| {diff:.3e} > atol {atol:e} + rtol {rtol:e} · |numeric|)")]
    Mismatch {
        /// The checked op.
        op: String,
        /// Which entry: input, element and output index, or the direction.
        location: String,
        /// The finite-difference estimate.
        numeric: f64,
        /// The value from backward.
        analytic: f64,
        /// Their absolute difference.
        diff: f64,
        /// The absolute tolerance used.
        atol: f64,
        /// The relative tolerance used.
        rtol: f64,
    },
}

/// The function under test: it records its computation on the given tape from the given leaves
/// and returns the output (of any shape).
pub trait CheckedFn:
    for<'t> Fn(&'t Tape<f64>, &[Var<'t, f64>]) -> crate::Result<Var<'t, f64>>
{
}

impl<F> CheckedFn for F where
    F: for<'t> Fn(&'t Tape<f64>, &[Var<'t, f64>]) -> crate::Result<Var<'t, f64>>
{
}

impl GradCheck {
    /// Checks the gradient of `f` at `inputs` against central finite differences in `f64`.
    ///
    /// Small functions are checked over the whole Jacobian; larger ones through a fixed random
    /// cotangent `r` and random input directions `d`, comparing `∇⟨r, f⟩ · d` with
    /// `(⟨r, f(x + εd)⟩ - ⟨r, f(x - εd)⟩) / 2ε`.
    ///
    /// ```
    /// use autograd::{GradCheck, Tensor};
    ///
    /// let x = Tensor::from_vec(vec![0.3, -1.2, 2.0], [3])?;
    /// let report = GradCheck::default()
    ///     .check("tanh", &[x], |_, v| v[0].tanh())
    ///     .expect("tanh's backward matches finite differences");
    /// assert!(report.full_jacobian);
    /// # Ok::<(), autograd::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`GradCheckError::Mismatch`] for the worst disagreeing entry, or
    /// [`GradCheckError::Eval`] if `f` fails.
    pub fn check(
        &self,
        op: &str,
        inputs: &[Tensor<f64>],
        f: impl CheckedFn,
    ) -> Result<GradCheckReport, GradCheckError> {
        let eval_err = |source| GradCheckError::Eval {
            op: op.to_string(),
            source,
        };
        let output = evaluate(inputs, &f).map_err(eval_err)?;
        let in_total: usize = inputs.iter().map(Tensor::numel).sum();
        if output.numel() * in_total <= self.max_jacobian_entries {
            self.check_jacobian(op, inputs, &f, &output)
        } else {
            self.check_directions(op, inputs, &f, &output)
        }
    }

    fn check_jacobian(
        &self,
        op: &str,
        inputs: &[Tensor<f64>],
        f: &impl CheckedFn,
        output: &Tensor<f64>,
    ) -> Result<GradCheckReport, GradCheckError> {
        let eval_err = |source| GradCheckError::Eval {
            op: op.to_string(),
            source,
        };
        let mut worst: Option<(f64, String, f64, f64)> = None;
        let mut report = GradCheckReport {
            compared: 0,
            max_abs_error: 0.0,
            full_jacobian: true,
        };
        for k in 0..output.numel() {
            let mut cotangent = vec![0.0; output.numel()];
            cotangent[k] = 1.0;
            let cotangent =
                Tensor::from_vec(cotangent, output.shape().clone()).map_err(eval_err)?;
            let analytic = analytic_vjp(inputs, f, &cotangent).map_err(eval_err)?;
            for (i, input) in inputs.iter().enumerate() {
                for e in 0..input.numel() {
                    let numeric = self.numeric_column(inputs, f, i, e, k).map_err(eval_err)?;
                    let a = analytic[i].data()[e];
                    let location = format!("input {i}, element {e}, output element {k}");
                    self.compare(&mut report, &mut worst, a, numeric, location);
                }
            }
        }
        self.finish(op, report, worst)
    }

    fn check_directions(
        &self,
        op: &str,
        inputs: &[Tensor<f64>],
        f: &impl CheckedFn,
        output: &Tensor<f64>,
    ) -> Result<GradCheckReport, GradCheckError> {
        let eval_err = |source| GradCheckError::Eval {
            op: op.to_string(),
            source,
        };
        let mut rng = StdRng::seed_from_u64(self.seed);
        let r: Vec<f64> = (0..output.numel())
            .map(|_| StandardNormal.sample(&mut rng))
            .collect();
        let cotangent = Tensor::from_vec(r.clone(), output.shape().clone()).map_err(eval_err)?;
        let analytic = analytic_vjp(inputs, f, &cotangent).map_err(eval_err)?;
        let mut worst = None;
        let mut report = GradCheckReport {
            compared: 0,
            max_abs_error: 0.0,
            full_jacobian: false,
        };
        for direction in 0..self.directions {
            let d: Vec<Vec<f64>> = inputs
                .iter()
                .map(|t| {
                    (0..t.numel())
                        .map(|_| StandardNormal.sample(&mut rng))
                        .collect()
                })
                .collect();
            let a: f64 = analytic
                .iter()
                .zip(&d)
                .map(|(g, d)| g.data().iter().zip(d).map(|(g, d)| g * d).sum::<f64>())
                .sum();
            let shifted = |sign: f64| -> crate::Result<f64> {
                let moved: Vec<Tensor<f64>> = inputs
                    .iter()
                    .zip(&d)
                    .map(|(t, d)| {
                        let data = t
                            .data()
                            .iter()
                            .zip(d)
                            .map(|(x, d)| x + sign * self.eps * d)
                            .collect();
                        Tensor::from_vec(data, t.shape().clone())
                    })
                    .collect::<crate::Result<_>>()?;
                let out = evaluate(&moved, f)?;
                Ok(out.data().iter().zip(&r).map(|(y, r)| y * r).sum())
            };
            let numeric = (shifted(1.0).map_err(eval_err)? - shifted(-1.0).map_err(eval_err)?)
                / (2.0 * self.eps);
            self.compare(
                &mut report,
                &mut worst,
                a,
                numeric,
                format!("random direction {direction}"),
            );
        }
        self.finish(op, report, worst)
    }

    /// `∂output[k]/∂inputs[i][e]` by central differences.
    fn numeric_column(
        &self,
        inputs: &[Tensor<f64>],
        f: &impl CheckedFn,
        i: usize,
        e: usize,
        k: usize,
    ) -> crate::Result<f64> {
        let mut moved = inputs.to_vec();
        moved[i].data_mut()[e] += self.eps;
        let plus = evaluate(&moved, f)?.data()[k];
        moved[i].data_mut()[e] -= 2.0 * self.eps;
        let minus = evaluate(&moved, f)?.data()[k];
        Ok((plus - minus) / (2.0 * self.eps))
    }

    fn compare(
        &self,
        report: &mut GradCheckReport,
        worst: &mut Option<(f64, String, f64, f64)>,
        analytic: f64,
        numeric: f64,
        location: String,
    ) {
        report.compared += 1;
        let diff = (analytic - numeric).abs();
        let diff = if diff.is_nan() { f64::INFINITY } else { diff };
        report.max_abs_error = report.max_abs_error.max(diff);
        let excess = diff - (self.atol + self.rtol * numeric.abs());
        if excess > 0.0 && worst.as_ref().is_none_or(|w| excess > w.0) {
            *worst = Some((excess, location, numeric, analytic));
        }
    }

    fn finish(
        &self,
        op: &str,
        report: GradCheckReport,
        worst: Option<(f64, String, f64, f64)>,
    ) -> Result<GradCheckReport, GradCheckError> {
        match worst {
            None => Ok(report),
            Some((_, location, numeric, analytic)) => Err(GradCheckError::Mismatch {
                op: op.to_string(),
                location,
                numeric,
                analytic,
                diff: (numeric - analytic).abs(),
                atol: self.atol,
                rtol: self.rtol,
            }),
        }
    }
}

fn evaluate(inputs: &[Tensor<f64>], f: &impl CheckedFn) -> crate::Result<Tensor<f64>> {
    let tape = Tape::new();
    let vars: Vec<Var<f64>> = inputs.iter().map(|t| tape.constant(t.clone())).collect();
    Ok(f(&tape, &vars)?.value())
}

/// `cotangentᵀ · J` for each input, by one backward pass.
fn analytic_vjp(
    inputs: &[Tensor<f64>],
    f: &impl CheckedFn,
    cotangent: &Tensor<f64>,
) -> crate::Result<Vec<Tensor<f64>>> {
    let tape = Tape::new();
    let vars: Vec<Var<f64>> = inputs.iter().map(|t| tape.param(t.clone())).collect();
    let out = f(&tape, &vars)?;
    if !out.requires_grad() {
        // The output does not depend on any input: every derivative is zero.
        return Ok(inputs
            .iter()
            .map(|t| Tensor::zeros(t.shape().clone()))
            .collect());
    }
    let weights = tape.constant(cotangent.clone());
    let loss = out.mul(weights)?.sum()?;
    let grads = tape.backward(loss)?;
    vars.iter().map(|&v| grads.get(v).cloned()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BackwardArgs, Op};

    /// An op whose backward is off by a factor of two, to prove that the checker can fail.
    struct WrongSquare;

    impl Op<f64> for WrongSquare {
        fn name(&self) -> &str {
            "wrong_square"
        }

        fn forward(&mut self, inputs: &[Tensor<f64>]) -> crate::Result<Tensor<f64>> {
            Ok(inputs[0].map(|x| x * x))
        }

        fn backward(&self, args: &BackwardArgs<f64>) -> crate::Result<Vec<Option<Tensor<f64>>>> {
            let g = args.inputs[0]
                .data()
                .iter()
                .zip(args.grad_output.data())
                .map(|(x, g)| x * g)
                .collect();
            Ok(vec![Some(Tensor::from_vec(
                g,
                args.inputs[0].shape().clone(),
            )?)])
        }
    }

    #[test]
    fn wrong_backward_is_reported() {
        let x = Tensor::from_vec(vec![1.0, 2.0], [2]).unwrap();
        let err = GradCheck::default()
            .check("wrong_square", &[x], |t, v| t.apply(WrongSquare, &[v[0]]))
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("wrong_square"), "{text}");
        assert!(text.contains("numeric 4.0"), "{text}");
        assert!(text.contains("analytic 2.0"), "{text}");
    }

    #[test]
    fn wrong_backward_is_reported_along_directions() {
        let x = Tensor::from_vec(vec![1.0, 2.0], [2]).unwrap();
        let check = GradCheck {
            max_jacobian_entries: 0,
            ..GradCheck::default()
        };
        let err = check
            .check("wrong_square", &[x], |t, v| t.apply(WrongSquare, &[v[0]]))
            .unwrap_err();
        assert!(err.to_string().contains("random direction"), "{err}");
    }

    #[test]
    fn correct_backward_passes_both_modes() {
        let x = Tensor::from_vec(vec![0.5, -1.5, 2.5], [3]).unwrap();
        let full = GradCheck::default()
            .check("exp", std::slice::from_ref(&x), |_, v| v[0].exp())
            .unwrap();
        assert!(full.full_jacobian);
        assert_eq!(full.compared, 9);
        let directional = GradCheck {
            max_jacobian_entries: 0,
            ..GradCheck::default()
        };
        let report = directional.check("exp", &[x], |_, v| v[0].exp()).unwrap();
        assert!(!report.full_jacobian);
        assert_eq!(report.compared, 8);
    }
}
