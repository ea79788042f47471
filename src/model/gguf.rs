//! LusNet model files: GGUF with the model's description in the metadata.
//!
//! Metadata keys (all under `lusnet.` except `general.architecture`):
//! `version`, `input_size`, `history_step` (absent before 2.5D input: 0), `widths`, `norm_mean`, `norm_std`,
//! `seg_classes`, `aggregation`, `training_data`, `licenses`, `cv_metrics`,
//! `tensors_sha256` and `content_sha256`. Each layer `L` stores `L.weight`
//! (`[out, K]`, Q8_0 in shipped files, F32 in parity fixtures) and `L.bias`
//! (F32).
//!
//! Reading verifies, in this order:
//!
//! 1. that the file parses as GGUF (candle bounds every declared length by
//!    the file's size, so a flipped length cannot allocate gigabytes);
//! 2. `content_sha256`: a sha256 over every metadata key and value (all but
//!    itself) and every tensor's name, type, shape and bytes, i.e. over
//!    everything that can change what the network computes. One flipped bit
//!    anywhere in it refuses the file. Bytes outside it (alignment padding,
//!    the order of entries) cannot change inference;
//! 3. the architecture and every metadata key, and that each value is in
//!    the range this build supports ([`ModelMeta::check`]): a file that was
//!    damaged and then re-sealed, or written by a broken trainer, is still
//!    refused before any buffer is sized from it;
//! 4. every tensor's shape, when the network is built.
//!
//! A damaged or foreign file is refused with a message that names it,
//! instead of producing garbage.

use super::{ARCHITECTURE, LUSNET_VERSION, ModelError, ModelMeta};
use crate::atomic_write::{Durability, write_atomically};
use candle_core::quantized::QTensor;
use candle_core::quantized::gguf_file::{self, Value};
use candle_core::{Device, Tensor};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read, Seek};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Largest model file read: the widest LusNet this build accepts
/// ([`super::MAX_WIDTH`] channels) holds about 100 MB of Q8_0 weights;
/// the shipped one is 0.5 MB. A larger file would only cost memory.
pub const MAX_MODEL_BYTES: u64 = 256 << 20;

/// A model file in memory: its description and its tensors by name.
#[derive(Debug)]
pub struct ModelFile {
    /// Where it was read from (for messages).
    pub path: PathBuf,
    /// The description.
    pub meta: ModelMeta,
    /// The tensors by name.
    pub tensors: BTreeMap<String, Arc<QTensor>>,
}

impl ModelFile {
    /// Reads and verifies a GGUF model file: a regular file of at most
    /// [`MAX_MODEL_BYTES`].
    pub fn read(path: &Path) -> Result<Self, ModelError> {
        let file = File::open(path).map_err(|e| ModelError::opening(path, e))?;
        let corrupt = |reason: String| ModelError::Corrupt {
            path: path.to_path_buf(),
            format: "GGUF",
            reason,
        };
        let metadata = file.metadata().map_err(|e| ModelError::opening(path, e))?;
        if !metadata.is_file() {
            return Err(corrupt("not a regular file".into()));
        }
        if metadata.len() > MAX_MODEL_BYTES {
            return Err(corrupt(format!(
                "{} bytes, more than the {} MiB any LusNet this build runs can need",
                metadata.len(),
                MAX_MODEL_BYTES >> 20
            )));
        }
        Self::read_from(path, BufReader::new(file))
    }

