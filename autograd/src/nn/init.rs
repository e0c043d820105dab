//! Seeded parameter initialisers.
//!
//! Kaiming and Xavier initialisers take the fan-in and fan-out explicitly through [`Fans`],
//! because the layout decides which axis is which: [`Fans::of_weight`] reads them from a
//! PyTorch-layout weight `[out, in, k…]`, and [`Linear`](crate::nn::Linear) (stored `[in, out]`)
//! passes its own.

use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::error::{Error, Result};
use crate::float::Float;
use crate::shape::Shape;
use crate::tensor::{allocate, Tensor};

/// The number of inputs and outputs that each weight connects, which sets the scale of the
/// Kaiming and Xavier initialisers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fans {
    /// Inputs feeding each output unit: `in · receptive field`.
    pub fan_in: usize,
    /// Outputs fed by each input unit: `out · receptive field`.
    pub fan_out: usize,
}

impl Fans {
    /// The fans of a weight in PyTorch's layout `[out, in, k1, k2, …]`:
    /// `fan_in = in · Π k`, `fan_out = out · Π k`.
    ///
    /// # Errors
    /// [`Error::Shape`] for fewer than two axes; [`Error::InvalidArgument`] if a fan overflows
    /// `usize`.
    pub fn of_weight(shape: &Shape) -> Result<Self> {
        let d = shape.dims();
        if d.len() < 2 {
            return Err(Error::shape(
                "Fans::of_weight",
                format!("a weight needs at least two axes [out, in, …], got {shape}"),
            ));
        }
        let overflow = || {
            Error::invalid(
                "Fans::of_weight",
                "shape",
                shape,
                "the fans overflow usize; use smaller axis lengths",
            )
        };
        let receptive = d[2..]
            .iter()
            .try_fold(1usize, |acc, &k| acc.checked_mul(k))
            .ok_or_else(overflow)?;
        Ok(Fans {
            fan_in: d[1].checked_mul(receptive).ok_or_else(overflow)?,
            fan_out: d[0].checked_mul(receptive).ok_or_else(overflow)?,
        })
    }
}

fn check_positive(op: &str, arg: &str, value: f64) -> Result<()> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(Error::invalid(
            op,
            arg,
            value,
            "it must be finite and positive",
        ))
    }
}

/// Draws from the normal distribution with mean 0 and standard deviation `std`, redrawing
/// every value beyond two standard deviations, as TensorFlow's `truncated_normal`.
///
/// The result lies in `[−2·std, 2·std]` and its standard deviation is about `0.88·std`.
///
/// # Errors
/// [`Error::InvalidArgument`] unless `std` is finite and positive, if no tensor of the shape can
/// exist (see [`Shape::check_size`]), or if the allocator cannot provide the memory.
pub fn truncated_normal<T: Float>(
    shape: impl Into<Shape>,
    std: f64,
    rng: &mut impl Rng,
) -> Result<Tensor<T>> {
    check_positive("truncated_normal", "std", std)?;
    let shape = shape.into();
    let (mut data, n) = allocate::<T>("truncated_normal", &shape)?;
    data.extend((0..n).map(|_| loop {
        let z: f64 = StandardNormal.sample(rng);
        if z.abs() <= 2.0 {
            break T::from_f64(z * std);
        }
    }));
    Tensor::from_vec(data, shape)
}

/// A tensor filled with `value`, typically a bias (the SoftSort paper's CNN uses 0.1).
///
/// # Panics
/// As [`Tensor::full`], if no tensor of the shape can exist or the memory cannot be allocated;
/// [`Tensor::try_full`] returns the error instead.
pub fn constant<T: Float>(shape: impl Into<Shape>, value: f64) -> Tensor<T> {
    Tensor::full(shape, T::from_f64(value))
}

/// Kaiming (He) uniform initialisation for ReLU networks: `U(−b, b)` with
/// `b = sqrt(6 / fan_in)`, so the variance is `2 / fan_in` (PyTorch's
/// `kaiming_uniform_(nonlinearity="relu")`).
///
/// # Errors
/// [`Error::InvalidArgument`] for a zero fan-in.
pub fn kaiming_uniform<T: Float>(
    shape: impl Into<Shape>,
    fans: Fans,
    rng: &mut impl Rng,
) -> Result<Tensor<T>> {
    check_positive("kaiming_uniform", "fan_in", fans.fan_in as f64)?;
    let bound = (6.0 / fans.fan_in as f64).sqrt();
    Tensor::uniform(shape, T::from_f64(-bound), T::from_f64(bound), rng)
}

/// Kaiming (He) normal initialisation for ReLU networks: `N(0, 2 / fan_in)` (PyTorch's
/// `kaiming_normal_(nonlinearity="relu")`).
///
/// # Errors
/// [`Error::InvalidArgument`] for a zero fan-in.
pub fn kaiming_normal<T: Float>(
    shape: impl Into<Shape>,
    fans: Fans,
    rng: &mut impl Rng,
) -> Result<Tensor<T>> {
    check_positive("kaiming_normal", "fan_in", fans.fan_in as f64)?;
    let std = (2.0 / fans.fan_in as f64).sqrt();
    Tensor::normal(shape, T::zero(), T::from_f64(std), rng)
}

