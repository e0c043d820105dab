//! Checkpoints in the safetensors format.
//!
//! A checkpoint stores each parameter under its [`Module`] name, in the model's element type,
//! so `safetensors.torch.load_file` reads it into a PyTorch `state_dict`. Optimiser buffers are
//! stored under `"optimizer.{parameter}.{buffer}"`, and the optimiser's kind and step count in
//! the header metadata under `"optimizer"` and `"optimizer.steps"`.

use std::collections::HashMap;
use std::path::Path;

use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

use crate::error::{Error, Result};
use crate::float::Float;
use crate::nn::{Module, Optimizer, OptimizerState};
use crate::shape::Shape;
use crate::tensor::Tensor;

const OPTIMIZER_PREFIX: &str = "optimizer.";
const OPTIMIZER_KIND_KEY: &str = "optimizer";
const OPTIMIZER_STEPS_KEY: &str = "optimizer.steps";

fn checkpoint_error(path: &Path, message: impl Into<String>) -> Error {
    Error::Checkpoint {
        path: path.display().to_string(),
        message: message.into(),
    }
}

fn dtype_of<T: Float>() -> Dtype {
    if T::DTYPE == "F32" {
        Dtype::F32
    } else {
        Dtype::F64
    }
}

fn to_le_bytes<T: Float>(data: &[T]) -> Vec<u8> {
    match dtype_of::<T>() {
        Dtype::F32 => data
            .iter()
            .flat_map(|x| (x.as_f64() as f32).to_le_bytes())
            .collect(),
        _ => data.iter().flat_map(|x| x.as_f64().to_le_bytes()).collect(),
    }
}

/// Decodes a stored tensor, which must have the element type `T` and finite elements.
fn decode<T: Float>(path: &Path, name: &str, view: &TensorView<'_>) -> Result<Tensor<T>> {
    if view.dtype() != dtype_of::<T>() {
        return Err(checkpoint_error(
            path,
            format!(
                "tensor {name:?} is stored as {:?} but the model uses {}; load it into a model of that type or convert the file",
                view.dtype(),
                T::DTYPE
            ),
        ));
    }
    let bytes = view.data();
    let data: Vec<T> = match view.dtype() {
        Dtype::F32 => bytes
            .chunks_exact(4)
            .map(|b| T::from_f64(f32::from_le_bytes(b.try_into().expect("4 bytes")) as f64))
            .collect(),
        _ => bytes
            .chunks_exact(8)
            .map(|b| T::from_f64(f64::from_le_bytes(b.try_into().expect("8 bytes"))))
            .collect(),
    };
    let t = Tensor::from_vec(data, view.shape().to_vec())
        .map_err(|e| checkpoint_error(path, format!("tensor {name:?}: {e}")))?;
    if let Some(index) = t.first_non_finite() {
        return Err(checkpoint_error(
            path,
            format!(
                "tensor {name:?} contains {} at flat index {index}, but checkpoints must contain finite values; the file is corrupt or was saved after training diverged",
                t.data()[index]
            ),
        ));
    }
    Ok(t)
}

/// Writes the parameters of `model`, and the state of `optimizer` if given, to `path`.
///
/// ```
/// use autograd::nn::{load_checkpoint, save_checkpoint, Linear};
/// use rand::{rngs::StdRng, SeedableRng};
///
/// let path = std::env::temp_dir().join(format!("linear-doc-{}.safetensors", std::process::id()));
/// let saved = Linear::<f32>::new(3, 2, true, &mut StdRng::seed_from_u64(0))?;
/// save_checkpoint(&path, &saved, None)?;
/// let mut loaded = Linear::<f32>::new(3, 2, true, &mut StdRng::seed_from_u64(1))?;
/// load_checkpoint(&path, &mut loaded, None)?;
/// assert!(loaded.weight.bit_eq(&saved.weight));
/// # std::fs::remove_file(&path).unwrap();
/// # Ok::<(), autograd::Error>(())
/// ```
///
/// # Errors
/// [`Error::Checkpoint`] if a parameter name starts with `"optimizer."` (reserved for the
/// optimiser's buffers), appears twice, or the file cannot be written.
pub fn save_checkpoint<T: Float>(
    path: impl AsRef<Path>,
    model: &dyn Module<T>,
    optimizer: Option<&dyn Optimizer<T>>,
) -> Result<()> {
    let path = path.as_ref();
    let mut entries: Vec<(String, Shape, Vec<u8>)> = Vec::new();
    for (name, t) in model.named_parameters() {
        if name.starts_with(OPTIMIZER_PREFIX) {
            return Err(checkpoint_error(
                path,
                format!("parameter name {name:?} uses the prefix {OPTIMIZER_PREFIX:?}, which is reserved for optimiser state; rename the field"),
            ));
        }
        entries.push((name, t.shape().clone(), to_le_bytes(t.data())));
    }
    let mut metadata = HashMap::new();
    if let Some(optimizer) = optimizer {
        let state = optimizer.state();
        metadata.insert(OPTIMIZER_KIND_KEY.to_string(), state.kind);
        metadata.insert(OPTIMIZER_STEPS_KEY.to_string(), state.steps.to_string());
        for (name, t) in state.tensors {
            entries.push((
                format!("{OPTIMIZER_PREFIX}{name}"),
                t.shape().clone(),
                to_le_bytes(t.data()),
            ));
        }
    }
    let mut seen = std::collections::HashSet::new();
    for (name, _, _) in &entries {
        if !seen.insert(name.as_str()) {
            return Err(checkpoint_error(
                path,
                format!(
                    "the tensor name {name:?} appears twice; give every parameter a distinct name"
                ),
            ));
        }
    }
    let views = entries
        .iter()
        .map(|(name, shape, bytes)| {
            TensorView::new(dtype_of::<T>(), shape.dims().to_vec(), bytes)
                .map(|view| (name.clone(), view))
        })
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| checkpoint_error(path, format!("cannot encode a tensor: {e}")))?;
    let metadata = (!metadata.is_empty()).then_some(metadata);
    safetensors::serialize_to_file(views, &metadata, path).map_err(|e| {
        // safetensors prints its I/O errors in their debug form; the I/O error itself reads
        // better ("No such file or directory").
        let reason = match &e {
            safetensors::SafeTensorError::IoError(io) => io.to_string(),
            other => other.to_string(),
        };
        checkpoint_error(path, format!("writing failed: {reason}"))
    })
}