    /// Reads and verifies a model from `reader`; `path` names it in errors.
    pub fn read_from(path: &Path, mut reader: impl Read + Seek) -> Result<Self, ModelError> {
        let pathbuf = path.to_path_buf();
        let corrupt = |reason: String| ModelError::Corrupt {
            path: pathbuf.clone(),
            format: "GGUF",
            reason,
        };
        let content = gguf_file::Content::read(&mut reader)
            .map_err(|e| corrupt(crate::model::candle_message(&e)))?;
        let mut tensors = BTreeMap::new();
        for name in content.tensor_infos.keys() {
            let tensor = content
                .tensor(&mut reader, name, &Device::Cpu)
                .map_err(|e| {
                    corrupt(format!(
                        "tensor '{name}': {}",
                        crate::model::candle_message(&e)
                    ))
                })?;
            tensors.insert(name.clone(), Arc::new(tensor));
        }
        let architecture = check_architecture(path, &content.metadata)?;
        let tensors_digest = tensors_sha256(&tensors)?;
        let sealed = content
            .metadata
            .get(&content_key())
            .and_then(|v| v.to_string().ok())
            .ok_or_else(|| ModelError::Metadata {
                path: pathbuf.clone(),
                key: format!(
                    "{} (written before whole-file checksums; import the weights again)",
                    content_key()
                ),
            })?;
        let found = content_sha256(&content.metadata, &tensors_digest);
        if &found != sealed {
            return Err(ModelError::Checksum {
                path: pathbuf,
                expected: sealed.clone(),
                found,
            });
        }
        let meta = read_meta(path, architecture, &content.metadata)?;
        if tensors_digest != meta.tensors_sha256 {
            return Err(ModelError::Checksum {
                path: pathbuf,
                expected: meta.tensors_sha256,
                found: tensors_digest,
            });
        }
        Ok(Self {
            path: pathbuf,
            meta,
            tensors,
        })
    }

    /// Writes the model to `path`, filling in the tensor checksum. The file
    /// is written beside its destination and renamed into place, so a crash
    /// never leaves half a model behind.
    pub fn write(&mut self, path: &Path) -> Result<(), ModelError> {
        let io = |source| ModelError::Io {
            path: path.to_path_buf(),
            cause: source,
        };
        self.meta.tensors_sha256 = tensors_sha256(&self.tensors)?;
        let mut metadata = meta_values(&self.meta);
        let values: std::collections::HashMap<String, Value> = metadata.iter().cloned().collect();
        metadata.push((
            content_key(),
            Value::String(content_sha256(&values, &self.meta.tensors_sha256)),
        ));
        let metadata: Vec<(&str, &Value)> = metadata.iter().map(|(k, v)| (k.as_str(), v)).collect();
        let tensors: Vec<(&str, &QTensor)> = self
            .tensors
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_ref()))
            .collect();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        write_atomically(path, Durability::Synced, |out| {
            gguf_file::write(out, &metadata, &tensors).map_err(std::io::Error::other)
        })
        .map_err(io)
    }

    /// The tensor called `name`.
    pub fn tensor(&self, name: &str) -> Result<Arc<QTensor>, ModelError> {
        self.tensors
            .get(name)
            .cloned()
            .ok_or_else(|| ModelError::Tensor {
                path: self.path.clone(),
                name: name.to_string(),
                reason: "missing".into(),
            })
    }

    /// The weight and bias of layer `name`, checking the weight's shape.
    pub fn layer(
        &self,
        name: &str,
        shape: (usize, usize),
    ) -> Result<(Arc<QTensor>, Tensor), ModelError> {
        let tensor_error = |tensor: &str, reason: String| ModelError::Tensor {
            path: self.path.clone(),
            name: tensor.to_string(),
            reason,
        };
        let weight_name = format!("{name}.weight");
        let bias_name = format!("{name}.bias");
        let weight = self.tensor(&weight_name)?;
        if weight.shape().dims() != [shape.0, shape.1] {
            return Err(tensor_error(
                &weight_name,
                format!(
                    "shape {:?}, expected {:?}",
                    weight.shape().dims(),
                    [shape.0, shape.1]
                ),
            ));
        }
        let bias = self.tensor(&bias_name)?.dequantize(&Device::Cpu)?;
        if bias.dims() != [shape.0] {
            return Err(tensor_error(
                &bias_name,
                format!("shape {:?}, expected [{}]", bias.dims(), shape.0),
            ));
        }
        Ok((weight, bias))
    }
}

