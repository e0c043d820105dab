//! Properties, exact small cases, extreme inputs and error messages of the operators.

mod common;

use autograd::{Tape, Tensor, Var};
use common::{scores_case, uniform, with_n, BATCH_SHAPES};
use proptest::prelude::*;
use rand::SeedableRng;
use softsort_ops::hungarian::{max_weight_assignment, round_to_permutation};
use softsort_ops::{
    permutation_cross_entropy, soft_ranks, sorted_values, top_k_mask, Distance, Gumbel, NeuralSort,
    Sinkhorn, SoftSort, SortFloat,
};

/// The relaxed permutation of each soft operator, by name.
/// A relaxed-permutation operator with its temperature as an argument.
type SoftOperator = Box<dyn for<'t> Fn(Var<'t, f64>, f64) -> autograd::Result<Var<'t, f64>>>;

/// An operator at a fixed temperature, generic over the float type.
type FixedOperator<T> = Box<dyn for<'t> Fn(Var<'t, T>) -> autograd::Result<Var<'t, T>>>;

fn soft_operators() -> Vec<(&'static str, SoftOperator)> {
    vec![
        (
            "softsort abs",
            Box::new(|s, tau| SoftSort::new(tau).apply(s)),
        ),
        (
            "softsort squared",
            Box::new(|s, tau| SoftSort::new(tau).distance(Distance::Squared).apply(s)),
        ),
        (
            "neuralsort",
            Box::new(|s, tau| NeuralSort::new(tau).apply(s)),
        ),
    ]
}

fn permutation_of(
    tensor: &Tensor<f64>,
    shape: Vec<usize>,
    n: usize,
    perm: &[usize],
) -> Tensor<f64> {
    // Permutes the last axis of each row: out[..., j] = in[..., perm[j]].
    let data = tensor
        .data()
        .chunks(n)
        .flat_map(|row| perm.iter().map(|&p| row[p]).collect::<Vec<_>>())
        .collect();
    Tensor::from_vec(data, shape).unwrap()
}

