//! Reading and writing IDX files, the format of MNIST and Fashion-MNIST.
//!
//! An IDX file starts with a big-endian `u32` magic number `0x0000TTDD`, where `TT` is the element
//! type (`0x08` for unsigned bytes) and `DD` the number of dimensions. Then follow `DD`
//! big-endian `u32` dimension lengths and the elements in row-major order, and nothing else.
//! Image files are 3-D (count, rows, columns), magic `0x00000803`. Label files are 1-D (count),
//! magic `0x00000801`. A file may be gzip-compressed as a whole, which is detected by the gzip
//! magic bytes `1f 8b` at its start, whatever its name.
//!
//! ```
//! use experiments::idx::{encode_images, parse_images, IdxImages};
//!
//! let images = IdxImages::new(2, 2, 3, (0..12).collect())?;
//! let bytes = encode_images(&images);
//! assert_eq!(bytes.len(), 16 + 12); // 4-byte magic, three 4-byte dimensions, 12 pixels
//! let parsed = parse_images(&bytes, "in-memory")?;
//! assert_eq!(parsed.image(1), &[6, 7, 8, 9, 10, 11]);
//! # Ok::<(), experiments::Error>(())
//! ```

use std::io::{self, Read, Write};
use std::path::Path;

use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;

use crate::error::{Error, Result};

/// The magic number of an IDX file of unsigned-byte images: type `0x08`, 3 dimensions.
pub const IMAGES_MAGIC: u32 = 0x0000_0803;

/// The magic number of an IDX file of unsigned-byte labels: type `0x08`, 1 dimension.
pub const LABELS_MAGIC: u32 = 0x0000_0801;

/// The largest class label of MNIST and Fashion-MNIST (labels are `0..=9`).
pub const MAX_LABEL: u8 = 9;

/// The first two bytes of every gzip stream (RFC 1952).
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// An upper bound on the memory reserved before reading the elements, so that a corrupt header
/// declaring huge dimensions cannot make the reader reserve it all up front. Larger files still
/// load, only with reallocations.
const MAX_UPFRONT_RESERVE: usize = 64 << 20;

/// A stack of grayscale images with one byte per pixel, as stored in an IDX image file.
///
/// Image `i` occupies `pixels[i·rows·cols .. (i+1)·rows·cols]`, row by row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdxImages {
    count: usize,
    rows: usize,
    cols: usize,
    pixels: Vec<u8>,
}

impl IdxImages {
    /// Builds an image stack from its dimensions and row-major pixels.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `pixels.len() != count · rows · cols` or if `rows` or `cols`
    /// is zero.
    pub fn new(count: usize, rows: usize, cols: usize, pixels: Vec<u8>) -> Result<Self> {
        if rows == 0 || cols == 0 {
            return Err(Error::invalid(
                "IdxImages::new",
                "rows × cols",
                format!("{rows} × {cols}"),
                "images need at least one row and one column",
            ));
        }
        let expected = count.checked_mul(rows * cols);
        if expected != Some(pixels.len()) {
            return Err(Error::invalid(
                "IdxImages::new",
                "pixels.len()",
                pixels.len(),
                format!("{count} images of {rows} × {cols} pixels need count · rows · cols bytes"),
            ));
        }
        Ok(IdxImages {
            count,
            rows,
            cols,
            pixels,
        })
    }

    /// The number of images.
    pub fn count(&self) -> usize {
        self.count
    }

    /// The number of pixel rows of each image.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The number of pixel columns of each image.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// All pixels, image after image, each image row by row.
    pub fn pixels(&self) -> &[u8] {
        &self.pixels
    }

    /// The pixels of image `index`, row by row.
    ///
    /// # Panics
    /// If `index >= self.count()`.
    pub fn image(&self, index: usize) -> &[u8] {
        let size = self.rows * self.cols;
        &self.pixels[index * size..(index + 1) * size]
    }

    /// Splits the stack into its dimensions and pixels.
    pub fn into_parts(self) -> (usize, usize, usize, Vec<u8>) {
        (self.count, self.rows, self.cols, self.pixels)
    }
}

/// Reads an IDX image file, raw or gzip-compressed.
///
/// # Errors
/// [`Error::Io`] if the file cannot be read, [`Error::Idx`] (naming the file) if its magic
/// number is not [`IMAGES_MAGIC`], a dimension is zero, the gzip stream is corrupt, or its length
/// differs from the one the header declares.
pub fn read_images(path: &Path) -> Result<IdxImages> {
    let bytes = read_file(path)?;
    parse_images(&bytes, &path.display().to_string())
}