/// Xavier (Glorot) uniform initialisation: `U(−b, b)` with
/// `b = sqrt(6 / (fan_in + fan_out))`.
///
/// # Errors
/// [`Error::InvalidArgument`] if both fans are zero.
pub fn xavier_uniform<T: Float>(
    shape: impl Into<Shape>,
    fans: Fans,
    rng: &mut impl Rng,
) -> Result<Tensor<T>> {
    let total = fans.fan_in as f64 + fans.fan_out as f64;
    check_positive("xavier_uniform", "fan_in + fan_out", total)?;
    let bound = (6.0 / total).sqrt();
    Tensor::uniform(shape, T::from_f64(-bound), T::from_f64(bound), rng)
}

/// Xavier (Glorot) normal initialisation: `N(0, 2 / (fan_in + fan_out))`.
///
/// # Errors
/// [`Error::InvalidArgument`] if both fans are zero.
pub fn xavier_normal<T: Float>(
    shape: impl Into<Shape>,
    fans: Fans,
    rng: &mut impl Rng,
) -> Result<Tensor<T>> {
    let total = fans.fan_in as f64 + fans.fan_out as f64;
    check_positive("xavier_normal", "fan_in + fan_out", total)?;
    let std = (2.0 / total).sqrt();
    Tensor::normal(shape, T::zero(), T::from_f64(std), rng)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn moments(t: &Tensor<f64>) -> (f64, f64) {
        let n = t.numel() as f64;
        let mean = t.data().iter().sum::<f64>() / n;
        let var = t.data().iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
        (mean, var.sqrt())
    }

    #[test]
    fn truncated_normal_stays_within_two_std() {
        let t: Tensor<f64> =
            truncated_normal([20_000], 0.1, &mut StdRng::seed_from_u64(1)).unwrap();
        assert!(t.data().iter().all(|x| x.abs() <= 0.2));
        let (mean, std) = moments(&t);
        assert!(mean.abs() < 0.003, "mean {mean}");
        // The standard deviation of a standard normal truncated to [−2, 2] is 0.8796.
        assert!((std - 0.08796).abs() < 0.002, "std {std}");
    }

    #[test]
    fn truncated_normal_is_seeded() {
        let a: Tensor<f32> = truncated_normal([50], 1.0, &mut StdRng::seed_from_u64(3)).unwrap();
        let b: Tensor<f32> = truncated_normal([50], 1.0, &mut StdRng::seed_from_u64(3)).unwrap();
        assert!(a.bit_eq(&b));
    }

    #[test]
    fn fans_follow_pytorch_layout() {
        let fans = Fans::of_weight(&Shape::new(&[64, 32, 5, 5])).unwrap();
        assert_eq!(
            fans,
            Fans {
                fan_in: 800,
                fan_out: 1600
            }
        );
        assert!(Fans::of_weight(&Shape::new(&[3])).is_err());
    }

    #[test]
    fn kaiming_and_xavier_have_stated_spread() {
        let fans = Fans {
            fan_in: 50,
            fan_out: 150,
        };
        let mut rng = StdRng::seed_from_u64(2);
        let n = 40_000;
        let cases: [(&str, Tensor<f64>, f64, f64); 4] = [
            (
                "kaiming_uniform",
                kaiming_uniform([n], fans, &mut rng).unwrap(),
                (2.0f64 / 50.0).sqrt(),
                (6.0f64 / 50.0).sqrt(),
            ),
            (
                "kaiming_normal",
                kaiming_normal([n], fans, &mut rng).unwrap(),
                (2.0f64 / 50.0).sqrt(),
                f64::INFINITY,
            ),
            (
                "xavier_uniform",
                xavier_uniform([n], fans, &mut rng).unwrap(),
                (2.0f64 / 200.0).sqrt(),
                (6.0f64 / 200.0).sqrt(),
            ),
            (
                "xavier_normal",
                xavier_normal([n], fans, &mut rng).unwrap(),
                (2.0f64 / 200.0).sqrt(),
                f64::INFINITY,
            ),
        ];
        for (name, t, expected_std, bound) in cases {
            let (mean, std) = moments(&t);
            assert!(
                mean.abs() < 0.01 * expected_std * 5.0,
                "{name}: mean {mean}"
            );
            assert!(
                (std / expected_std - 1.0).abs() < 0.02,
                "{name}: std {std}, expected {expected_std}"
            );
            assert!(
                t.data().iter().all(|x| x.abs() <= bound),
                "{name}: beyond {bound}"
            );
        }
    }

    #[test]
    fn zero_fans_are_rejected() {
        let mut rng = StdRng::seed_from_u64(0);
        let zero = Fans {
            fan_in: 0,
            fan_out: 0,
        };
        assert!(kaiming_uniform::<f32>([2], zero, &mut rng).is_err());
        assert!(xavier_normal::<f32>([2], zero, &mut rng).is_err());
        assert!(truncated_normal::<f32>([2], 0.0, &mut rng).is_err());
    }
}