fn assert_permutation_matrices(p: &Tensor<f64>, n: usize, what: &str) {
    for (m, matrix) in p.data().chunks(n * n).enumerate() {
        for i in 0..n {
            let row = &matrix[i * n..(i + 1) * n];
            assert!(
                row.iter().all(|&x| x == 0.0 || x == 1.0),
                "{what}: matrix {m} row {i} not 0/1: {row:?}"
            );
            assert_eq!(row.iter().sum::<f64>(), 1.0, "{what}: matrix {m} row {i}");
            let column: f64 = (0..n).map(|k| matrix[k * n + i]).sum();
            assert_eq!(column, 1.0, "{what}: matrix {m} column {i}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn soft_rows_sum_to_one((scores, tau) in scores_case()) {
        let n = *scores.dims().last().unwrap();
        for (name, op) in soft_operators() {
            let tape = Tape::new();
            let p = op(tape.constant(scores.clone()), tau).unwrap().value();
            prop_assert_eq!(p.dims(), &with_n(scores.dims(), n)[..]);
            for (r, row) in p.data().chunks(n).enumerate() {
                let total: f64 = row.iter().sum();
                prop_assert!((total - 1.0).abs() < 1e-12, "{}: row {} sums to {}", name, r, total);
                prop_assert!(row.iter().all(|&x| (0.0..=1.0).contains(&x)));
            }
        }
    }

    #[test]
    fn permuting_inputs_permutes_columns((scores, tau) in scores_case(), seed in any::<u64>()) {
        let n = *scores.dims().last().unwrap();
        let mut perm: Vec<usize> = (0..n).collect();
        rand::seq::SliceRandom::shuffle(&mut perm[..], &mut rand::rngs::StdRng::seed_from_u64(seed));
        let permuted = permutation_of(&scores, scores.dims().to_vec(), n, &perm);
        for (name, op) in soft_operators() {
            let tape = Tape::new();
            let p = op(tape.constant(scores.clone()), tau).unwrap().value();
            let q = op(tape.constant(permuted.clone()), tau).unwrap().value();
            let expected = permutation_of(&p, p.dims().to_vec(), n, &perm);
            common::assert_close(&q, &expected, 1e-12, name);
        }
    }

    #[test]
    fn sinkhorn_marginals_within_reported_error(
        x in (0..BATCH_SHAPES.len(), 1usize..=12).prop_flat_map(|(b, n)| {
            let mut dims = with_n(BATCH_SHAPES[b], n);
            dims.push(n);
            uniform(dims, -3.0, 3.0)
        }),
        tau in 0.1f64..2.0,
        iterations in 1usize..=30,
    ) {
        let n = *x.dims().last().unwrap();
        let tape = Tape::new();
        let (p, report) = Sinkhorn::new(tau).iterations(iterations).apply(tape.constant(x)).unwrap();
        prop_assert_eq!(report.iterations, iterations);
        let p = p.value();
        for matrix in p.data().chunks(n * n) {
            for i in 0..n {
                let row: f64 = matrix[i * n..(i + 1) * n].iter().sum();
                let column: f64 = (0..n).map(|k| matrix[k * n + i]).sum();
                prop_assert!((row - 1.0).abs() <= report.max_marginal_error + 1e-12);
                prop_assert!((column - 1.0).abs() <= report.max_marginal_error + 1e-12);
            }
        }
    }

    #[test]
    fn sinkhorn_is_equivariant_to_permutations(
        x in (1usize..=8).prop_flat_map(|n| uniform(vec![n, n], -2.0, 2.0)),
        seed in any::<u64>(),
    ) {
        // Permuting the rows and columns of X permutes those of P.
        let n = x.dims()[0];
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut rows: Vec<usize> = (0..n).collect();
        let mut columns: Vec<usize> = (0..n).collect();
        rand::seq::SliceRandom::shuffle(&mut rows[..], &mut rng);
        rand::seq::SliceRandom::shuffle(&mut columns[..], &mut rng);
        let permute = |t: &Tensor<f64>| {
            let data = (0..n * n).map(|k| t.data()[rows[k / n] * n + columns[k % n]]).collect();
            Tensor::from_vec(data, [n, n]).unwrap()
        };
        let tape = Tape::new();
        let op = Sinkhorn::new(0.7).iterations(10);
        let p = op.apply(tape.constant(x.clone())).unwrap().0.value();
        let q = op.apply(tape.constant(permute(&x))).unwrap().0.value();
        common::assert_close(&q, &permute(&p), 1e-12, "sinkhorn");
    }

    #[test]
    fn hard_variants_are_permutations_with_ties(
        (batch, n, values) in (0..BATCH_SHAPES.len(), 1usize..=12).prop_flat_map(|(b, n)| {
            let count = BATCH_SHAPES[b].iter().product::<usize>() * n;
            (Just(b), Just(n), proptest::collection::vec(0u8..3, count))
        }),
        ascending in any::<bool>(),
    ) {
        let scores = Tensor::from_vec(values.iter().map(|&v| f64::from(v)).collect(), with_n(BATCH_SHAPES[batch], n)).unwrap();
        let tape = Tape::new();
        let s = tape.constant(scores.clone());
        let soft = SoftSort::new(0.5).ascending(ascending).hard(true).apply(s).unwrap().value();
        assert_permutation_matrices(&soft, n, "hard softsort");
        let neural = NeuralSort::new(0.5).ascending(ascending).hard(true).apply(s).unwrap().value();
        prop_assert!(neural.bit_eq(&soft), "hard NeuralSort and SoftSort pick the same permutation");
        // The hard permutation sorts the scores.
        let sorted = sorted_values(tape.constant(soft), s).unwrap().value();
        for row in sorted.data().chunks(n) {
            for pair in row.windows(2) {
                let in_order = if ascending { pair[0] <= pair[1] } else { pair[0] >= pair[1] };
                prop_assert!(in_order, "row {:?} is not sorted", row);
            }
        }
    }

    #[test]
    fn hard_backward_equals_soft_backward((scores, tau) in scores_case(), seed in any::<u64>()) {
        let weights = Tensor::uniform(with_n(scores.dims(), *scores.dims().last().unwrap()), -1.0, 1.0, &mut rand::rngs::StdRng::seed_from_u64(seed)).unwrap();
        let gradient = |hard: bool, neural: bool| {
            let tape = Tape::new();
            let s = tape.param(scores.clone());
            let p = if neural { NeuralSort::new(tau).hard(hard).apply(s) } else { SoftSort::new(tau).hard(hard).apply(s) }.unwrap();
            let loss = p.mul(tape.constant(weights.clone())).unwrap().sum().unwrap();
            tape.backward(loss).unwrap().get(s).unwrap().clone()
        };
        prop_assert!(gradient(true, false).bit_eq(&gradient(false, false)));
        prop_assert!(gradient(true, true).bit_eq(&gradient(false, true)));
    }

    #[test]
    fn hungarian_matches_brute_force(
        scores in (1usize..=6).prop_flat_map(|n| uniform(vec![n, n], -5.0, 5.0)),
    ) {
        let n = scores.dims()[0];
        let best = |perm: &[usize]| perm.iter().enumerate().map(|(i, &j)| scores.data()[i * n + j]).sum::<f64>();
        let assignment = max_weight_assignment(scores.data(), n).unwrap();
        let mut sorted = assignment.clone();
        sorted.sort_unstable();
        prop_assert_eq!(sorted, (0..n).collect::<Vec<_>>());
        let mut brute = f64::NEG_INFINITY;
        let mut perm: Vec<usize> = (0..n).collect();
        permutations(&mut perm, 0, &mut |p| brute = brute.max(best(p)));
        prop_assert!((best(&assignment) - brute).abs() < 1e-9, "hungarian {} vs brute force {}", best(&assignment), brute);
    }
}

/// Calls `f` on every permutation of `items[k..]` (Heap-style recursion by swaps).
fn permutations(items: &mut Vec<usize>, k: usize, f: &mut impl FnMut(&[usize])) {
    if k == items.len() {
        f(items);
        return;
    }
    for i in k..items.len() {
        items.swap(k, i);
        permutations(items, k + 1, f);
        items.swap(k, i);
    }
}

#[test]
fn low_temperature_gives_exact_permutation() {
    let expected = [1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 1.0, 0.0];
    for (name, op) in soft_operators() {
        let tape = Tape::new();
        let s = tape.constant(Tensor::from_vec(vec![2.0, 0.0, 1.0], [3]).unwrap());
        let p = op(s, 1e-3).unwrap();
        assert_eq!(p.value().to_vec(), expected, "{name}");
        assert_eq!(
            sorted_values(p, s).unwrap().value().to_vec(),
            vec![2.0, 1.0, 0.0],
            "{name}"
        );
    }
    let tape = Tape::<f32>::new();
    let s = tape.constant(Tensor::from_vec(vec![2.0, 0.0, 1.0], [3]).unwrap());
    let p = SoftSort::new(1e-3).apply(s).unwrap();
    assert_eq!(
        p.value().to_vec(),
        expected.map(|x| x as f32),
        "softsort f32"
    );
    let ascending = NeuralSort::new(1e-3).ascending(true).apply(s).unwrap();
    assert_eq!(
        sorted_values(ascending, s).unwrap().value().to_vec(),
        vec![0.0, 1.0, 2.0]
    );
}

#[test]
fn tied_scores_share_rows() {
    let expected = [0.5, 0.5, 0.0, 0.5, 0.5, 0.0, 0.0, 0.0, 1.0];
    for (name, op) in soft_operators() {
        let tape = Tape::new();
        let p = op(
            tape.constant(Tensor::from_vec(vec![1.0, 1.0, 0.0], [3]).unwrap()),
            1e-3,
        )
        .unwrap();
        assert_eq!(p.value().to_vec(), expected, "{name}");
    }
}

#[test]
fn single_element_gives_identity() {
    let tape = Tape::<f64>::new();
    let s = tape.param(Tensor::from_vec(vec![3.5, -1.0], [2, 1]).unwrap());
    for p in [
        SoftSort::new(1.0).apply(s).unwrap(),
        NeuralSort::new(1.0).apply(s).unwrap(),
    ] {
        assert_eq!(p.shape().dims(), &[2, 1, 1]);
        assert_eq!(p.value().to_vec(), vec![1.0, 1.0]);
    }
    let x = tape.param(Tensor::from_vec(vec![7.0], [1, 1]).unwrap());
    let (p, report) = Sinkhorn::new(0.1).apply(x).unwrap();
    assert_eq!(p.value().to_vec(), vec![1.0]);
    assert_eq!(report.max_marginal_error, 0.0);
    let grads = tape.backward(p.sum().unwrap()).unwrap();
    assert_eq!(grads.get(x).unwrap().to_vec(), vec![0.0]);
}

#[test]
fn ranks_and_top_k_of_exact_permutation() {
    let tape = Tape::<f64>::new();
    let s = tape.constant(Tensor::from_vec(vec![0.3, 5.0, -2.0, 1.0], [4]).unwrap());
    let p = SoftSort::new(1e-4).apply(s).unwrap();
    assert_eq!(
        soft_ranks(p).unwrap().value().to_vec(),
        vec![3.0, 1.0, 4.0, 2.0]
    );
    assert_eq!(
        top_k_mask(p, 2).unwrap().value().to_vec(),
        vec![0.0, 1.0, 0.0, 1.0]
    );
    assert_eq!(top_k_mask(p, 4).unwrap().value().to_vec(), vec![1.0; 4]);
}

/// Scores spread over ±1e4 with τ = 1e-3 must give finite values and gradients.
fn check_extreme<T: SortFloat>() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let scores =
        Tensor::<T>::uniform([3, 40], T::from_f64(-1e4), T::from_f64(1e4), &mut rng).unwrap();
    let square =
        Tensor::<T>::uniform([2, 12, 12], T::from_f64(-1e4), T::from_f64(1e4), &mut rng).unwrap();
    let weights =
        Tensor::<T>::uniform([3, 40, 40], T::from_f64(-1.0), T::from_f64(1.0), &mut rng).unwrap();
    let ops: Vec<(&str, FixedOperator<T>)> = vec![
        ("softsort abs", Box::new(|s| SoftSort::new(1e-3).apply(s))),
        (
            "softsort squared",
            Box::new(|s| SoftSort::new(1e-3).distance(Distance::Squared).apply(s)),
        ),
        ("neuralsort", Box::new(|s| NeuralSort::new(1e-3).apply(s))),
    ];
    for (name, op) in ops {
        let tape = Tape::new();
        let s = tape.param(scores.clone());
        let p = op(s).unwrap();
        assert_eq!(
            p.value().first_non_finite(),
            None,
            "{name} {} value",
            T::DTYPE
        );
        let loss = p
            .mul(tape.constant(weights.clone()))
            .unwrap()
            .sum()
            .unwrap();
        let ce = permutation_cross_entropy(p, &vec![0; 120], &[3, 40]).unwrap();
        let grads = tape.backward(loss.add(ce).unwrap()).unwrap();
        assert_eq!(
            grads.get(s).unwrap().first_non_finite(),
            None,
            "{name} {} gradient",
            T::DTYPE
        );
    }
    let tape = Tape::new();
    let x = tape.param(square);
    let (p, report) = Sinkhorn::new(1e-3).apply(x).unwrap();
    assert_eq!(
        p.value().first_non_finite(),
        None,
        "sinkhorn {} value",
        T::DTYPE
    );
    assert!(report.max_marginal_error.is_finite());
    let grads = tape.backward(p.mul(p).unwrap().sum().unwrap()).unwrap();
    assert_eq!(
        grads.get(x).unwrap().first_non_finite(),
        None,
        "sinkhorn {} gradient",
        T::DTYPE
    );
}

#[test]
fn extreme_scores_stay_finite() {
    check_extreme::<f32>();
    check_extreme::<f64>();
}

#[test]
fn sinkhorn_tolerance_stops_early() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let x = Tensor::<f64>::uniform([3, 6, 6], -1.0, 1.0, &mut rng).unwrap();
    let tape = Tape::new();
    let (p, report) = Sinkhorn::new(1.0)
        .iterations(500)
        .tolerance(1e-8)
        .apply(tape.param(x))
        .unwrap();
    assert!(report.iterations < 500, "{report:?}");
    assert!(report
        .iterations_per_matrix
        .iter()
        .all(|&k| k >= 1 && k <= report.iterations));
    assert!(report.max_marginal_error < 1e-7, "{report:?}");
    let grads = tape.backward(p.sum().unwrap());
    assert!(grads.is_ok());
}