/// sha256 over every tensor in name order: name, type, shape and bytes.
pub(super) fn tensors_sha256(
    tensors: &BTreeMap<String, Arc<QTensor>>,
) -> Result<String, ModelError> {
    let mut hasher = Sha256::new();
    for (name, tensor) in tensors {
        hasher.update((name.len() as u64).to_le_bytes());
        hasher.update(name.as_bytes());
        hasher.update(format!("{:?}", tensor.dtype()).as_bytes());
        for &dim in tensor.shape().dims() {
            hasher.update((dim as u64).to_le_bytes());
        }
        hasher.update(tensor.data()?.as_ref());
    }
    Ok(hex(hasher))
}

/// The metadata key of the whole-content checksum.
fn content_key() -> String {
    format!("{ARCHITECTURE}.content_sha256")
}

/// sha256 over every metadata entry but the content checksum itself (keys
/// in byte order, each value with its type), then the tensors' checksum.
fn content_sha256(
    metadata: &std::collections::HashMap<String, Value>,
    tensors_sha256: &str,
) -> String {
    let skip = content_key();
    let mut keys: Vec<&String> = metadata.keys().filter(|k| **k != skip).collect();
    keys.sort();
    let mut hasher = Sha256::new();
    for key in keys {
        hash_bytes(&mut hasher, key.as_bytes());
        hash_value(&mut hasher, &metadata[key]);
    }
    hash_bytes(&mut hasher, tensors_sha256.as_bytes());
    hex(hasher)
}

/// Feeds one metadata value, tagged with its type (GGUF's type codes), to
/// `hasher`.
fn hash_value(hasher: &mut Sha256, value: &Value) {
    let (tag, bytes): (u8, Vec<u8>) = match value {
        Value::U8(v) => (0, v.to_le_bytes().into()),
        Value::I8(v) => (1, v.to_le_bytes().into()),
        Value::U16(v) => (2, v.to_le_bytes().into()),
        Value::I16(v) => (3, v.to_le_bytes().into()),
        Value::U32(v) => (4, v.to_le_bytes().into()),
        Value::I32(v) => (5, v.to_le_bytes().into()),
        Value::F32(v) => (6, v.to_le_bytes().into()),
        Value::Bool(v) => (7, vec![u8::from(*v)]),
        Value::String(v) => {
            hasher.update([8]);
            hash_bytes(hasher, v.as_bytes());
            return;
        }
        Value::Array(items) => {
            hasher.update([9]);
            hasher.update((items.len() as u64).to_le_bytes());
            for item in items {
                hash_value(hasher, item);
            }
            return;
        }
        Value::U64(v) => (10, v.to_le_bytes().into()),
        Value::I64(v) => (11, v.to_le_bytes().into()),
        Value::F64(v) => (12, v.to_le_bytes().into()),
    };
    hasher.update([tag]);
    hasher.update(bytes);
}

/// Feeds a length-prefixed byte string to `hasher`.
fn hash_bytes(hasher: &mut Sha256, bytes: &[u8]) {
    hasher.update((bytes.len() as u64).to_le_bytes());
    hasher.update(bytes);
}

