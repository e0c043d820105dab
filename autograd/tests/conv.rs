//! conv2d: gradients against finite differences, values against a direct convolution, and
//! results independent of the thread count.

use autograd::{GradCheck, Padding, Tape, Tensor};
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::SeedableRng;

/// The definition: `y[n, o, oy, ox] = b[o] + Σ W[o, c, i, j] · x̃[n, c, oy·s + i, ox·s + j]`.
fn conv_naive(
    x: &Tensor<f64>,
    w: &Tensor<f64>,
    b: Option<&Tensor<f64>>,
    stride: usize,
    pad: (usize, usize),
) -> Tensor<f64> {
    let (n, c, h, wd) = (x.dims()[0], x.dims()[1], x.dims()[2], x.dims()[3]);
    let (o, kh, kw) = (w.dims()[0], w.dims()[2], w.dims()[3]);
    let oh = (h + 2 * pad.0 - kh) / stride + 1;
    let ow = (wd + 2 * pad.1 - kw) / stride + 1;
    let mut out = Vec::new();
    for ni in 0..n {
        for oi in 0..o {
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut acc = b.map_or(0.0, |b| b.data()[oi]);
                    for ci in 0..c {
                        for i in 0..kh {
                            for j in 0..kw {
                                let iy = (oy * stride + i) as isize - pad.0 as isize;
                                let ix = (ox * stride + j) as isize - pad.1 as isize;
                                if iy < 0 || ix < 0 || iy as usize >= h || ix as usize >= wd {
                                    continue;
                                }
                                let xv = x.get(&[ni, ci, iy as usize, ix as usize]).unwrap();
                                acc += w.get(&[oi, ci, i, j]).unwrap() * xv;
                            }
                        }
                    }
                    out.push(acc);
                }
            }
        }
    }
    Tensor::from_vec(out, [n, o, oh, ow]).unwrap()
}

#[derive(Clone, Debug)]
struct Case {
    batch: usize,
    channels: usize,
    outputs: usize,
    height: usize,
    width: usize,
    kernel: (usize, usize),
    stride: usize,
    padding: Padding,
    bias: bool,
    seed: u64,
}

impl Case {
    fn pad(&self) -> (usize, usize) {
        match self.padding {
            Padding::Explicit { height, width } => (height, width),
            Padding::Same => ((self.kernel.0 - 1) / 2, (self.kernel.1 - 1) / 2),
            Padding::Valid => (0, 0),
        }
    }

    fn tensors(&self) -> Vec<Tensor<f64>> {
        let mut rng = StdRng::seed_from_u64(self.seed);
        let x = Tensor::uniform(
            [self.batch, self.channels, self.height, self.width],
            -1.0,
            1.0,
            &mut rng,
        )
        .unwrap();
        let w = Tensor::uniform(
            [self.outputs, self.channels, self.kernel.0, self.kernel.1],
            -1.0,
            1.0,
            &mut rng,
        )
        .unwrap();
        let mut all = vec![x, w];
        if self.bias {
            all.push(Tensor::uniform([self.outputs], -1.0, 1.0, &mut rng).unwrap());
        }
        all
    }
}

