//! Elementwise ops: unary functions and the four broadcasting binary operators.

use crate::error::{Error, Result};
use crate::float::Float;
use crate::op::{BackwardArgs, Op};
use crate::parallel::{for_each_row, map1, map2, map3};
use crate::shape::{broadcast_shapes, broadcast_strides, Shape};
use crate::tape::Var;
use crate::tensor::{checked_len, Tensor};

/// Applies `f` elementwise to `a` and `b` broadcast against each other (NumPy rules).
///
/// # Errors
/// [`Error::Shape`] naming `op` if the shapes do not broadcast; [`Error::InvalidArgument`] if the
/// broadcast shape is too large to store (see [`Shape::check_size`]).
pub fn broadcast_zip<T: Float>(
    op: &str,
    a: &Tensor<T>,
    b: &Tensor<T>,
    f: impl Fn(T, T) -> T + Sync + Send,
) -> Result<Tensor<T>> {
    if a.shape() == b.shape() {
        return Tensor::from_vec(map2(a.data(), b.data(), f), a.shape().clone());
    }
    let shape = broadcast_shapes(op, a.shape(), b.shape())?;
    let mut out = vec![T::zero(); checked_len::<T>(op, &shape)?];
    if out.is_empty() {
        return Tensor::from_vec(out, shape);
    }
    if shape.ndim() == 0 {
        out[0] = f(a.data()[0], b.data()[0]);
        return Tensor::from_vec(out, shape);
    }
    let sa = broadcast_strides(a.shape(), &shape);
    let sb = broadcast_strides(b.shape(), &shape);
    let dims = shape.dims();
    let last = dims[dims.len() - 1];
    let (ad, bd) = (a.data(), b.data());
    let (la, lb) = (sa[dims.len() - 1], sb[dims.len() - 1]);
    for_each_row(&mut out, last, shape.numel(), |row, out_row| {
        let (mut oa, mut ob) = (0, 0);
        let mut rest = row;
        for axis in (0..dims.len() - 1).rev() {
            let i = rest % dims[axis];
            rest /= dims[axis];
            oa += i * sa[axis];
            ob += i * sb[axis];
        }
        for (j, o) in out_row.iter_mut().enumerate() {
            *o = f(ad[oa + j * la], bd[ob + j * lb]);
        }
    });
    Tensor::from_vec(out, shape)
}

/// Materialises `t` broadcast to `shape`.
///
/// # Errors
/// [`Error::Shape`] if `t` does not broadcast to `shape`; [`Error::InvalidArgument`] if `shape` is
/// too large to store (see [`Shape::check_size`]).
pub fn broadcast_tensor<T: Float>(op: &str, t: &Tensor<T>, shape: &Shape) -> Result<Tensor<T>> {
    let joined = broadcast_shapes(op, t.shape(), shape)?;
    if &joined != shape {
        return Err(Error::shape(
            op,
            format!("shape {} does not broadcast to {shape}", t.shape()),
        ));
    }
    checked_len::<T>(op, shape)?;
    broadcast_zip(op, t, &Tensor::try_zeros(shape.clone())?, |x, _| x)
}

#[derive(Clone, Copy, Debug)]
enum BinaryKind {
    Add,
    Sub,
    Mul,
    Div,
}

struct Binary(BinaryKind);

impl<T: Float> Op<T> for Binary {
    fn name(&self) -> &str {
        match self.0 {
            BinaryKind::Add => "add",
            BinaryKind::Sub => "sub",
            BinaryKind::Mul => "mul",
            BinaryKind::Div => "div",
        }
    }

    fn forward(&mut self, inputs: &[Tensor<T>]) -> Result<Tensor<T>> {
        let (a, b) = (&inputs[0], &inputs[1]);
        let name = <Self as Op<T>>::name(self);
        match self.0 {
            BinaryKind::Add => broadcast_zip(name, a, b, |x, y| x + y),
            BinaryKind::Sub => broadcast_zip(name, a, b, |x, y| x - y),
            BinaryKind::Mul => broadcast_zip(name, a, b, |x, y| x * y),
            BinaryKind::Div => {
                let y = broadcast_zip(name, a, b, |x, y| x / y)?;
                reject_new_nan(name, a, b, &y)?;
                Ok(y)
            }
        }
    }