#[test]
fn gumbel_variants_add_a_sample_axis() {
    let tape = Tape::<f64>::new();
    let s = tape.param(Tensor::from_vec(vec![0.1, 0.5, -0.3, 0.9, 0.0, 0.2], [2, 3]).unwrap());
    let gumbel = Gumbel::new(4, 11);
    let a = SoftSort::new(0.5).apply_gumbel(s, &gumbel).unwrap();
    let b = SoftSort::new(0.5).apply_gumbel(s, &gumbel).unwrap();
    let c = SoftSort::new(0.5)
        .apply_gumbel(s, &Gumbel::new(4, 12))
        .unwrap();
    assert_eq!(a.shape().dims(), &[4, 2, 3, 3]);
    assert!(a.value().bit_eq(&b.value()), "same seed, same samples");
    assert!(!a.value().bit_eq(&c.value()), "another seed, other samples");
    let noise = gumbel.noise::<f64>("test", &[2, 3]).unwrap();
    assert!(SoftSort::new(0.5)
        .apply_with_noise(s, &noise)
        .unwrap()
        .value()
        .bit_eq(&a.value()));
    assert_eq!(
        NeuralSort::new(0.5)
            .apply_gumbel(s, &gumbel)
            .unwrap()
            .shape()
            .dims(),
        &[4, 2, 3, 3]
    );
    let x = tape.param(Tensor::zeros([2, 3, 3]));
    let (p, _) = Sinkhorn::new(1.0)
        .noise_factor(0.5)
        .apply_gumbel(x, &gumbel)
        .unwrap();
    assert_eq!(p.shape().dims(), &[4, 2, 3, 3]);
    let rounded = round_to_permutation(&p.value()).unwrap();
    assert_permutation_matrices(&rounded, 3, "rounded gumbel-sinkhorn");
    let loss = p.sum().unwrap().add(a.sum().unwrap()).unwrap();
    let grads = tape.backward(loss).unwrap();
    assert_eq!(grads.get(s).unwrap().dims(), &[2, 3]);
}

