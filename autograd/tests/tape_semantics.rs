//! Tape-level behaviour: every op delivers a gradient to every tracked input, a small network
//! passes the gradient check, misuse fails with the right error, and no_grad, detach and
//! gradient accumulation behave as documented.

mod common;

use autograd::{
    concat, stack, BackwardArgs, Error, GradCheck, IndexTensor, Op, Result, Tape, Tensor, Var,
};
use rand::rngs::StdRng;
use rand::SeedableRng;

type Case = (
    &'static str,
    Vec<Tensor<f64>>,
    Box<dyn for<'t> Fn(&'t Tape<f64>, &[Var<'t, f64>]) -> Result<Var<'t, f64>>>,
);

fn seq(dims: &[usize], offset: f64) -> Tensor<f64> {
    let n: usize = dims.iter().product();
    Tensor::from_vec((0..n).map(|i| offset + 0.25 * i as f64).collect(), dims).unwrap()
}

/// Builds one case per op of the engine, each with tracked inputs only.
fn every_op() -> Vec<Case> {
    let index = IndexTensor::from_vec(vec![1, 0, 1, 1, 0, 0], [2, 3]).unwrap();
    vec![
        (
            "add",
            vec![seq(&[2, 3], 0.5), seq(&[3], 1.0)],
            Box::new(|_, v| v[0].add(v[1])),
        ),
        (
            "sub",
            vec![seq(&[2, 1], 0.5), seq(&[3], 1.0)],
            Box::new(|_, v| v[0].sub(v[1])),
        ),
        (
            "mul",
            vec![seq(&[1, 3], 0.5), seq(&[2, 1], 1.0)],
            Box::new(|_, v| v[0].mul(v[1])),
        ),
        (
            "div",
            vec![seq(&[2, 3], 0.5), seq(&[], 1.0)],
            Box::new(|_, v| v[0].div(v[1])),
        ),
        ("neg", vec![seq(&[2, 3], -0.5)], Box::new(|_, v| v[0].neg())),
        ("exp", vec![seq(&[2, 3], -0.5)], Box::new(|_, v| v[0].exp())),
        ("log", vec![seq(&[2, 3], 0.5)], Box::new(|_, v| v[0].log())),
        ("abs", vec![seq(&[2, 3], -0.6)], Box::new(|_, v| v[0].abs())),
        (
            "powf",
            vec![seq(&[2, 3], 0.5)],
            Box::new(|_, v| v[0].powf(1.5)),
        ),
        (
            "sqrt",
            vec![seq(&[2, 3], 0.5)],
            Box::new(|_, v| v[0].sqrt()),
        ),
        (
            "relu",
            vec![seq(&[2, 3], -0.6)],
            Box::new(|_, v| v[0].relu()),
        ),
        (
            "sigmoid",
            vec![seq(&[2, 3], -0.6)],
            Box::new(|_, v| v[0].sigmoid()),
        ),
        (
            "tanh",
            vec![seq(&[2, 3], -0.6)],
            Box::new(|_, v| v[0].tanh()),
        ),
        (
            "clamp",
            vec![seq(&[2, 3], -0.6)],
            Box::new(|_, v| v[0].clamp(-0.3, 0.3)),
        ),
        (
            "add_scalar",
            vec![seq(&[2, 3], 0.0)],
            Box::new(|_, v| v[0].add_scalar(2.0)),
        ),
        (
            "mul_scalar",
            vec![seq(&[2, 3], 0.0)],
            Box::new(|_, v| v[0].mul_scalar(2.0)),
        ),
        ("sum", vec![seq(&[2, 3], 0.0)], Box::new(|_, v| v[0].sum())),
        (
            "sum_axes",
            vec![seq(&[2, 3], 0.0)],
            Box::new(|_, v| v[0].sum_axes(&[0], true)),
        ),
        (
            "mean",
            vec![seq(&[2, 3], 0.0)],
            Box::new(|_, v| v[0].mean()),
        ),
        (
            "mean_axes",
            vec![seq(&[2, 3], 0.0)],
            Box::new(|_, v| v[0].mean_axes(&[-1], false)),
        ),
        (
            "max_axes",
            vec![seq(&[2, 3], 0.0)],
            Box::new(|_, v| v[0].max_axes(&[1], false)),
        ),
        (
            "min_axes",
            vec![seq(&[2, 3], 0.0)],
            Box::new(|_, v| v[0].min_axes(&[], true)),
        ),
        (
            "matmul",
            vec![seq(&[2, 3], 0.0), seq(&[3, 2], 0.1)],
            Box::new(|_, v| v[0].matmul(v[1])),
        ),
        (
            "matmul batched",
            vec![seq(&[2, 2, 3], 0.0), seq(&[2, 3, 2], 0.1)],
            Box::new(|_, v| v[0].matmul(v[1])),
        ),
        (
            "matmul left batched",
            vec![seq(&[2, 2, 3], 0.0), seq(&[3, 2], 0.1)],
            Box::new(|_, v| v[0].matmul(v[1])),
        ),
        (
            "matmul right batched",
            vec![seq(&[2, 3], 0.0), seq(&[2, 3, 2], 0.1)],
            Box::new(|_, v| v[0].matmul(v[1])),
        ),
        (
            "reshape",
            vec![seq(&[2, 3], 0.0)],
            Box::new(|_, v| v[0].reshape([3, 2])),
        ),
        (
            "flatten_from",
            vec![seq(&[2, 3, 1], 0.0)],
            Box::new(|_, v| v[0].flatten_from(0)),
        ),
        (
            "unsqueeze",
            vec![seq(&[2, 3], 0.0)],
            Box::new(|_, v| v[0].unsqueeze(1)),
        ),
        (
            "squeeze",
            vec![seq(&[2, 1, 3], 0.0)],
            Box::new(|_, v| v[0].squeeze(1)),
        ),
        (
            "permute",
            vec![seq(&[2, 3, 2], 0.0)],
            Box::new(|_, v| v[0].permute(&[2, 0, 1])),
        ),
        (
            "transpose",
            vec![seq(&[2, 3], 0.0)],
            Box::new(|_, v| v[0].transpose(0, 1)),
        ),
        (
            "broadcast_to",
            vec![seq(&[3, 1], 0.0)],
            Box::new(|_, v| v[0].broadcast_to([2, 3, 4])),
        ),
        (
            "slice",
            vec![seq(&[2, 3], 0.0)],
            Box::new(|_, v| v[0].slice(1, 1, 2)),
        ),
        (
            "concat",
            vec![seq(&[2, 3], 0.0), seq(&[1, 3], 1.0)],
            Box::new(|_, v| concat(v, 0)),
        ),
        (
            "stack",
            vec![seq(&[2, 3], 0.0), seq(&[2, 3], 1.0)],
            Box::new(|_, v| stack(v, 1)),
        ),
        (
            "index_select",
            vec![seq(&[2, 3], 0.0)],
            Box::new(|_, v| v[0].index_select(1, &[2, 2, 0])),
        ),
        (
            "gather",
            vec![seq(&[2, 3], 0.0)],
            Box::new(move |_, v| v[0].gather(0, &index)),
        ),
    ]
}

#[test]
fn every_op_returns_gradient_for_each_input() {
    for (name, inputs, f) in every_op() {
        let tape = Tape::new();
        let vars: Vec<Var<f64>> = inputs.iter().map(|t| tape.param(t.clone())).collect();
        let out = f(&tape, &vars).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(out.requires_grad(), "{name}: the output is not tracked");
        let weights = tape.constant(seq(out.shape().dims(), 1.0));
        let loss = out.mul(weights).unwrap().sum().unwrap();
        let grads = tape
            .backward(loss)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        for (k, (var, input)) in vars.iter().zip(&inputs).enumerate() {
            let grad = grads
                .get(*var)
                .unwrap_or_else(|e| panic!("{name}: input {k} has no gradient: {e}"));
            assert_eq!(grad.shape(), input.shape(), "{name}: input {k}");
            assert!(
                grad.first_non_finite().is_none(),
                "{name}: input {k}: {grad}"
            );
        }
    }
}

#[test]
fn every_op_passes_gradcheck_on_fixed_inputs() {
    for (name, inputs, f) in every_op() {
        let result = GradCheck::default().check(name, &inputs, &f);
        assert!(result.is_ok(), "{}", result.unwrap_err());
    }
}

#[test]
fn every_op_skips_untracked_inputs() {
    for (name, inputs, f) in every_op().into_iter().filter(|c| c.1.len() == 2) {
        let tape = Tape::new();
        let vars = [
            tape.param(inputs[0].clone()),
            tape.constant(inputs[1].clone()),
        ];
        let loss = f(&tape, &vars).unwrap().sum().unwrap();
        let grads = tape
            .backward(loss)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            grads.get(vars[0]).unwrap().shape(),
            inputs[0].shape(),
            "{name}"
        );
        assert!(
            matches!(grads.get(vars[1]), Err(Error::NoGradient { .. })),
            "{name}"
        );
    }
}

