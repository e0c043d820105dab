//! Gradient checks and hand-computed values for the elementwise ops.

mod common;

use autograd::{Tape, Tensor};
use common::{
    assert_close, away_from_zero, broadcast_pair, check_grad, plain, tensor, tensor_of, CASES,
};
use proptest::prelude::*;

/// Two tensors whose shapes broadcast together; the second has elements away from zero so it
/// can be a divisor.
fn broadcast_operands() -> impl Strategy<Value = (Tensor<f64>, Tensor<f64>)> {
    broadcast_pair().prop_flat_map(|(a, b)| (tensor_of(a, plain()), tensor_of(b, away_from_zero())))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn binary_ops_gradient((a, b) in broadcast_operands()) {
        let inputs = [a, b];
        check_grad("add", &inputs, |_, v| v[0].add(v[1]))?;
        check_grad("sub", &inputs, |_, v| v[0].sub(v[1]))?;
        check_grad("mul", &inputs, |_, v| v[0].mul(v[1]))?;
        check_grad("div", &inputs, |_, v| v[0].div(v[1]))?;
        // Operands swapped, so that the broadcast side changes place.
        let swapped = [inputs[1].clone(), inputs[0].clone()];
        check_grad("sub swapped", &swapped, |_, v| v[0].sub(v[1]))?;
        check_grad("mul swapped", &swapped, |_, v| v[0].mul(v[1]))?;
    }

    #[test]
    fn smooth_unary_ops_gradient(x in tensor(3, plain())) {
        let inputs = [x];
        check_grad("neg", &inputs, |_, v| v[0].neg())?;
        check_grad("exp", &inputs, |_, v| v[0].exp())?;
        check_grad("sigmoid", &inputs, |_, v| v[0].sigmoid())?;
        check_grad("tanh", &inputs, |_, v| v[0].tanh())?;
        check_grad("add_scalar", &inputs, |_, v| v[0].add_scalar(-1.5))?;
        check_grad("mul_scalar", &inputs, |_, v| v[0].mul_scalar(2.5))?;
    }

    #[test]
    fn positive_domain_ops_gradient(
        x in tensor(3, (0.2..3.0f64).boxed()),
        p in -2.0..3.0f64,
    ) {
        let inputs = [x];
        check_grad("log", &inputs, |_, v| v[0].log())?;
        check_grad("sqrt", &inputs, |_, v| v[0].sqrt())?;
        check_grad("powf", &inputs, move |_, v| v[0].powf(p))?;
    }

    #[test]
    fn kinked_ops_gradient(x in tensor(3, away_from_zero())) {
        let inputs = [x];
        check_grad("abs", &inputs, |_, v| v[0].abs())?;
        check_grad("relu", &inputs, |_, v| v[0].relu())?;
    }

    #[test]
    fn clamp_gradient(
        x in tensor(3, prop_oneof![-2.0..-0.6f64, -0.4..0.4f64, 0.6..2.0f64].boxed())
    ) {
        check_grad("clamp", &[x], |_, v| v[0].clamp(-0.5, 0.5))?;
    }

    #[test]
    fn powf_integer_exponent_on_negative_base(x in tensor(3, away_from_zero())) {
        check_grad("powf", &[x], |_, v| v[0].powf(3.0))?;
    }
}

#[test]
fn broadcast_add_sums_gradient_over_copies() {
    let tape = Tape::<f64>::new();
    let a = tape.param(Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [2, 3]).unwrap());
    let b = tape.param(Tensor::from_vec(vec![10.0, 20.0], [2, 1]).unwrap());
    let y = a.add(b).unwrap();
    assert_close(&y.value().to_vec(), &[11.0, 12.0, 13.0, 24.0, 25.0, 26.0]);
    let weights =
        tape.constant(Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [2, 3]).unwrap());
    let grads = tape
        .backward(y.mul(weights).unwrap().sum().unwrap())
        .unwrap();
    assert_close(
        &grads.get(a).unwrap().to_vec(),
        &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
    );
    assert_close(&grads.get(b).unwrap().to_vec(), &[6.0, 15.0]);
}

#[test]
fn div_values_and_gradient() {
    let tape = Tape::<f64>::new();
    let a = tape.param(Tensor::from_vec(vec![1.0, 6.0], [2]).unwrap());
    let b = tape.param(Tensor::scalar(2.0));
    let y = a.div(b).unwrap();
    assert_close(&y.value().to_vec(), &[0.5, 3.0]);
    let grads = tape.backward(y.sum().unwrap()).unwrap();
    // ∂/∂a = 1/b; ∂/∂b = -Σ a / b² = -7/4.
    assert_close(&grads.get(a).unwrap().to_vec(), &[0.5, 0.5]);
    assert_close(&grads.get(b).unwrap().to_vec(), &[-1.75]);
    assert_eq!(grads.get(b).unwrap().ndim(), 0);
}