    // The gradients come back in the output's shape; the tape sums them to each input's shape.
    fn backward(&self, args: &BackwardArgs<T>) -> Result<Vec<Option<Tensor<T>>>> {
        let (a, b, g) = (&args.inputs[0], &args.inputs[1], args.grad_output);
        let name = <Self as Op<T>>::name(self);
        let (ga, gb) = match self.0 {
            BinaryKind::Add => (Some(g.clone()), Some(g.clone())),
            BinaryKind::Sub => (
                Some(g.clone()),
                Some(Tensor::from_vec(map1(g.data(), |x| -x), g.shape().clone())?),
            ),
            BinaryKind::Mul => (
                args.needs_grad[0]
                    .then(|| broadcast_zip(name, g, b, |g, b| g * b))
                    .transpose()?,
                args.needs_grad[1]
                    .then(|| broadcast_zip(name, g, a, |g, a| g * a))
                    .transpose()?,
            ),
            BinaryKind::Div => {
                let ga = broadcast_zip(name, g, b, |g, b| g / b)?;
                let gb = if args.needs_grad[1] {
                    // ∂(a/b)/∂b = -a/b², so the gradient is -(g/b)·a/b, reusing g/b.
                    let t = broadcast_zip(name, &ga, a, |q, a| q * a)?;
                    Some(broadcast_zip(name, &t, b, |t, b| -t / b)?)
                } else {
                    None
                };
                (Some(ga), gb)
            }
        };
        Ok(vec![
            ga.filter(|_| args.needs_grad[0]),
            gb.filter(|_| args.needs_grad[1]),
        ])
    }
}

#[derive(Clone, Copy, Debug)]
enum UnaryKind {
    Neg,
    Exp,
    Log,
    Abs,
    Powf(f64),
    Sqrt,
    Relu,
    Sigmoid,
    Tanh,
    Clamp(f64, f64),
    AddScalar(f64),
    MulScalar(f64),
}

struct Unary(UnaryKind);

impl Unary {
    fn eval<T: Float>(&self, x: T) -> T {
        match self.0 {
            UnaryKind::Neg => -x,
            UnaryKind::Exp => x.exp(),
            UnaryKind::Log => x.ln(),
            UnaryKind::Abs => x.abs(),
            UnaryKind::Powf(p) => x.powf(T::from_f64(p)),
            UnaryKind::Sqrt => x.sqrt(),
            UnaryKind::Relu => {
                if x > T::zero() {
                    x
                } else {
                    T::zero()
                }
            }
            UnaryKind::Sigmoid => {
                // Split by sign so that exp never overflows.
                if x >= T::zero() {
                    T::one() / (T::one() + (-x).exp())
                } else {
                    let e = x.exp();
                    e / (T::one() + e)
                }
            }
            UnaryKind::Tanh => x.tanh(),
            UnaryKind::Clamp(lo, hi) => x.max(T::from_f64(lo)).min(T::from_f64(hi)),
            UnaryKind::AddScalar(c) => x + T::from_f64(c),
            UnaryKind::MulScalar(c) => x * T::from_f64(c),
        }
    }

    /// [`Unary::eval`] on every element; the cheap functions get their own loops, free of the
    /// per-element dispatch.
    fn eval_all<T: Float>(&self, x: &[T]) -> Vec<T> {
        match self.0 {
            UnaryKind::Neg => map1(x, |v| -v),
            UnaryKind::Abs => map1(x, |v| v.abs()),
            UnaryKind::Relu => map1(x, |v| if v > T::zero() { v } else { T::zero() }),
            UnaryKind::AddScalar(c) => {
                let c = T::from_f64(c);
                map1(x, move |v| v + c)
            }
            UnaryKind::MulScalar(c) => {
                let c = T::from_f64(c);
                map1(x, move |v| v * c)
            }
            _ => map1(x, |v| self.eval(v)),
        }
    }

    /// `∂y/∂x` from the input `x` and the output `y`.
    fn derivative<T: Float>(&self, x: T, y: T) -> T {
        let one = T::one();
        match self.0 {
            UnaryKind::Neg => -one,
            UnaryKind::Exp => y,
            UnaryKind::Log => one / x,
            // NOTE: the subgradient at 0 is taken as 0, as PyTorch does.
            UnaryKind::Abs => x.signum() * T::from_f64(if x == T::zero() { 0.0 } else { 1.0 }),
            UnaryKind::Powf(p) => T::from_f64(p) * x.powf(T::from_f64(p - 1.0)),
            UnaryKind::Sqrt => one / (y + y),
            UnaryKind::Relu => {
                if x > T::zero() {
                    one
                } else {
                    T::zero()
                }
            }
            UnaryKind::Sigmoid => y * (one - y),
            UnaryKind::Tanh => one - y * y,
            UnaryKind::Clamp(lo, hi) => {
                if x.as_f64() >= lo && x.as_f64() <= hi {
                    one
                } else {
                    T::zero()
                }
            }
            UnaryKind::AddScalar(_) => one,
            UnaryKind::MulScalar(c) => T::from_f64(c),
        }
    }
}

