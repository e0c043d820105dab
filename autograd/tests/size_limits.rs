//! Shapes whose element count or byte size cannot be stored: every constructor and every op
//! that computes an output shape rejects them with an error naming the op and the shape,
//! instead of wrapping the count or panicking.

use autograd::nn::{init, Conv2d, Linear};
use autograd::{
    broadcast_shapes, broadcast_tensor, concat, matmul_tensors, stack, Error, IndexTensor, Padding,
    Shape, Tape, Tensor,
};
use rand::rngs::StdRng;
use rand::SeedableRng;

const HUGE: usize = 1 << 63;

/// Asserts that `result` failed with a message that starts with `op` and mentions `needle`.
fn assert_rejected<T: std::fmt::Debug>(result: Result<T, Error>, op: &str, needle: &str) {
    let err = result.expect_err("expected an error");
    let text = err.to_string();
    assert!(text.starts_with(&format!("{op}: ")), "{text}");
    assert!(text.contains(needle), "{text}");
}

#[test]
fn checked_numel_overflow_with_empty_axis() {
    assert_eq!(Shape::new(&[]).checked_numel(), Some(1));
    assert_eq!(Shape::new(&[3, 0, 5]).checked_numel(), Some(0));
    assert_eq!(Shape::new(&[HUGE, 2]).checked_numel(), None);
    assert_eq!(Shape::new(&[0, HUGE, 2]).checked_numel(), None);
    assert_eq!(
        Shape::new(&[usize::MAX, 1]).checked_numel(),
        Some(usize::MAX)
    );
    assert_eq!(Shape::new(&[HUGE, 2]).numel(), usize::MAX);
    // The byte bound depends on the element size.
    assert!(Shape::new(&[1 << 60]).check_size("t", 4).is_ok());
    assert!(Shape::new(&[1 << 60]).check_size("t", 8).is_err());
    assert!(Shape::new(&[1 << 60, 0]).check_size("t", 8).is_err());
}

#[test]
fn from_vec_rejects_overflowing_shapes() {
    assert_rejected(
        Tensor::<f64>::from_vec(vec![], vec![HUGE, 2]),
        "Tensor::from_vec",
        "invalid shape = [9223372036854775808, 2]",
    );
    assert_rejected(
        Tensor::<f64>::from_vec(vec![], vec![0, HUGE, 4]),
        "Tensor::from_vec",
        "use smaller axis lengths",
    );
    // 2⁶¹ f32 elements are countable but exceed isize::MAX bytes.
    assert_rejected(
        Tensor::<f32>::from_vec(vec![], vec![1 << 61, 2]),
        "Tensor::from_vec",
        "4 bytes per element",
    );
    assert_rejected(
        IndexTensor::from_vec(vec![], vec![HUGE, 2]),
        "IndexTensor::from_vec",
        "invalid shape",
    );
    // A large empty tensor is fine.
    let t = Tensor::<f64>::from_vec(vec![], vec![1 << 40, 0]).unwrap();
    assert_eq!(t.get(&[0, 0]), None);
    assert_eq!(t.numel(), 0);
}

#[test]
fn get_returns_none_out_of_range() {
    let t = Tensor::<f64>::from_vec(vec![1.0, 2.0, 3.0, 4.0], [2, 2]).unwrap();
    assert_eq!(t.get(&[1, 1]), Some(4.0));
    assert_eq!(t.get(&[usize::MAX, 0]), None);
    assert_eq!(t.get(&[0, usize::MAX]), None);
    assert_eq!(t.get(&[]), None);
}

#[test]
fn allocating_constructors_report_shape_and_bytes() {
    let mut rng = StdRng::seed_from_u64(0);
    assert_rejected(
        Tensor::<f64>::try_zeros([HUGE, 2]),
        "Tensor::full",
        "invalid shape",
    );
    assert_rejected(
        Tensor::<f32>::try_ones([1 << 62]),
        "Tensor::full",
        "isize::MAX",
    );
    assert_rejected(
        Tensor::<f64>::uniform([HUGE, 2], 0.0, 1.0, &mut rng),
        "Tensor::uniform",
        "invalid shape",
    );
    assert_rejected(
        Tensor::<f64>::normal([HUGE, 2], 0.0, 1.0, &mut rng),
        "Tensor::normal",
        "invalid shape",
    );

    // 2⁶² bytes fit isize but no allocator provides them.
    let bytes = (1usize << 62).to_string();
    assert_rejected(
        Tensor::<f32>::try_full([1 << 60], 1.0),
        "Tensor::full",
        &bytes,
    );
    assert_rejected(
        Tensor::<f32>::uniform([1 << 60], 0.0, 1.0, &mut rng),
        "Tensor::uniform",
        &bytes,
    );
    assert_rejected(
        Tensor::<f32>::normal([1 << 60], 0.0, 1.0, &mut rng),
        "Tensor::normal",
        &bytes,
    );
    assert_rejected(
        init::truncated_normal::<f32>([1 << 60], 1.0, &mut rng),
        "truncated_normal",
        &bytes,
    );

    assert_eq!(
        Tensor::<f32>::try_zeros([2, 3]).unwrap(),
        Tensor::zeros([2, 3])
    );
}