#[test]
fn results_do_not_depend_on_thread_count() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    let scores = Tensor::<f32>::uniform([3, 200], -3.0, 3.0, &mut rng).unwrap();
    let square = Tensor::<f32>::uniform([3, 60, 60], -3.0, 3.0, &mut rng).unwrap();
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let tape = Tape::new();
            let s = tape.param(scores.clone());
            let x = tape.param(square.clone());
            let p = SoftSort::new(0.3).apply(s).unwrap();
            let q = NeuralSort::new(0.3).apply(s).unwrap();
            let (r, _) = Sinkhorn::new(0.3).apply(x).unwrap();
            let loss = permutation_cross_entropy(p, &vec![1; 600], &[3, 200]).unwrap();
            let loss = loss
                .add(permutation_cross_entropy(q, &vec![2; 600], &[3, 200]).unwrap())
                .unwrap();
            let loss = loss
                .add(permutation_cross_entropy(r, &vec![3; 180], &[3, 60]).unwrap())
                .unwrap();
            let grads = tape.backward(loss).unwrap();
            (grads.get(s).unwrap().clone(), grads.get(x).unwrap().clone())
        })
    };
    let (one_s, one_x) = run(1);
    let (two_s, two_x) = run(3);
    assert!(one_s.bit_eq(&two_s));
    assert!(one_x.bit_eq(&two_x));
}

