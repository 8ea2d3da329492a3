//! NumPy `.npy` / `.npz` in and out through npyz: C-order arrays of f16, f32, f64 and the
//! integer tensors of a block mask. Input is read whole before it is parsed, and a header
//! whose shape needs more bytes than the input holds is refused, so a hostile header cannot
//! make the reader allocate more than the file's size. Self-contained (its own error type),
//! so the fuzz targets and their regression test include this file as it is.

use std::io::{Cursor, Read};
use std::path::Path;

use half::f16;
use npyz::{AutoSerialize, Deserialize, NpyFile, Order, WriterBuilder};

/// Why an array could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum NpyError {
    /// The file system or the archive failed.
    #[error("{name}: {source}")]
    Io {
        /// The file or array.
        name: String,
        /// What failed.
        source: std::io::Error,
    },
    /// The content is not an array this tool reads.
    #[error("{name}: {reason}")]
    Format {
        /// The file or array.
        name: String,
        /// What is wrong.
        reason: String,
    },
}

/// Largest array entry of an `.npz` archive this reader inflates (a guard against archives
/// that decompress without bound).
const NPZ_ENTRY_LIMIT: u64 = 1 << 30;

/// An array read from a file: its shape and its elements in C order.
pub struct Array<T> {
    pub shape: Vec<usize>,
    pub data: Vec<T>,
}

/// A floating-point array of whichever dtype the file held.
pub enum FloatArray {
    F16(Array<f16>),
    F32(Array<f32>),
    F64(Array<f64>),
}

impl FloatArray {
    pub fn dtype(&self) -> &'static str {
        match self {
            FloatArray::F16(_) => "float16",
            FloatArray::F32(_) => "float32",
            FloatArray::F64(_) => "float64",
        }
    }
}

fn format_err(name: &str, reason: impl std::fmt::Display) -> NpyError {
    NpyError::Format {
        name: name.to_string(),
        reason: reason.to_string(),
    }
}

fn io_err(name: &str) -> impl FnOnce(std::io::Error) -> NpyError + '_ {
    move |source| NpyError::Io {
        name: name.to_string(),
        source,
    }
}

/// An `.npy` whose header passed [`parse`]: the reader, the shape, the dtype string.
type Parsed<'a> = (NpyFile<&'a [u8]>, Vec<usize>, String);

/// Deepest bracket nesting a plain-dtype header needs: the dict and the shape tuple.
const MAX_HEADER_NESTING: usize = 2;

/// Refuses headers that no plain-dtype array has before npyz parses them: more than one dict
/// or brackets nested deeper than [`MAX_HEADER_NESTING`]. npyz's Python-literal grammar
/// backtracks exponentially on nested brackets (a 200-byte header of `{{{{...` ran for
/// minutes under the `npy` fuzzer).
fn check_header_shape(bytes: &[u8], name: &str) -> Result<(), NpyError> {
    let (len, start): (Option<usize>, usize) = match bytes.get(6) {
        Some(1) => (
            bytes
                .get(8..10)
                .map(|b| usize::from(u16::from_le_bytes([b[0], b[1]]))),
            10,
        ),
        Some(2 | 3) => (
            bytes
                .get(8..12)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize),
            12,
        ),
        _ => (None, 0),
    };
    let Some(text) = len.and_then(|len| bytes.get(start..start.checked_add(len)?)) else {
        // Not a header npyz can read either; let it report the problem.
        return Ok(());
    };
    let (mut depth, mut deepest, mut dicts) = (0usize, 0usize, 0usize);
    let mut quote = None;
    for &c in text {
        match (quote, c) {
            (Some(q), _) if c == q => quote = None,
            (Some(_), _) => {}
            (None, b'\'' | b'"') => quote = Some(c),
            (None, b'{' | b'(' | b'[') => {
                dicts += usize::from(c == b'{');
                depth += 1;
                deepest = deepest.max(depth);
            }
            (None, b'}' | b')' | b']') => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    if dicts > 1 || deepest > MAX_HEADER_NESTING {
        return Err(format_err(
            name,
            "header is not a plain-dtype array header (nested brackets)",
        ));
    }
    Ok(())
}

/// Parses the header of `bytes`: C order, a plain dtype, and a shape whose elements of
/// `size_of(dtype)` bytes fit in `bytes`.
fn parse<'a>(bytes: &'a [u8], name: &str) -> Result<Parsed<'a>, NpyError> {
    check_header_shape(bytes, name)?;
    let npy = NpyFile::new(bytes).map_err(io_err(name))?;
    if npy.order() != Order::C {
        return Err(format_err(
            name,
            "Fortran-order array; save it with np.ascontiguousarray first",
        ));
    }
    let dtype = match npy.dtype() {
        npyz::DType::Plain(ts) => ts,
        other => return Err(format_err(name, format!("unsupported dtype {other:?}"))),
    };
    let shape: Vec<usize> = npy
        .shape()
        .iter()
        .map(|&d| usize::try_from(d))
        .collect::<Result<_, _>>()
        .map_err(|_| format_err(name, "dimension exceeds usize"))?;
    let elem = usize::try_from(dtype.size_field()).unwrap_or(usize::MAX);
    shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .and_then(|n| n.checked_mul(elem))
        .filter(|&needed| needed <= bytes.len())
        .ok_or_else(|| {
            format_err(
                name,
                "the header's shape needs more data than the file holds",
            )
        })?;
    Ok((npy, shape, dtype.to_string()))
}