/// Records `mean(act(x · w1 + b1) · w2 + b2)` on a fixed batch `x`.
fn mlp<'t>(
    tape: &'t Tape<f64>,
    x: &Tensor<f64>,
    params: &[Var<'t, f64>],
    relu: bool,
) -> Result<Var<'t, f64>> {
    let x = tape.constant(x.clone());
    let pre = x.matmul(params[0])?.add(params[1])?;
    let hidden = if relu { pre.relu()? } else { pre.tanh()? };
    hidden.matmul(params[2])?.add(params[3])?.mean()
}

fn mlp_params(rng: &mut StdRng) -> Vec<Tensor<f64>> {
    vec![
        Tensor::normal([3, 5], 0.0, 0.7, rng).unwrap(),
        Tensor::normal([5], 0.0, 0.3, rng).unwrap(),
        Tensor::normal([5, 2], 0.0, 0.7, rng).unwrap(),
        Tensor::normal([2], 0.0, 0.3, rng).unwrap(),
    ]
}

#[test]
fn mlp_gradient_passes_gradcheck() {
    let mut rng = StdRng::seed_from_u64(11);
    let x = Tensor::normal([4, 3], 0.0, 1.0, &mut rng).unwrap();
    let params = mlp_params(&mut rng);
    for relu in [false, true] {
        if relu {
            // Finite differences across a kink of relu are meaningless; the seed gives
            // pre-activations well away from 0.
            let tape = Tape::new();
            let vars: Vec<_> = params.iter().map(|p| tape.constant(p.clone())).collect();
            let pre = tape
                .constant(x.clone())
                .matmul(vars[0])
                .unwrap()
                .add(vars[1])
                .unwrap();
            let closest = pre
                .value()
                .data()
                .iter()
                .fold(f64::INFINITY, |m, v| m.min(v.abs()));
            assert!(
                closest > 1e-3,
                "pre-activation {closest} is too close to the kink"
            );
        }
        let x = x.clone();
        let report = GradCheck::default()
            .check("mlp", &params, move |tape, v| mlp(tape, &x, v, relu))
            .unwrap_or_else(|e| panic!("relu {relu}: {e}"));
        assert!(report.full_jacobian);
        assert_eq!(report.compared, 3 * 5 + 5 + 5 * 2 + 2);
    }
}