#[test]
#[should_panic(expected = "Tensor::full: invalid shape = [9223372036854775808, 2]")]
fn zeros_panics_with_error_message() {
    let _ = Tensor::<f64>::zeros([HUGE, 2]);
}

#[test]
fn reshape_reports_the_shape_not_a_wrapped_count() {
    let t = Tensor::<f64>::zeros([2]);
    let err = t.reshape([usize::MAX, 2]).unwrap_err().to_string();
    assert!(
        err.starts_with("reshape: invalid shape = [18446744073709551615, 2]"),
        "{err}"
    );
    let tape = Tape::<f64>::new();
    let x = tape.constant(t);
    assert_rejected(
        x.reshape([usize::MAX, 2]),
        "reshape",
        "[18446744073709551615, 2]",
    );
    assert_rejected(x.reshape([HUGE, 2]), "reshape", "use smaller axis lengths");
}

#[test]
fn broadcasting_to_an_overflowing_shape_is_rejected() {
    let tape = Tape::<f64>::new();
    let x = tape.constant(Tensor::ones([1, 2]));
    assert_rejected(x.broadcast_to([HUGE, 2]), "broadcast_to", "overflows usize");
    assert_rejected(
        x.broadcast_to([1 << 61, 2]),
        "broadcast_to",
        "invalid shape",
    );
    assert_rejected(
        broadcast_tensor("demo", &Tensor::<f32>::ones([1]), &Shape::new(&[1 << 62])),
        "demo",
        "isize::MAX",
    );
    assert_rejected(
        broadcast_shapes("demo", &Shape::new(&[HUGE, 1]), &Shape::new(&[2])),
        "demo",
        "overflows usize",
    );
    // Broadcasting two valid empty tensors whose non-empty axes multiply past usize.
    let a = tape.constant(Tensor::zeros([1 << 40, 1, 0]));
    let b = tape.constant(Tensor::zeros([1, 1 << 40, 0]));
    assert_rejected(a.add(b), "add", "overflows usize");
    let big = tape.constant(Tensor::zeros([1 << 59, 0]));
    let _ = big.broadcast_to([16, 1 << 59, 0]).unwrap_err();
}

#[test]
fn matmul_rejects_an_overflowing_output() {
    let a = Tensor::<f64>::zeros([1 << 40, 0]);
    let b = Tensor::<f64>::zeros([0, 1 << 40]);
    assert_rejected(
        matmul_tensors(&a, &b),
        "matmul",
        "invalid shape = [1099511627776, 1099511627776]",
    );
    let tape = Tape::<f64>::new();
    let (va, vb) = (tape.constant(a), tape.constant(b));
    assert_rejected(va.matmul(vb), "matmul", "invalid shape");
    // The wrapped broadcast that used to reach the GEMM is rejected one step earlier.
    let ones = tape.constant(Tensor::ones([1, 2]));
    assert!(ones.broadcast_to([HUGE, 2]).is_err());
    // An empty product with a large output of zero elements still works.
    let ok = matmul_tensors(
        &Tensor::<f64>::zeros([1 << 20, 0]),
        &Tensor::<f64>::zeros([0, 0]),
    )
    .unwrap();
    assert_eq!(ok.dims(), &[1 << 20, 0]);
}

#[test]
fn joining_ops_reject_overflowing_outputs() {
    let tape = Tape::<f64>::new();
    let piece = tape.constant(Tensor::zeros([1 << 59, 0]));
    assert_rejected(concat(&[piece; 8], 0), "concat", "invalid shape");
    assert_rejected(
        concat(&[piece; 32], 0),
        "concat",
        "add up to more than usize::MAX",
    );
    assert_rejected(stack(&[piece; 16], 0), "stack", "invalid shape");
    let two = concat(&[piece; 2], 1).unwrap();
    assert_eq!(two.shape().dims(), &[1 << 59, 0]);

    let x = Tape::<f32>::new();
    let v = x.constant(Tensor::zeros([2, 1 << 59, 0]));
    assert_rejected(v.index_select(0, &[0; 16]), "index_select", "invalid shape");
    let u = v.unsqueeze(0).unwrap();
    assert_eq!(u.shape().dims(), &[1, 2, 1 << 59, 0]);
}

#[test]
fn oversized_layers_are_errors_not_aborts() {
    let mut rng = StdRng::seed_from_u64(0);
    assert_rejected(
        Linear::<f32>::new(1 << 40, 1 << 40, true, &mut rng),
        "Tensor::uniform",
        "invalid shape = [1099511627776, 1099511627776]",
    );
    assert_rejected(
        Linear::<f32>::new(1 << 30, 1 << 30, false, &mut rng),
        "Tensor::uniform",
        "allocating 4611686018427387904 bytes",
    );
    assert_rejected(
        Conv2d::<f64>::new(1 << 20, 1 << 20, 1 << 12, 1, Padding::Valid, true, &mut rng),
        "Tensor::uniform",
        "invalid shape",
    );
    assert_rejected(
        init::Fans::of_weight(&Shape::new(&[2, HUGE, 2])),
        "Fans::of_weight",
        "overflow",
    );
}
