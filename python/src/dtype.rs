//! The element types the bindings take (float32, float64; float16 and bfloat16 for attention
//! and reductions) and their names.

use dlpark::ffi::{DLDataType, DLDataTypeCode};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;

/// An element type: what a plan is made for and an array must hold. Eigh takes `F32` and
/// `F64`; attention `F32`, `F16`, `BF16`; reductions all four (the half types accumulate and
/// return float32).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dtype {
    F32,
    F64,
    F16,
    BF16,
}

impl Dtype {
    /// numpy's name.
    pub fn name(self) -> &'static str {
        match self {
            Dtype::F32 => "float32",
            Dtype::F64 => "float64",
            Dtype::F16 => "float16",
            Dtype::BF16 => "bfloat16",
        }
    }

    /// Whether eigh takes it (float32, float64).
    pub fn is_real(self) -> bool {
        matches!(self, Dtype::F32 | Dtype::F64)
    }

    /// The dtype reductions of this dtype return (float32 for the half types, which
    /// accumulate in float32).
    pub fn accumulator(self) -> Dtype {
        match self {
            Dtype::F16 | Dtype::BF16 => Dtype::F32,
            other => other,
        }
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Dtype::F32 => 4,
            Dtype::F64 => 8,
            Dtype::F16 | Dtype::BF16 => 2,
        }
    }

    /// A `dtype=` argument: `"float32"`/`"float64"` (also `"f4"`, `"f8"`, `"single"`,
    /// `"double"`), `"float16"` (`"f2"`, `"half"`), `"bfloat16"`, a torch dtype
    /// (`torch.float16`), or anything `numpy.dtype()` takes (`numpy.float64`,
    /// `numpy.dtype("f8")`).
    pub fn from_py(obj: &Bound<'_, PyAny>) -> PyResult<Self> {
        let torch_name = obj
            .str()
            .ok()
            .and_then(|s| s.to_string().strip_prefix("torch.").map(str::to_string));
        let name: String = match obj.extract::<String>() {
            Ok(name) => name,
            Err(_) if torch_name.is_some() => torch_name.unwrap_or_default(),
            Err(_) => {
                let numpy = obj.py().import("numpy")?;
                let dtype = numpy.getattr("dtype")?.call1((obj,)).map_err(|_| {
                    PyTypeError::new_err(format!(
                        "dtype must be float32, float64, float16 or bfloat16, got {}",
                        obj.repr().map_or_else(|_| "?".into(), |r| r.to_string())
                    ))
                })?;
                dtype.getattr("name")?.extract()?
            }
        };
        match name.as_str() {
            "float32" | "f4" | "<f4" | "single" => Ok(Dtype::F32),
            "float64" | "f8" | "<f8" | "double" | "float" => Ok(Dtype::F64),
            "float16" | "f2" | "<f2" | "half" => Ok(Dtype::F16),
            "bfloat16" => Ok(Dtype::BF16),
            other => Err(PyTypeError::new_err(format!(
                "dtype must be float32, float64, float16 or bfloat16, got {other}"
            ))),
        }
    }

    /// The element type of a DLPack tensor, or `TypeError` naming what it holds.
    pub fn from_dlpack(dtype: DLDataType) -> PyResult<Self> {
        match (dtype.code, dtype.bits, dtype.lanes) {
            (DLDataTypeCode::FLOAT, 32, 1) => Ok(Dtype::F32),
            (DLDataTypeCode::FLOAT, 64, 1) => Ok(Dtype::F64),
            (DLDataTypeCode::FLOAT, 16, 1) => Ok(Dtype::F16),
            (DLDataTypeCode::BFLOAT, 16, 1) => Ok(Dtype::BF16),
            _ => Err(PyTypeError::new_err(format!(
                "arrays of {} are not supported: megabatch takes float32 or float64 (and \
                 float16 or bfloat16 for attention and reductions; convert with \
                 .astype(numpy.float64))",
                dlpack_dtype_name(dtype)
            ))),
        }
    }

    /// `TypeError` unless eigh takes this dtype (`what` names the argument).
    pub fn check_real(self, what: &str) -> PyResult<()> {
        if self.is_real() {
            return Ok(());
        }
        Err(PyTypeError::new_err(format!(
            "`{what}` is {}: eigh takes float32 or float64 (convert with .astype(numpy.float32))",
            self.name()
        )))
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
