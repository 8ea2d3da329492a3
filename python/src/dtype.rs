//! The element types the bindings take (float32, float64) and their names.

use dlpark::ffi::{DLDataType, DLDataTypeCode};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;

/// An element type of eigh: what a plan is made for and an array must hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dtype {
    F32,
    F64,
}

impl Dtype {
    /// numpy's name.
    pub fn name(self) -> &'static str {
        match self {
            Dtype::F32 => "float32",
            Dtype::F64 => "float64",
        }
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Dtype::F32 => 4,
            Dtype::F64 => 8,
        }
    }

    /// A `dtype=` argument: `"float32"`/`"float64"` (also `"f4"`, `"f8"`, `"single"`,
    /// `"double"`), or anything `numpy.dtype()` takes (`numpy.float64`, `numpy.dtype("f8")`).
    pub fn from_py(obj: &Bound<'_, PyAny>) -> PyResult<Self> {
        let name: String = match obj.extract::<String>() {
            Ok(name) => name,
            Err(_) => {
                let numpy = obj.py().import("numpy")?;
                let dtype = numpy.getattr("dtype")?.call1((obj,)).map_err(|_| {
                    PyTypeError::new_err(format!(
                        "dtype must be float32 or float64, got {}",
                        obj.repr().map_or_else(|_| "?".into(), |r| r.to_string())
                    ))
                })?;
                dtype.getattr("name")?.extract()?
            }
        };
        match name.as_str() {
            "float32" | "f4" | "<f4" | "single" => Ok(Dtype::F32),
            "float64" | "f8" | "<f8" | "double" | "float" => Ok(Dtype::F64),
            other => Err(PyTypeError::new_err(format!(
                "dtype must be float32 or float64, got {other}"
            ))),
        }
    }

    /// The element type of a DLPack tensor, or `TypeError` naming what it holds.
    pub fn from_dlpack(dtype: DLDataType) -> PyResult<Self> {
        let is_float = dtype.code == DLDataTypeCode::FLOAT;
        match (is_float, dtype.bits, dtype.lanes) {
            (true, 32, 1) => Ok(Dtype::F32),
            (true, 64, 1) => Ok(Dtype::F64),
            _ => Err(PyTypeError::new_err(format!(
                "arrays of {} are not supported: megabatch takes float32 or float64 \
                 (convert with .astype(numpy.float64))",
                dlpack_dtype_name(dtype)
            ))),
        }
    }
}

/// numpy's name of a DLPack dtype, where there is one (`int64`, `float16`, `complex128`,
/// `bool`, `bfloat16`).
fn dlpack_dtype_name(dtype: DLDataType) -> String {
    let lanes = if dtype.lanes == 1 {
        String::new()
    } else {
        format!(" x{}", dtype.lanes)
    };
    let kind = match dtype.code {
        DLDataTypeCode::INT => "int",
        DLDataTypeCode::UINT => "uint",
        DLDataTypeCode::FLOAT => "float",
        DLDataTypeCode::BFLOAT => "bfloat",
        DLDataTypeCode::COMPLEX => "complex",
        DLDataTypeCode::BOOL => return format!("bool{lanes}"),
        _ => {
            return format!(
                "DLPack dtype code {}, {} bits{lanes}",
                dtype.code.0, dtype.bits
            )
        }
    };
    format!("{kind}{}{lanes}", dtype.bits)
}