fn error_of<T>(result: autograd::Result<T>) -> String {
    match result {
        Ok(_) => panic!("expected an error"),
        Err(err) => err.to_string(),
    }
}

#[test]
fn bad_inputs_are_rejected_with_clear_messages() {
    let tape = Tape::<f64>::new();
    let s = tape.param(Tensor::from_vec(vec![1.0, 2.0], [2]).unwrap());
    let cases = [
        (error_of(SoftSort::new(-0.5).apply(s)), "softsort: invalid temperature = -0.5: must be positive and finite"),
        (error_of(SoftSort::new(0.0).apply(s)), "softsort: invalid temperature = 0"),
        (error_of(NeuralSort::new(f64::NAN).apply(s)), "neuralsort: invalid temperature = NaN"),
        (error_of(Sinkhorn::new(f64::INFINITY).apply(s).map(|r| r.0)), "sinkhorn: invalid temperature = inf"),
        (
            error_of(SoftSort::new(1.0).apply(tape.param(Tensor::from_vec(vec![1.0, f64::NAN], [2]).unwrap()))),
            "softsort: invalid scores = NaN at flat index 1",
        ),
        (
            error_of(NeuralSort::new(1.0).apply(tape.param(Tensor::from_vec(vec![f64::INFINITY], [1]).unwrap()))),
            "neuralsort: invalid scores = inf at flat index 0",
        ),
        (error_of(SoftSort::new(1.0).apply(tape.param(Tensor::zeros([0])))), "softsort: scores of shape [0] have no elements to sort (n = 0)"),
        (error_of(NeuralSort::new(1.0).apply(tape.param(Tensor::zeros([3, 0])))), "neuralsort: scores of shape [3, 0] have no elements"),
        (error_of(SoftSort::new(1.0).apply(tape.param(Tensor::scalar(1.0)))), "softsort: scores must have at least one axis"),
        (
            error_of(Sinkhorn::new(1.0).apply(tape.param(Tensor::zeros([2, 3]))).map(|r| r.0)),
            "sinkhorn: log_scores must have shape [..., n, n] (square in the last two axes), got [2, 3]",
        ),
        (error_of(Sinkhorn::new(1.0).apply(s).map(|r| r.0)), "sinkhorn: log_scores must have shape [..., n, n]"),
        (error_of(Sinkhorn::new(1.0).iterations(0).apply(tape.param(Tensor::zeros([2, 2]))).map(|r| r.0)), "sinkhorn: invalid iterations = 0"),
        (error_of(Sinkhorn::new(1.0).tolerance(-1.0).apply(tape.param(Tensor::zeros([2, 2]))).map(|r| r.0)), "sinkhorn: invalid tolerance = -1"),
        (error_of(Sinkhorn::new(1.0).apply(tape.param(Tensor::zeros([2, 0, 0]))).map(|r| r.0)), "sinkhorn: log_scores of shape [2, 0, 0] is empty"),
        (error_of("cosine".parse::<Distance>()), "softsort: invalid distance = cosine: expected \"abs\" or \"squared\""),
        (error_of(SoftSort::new(1.0).apply_gumbel(s, &Gumbel::new(0, 1))), "softsort: invalid samples = 0"),
        (
            error_of(SoftSort::new(1.0).apply_with_noise(s, &Tensor::zeros([2, 3]))),
            "softsort: noise must have shape [samples, ...[2]] (one leading sample axis), got [2, 3]",
        ),
        (
            error_of(NeuralSort::new(1.0).apply_with_noise(s, &Tensor::from_vec(vec![0.0, f64::NAN], [1, 2]).unwrap())),
            "neuralsort: invalid noise = NaN at flat index 1",
        ),
    ];
    for (message, expected) in cases {
        assert!(
            message.starts_with(expected),
            "message {message:?} does not start with {expected:?}"
        );
    }

    let p = tape.param(Tensor::full([2, 3, 3], 1.0 / 3.0));
    let ce =
        |targets: &[usize], shape: &[usize]| error_of(permutation_cross_entropy(p, targets, shape));
    assert!(ce(&[0, 1, 2], &[3])
        .starts_with("permutation_cross_entropy: targets must have shape [2, 3]"));
    assert!(ce(&[0, 1, 2, 0, 1, 3], &[2, 3])
        .starts_with("permutation_cross_entropy: invalid targets = 3 at flat index 5"));
    assert!(error_of(top_k_mask(p, 0))
        .starts_with("top_k_mask: invalid k = 0: must be between 1 and n = 3"));
    assert!(error_of(top_k_mask(p, 4)).starts_with("top_k_mask: invalid k = 4"));
    assert!(error_of(sorted_values(p, s))
        .starts_with("sorted_values: values must have shape [..., n] with n = 3"));
    assert!(
        error_of(round_to_permutation(&Tensor::<f64>::zeros([2, 3])))
            .starts_with("hungarian: log_scores must have shape")
    );
}