/// An op without a backward, as a rounding would be.
struct Round;

impl Op<f64> for Round {
    fn name(&self) -> &str {
        "round"
    }

    fn forward(&mut self, inputs: &[Tensor<f64>]) -> Result<Tensor<f64>> {
        Ok(inputs[0].map(f64::round))
    }

    fn backward(&self, _: &BackwardArgs<f64>) -> Result<Vec<Option<Tensor<f64>>>> {
        unreachable!("the tape never calls the backward of a non-differentiable op")
    }

    fn is_differentiable(&self) -> bool {
        false
    }
}

#[test]
fn mixing_tapes_is_rejected() {
    let first = Tape::<f64>::new();
    let second = Tape::<f64>::new();
    let a = first.param(Tensor::ones([2]));
    let b = second.param(Tensor::ones([2]));
    assert!(matches!(a.add(b), Err(Error::TapeMismatch { .. })));
    assert!(matches!(
        concat(&[a, b], 0),
        Err(Error::TapeMismatch { .. })
    ));
    assert!(matches!(stack(&[b, a], 0), Err(Error::TapeMismatch { .. })));
    let loss = b.sum().unwrap();
    assert!(matches!(
        first.backward(loss),
        Err(Error::TapeMismatch { .. })
    ));
    let grads = second.backward(loss).unwrap();
    assert!(matches!(grads.get(a), Err(Error::TapeMismatch { .. })));
}

#[test]
fn backward_needs_tracked_scalar() {
    let tape = Tape::<f64>::new();
    let x = tape.param(Tensor::ones([2]));
    let err = tape.backward(x.exp().unwrap()).err().unwrap();
    assert!(matches!(err, Error::NotScalar { .. }), "{err}");
    assert!(err.to_string().contains("[2]"), "{err}");
    let c = tape.constant(Tensor::ones([2]));
    let err = tape.backward(c.sum().unwrap()).err().unwrap();
    assert!(matches!(err, Error::NoGradient { .. }), "{err}");
    let loss = x.mul(c).unwrap().sum().unwrap();
    let grads = tape.backward(loss).unwrap();
    assert!(matches!(grads.get(c), Err(Error::NoGradient { .. })));
    assert!(matches!(grads.get(loss), Err(Error::NoGradient { .. })));
}