#[test]
fn unary_values_and_gradient() {
    let tape = Tape::<f64>::new();
    let x = tape.param(Tensor::from_vec(vec![-1.0, 0.0, 4.0], [3]).unwrap());
    let y = x.clamp(-0.5, 2.0).unwrap();
    assert_close(&y.value().to_vec(), &[-0.5, 0.0, 2.0]);
    let grads = tape.backward(y.sum().unwrap()).unwrap();
    assert_close(&grads.get(x).unwrap().to_vec(), &[0.0, 1.0, 0.0]);

    let tape = Tape::<f64>::new();
    let x = tape.param(Tensor::from_vec(vec![-2.0, 0.0, 3.0], [3]).unwrap());
    let grads = tape.backward(x.abs().unwrap().sum().unwrap()).unwrap();
    // The subgradient of |x| at 0 is taken as 0.
    assert_close(&grads.get(x).unwrap().to_vec(), &[-1.0, 0.0, 1.0]);
}

#[test]
fn domain_errors_name_the_op() {
    let tape = Tape::<f64>::new();
    let x = tape.param(Tensor::from_vec(vec![1.0, -1.0], [2]).unwrap());
    for (name, result) in [("log", x.log()), ("sqrt", x.sqrt()), ("powf", x.powf(0.5))] {
        let text = result.unwrap_err().to_string();
        assert!(text.starts_with(name), "{text}");
        assert!(text.contains("-1"), "{text}");
    }
    assert!(x.clamp(1.0, -1.0).is_err());
    let y = tape.param(Tensor::zeros([3]));
    assert!(x
        .add(y)
        .unwrap_err()
        .to_string()
        .contains("cannot be broadcast"));
}

#[test]
fn non_finite_constants_are_rejected() {
    let tape = Tape::<f64>::new();
    let x = tape.param(Tensor::from_vec(vec![0.0, 1.0], [2]).unwrap());
    let add = x.add_scalar(f64::NAN).unwrap_err().to_string();
    assert!(
        add.starts_with("add_scalar: invalid c = NaN: the constant must be a finite number"),
        "{add}"
    );
    let mul = x.mul_scalar(f64::INFINITY).unwrap_err().to_string();
    assert!(mul.starts_with("mul_scalar: invalid c = inf"), "{mul}");
    let pow = x.powf(f64::NAN).unwrap_err().to_string();
    assert!(pow.starts_with("powf: invalid exponent = NaN"), "{pow}");
    let clamp = x.clamp(f64::NAN, 1.0).unwrap_err().to_string();
    assert!(clamp.contains("must not be NaN"), "{clamp}");
}

#[test]
fn div_rejects_zero_over_zero() {
    let tape = Tape::<f64>::new();
    let a = tape.constant(Tensor::from_vec(vec![1.0, 0.0, -2.0], [3]).unwrap());
    let b = tape.constant(Tensor::from_vec(vec![0.0], [1]).unwrap());
    let message = a.div(b).unwrap_err().to_string();
    assert!(message.starts_with("div:"), "{message}");
    assert!(message.contains("flat index 1"), "{message}");
}

#[test]
fn div_keeps_ieee_infinities_and_incoming_nan() {
    let tape = Tape::<f64>::new();
    let a = tape.constant(Tensor::from_vec(vec![1.0, -2.0], [2]).unwrap());
    let zero = tape.constant(Tensor::from_vec(vec![0.0], [1]).unwrap());
    let y = a.div(zero).unwrap().value().to_vec();
    assert_eq!(y, vec![f64::INFINITY, f64::NEG_INFINITY]);
    let nan = tape.constant(Tensor::from_vec(vec![f64::NAN, 1.0], [2]).unwrap());
    let y = nan.div(zero).unwrap().value().to_vec();
    assert!(y[0].is_nan(), "a NaN operand is passed through");
    assert_eq!(y[1], f64::INFINITY);
}

#[test]
fn div_rejects_zero_over_zero_beside_nan() {
    let tape = Tape::<f64>::new();
    let a = tape.constant(Tensor::from_vec(vec![f64::NAN, 0.0], [2]).unwrap());
    let zero = tape.constant(Tensor::from_vec(vec![0.0], [1]).unwrap());
    let message = a.div(zero).unwrap_err().to_string();
    assert!(message.contains("flat index 1"), "{message}");
    let inf = tape.constant(Tensor::from_vec(vec![f64::INFINITY, 1.0], [2]).unwrap());
    let nan = tape.constant(Tensor::from_vec(vec![1.0, f64::NAN], [2]).unwrap());
    let message = inf.div(inf.add(nan).unwrap()).unwrap_err().to_string();
    assert!(message.contains("flat index 0"), "{message}");
}