#[test]
fn temperature_with_overflowing_inverse_is_rejected() {
    let tape32 = Tape::<f32>::new();
    let s32 = tape32.param(Tensor::from_vec(vec![1.0, 2.0], [2]).unwrap());
    let message = error_of(SoftSort::new(1e-39).apply(s32));
    assert!(
        message.starts_with("softsort: invalid temperature = 1e-39: 1/temperature overflows F32"),
        "{message}"
    );
    assert!(error_of(NeuralSort::new(1e-39).apply(s32))
        .starts_with("neuralsort: invalid temperature = 1e-39"));

    let tape64 = Tape::<f64>::new();
    let s64 = tape64.param(Tensor::from_vec(vec![1.0, 2.0], [2]).unwrap());
    assert!(error_of(SoftSort::new(1e-320).apply(s64))
        .starts_with("softsort: invalid temperature = 1e-320"));
    let square = tape64.param(Tensor::zeros([2, 2]));
    let message = error_of(Sinkhorn::new(1e-320).apply(square).map(|r| r.0));
    assert!(
        message.starts_with("sinkhorn: invalid temperature = 1e-320"),
        "{message}"
    );
    // A small temperature whose inverse fits stays accepted.
    assert!(SoftSort::new(1e-30).apply(s32).is_ok());
}