fn hex(hasher: Sha256) -> String {
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn meta_values(meta: &ModelMeta) -> Vec<(String, Value)> {
    let key = |k: &str| format!("{ARCHITECTURE}.{k}");
    let text = |s: &str| Value::String(s.to_string());
    vec![
        ("general.architecture".into(), text(&meta.architecture)),
        (key("version"), Value::U32(meta.version)),
        (key("input_size"), Value::U32(meta.input_size as u32)),
        (key("history_step"), Value::U32(meta.history_step as u32)),
        (
            key("widths"),
            Value::Array(meta.widths.iter().map(|&w| Value::U32(w as u32)).collect()),
        ),
        (key("norm_mean"), Value::F32(meta.norm_mean)),
        (key("norm_std"), Value::F32(meta.norm_std)),
        (
            key("seg_classes"),
            Value::Array(meta.seg_classes.iter().map(|c| text(c)).collect()),
        ),
        (key("aggregation"), text(&meta.aggregation)),
        (key("training_data"), text(&meta.training_data)),
        (key("licenses"), text(&meta.licenses)),
        (key("cv_metrics"), text(&meta.cv_metrics)),
        (key("tensors_sha256"), text(&meta.tensors_sha256)),
    ]
}

/// The file's architecture, when it is the LusNet version this build runs.
fn check_architecture(
    path: &Path,
    metadata: &std::collections::HashMap<String, Value>,
) -> Result<String, ModelError> {
    let missing = |key: &str| ModelError::Metadata {
        path: path.to_path_buf(),
        key: key.to_string(),
    };
    let architecture = metadata
        .get("general.architecture")
        .and_then(|v| v.to_string().ok())
        .ok_or_else(|| missing("general.architecture"))?
        .clone();
    let version_key = format!("{ARCHITECTURE}.version");
    let version = metadata.get(&version_key).and_then(|v| v.to_u32().ok());
    match version {
        Some(v) if architecture == ARCHITECTURE && v == LUSNET_VERSION => {}
        _ => {
            return Err(ModelError::WrongArchitecture {
                path: path.to_path_buf(),
                found: match version {
                    Some(v) => format!("{architecture} v{v}"),
                    None => architecture,
                },
            });
        }
    }
    Ok(architecture)
}

fn read_meta(
    path: &Path,
    architecture: String,
    metadata: &std::collections::HashMap<String, Value>,
) -> Result<ModelMeta, ModelError> {
    let missing = |key: &str| ModelError::Metadata {
        path: path.to_path_buf(),
        key: key.to_string(),
    };
    let get = |k: &str| {
        let full = format!("{ARCHITECTURE}.{k}");
        metadata.get(&full).ok_or_else(|| missing(&full))
    };
    let string = |k: &str| -> Result<String, ModelError> {
        get(k)?.to_string().cloned().map_err(|_| missing(k))
    };
    let number = |k: &str| -> Result<usize, ModelError> {
        get(k)?.to_u32().map(|v| v as usize).map_err(|_| missing(k))
    };
    let float = |k: &str| -> Result<f32, ModelError> { get(k)?.to_f32().map_err(|_| missing(k)) };
    let array =
        |k: &str| -> Result<&Vec<Value>, ModelError> { get(k)?.to_vec().map_err(|_| missing(k)) };

    let widths: Vec<usize> = array("widths")?
        .iter()
        .map(|v| v.to_u32().map(|w| w as usize))
        .collect::<Result<_, _>>()
        .map_err(|_| missing("widths"))?;
    let widths: [usize; 4] = widths.try_into().map_err(|_| missing("widths"))?;
    let seg_classes: Vec<String> = array("seg_classes")?
        .iter()
        .map(|v| v.to_string().cloned())
        .collect::<Result<_, _>>()
        .map_err(|_| missing("seg_classes"))?;
    let input_size = number("input_size")?;
    let norm_std = float("norm_std")?;
    let meta = ModelMeta {
        architecture,
        version: LUSNET_VERSION,
        input_size,
        // Files from before 2.5D input have no history.
        history_step: if metadata.contains_key(&format!("{ARCHITECTURE}.history_step")) {
            number("history_step")?
        } else {
            0
        },
        widths,
        norm_mean: float("norm_mean")?,
        norm_std,
        seg_classes,
        aggregation: string("aggregation")?,
        training_data: string("training_data")?,
        licenses: string("licenses")?,
        cv_metrics: string("cv_metrics")?,
        tensors_sha256: string("tensors_sha256")?,
    };
    meta.check(path)?;
    Ok(meta)
}
