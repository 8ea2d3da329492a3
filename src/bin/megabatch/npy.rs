//! NumPy `.npy` / `.npz` in and out through npyz: C-order arrays of f16, f32, f64 and the
//! integer tensors of a block mask.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read};
use std::path::Path;

use half::f16;
use npyz::{AutoSerialize, Deserialize, NpyFile, Order, WriterBuilder};

use crate::{io_err, CliError, CliResult};

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

fn usage(path: &Path, what: impl std::fmt::Display) -> CliError {
    CliError::Usage(format!("{}: {what}", path.display()))
}

/// Checks the header (C order, a shape whose element count fits in memory) and returns the
/// shape and the dtype string (`"<f8"`, ...).
fn header<R: Read>(npy: &NpyFile<R>, path: &Path) -> CliResult<(Vec<usize>, String)> {
    if npy.order() != Order::C {
        return Err(usage(
            path,
            "Fortran-order array; save it with np.ascontiguousarray first",
        ));
    }
    let shape: Vec<usize> = npy
        .shape()
        .iter()
        .map(|&d| usize::try_from(d))
        .collect::<Result<_, _>>()
        .map_err(|_| usage(path, "dimension exceeds usize"))?;
    shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .filter(|&n| n <= isize::MAX as usize / 8)
        .ok_or_else(|| usage(path, "array too large"))?;
    let dtype = match npy.dtype() {
        npyz::DType::Plain(ts) => ts.to_string(),
        other => return Err(usage(path, format!("unsupported dtype {other:?}"))),
    };
    Ok((shape, dtype))
}

fn elements<T: Deserialize, R: Read>(npy: NpyFile<R>, path: &Path) -> CliResult<Vec<T>> {
    npy.into_vec::<T>().map_err(io_err(path))
}

fn open(path: &Path) -> CliResult<NpyFile<BufReader<File>>> {
    let file = File::open(path).map_err(io_err(path))?;
    NpyFile::new(BufReader::new(file)).map_err(io_err(path))
}

/// Reads a float16, float32 or float64 array (either byte order).
pub fn read_float(path: &Path) -> CliResult<FloatArray> {
    let npy = open(path)?;
    let (shape, dtype) = header(&npy, path)?;
    Ok(match &dtype[1..] {
        "f2" => FloatArray::F16(Array {
            data: elements(npy, path)?,
            shape,
        }),
        "f4" => FloatArray::F32(Array {
            data: elements(npy, path)?,
            shape,
        }),
        "f8" => FloatArray::F64(Array {
            data: elements(npy, path)?,
            shape,
        }),
        _ => {
            return Err(usage(
                path,
                format!("dtype {dtype}: expected float16, float32 or float64"),
            ))
        }
    })
}

/// Reads an integer array of a `.npz` archive as i64 (int32 or int64 in the file), or
/// `None` if the archive has no array of that name.
pub fn read_npz_ints(path: &Path, name: &str) -> CliResult<Option<Array<i64>>> {
    let mut archive = npyz::npz::NpzArchive::open(path).map_err(io_err(path))?;
    let Some(npy) = archive.by_name(name).map_err(io_err(path))? else {
        return Ok(None);
    };
    let (shape, dtype) = header(&npy, path)?;
    let data = match &dtype[1..] {
        "i4" => elements::<i32, _>(npy, path)?
            .into_iter()
            .map(i64::from)
            .collect(),
        "i8" => elements::<i64, _>(npy, path)?,
        _ => {
            return Err(usage(
                path,
                format!("{name} has dtype {dtype}: expected int32 or int64"),
            ))
        }
    };
    Ok(Some(Array { shape, data }))
}

/// Writes `data` with `shape` (C order, little-endian, the dtype of `T`).
pub fn write<T: AutoSerialize + Copy>(path: &Path, shape: &[usize], data: &[T]) -> CliResult {
    let file = File::create(path).map_err(io_err(path))?;
    let shape: Vec<u64> = shape.iter().map(|&d| d as u64).collect();
    let mut writer = npyz::WriteOptions::new()
        .default_dtype()
        .shape(&shape)
        .writer(BufWriter::new(file))
        .begin_nd()
        .map_err(io_err(path))?;
    writer.extend(data.iter().copied()).map_err(io_err(path))?;
    writer.finish().map_err(io_err(path))
}