#[test]
fn logits_beyond_the_float_range_are_rejected() {
    let tape32 = Tape::<f32>::new();
    let huge = tape32.param(Tensor::from_vec(vec![1e20, -1e20, 0.5], [3]).unwrap());
    // The squared distances overflow before τ divides them: the scores are at fault.
    let message = error_of(SoftSort::new(1e300).distance(Distance::Squared).apply(huge));
    assert!(message.starts_with("softsort: invalid scores"), "{message}");
    assert!(message.contains("4.0e40"), "{message}");
    // The distances fit, but dividing by τ overflows: the temperature is at fault.
    let message = error_of(SoftSort::new(1e-20).apply(huge));
    assert!(
        message.starts_with("softsort: invalid temperature = 1e-20"),
        "{message}"
    );
    assert!(message.contains("the logits reach 2.0e40"), "{message}");
    let square = tape32.param(Tensor::from_vec(vec![1.0, 0.0, 0.5, 1.0], [2, 2]).unwrap());
    let message = error_of(Sinkhorn::new(1e-30).apply(square).map(|r| r.0));
    assert!(
        message.starts_with("sinkhorn: invalid temperature = 1e-30"),
        "{message}"
    );

    let tape64 = Tape::<f64>::new();
    let s64 = tape64.param(Tensor::from_vec(vec![1e10, -1e10, 3.0], [3]).unwrap());
    let message = error_of(NeuralSort::new(1e-300).apply(s64));
    assert!(
        message.starts_with("neuralsort: invalid temperature = 1e-300"),
        "{message}"
    );
    // The limits leave the tested regime of scores ±1e4 at τ = 1e-3 alone.
    let wide = tape64.param(Tensor::from_vec(vec![1e4, -1e4, 3.0], [3]).unwrap());
    assert!(SoftSort::new(1e-3).apply(wide).is_ok());
    assert!(NeuralSort::new(1e-3).apply(wide).is_ok());
}

