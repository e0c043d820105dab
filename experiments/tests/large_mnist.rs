//! Large-MNIST sequences drawn from the embedded MNIST sample.

use std::collections::HashSet;

use experiments::large_mnist::{
    descending_permutation, digits_most_significant_first, LargeMnistGenerator, SequenceBatch,
    DIGITS_PER_NUMBER, NUMBER_RANGE,
};
use experiments::{Dataset, Error, LabeledImages};

const ROWS: usize = 28;
const COLS: usize = 28;
const BLOCK: usize = ROWS * COLS;

fn sample() -> Dataset {
    Dataset::embedded_mnist_sample().unwrap()
}

/// Converts the digit block `block` (0 = top) of image `item` back to bytes.
fn block_bytes(batch: &SequenceBatch, item: usize, block: usize) -> Vec<u8> {
    let start = (item * DIGITS_PER_NUMBER + block) * BLOCK;
    batch.images.data()[start..start + BLOCK]
        .iter()
        .map(|&pixel| (pixel * 255.0).round() as u8)
        .collect()
}

/// Collects the distinct images of each digit in `images`.
fn images_by_digit(images: &LabeledImages) -> Vec<HashSet<Vec<u8>>> {
    let mut sets = vec![HashSet::new(); 10];
    for index in 0..images.len() {
        sets[images.label(index) as usize].insert(images.image(index).to_vec());
    }
    sets
}

#[test]
fn batch_shapes_and_ranges() {
    let data = sample();
    let mut generator = LargeMnistGenerator::new(&data.train, 7, 1).unwrap();
    assert_eq!(generator.sequence_len(), 7);
    let batch = generator.next_batch(4).unwrap();

    assert_eq!(batch.batch_size, 4);
    assert_eq!(batch.sequence_len, 7);
    assert_eq!(batch.images.dims(), &[28, 1, 4 * ROWS, COLS]);
    assert_eq!(batch.numbers.len(), 28);
    assert_eq!(batch.permutations.len(), 28);
    assert_eq!(batch.digit_images.len(), 28 * DIGITS_PER_NUMBER);
    assert!(batch.numbers.iter().all(|&number| number < NUMBER_RANGE));
    assert!(batch
        .images
        .data()
        .iter()
        .all(|&pixel| (0.0..=1.0).contains(&pixel)));
    assert_eq!(batch.numbers_tensor().dims(), &[4, 7]);
    assert_eq!(
        batch.numbers_tensor().get(&[1, 2]),
        Some(batch.numbers[9] as f32)
    );
}

#[test]
fn digit_blocks_show_the_number() {
    let data = sample();
    let known = images_by_digit(&data.train);
    let mut generator = LargeMnistGenerator::new(&data.train, 6, 7).unwrap();
    let batch = generator.next_batch(5).unwrap();

    for item in 0..30 {
        let digits = digits_most_significant_first(batch.numbers[item]);
        for (block, &digit) in digits.iter().enumerate() {
            let pixels = block_bytes(&batch, item, block);
            let source = batch.digit_images[item * DIGITS_PER_NUMBER + block];
            assert_eq!(data.train.label(source) as usize, digit, "item {item}");
            assert_eq!(
                pixels,
                data.train.image(source),
                "item {item} block {block}"
            );
            assert!(
                known[digit].contains(&pixels),
                "item {item} block {block} is no image of digit {digit}"
            );
        }
    }
}

#[test]
fn permutations_sort_descending() {
    let data = sample();
    let mut generator = LargeMnistGenerator::new(&data.validation, 9, 3).unwrap();
    let batch = generator.next_batch(20).unwrap();

    for s in 0..batch.batch_size {
        let numbers = batch.numbers_row(s);
        let order = batch.permutation_row(s);
        assert_eq!(order, descending_permutation(numbers).as_slice());

        let mut seen = order.to_vec();
        seen.sort_unstable();
        assert_eq!(seen, (0..9).collect::<Vec<_>>(), "sequence {s}");
        for pair in order.windows(2) {
            let (first, second) = (numbers[pair[0]], numbers[pair[1]]);
            assert!(first >= second, "sequence {s}: {first} before {second}");
            if first == second {
                assert!(pair[0] < pair[1], "sequence {s}: tie out of index order");
            }
        }
    }
}

#[test]
fn generator_uses_only_its_split() {
    let data = sample();
    let validation = images_by_digit(&data.validation);
    let mut generator = LargeMnistGenerator::new(&data.validation, 5, 11).unwrap();
    let batch = generator.next_batch(8).unwrap();
    for item in 0..40 {
        let digits = digits_most_significant_first(batch.numbers[item]);
        for (block, &digit) in digits.iter().enumerate() {
            assert!(validation[digit].contains(&block_bytes(&batch, item, block)));
        }
    }
}

#[test]
fn same_seed_same_batches() {
    let data = sample();
    let mut first = LargeMnistGenerator::new(&data.train, 5, 2024).unwrap();
    let mut second = LargeMnistGenerator::new(&data.train, 5, 2024).unwrap();
    for _ in 0..3 {
        let a = first.next_batch(4).unwrap();
        let b = second.next_batch(4).unwrap();
        assert_eq!(a.numbers, b.numbers);
        assert_eq!(a.digit_images, b.digit_images);
        assert!(a.images.bit_eq(&b.images));
    }
}

#[test]
fn different_seeds_and_batches_differ() {
    let data = sample();
    let mut first = LargeMnistGenerator::new(&data.train, 5, 1).unwrap();
    let mut second = LargeMnistGenerator::new(&data.train, 5, 2).unwrap();
    let a = first.next_batch(4).unwrap();
    let b = second.next_batch(4).unwrap();
    assert_ne!(a.numbers, b.numbers);

    let next = first.next_batch(4).unwrap();
    assert_ne!(a.numbers, next.numbers);
}

#[test]
fn numbers_cover_the_range() {
    let data = sample();
    let mut generator = LargeMnistGenerator::new(&data.train, 100, 5).unwrap();
    let batch = generator.next_batch(20).unwrap();
    // 2,000 uniform draws from 0..=9999 put about 200 in each tenth; 100 is far below that.
    let mut per_tenth = [0usize; 10];
    for &number in &batch.numbers {
        per_tenth[(number / 1000) as usize] += 1;
    }
    for (tenth, &count) in per_tenth.iter().enumerate() {
        assert!(
            count > 100,
            "only {count} numbers in {tenth}000..{tenth}999"
        );
    }
}

#[test]
fn invalid_arguments_are_rejected() {
    let data = sample();
    let error = LargeMnistGenerator::new(&data.train, 0, 1).unwrap_err();
    assert!(matches!(error, Error::InvalidArgument { .. }), "{error}");

    let mut generator = LargeMnistGenerator::new(&data.train, 3, 1).unwrap();
    let error = generator.next_batch(0).unwrap_err();
    assert!(error.to_string().contains("sequences = 0"), "{error}");

    let zeros_and_ones: Vec<usize> = (0..data.train.len())
        .filter(|&index| data.train.label(index) <= 1)
        .collect();
    let partial = data.train.select(&zeros_and_ones);
    let error = LargeMnistGenerator::new(&partial, 3, 1).unwrap_err();
    assert!(error.to_string().contains("no image of digit 2"), "{error}");
}