#[test]
fn non_differentiable_op_needs_untracked_input() {
    let tape = Tape::<f64>::new();
    let x = tape.param(Tensor::from_vec(vec![0.4, 1.6], [2]).unwrap());
    let err = tape.apply(Round, &[x]).unwrap_err();
    assert!(
        matches!(err, Error::NotDifferentiable { input: 0, .. }),
        "{err}"
    );
    assert!(err.to_string().starts_with("round"), "{err}");

    let detached = tape.apply(Round, &[x.detach()]).unwrap();
    assert_eq!(detached.value().to_vec(), vec![0.0, 2.0]);
    assert!(!detached.requires_grad());
    let constant = tape.constant(Tensor::ones([2]));
    assert!(tape.apply(Round, &[constant]).is_ok());
    let rounded = {
        let _guard = tape.no_grad();
        tape.apply(Round, &[x]).unwrap()
    };
    assert!(!rounded.requires_grad());

    // The rounded value can scale a tracked one; the gradient treats it as a constant.
    let loss = x.mul(rounded).unwrap().sum().unwrap();
    let grads = tape.backward(loss).unwrap();
    assert_eq!(grads.get(x).unwrap().to_vec(), vec![0.0, 2.0]);
}

#[test]
fn no_grad_stops_recording_until_guard_drops() {
    let tape = Tape::<f64>::new();
    let w = tape.param(Tensor::from_vec(vec![1.0, 2.0], [2]).unwrap());
    {
        let _outer = tape.no_grad();
        assert!(!tape.is_grad_enabled());
        assert!(!w.exp().unwrap().requires_grad());
        assert!(!w.permute(&[0]).unwrap().requires_grad());
        assert!(!tape.param(Tensor::ones([2])).requires_grad());
        {
            let _inner = tape.no_grad();
        }
        // Dropping a nested guard restores the state it found, which is still disabled.
        assert!(!tape.is_grad_enabled());
    }
    assert!(tape.is_grad_enabled());
    assert!(w.exp().unwrap().requires_grad());
}

#[test]
fn detach_stops_gradient() {
    let tape = Tape::<f64>::new();
    let x = tape.param(Tensor::from_vec(vec![1.0, -3.0], [2]).unwrap());
    let stopped = x.detach();
    assert!(!stopped.requires_grad());
    assert!(stopped.value().bit_eq(&x.value()));
    // d/dx (x · stop(x)) = stop(x), where x · x would give 2x.
    let grads = tape
        .backward(x.mul(stopped).unwrap().sum().unwrap())
        .unwrap();
    assert_eq!(grads.get(x).unwrap().to_vec(), vec![1.0, -3.0]);
}

#[test]
fn gradient_accumulates_over_uses() {
    let tape = Tape::<f64>::new();
    let x = tape.param(Tensor::from_vec(vec![1.0, -3.0], [2]).unwrap());
    let grads = tape.backward(x.mul(x).unwrap().sum().unwrap()).unwrap();
    assert_eq!(grads.get(x).unwrap().to_vec(), vec![2.0, -6.0]);

    // Three uses through different ops: x + 2x + x·x summed, so the gradient is 3 + 2x.
    let tape = Tape::<f64>::new();
    let x = tape.param(Tensor::from_vec(vec![1.0, -3.0], [2]).unwrap());
    let y = x
        .add(x.mul_scalar(2.0).unwrap())
        .unwrap()
        .add(
            stack(&[x, x], 0)
                .unwrap()
                .slice(0, 1, 2)
                .unwrap()
                .squeeze(0)
                .unwrap()
                .powf(2.0)
                .unwrap(),
        )
        .unwrap();
    let grads = tape.backward(y.sum().unwrap()).unwrap();
    assert_eq!(grads.get(x).unwrap().to_vec(), vec![5.0, -3.0]);

    // A parameter the loss does not use has a zero gradient, whether it was recorded before
    // or after the loss.
    let before = tape.param(Tensor::ones([3]));
    let loss = y.sum().unwrap();
    let after = tape.param(Tensor::ones([2, 2]));
    let grads = tape.backward(loss).unwrap();
    assert_eq!(grads.get(before).unwrap().to_vec(), vec![0.0; 3]);
    assert_eq!(grads.get(after).unwrap().to_vec(), vec![0.0; 4]);
}