#[test]
fn huge_sizes_are_rejected_before_allocating() {
    let tape = Tape::<f32>::new();
    let long = tape.param(Tensor::zeros([200_000]));
    let message = error_of(SoftSort::new(1.0).apply(long));
    assert!(message.contains("use the fast operators"), "{message}");
    assert!(error_of(NeuralSort::new(1.0).apply(long)).starts_with("neuralsort:"));

    let square = tape.param(Tensor::zeros([2, 2]));
    for iterations in [1 << 40, usize::MAX] {
        let result = Sinkhorn::new(1.0)
            .iterations(iterations)
            .tolerance(1e-3)
            .apply(square);
        let message = error_of(result.map(|r| r.0));
        assert!(
            message.starts_with("sinkhorn: invalid iterations"),
            "{message}"
        );
    }
    // A tolerance stops early; the bound is on the iterations allowed, not on those run.
    assert!(Sinkhorn::new(1.0)
        .iterations(1 << 20)
        .tolerance(1e-3)
        .apply(square)
        .is_ok());

    for samples in [1 << 40, usize::MAX] {
        let message = error_of(Gumbel::new(samples, 0).noise::<f64>("softsort", &[3]));
        assert!(
            message.starts_with("softsort: invalid samples"),
            "{message}"
        );
    }
}

#[test]
fn hungarian_rejects_non_finite_and_survives_huge_scores() {
    let message = error_of(max_weight_assignment(&[f64::NAN; 4], 2));
    assert!(
        message.starts_with("hungarian: invalid score = NaN"),
        "{message}"
    );
    assert!(error_of(max_weight_assignment(&[f64::NEG_INFINITY; 4], 2))
        .starts_with("hungarian: invalid score = -inf"));
    assert!(error_of(max_weight_assignment(&[1.0; 3], 2))
        .starts_with("hungarian: expected 2 × 2 = 4 scores, got 3"));

    // Scores near f64::MAX used to overflow the potentials. Column 2 contains -1e308 in every row,
    // so the best total, in units of 1e308, is 1 + 1 - 1.
    let huge = [
        1e308, -1e308, -1e308, 1e308, 1e308, -1e308, 0.0, 1e308, -1e308,
    ];
    let assignment = max_weight_assignment(&huge, 3).unwrap();
    let total: f64 = assignment
        .iter()
        .enumerate()
        .map(|(i, &j)| huge[i * 3 + j] / 1e308)
        .sum();
    assert_eq!(total, 1.0, "assignment {assignment:?}");
    let rounded = round_to_permutation(&Tensor::from_vec(huge.to_vec(), [3, 3]).unwrap()).unwrap();
    assert_eq!(rounded.data().iter().sum::<f64>(), 3.0);
}