/// Reads the parameters of `model`, and the state of `optimizer` if given, from `path`.
///
/// Every parameter must be present with the model's element type and shape; nothing is
/// changed unless the whole checkpoint matches.
///
/// # Errors
/// [`Error::Checkpoint`] naming the tensor in these cases:
/// - the file cannot be read or parsed (truncated or corrupt);
/// - a parameter is missing, or has another shape or element type;
/// - a parameter or optimiser buffer contains NaN or ±∞ (the message gives the first flat
///   index);
/// - the file contains a parameter the model does not have;
/// - the optimiser state is missing, of another kind, or does not match the parameters.
pub fn load_checkpoint<T: Float>(
    path: impl AsRef<Path>,
    model: &mut dyn Module<T>,
    optimizer: Option<&mut dyn Optimizer<T>>,
) -> Result<()> {
    let path = path.as_ref();
    let bytes =
        std::fs::read(path).map_err(|e| checkpoint_error(path, format!("reading failed: {e}")))?;
    let file = SafeTensors::deserialize(&bytes).map_err(|e| {
        checkpoint_error(
            path,
            format!("not a valid safetensors file (truncated or corrupt?): {e:?}"),
        )
    })?;
    let (_, header) = SafeTensors::read_metadata(&bytes)
        .map_err(|e| checkpoint_error(path, format!("invalid header: {e:?}")))?;

    let mut loaded: Vec<Tensor<T>> = Vec::new();
    let mut expected: std::collections::HashSet<String> = std::collections::HashSet::new();
    for (name, param) in model.named_parameters() {
        let view = file.tensor(&name).map_err(|_| {
            checkpoint_error(
                path,
                format!("parameter {name:?} is missing; the file was saved from another model"),
            )
        })?;
        let t = decode::<T>(path, &name, &view)?;
        if t.shape() != param.shape() {
            return Err(checkpoint_error(
                path,
                format!(
                    "parameter {name:?} has shape {} in the file but {} in the model",
                    t.shape(),
                    param.shape()
                ),
            ));
        }
        expected.insert(name);
        loaded.push(t);
    }
    for name in file.names() {
        if !name.starts_with(OPTIMIZER_PREFIX) && !expected.contains(name.as_str()) {
            return Err(checkpoint_error(
                path,
                format!("the file contains {name:?}, which the model does not have; the file was saved from another model"),
            ));
        }
    }

    let state = match &optimizer {
        None => None,
        Some(_) => Some(read_optimizer_state::<T>(
            path,
            &file,
            header.metadata(),
            model,
        )?),
    };
    if let (Some(optimizer), Some(state)) = (optimizer, state) {
        optimizer.load_state(state).map_err(|e| match e {
            Error::Checkpoint { message, .. } => checkpoint_error(path, message),
            other => other,
        })?;
    }
    for ((_, param), t) in model.named_parameters_mut().into_iter().zip(loaded) {
        *param = t;
    }
    Ok(())
}

fn read_optimizer_state<T: Float>(
    path: &Path,
    file: &SafeTensors<'_>,
    metadata: &Option<HashMap<String, String>>,
    model: &dyn Module<T>,
) -> Result<OptimizerState<T>> {
    let metadata = metadata.as_ref();
    let kind = metadata.and_then(|m| m.get(OPTIMIZER_KIND_KEY)).ok_or_else(|| {
        checkpoint_error(path, "the file contains no optimiser state because it was saved without an optimiser; load it with optimizer None")
    })?;
    let steps = metadata
        .and_then(|m| m.get(OPTIMIZER_STEPS_KEY))
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or_else(|| checkpoint_error(path, "the optimiser step count is missing or invalid"))?;
    let shapes: HashMap<String, Shape> = model
        .named_parameters()
        .into_iter()
        .map(|(name, t)| (name, t.shape().clone()))
        .collect();
    let mut tensors = Vec::new();
    let mut names: Vec<&String> = file.names();
    names.sort();
    for name in names {
        let Some(state_name) = name.strip_prefix(OPTIMIZER_PREFIX) else {
            continue;
        };
        let view = file
            .tensor(name)
            .map_err(|e| checkpoint_error(path, format!("tensor {name:?}: {e:?}")))?;
        let t = decode::<T>(path, name, &view)?;
        let param = state_name.rsplit_once('.').map(|(p, _)| p).unwrap_or("");
        match shapes.get(param) {
            Some(shape) if shape == t.shape() => {}
            Some(shape) => {
                return Err(checkpoint_error(
                    path,
                    format!(
                        "optimiser buffer {name:?} has shape {} but parameter {param:?} has shape {shape}",
                        t.shape()
                    ),
                ))
            }
            None => {
                return Err(checkpoint_error(
                    path,
                    format!("optimiser buffer {name:?} belongs to no parameter of the model"),
                ))
            }
        }
        tensors.push((state_name.to_string(), t));
    }
    Ok(OptimizerState {
        kind: kind.clone(),
        steps,
        tensors,
    })
}