/// Reads an IDX label file, raw or gzip-compressed, and checks that every label is at most
/// [`MAX_LABEL`].
///
/// # Errors
/// As [`read_images`], with [`LABELS_MAGIC`], and [`Error::Idx`] for a label above 9.
pub fn read_labels(path: &Path) -> Result<Vec<u8>> {
    let bytes = read_file(path)?;
    parse_labels(&bytes, &path.display().to_string())
}

/// Parses the bytes of an IDX image file, raw or gzip-compressed. `source_name` names the data
/// in error messages.
///
/// # Errors
/// As [`read_images`].
pub fn parse_images(bytes: &[u8], source_name: &str) -> Result<IdxImages> {
    let (dims, pixels) = parse_idx(bytes, source_name, &IMAGES_FORMAT)?;
    Ok(IdxImages {
        count: dims[0],
        rows: dims[1],
        cols: dims[2],
        pixels,
    })
}

/// Parses the bytes of an IDX label file, raw or gzip-compressed, and checks that every label is
/// at most [`MAX_LABEL`]. `source_name` names the data in error messages.
///
/// # Errors
/// As [`read_labels`].
pub fn parse_labels(bytes: &[u8], source_name: &str) -> Result<Vec<u8>> {
    let (_, labels) = parse_idx(bytes, source_name, &LABELS_FORMAT)?;
    if let Some(index) = labels.iter().position(|&label| label > MAX_LABEL) {
        return Err(Error::idx(
            source_name,
            format!(
                "label {} at index {index} is out of range; labels must be 0..={MAX_LABEL}",
                labels[index]
            ),
        ));
    }
    Ok(labels)
}

/// Encodes images as an uncompressed IDX image file.
pub fn encode_images(images: &IdxImages) -> Vec<u8> {
    let dims = [images.count, images.rows, images.cols];
    encode_idx(IMAGES_MAGIC, &dims, &images.pixels)
}

/// Encodes labels as an uncompressed IDX label file.
pub fn encode_labels(labels: &[u8]) -> Vec<u8> {
    encode_idx(LABELS_MAGIC, &[labels.len()], labels)
}

/// Compresses bytes with gzip at the highest compression level.
///
/// The gzip header stores no file name and a modification time of 0, so equal input gives equal
/// output for a given version of the `flate2` crate and its backend.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
    encoder
        .write_all(bytes)
        .expect("writing into a Vec<u8> cannot fail");
    encoder
        .finish()
        .expect("writing into a Vec<u8> cannot fail")
}

/// The expected magic number and dimension names of one kind of IDX file.
struct IdxFormat {
    magic: u32,
    what: &'static str,
    dim_names: &'static [&'static str],
}

const IMAGES_FORMAT: IdxFormat = IdxFormat {
    magic: IMAGES_MAGIC,
    what: "image",
    dim_names: &["images", "rows", "columns"],
};

const LABELS_FORMAT: IdxFormat = IdxFormat {
    magic: LABELS_MAGIC,
    what: "label",
    dim_names: &["labels"],
};

fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn encode_idx(magic: u32, dims: &[usize], elements: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(4 + 4 * dims.len() + elements.len());
    bytes.extend_from_slice(&magic.to_be_bytes());
    for &dim in dims {
        let dim = u32::try_from(dim).expect("an IDX dimension must fit in a u32");
        bytes.extend_from_slice(&dim.to_be_bytes());
    }
    bytes.extend_from_slice(elements);
    bytes
}