fn case_strategy() -> impl Strategy<Value = Case> {
    (
        (1usize..=2, 1usize..=3, 1usize..=3),
        (prop_oneof![Just(1usize), Just(3), Just(5)], 1usize..=3),
        (0usize..=3, 0usize..=4),
        0usize..3,
        1usize..=3,
        any::<bool>(),
        any::<u64>(),
    )
        .prop_map(
            |(
                (batch, channels, outputs),
                (k, kw_choice),
                (extra_h, extra_w),
                pad_kind,
                stride,
                bias,
                seed,
            )| {
                // Same padding needs odd kernels; the others also get even and non-square ones.
                let other = [1, 2, k][kw_choice - 1];
                let kernel = match pad_kind {
                    0 => (k, other),
                    1 => (k, k),
                    _ => (other, k),
                };
                let padding = match pad_kind {
                    0 => Padding::Valid,
                    1 => Padding::Same,
                    // Padding stays below the kernel length, which conv2d requires.
                    _ => Padding::Explicit {
                        height: extra_h % kernel.0,
                        width: (extra_w + 1) % kernel.1,
                    },
                };
                Case {
                    batch,
                    channels,
                    outputs,
                    height: kernel.0 + extra_h,
                    width: kernel.1 + extra_w,
                    kernel,
                    stride,
                    padding,
                    bias,
                    seed,
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn conv2d_gradients_match_finite_differences(case in case_strategy()) {
        let inputs = case.tensors();
        let (stride, padding, bias) = (case.stride, case.padding, case.bias);
        let result = GradCheck::default().check("conv2d", &inputs, |_, v| {
            v[0].conv2d(v[1], bias.then(|| v[2]), stride, padding)
        });
        prop_assert!(result.is_ok(), "{case:?}: {}", result.unwrap_err());
    }

    #[test]
    fn conv2d_matches_direct_convolution(case in case_strategy()) {
        let inputs = case.tensors();
        let tape = Tape::new();
        let x = tape.constant(inputs[0].clone());
        let w = tape.constant(inputs[1].clone());
        let b = case.bias.then(|| tape.constant(inputs[2].clone()));
        let y = x.conv2d(w, b, case.stride, case.padding).unwrap().value();
        let expected = conv_naive(&inputs[0], &inputs[1], inputs.get(2), case.stride, case.pad());
        prop_assert_eq!(y.shape(), expected.shape());
        for (a, e) in y.data().iter().zip(expected.data()) {
            prop_assert!((a - e).abs() < 1e-12, "{case:?}: {a} vs {e}");
        }
    }
}

#[test]
fn same_padding_keeps_size() {
    let tape = Tape::<f32>::new();
    let x = tape.constant(Tensor::zeros([2, 3, 9, 6]));
    let w = tape.constant(Tensor::zeros([4, 3, 5, 3]));
    let y = x.conv2d(w, None, 1, Padding::Same).unwrap();
    assert_eq!(y.shape().dims(), &[2, 4, 9, 6]);
    let strided = x.conv2d(w, None, 2, Padding::Same).unwrap();
    assert_eq!(strided.shape().dims(), &[2, 4, 5, 3]); // ceil(9/2), ceil(6/2)
}

#[test]
fn invalid_conv2d_arguments_are_rejected() {
    let tape = Tape::<f64>::new();
    let x = tape.constant(Tensor::zeros([1, 2, 4, 4]));
    let cases = [
        (
            x.conv2d(
                tape.constant(Tensor::zeros([3, 1, 3, 3])),
                None,
                1,
                Padding::Valid,
            ),
            "channels",
        ),
        (
            x.conv2d(
                tape.constant(Tensor::zeros([3, 2, 2, 2])),
                None,
                1,
                Padding::Same,
            ),
            "odd kernel",
        ),
        (
            x.conv2d(
                tape.constant(Tensor::zeros([3, 2, 3, 3])),
                None,
                0,
                Padding::Valid,
            ),
            "stride",
        ),
        (
            x.conv2d(
                tape.constant(Tensor::zeros([3, 2, 5, 5])),
                None,
                1,
                Padding::Valid,
            ),
            "larger than the padded",
        ),
        (
            x.conv2d(
                tape.constant(Tensor::zeros([3, 2, 3, 3])),
                Some(tape.constant(Tensor::zeros([2]))),
                1,
                Padding::Valid,
            ),
            "bias",
        ),
        (
            x.conv2d(
                tape.constant(Tensor::zeros([3, 2, 3, 3])),
                None,
                1,
                Padding::Explicit {
                    height: usize::MAX,
                    width: 1,
                },
            ),
            "padding must be smaller than the 3×3 kernel",
        ),
        (
            tape.constant(Tensor::zeros([2, 4, 4])).conv2d(
                tape.constant(Tensor::zeros([3, 2, 3, 3])),
                None,
                1,
                Padding::Valid,
            ),
            "[N, C, H, W]",
        ),
    ];
    for (result, expected) in cases {
        let message = result.unwrap_err().to_string();
        assert!(message.contains("conv2d"), "{message}");
        assert!(message.contains(expected), "{message} lacks {expected:?}");
    }
}

/// Forward and all three gradients of a batch large enough to run in parallel.
fn conv_step() -> Vec<Tensor<f32>> {
    let mut rng = StdRng::seed_from_u64(11);
    let tape = Tape::<f32>::new();
    let x = tape.param(Tensor::uniform([37, 3, 12, 10], -1.0, 1.0, &mut rng).unwrap());
    let w = tape.param(Tensor::uniform([8, 3, 3, 3], -1.0, 1.0, &mut rng).unwrap());
    let b = tape.param(Tensor::uniform([8], -1.0, 1.0, &mut rng).unwrap());
    let y = x.conv2d(w, Some(b), 1, Padding::Same).unwrap();
    let loss = y.mul(y).unwrap().sum().unwrap();
    let grads = tape.backward(loss).unwrap();
    vec![
        y.value(),
        grads.get(x).unwrap().clone(),
        grads.get(w).unwrap().clone(),
        grads.get(b).unwrap().clone(),
    ]
}

#[test]
fn conv2d_is_bit_identical_across_thread_counts() {
    let run = |threads| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(conv_step)
    };
    let one = run(1);
    for threads in [2, 3, 5] {
        let many = run(threads);
        for (k, (a, b)) in one.iter().zip(&many).enumerate() {
            assert!(a.bit_eq(b), "result {k} differs with {threads} threads");
        }
    }
}