impl<T: Float> Op<T> for Unary {
    fn name(&self) -> &str {
        match self.0 {
            UnaryKind::Neg => "neg",
            UnaryKind::Exp => "exp",
            UnaryKind::Log => "log",
            UnaryKind::Abs => "abs",
            UnaryKind::Powf(_) => "powf",
            UnaryKind::Sqrt => "sqrt",
            UnaryKind::Relu => "relu",
            UnaryKind::Sigmoid => "sigmoid",
            UnaryKind::Tanh => "tanh",
            UnaryKind::Clamp(..) => "clamp",
            UnaryKind::AddScalar(_) => "add_scalar",
            UnaryKind::MulScalar(_) => "mul_scalar",
        }
    }

    fn forward(&mut self, inputs: &[Tensor<T>]) -> Result<Tensor<T>> {
        let x = &inputs[0];
        let y = Tensor::from_vec(self.eval_all(x.data()), x.shape().clone())?;
        if matches!(
            self.0,
            UnaryKind::Log | UnaryKind::Sqrt | UnaryKind::Powf(_)
        ) {
            let bad = x
                .data()
                .iter()
                .zip(y.data())
                .position(|(x, y)| y.is_nan() && !x.is_nan());
            if let Some(i) = bad {
                return Err(Error::invalid(
                    <Self as Op<T>>::name(self),
                    "input",
                    x.data()[i],
                    format!("element {i} is outside the domain (the result would be NaN); clamp the input first"),
                ));
            }
        }
        Ok(y)
    }

    fn backward(&self, args: &BackwardArgs<T>) -> Result<Vec<Option<Tensor<T>>>> {
        let (x, y, g) = (&args.inputs[0], args.output, args.grad_output);
        let data = match self.0 {
            // The cheap derivatives get their own loops, free of the per-element dispatch.
            UnaryKind::Relu => map2(x.data(), g.data(), |x, g| {
                g * if x > T::zero() { T::one() } else { T::zero() }
            }),
            UnaryKind::Neg => map1(g.data(), |g| g * -T::one()),
            UnaryKind::AddScalar(_) => map1(g.data(), |g| g * T::one()),
            UnaryKind::MulScalar(c) => {
                let c = T::from_f64(c);
                map1(g.data(), move |g| g * c)
            }
            _ => map3(x.data(), y.data(), g.data(), |x, y, g| {
                g * self.derivative(x, y)
            }),
        };
        Ok(vec![Some(Tensor::from_vec(data, x.shape().clone())?)])
    }
}

// The operator methods return `Result` because broadcasting can fail, so they cannot be the
// `std::ops` traits.
#[allow(clippy::should_implement_trait)]
impl<'t, T: Float> Var<'t, T> {
    fn binary(self, kind: BinaryKind, other: Var<'t, T>) -> Result<Var<'t, T>> {
        self.tape.apply(Binary(kind), &[self, other])
    }

    fn unary(self, kind: UnaryKind) -> Result<Var<'t, T>> {
        self.tape.apply(Unary(kind), &[self])
    }

    /// Elementwise `self + other` with broadcasting; `∂/∂self = ∂/∂other = 1`.
    pub fn add(self, other: Var<'t, T>) -> Result<Var<'t, T>> {
        self.binary(BinaryKind::Add, other)
    }

    /// Elementwise `self - other` with broadcasting; `∂/∂self = 1`, `∂/∂other = -1`.
    pub fn sub(self, other: Var<'t, T>) -> Result<Var<'t, T>> {
        self.binary(BinaryKind::Sub, other)
    }

    /// Elementwise `self · other` with broadcasting; `∂/∂self = other`, `∂/∂other = self`.
    pub fn mul(self, other: Var<'t, T>) -> Result<Var<'t, T>> {
        self.binary(BinaryKind::Mul, other)
    }

    /// Elementwise `self / other` with broadcasting; `∂/∂self = 1/other`,
    /// `∂/∂other = -self/other²`.
    ///
    /// # Errors
    /// A shape error for shapes that do not broadcast, and [`Error::InvalidArgument`] when a
    /// quotient is NaN although neither of its own operands is (`0/0` or `∞/∞`), even where
    /// other entries hold a NaN. A nonzero number over zero gives ±∞, as in IEEE 754.
    pub fn div(self, other: Var<'t, T>) -> Result<Var<'t, T>> {
        self.binary(BinaryKind::Div, other)
    }

    /// `-x`; the derivative is -1.
    pub fn neg(self) -> Result<Var<'t, T>> {
        self.unary(UnaryKind::Neg)
    }

    /// `eˣ`; the derivative is `eˣ`.
    pub fn exp(self) -> Result<Var<'t, T>> {
        self.unary(UnaryKind::Exp)
    }

    /// `ln x`; the derivative is `1/x`. Rejects negative elements.
    pub fn log(self) -> Result<Var<'t, T>> {
        self.unary(UnaryKind::Log)
    }

    /// `|x|`; the derivative is `sign(x)`, taken as 0 at 0.
    pub fn abs(self) -> Result<Var<'t, T>> {
        self.unary(UnaryKind::Abs)
    }