/// Parses an IDX file of the given format and returns its dimensions and elements.
fn parse_idx(bytes: &[u8], source_name: &str, format: &IdxFormat) -> Result<(Vec<usize>, Vec<u8>)> {
    let gzipped = bytes.starts_with(&GZIP_MAGIC);
    let mut reader: Box<dyn Read + '_> = if gzipped {
        Box::new(MultiGzDecoder::new(bytes))
    } else {
        Box::new(bytes)
    };
    // Sizes below count decompressed bytes for a gzip file.
    let length_kind = if gzipped {
        "decompressed length"
    } else {
        "file length"
    };
    let gzip_error = |error: io::Error| {
        Error::idx(
            source_name,
            format!("the gzip stream is corrupt or truncated: {error}"),
        )
    };

    let header_len = 4 + 4 * format.dim_names.len();
    let mut header = vec![0u8; header_len];
    let header_read = read_up_to(&mut reader, &mut header).map_err(gzip_error)?;
    if header_read < 4 {
        return Err(Error::idx(
            source_name,
            format!("{length_kind} is {header_read} bytes, too short for the 4-byte magic number"),
        ));
    }
    let magic = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
    if magic != format.magic {
        return Err(Error::idx(source_name, magic_mismatch(magic, format)));
    }
    if header_read < header_len {
        return Err(Error::idx(
            source_name,
            format!(
                "{length_kind} is {header_read} bytes, too short for the {header_len}-byte header \
                 of an IDX {} file",
                format.what
            ),
        ));
    }

    let mut dims = Vec::with_capacity(format.dim_names.len());
    for (axis, name) in format.dim_names.iter().enumerate() {
        let start = 4 + 4 * axis;
        let field = [
            header[start],
            header[start + 1],
            header[start + 2],
            header[start + 3],
        ];
        let dim = u32::from_be_bytes(field) as usize;
        if dim == 0 {
            return Err(Error::idx(
                source_name,
                format!("the header declares 0 {name}; every dimension must be at least 1"),
            ));
        }
        dims.push(dim);
    }
    let declared = describe_dims(&dims, format);
    let body_len = dims
        .iter()
        .try_fold(1usize, |acc, &dim| acc.checked_mul(dim))
        .ok_or_else(|| {
            Error::idx(
                source_name,
                format!("the header declares {declared}, too many bytes to address"),
            )
        })?;
    let expected_len = header_len.saturating_add(body_len);

    // Reading one byte past the declared length detects data that is too long without
    // decompressing an arbitrarily long stream.
    let mut body = Vec::with_capacity(body_len.min(MAX_UPFRONT_RESERVE));
    reader
        .take(body_len as u64 + 1)
        .read_to_end(&mut body)
        .map_err(gzip_error)?;
    if body.len() < body_len {
        return Err(Error::idx(
            source_name,
            format!(
                "truncated: the header declares {declared}, so the {length_kind} should be \
                 {expected_len} bytes, but it is {} bytes",
                header_len + body.len()
            ),
        ));
    }
    if body.len() > body_len {
        let found = if gzipped {
            format!("the data goes on past {expected_len} bytes")
        } else {
            format!("it is {} bytes", bytes.len())
        };
        return Err(Error::idx(
            source_name,
            format!(
                "wrong length: the header declares {declared}, so the {length_kind} should be \
                 {expected_len} bytes, but {found}"
            ),
        ));
    }
    Ok((dims, body))
}

/// Reads until `buffer` is full or the reader is exhausted and returns the number of bytes read.
fn read_up_to(reader: &mut impl Read, buffer: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match reader.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(read) => filled += read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(filled)
}

fn magic_mismatch(magic: u32, format: &IdxFormat) -> String {
    let hint = match magic {
        IMAGES_MAGIC => "that of an IDX image file".to_string(),
        LABELS_MAGIC => "that of an IDX label file".to_string(),
        _ if magic >> 16 == 0 => format!(
            "an IDX file with element type 0x{:02x} and {} dimensions",
            (magic >> 8) & 0xff,
            magic & 0xff
        ),
        _ => "not an IDX file (the first two bytes of an IDX file are zero)".to_string(),
    };
    format!(
        "magic number 0x{magic:08x} is {hint}, expected 0x{:08x} for an IDX {} file \
         (unsigned bytes, {} dimensions)",
        format.magic,
        format.what,
        format.dim_names.len()
    )
}