fn elements<T: Deserialize>(npy: NpyFile<&[u8]>, name: &str) -> Result<Vec<T>, NpyError> {
    npy.into_vec::<T>().map_err(io_err(name))
}

/// Reads a float16, float32 or float64 array (either byte order) from `.npy` bytes.
pub fn float_from_bytes(bytes: &[u8], name: &str) -> Result<FloatArray, NpyError> {
    let (npy, shape, dtype) = parse(bytes, name)?;
    Ok(match dtype.get(1..).unwrap_or("") {
        "f2" => FloatArray::F16(Array {
            data: elements(npy, name)?,
            shape,
        }),
        "f4" => FloatArray::F32(Array {
            data: elements(npy, name)?,
            shape,
        }),
        "f8" => FloatArray::F64(Array {
            data: elements(npy, name)?,
            shape,
        }),
        _ => {
            return Err(format_err(
                name,
                format!("dtype {dtype}: expected float16, float32 or float64"),
            ))
        }
    })
}

/// Reads a float16, float32 or float64 `.npy` file.
pub fn read_float(path: &Path) -> Result<FloatArray, NpyError> {
    let name = path.display().to_string();
    let bytes = std::fs::read(path).map_err(io_err(&name))?;
    float_from_bytes(&bytes, &name)
}

/// Reads integer array `array` of `.npz` bytes as i64 (int32 or int64 in the archive), or
/// `None` if the archive has no array of that name.
pub fn npz_ints_from_bytes(
    bytes: &[u8],
    name: &str,
    array: &str,
) -> Result<Option<Array<i64>>, NpyError> {
    let mut archive = npyz::npz::NpzArchive::new(Cursor::new(bytes)).map_err(io_err(name))?;
    let entry_name = npyz::npz::file_name_from_array_name(array);
    let mut entry = match archive.zip_archive().by_name(&entry_name) {
        Ok(entry) => entry,
        Err(npyz::zip::result::ZipError::FileNotFound) => return Ok(None),
        Err(e) => return Err(format_err(name, e)),
    };
    let mut inflated = Vec::new();
    (&mut entry)
        .take(NPZ_ENTRY_LIMIT + 1)
        .read_to_end(&mut inflated)
        .map_err(io_err(name))?;
    if inflated.len() as u64 > NPZ_ENTRY_LIMIT {
        return Err(format_err(name, format!("{array} inflates beyond 1 GiB")));
    }
    let label = format!("{name}: {array}");
    let (npy, shape, dtype) = parse(&inflated, &label)?;
    let data = match dtype.get(1..).unwrap_or("") {
        "i4" => elements::<i32>(npy, &label)?
            .into_iter()
            .map(i64::from)
            .collect(),
        "i8" => elements::<i64>(npy, &label)?,
        _ => {
            return Err(format_err(
                &label,
                format!("dtype {dtype}: expected int32 or int64"),
            ))
        }
    };
    Ok(Some(Array { shape, data }))
}

/// Reads integer array `array` of the `.npz` file at `path` (see [`npz_ints_from_bytes`]).
pub fn read_npz_ints(path: &Path, array: &str) -> Result<Option<Array<i64>>, NpyError> {
    let name = path.display().to_string();
    let bytes = std::fs::read(path).map_err(io_err(&name))?;
    npz_ints_from_bytes(&bytes, &name, array)
}

/// Writes `data` with `shape` (C order, little-endian, the dtype of `T`).
pub fn write<T: AutoSerialize + Copy>(
    path: &Path,
    shape: &[usize],
    data: &[T],
) -> Result<(), NpyError> {
    let name = path.display().to_string();
    let file = std::fs::File::create(path).map_err(io_err(&name))?;
    let shape: Vec<u64> = shape.iter().map(|&d| d as u64).collect();
    let mut writer = npyz::WriteOptions::new()
        .default_dtype()
        .shape(&shape)
        .writer(std::io::BufWriter::new(file))
        .begin_nd()
        .map_err(io_err(&name))?;
    writer.extend(data.iter().copied()).map_err(io_err(&name))?;
    writer.finish().map_err(io_err(&name))
}