    /// `xᵖ`; the derivative is `p·xᵖ⁻¹`. Rejects a non-finite exponent and negative bases with a
    /// fractional exponent.
    pub fn powf(self, p: f64) -> Result<Var<'t, T>> {
        check_constant("powf", "exponent", p)?;
        self.unary(UnaryKind::Powf(p))
    }

    /// `√x`; the derivative is `1/(2√x)`. Rejects negative elements.
    pub fn sqrt(self) -> Result<Var<'t, T>> {
        self.unary(UnaryKind::Sqrt)
    }

    /// `max(x, 0)`; the derivative is 1 for `x > 0`, else 0.
    pub fn relu(self) -> Result<Var<'t, T>> {
        self.unary(UnaryKind::Relu)
    }

    /// `σ(x) = 1/(1 + e⁻ˣ)`; the derivative is `σ(x)(1 - σ(x))`.
    pub fn sigmoid(self) -> Result<Var<'t, T>> {
        self.unary(UnaryKind::Sigmoid)
    }

    /// `tanh x`; the derivative is `1 - tanh² x`.
    pub fn tanh(self) -> Result<Var<'t, T>> {
        self.unary(UnaryKind::Tanh)
    }

    /// `min(max(x, low), high)`; the derivative is 1 inside `[low, high]`, else 0.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `low > high` or either bound is NaN.
    pub fn clamp(self, low: f64, high: f64) -> Result<Var<'t, T>> {
        if low.is_nan() || high.is_nan() || low > high {
            return Err(Error::invalid(
                "clamp",
                "(low, high)",
                format!("({low}, {high})"),
                "the bounds must not be NaN and low must be <= high",
            ));
        }
        self.unary(UnaryKind::Clamp(low, high))
    }

    /// `x + c` for a finite constant `c`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `c` is NaN or infinite.
    pub fn add_scalar(self, c: f64) -> Result<Var<'t, T>> {
        check_constant("add_scalar", "c", c)?;
        self.unary(UnaryKind::AddScalar(c))
    }

    /// `c · x` for a finite constant `c`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `c` is NaN or infinite.
    pub fn mul_scalar(self, c: f64) -> Result<Var<'t, T>> {
        check_constant("mul_scalar", "c", c)?;
        self.unary(UnaryKind::MulScalar(c))
    }
}

/// Rejects a NaN or infinite constant argument, which would fill the output with NaN or inf.
fn check_constant(op: &str, arg: &str, value: f64) -> Result<()> {
    if value.is_finite() {
        Ok(())
    } else {
        Err(Error::invalid(
            op,
            arg,
            value,
            "the constant must be a finite number",
        ))
    }
}

/// Rejects a quotient that is NaN where neither of its two operands is NaN: `0/0` or `∞/∞`.
/// A NaN operand elsewhere in the tensors does not excuse it.
fn reject_new_nan<T: Float>(name: &str, a: &Tensor<T>, b: &Tensor<T>, y: &Tensor<T>) -> Result<()> {
    if !y.data().iter().any(|v| v.is_nan()) {
        return Ok(());
    }
    // Only on the rare path with a NaN: mark the quotients whose own operands hold no NaN.
    let fresh = broadcast_zip(name, a, b, |x, d| {
        if (x / d).is_nan() && !x.is_nan() && !d.is_nan() {
            T::one()
        } else {
            T::zero()
        }
    })?;
    let Some(i) = fresh.data().iter().position(|&v| v == T::one()) else {
        return Ok(()); // every NaN came in with its operands
    };
    Err(Error::invalid(
        name,
        "quotient",
        format!("NaN at flat index {i}"),
        "0/0 or ∞/∞ gives NaN although neither operand is NaN; add a small positive constant to \
         the divisor or mask its zero entries",
    ))
}