fn describe_dims(dims: &[usize], format: &IdxFormat) -> String {
    let parts: Vec<String> = dims
        .iter()
        .zip(format.dim_names)
        .map(|(dim, name)| format!("{dim} {name}"))
        .collect();
    parts.join(" × ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_images() -> IdxImages {
        IdxImages::new(3, 2, 4, (0..24).collect()).unwrap()
    }

    fn idx_message(result: Result<impl std::fmt::Debug>) -> String {
        match result {
            Err(error @ Error::Idx { .. }) => error.to_string(),
            other => panic!("expected an IDX error, got {other:?}"),
        }
    }

    #[test]
    fn images_round_trip_raw() {
        let images = sample_images();
        let parsed = parse_images(&encode_images(&images), "raw").unwrap();
        assert_eq!(parsed, images);
        assert_eq!(parsed.image(2), &(16..24).collect::<Vec<u8>>()[..]);
    }

    #[test]
    fn images_round_trip_gzip() {
        let images = sample_images();
        let compressed = gzip(&encode_images(&images));
        assert_eq!(&compressed[..2], &GZIP_MAGIC);
        assert_eq!(parse_images(&compressed, "gz").unwrap(), images);
    }

    #[test]
    fn labels_round_trip_raw_and_gzip() {
        let labels = vec![0, 9, 3, 3, 7];
        let raw = encode_labels(&labels);
        assert_eq!(parse_labels(&raw, "raw").unwrap(), labels);
        assert_eq!(parse_labels(&gzip(&raw), "gz").unwrap(), labels);
    }

    #[test]
    fn gzip_output_is_deterministic() {
        let raw = encode_images(&sample_images());
        assert_eq!(gzip(&raw), gzip(&raw));
    }

    #[test]
    fn label_file_as_images_is_rejected() {
        let message = idx_message(parse_images(&encode_labels(&[1, 2]), "labels.idx"));
        assert!(
            message.starts_with("labels.idx: invalid IDX file"),
            "{message}"
        );
        assert!(message.contains("0x00000801"), "{message}");
        assert!(message.contains("expected 0x00000803"), "{message}");
    }

    #[test]
    fn foreign_magic_is_rejected() {
        let mut bytes = encode_labels(&[1, 2]);
        bytes[..4].copy_from_slice(b"PK\x03\x04");
        let message = idx_message(parse_labels(&bytes, "zip"));
        assert!(message.contains("not an IDX file"), "{message}");
    }

    #[test]
    fn truncated_images_are_rejected() {
        let bytes = encode_images(&sample_images());
        let message = idx_message(parse_images(&bytes[..bytes.len() - 5], "short"));
        assert!(message.contains("truncated"), "{message}");
        assert!(
            message.contains("3 images × 2 rows × 4 columns"),
            "{message}"
        );
        assert!(
            message.contains("should be 40 bytes, but it is 35 bytes"),
            "{message}"
        );
    }

    #[test]
    fn truncated_header_is_rejected() {
        let bytes = encode_images(&sample_images());
        let message = idx_message(parse_images(&bytes[..10], "header"));
        assert!(
            message.contains("too short for the 16-byte header"),
            "{message}"
        );
        let message = idx_message(parse_images(&bytes[..2], "tiny"));
        assert!(
            message.contains("too short for the 4-byte magic"),
            "{message}"
        );
    }

    #[test]
    fn trailing_bytes_are_rejected() {
        let mut bytes = encode_labels(&[1, 2, 3]);
        bytes.push(0);
        let message = idx_message(parse_labels(&bytes, "long"));
        assert!(message.contains("wrong length"), "{message}");
        assert!(
            message.contains("should be 11 bytes, but it is 12 bytes"),
            "{message}"
        );

        let message = idx_message(parse_labels(&gzip(&bytes), "long.gz"));
        assert!(
            message.contains("decompressed length should be 11"),
            "{message}"
        );
    }

    #[test]
    fn truncated_gzip_stream_is_rejected() {
        let compressed = gzip(&encode_images(&sample_images()));
        let message = idx_message(parse_images(&compressed[..compressed.len() - 8], "cut.gz"));
        assert!(message.starts_with("cut.gz: invalid IDX file"), "{message}");
        assert!(message.contains("truncated"), "{message}");
    }

    #[test]
    fn zero_dimension_is_rejected() {
        let mut bytes = encode_images(&sample_images());
        bytes[8..12].copy_from_slice(&0u32.to_be_bytes());
        let message = idx_message(parse_images(&bytes, "zero"));
        assert!(message.contains("declares 0 rows"), "{message}");
    }

    #[test]
    fn label_above_nine_is_rejected() {
        let message = idx_message(parse_labels(&encode_labels(&[3, 9, 10, 4]), "bad"));
        assert!(message.contains("label 10 at index 2"), "{message}");
    }

    #[test]
    fn image_stack_checks_pixel_count() {
        assert!(IdxImages::new(2, 2, 2, vec![0; 7]).is_err());
        assert!(IdxImages::new(1, 0, 2, vec![]).is_err());
        assert!(IdxImages::new(0, 2, 2, vec![]).is_ok());
    }
}
