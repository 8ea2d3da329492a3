//! Arrays in through DLPack: any object with `__dlpack__` (numpy, torch, ...) whose memory is
//! on the CPU, read (or written) where it lies, without a copy.

use std::ops::Range;

use dlpark::ffi::{DLDevice, DLDeviceType};
use dlpark::python::{from_dlpack, ImportedDlpack};
use dlpark::DlpackFlags;
use pyo3::exceptions::{PyBufferError, PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use crate::dtype::Dtype;
use crate::layout::{classify, Layout};

/// The DLPack version the bindings ask producers for (`max_version`): 1.x carries the
/// read-only flag, which numpy needs to export a read-only array at all.
const MAX_VERSION: (u32, u32) = (1, 1);

/// A CPU array borrowed through DLPack: its memory stays valid while this lives (the producer's
/// deleter runs when it drops).
pub struct HostArray {
    /// Keeps the producer's memory alive; released (the producer's deleter) on drop.
    _owner: ImportedDlpack,
    /// The address of the first element (the data pointer plus the byte offset), aligned for
    /// `dtype`; that of an aligned dangling pointer for an empty array.
    addr: usize,
    /// Number of elements.
    len: usize,
    /// The argument's name, for messages.
    pub name: String,
    pub shape: Vec<usize>,
    pub layout: Layout,
    pub dtype: Dtype,
    pub read_only: bool,
}

/// The part of a [`HostArray`] that crosses into code run without the GIL: an address and a
/// length, made into a slice there (see [`RawSlice::slice`]).
#[derive(Debug, Clone, Copy)]
pub struct RawSlice {
    pub addr: usize,
    pub len: usize,
}

impl HostArray {
    /// Imports `obj` (argument `what` of the call, for messages) through `__dlpack__`.
    ///
    /// # Errors
    /// `TypeError` for an object without DLPack or of another dtype than float32/float64;
    /// `ValueError` for an array on a device other than the CPU, or a malformed capsule.
    pub fn import(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Self> {
        let py = obj.py();
        // The device first: a CUDA array is refused before its producer does any work (a
        // stream handshake) for an export that would not be used.
        if let Ok(device) = obj.getattr(intern!(py, "__dlpack_device__")) {
            let (device_type, device_id): (u32, i32) = device.call0()?.extract()?;
            check_device(
                DLDevice {
                    device_type: DLDeviceType(device_type),
                    device_id,
                },
                what,
            )?;
        }
        let capsule = call_dlpack(obj, what, None)?;
        let owner = from_dlpack(capsule.as_borrowed(), None, None)?;
        let flags = owner.flags();
        let (addr, len, shape, layout, dtype) = {
            let tensor = owner
                .validate()
                .map_err(|e| PyValueError::new_err(format!("`{what}`: {e}")))?;
            check_device(tensor.device(), what)?;
            let dtype = Dtype::from_dlpack(tensor.dtype())
                .map_err(|e| PyTypeError::new_err(format!("`{what}`: {}", e.value(py))))?;
            let shape: Vec<usize> = tensor.shape().iter().map(|&d| d as usize).collect();
            let layout = classify(&shape, tensor.strides());
            let len = tensor.num_elements();
            let addr = if len == 0 {
                dtype.size()
            } else {
                // SAFETY: the pointer is only computed here (checked for overflow), not read;
                // a non-empty CPU tensor's adjusted pointer lies in its allocation by the
                // DLPack contract.
                let ptr = unsafe { tensor.offset_bytes_ptr() }
                    .map_err(|e| PyValueError::new_err(format!("`{what}`: {e}")))?;
                let addr = ptr as usize;
                if !addr.is_multiple_of(dtype.size()) {
                    return Err(PyValueError::new_err(format!(
                        "`{what}`: data at {addr:#x} is not aligned for {}",
                        dtype.name()
                    )));
                }
                addr
            };
            (addr, len, shape, layout, dtype)
        };
        Ok(HostArray {
            _owner: owner,
            addr,
            len,
            name: what.to_string(),
            shape,
            layout,
            dtype,
            read_only: flags.contains(DlpackFlags::READ_ONLY),
        })
    }

    /// Address and length, to be made into a slice without the GIL.
    pub fn raw(&self) -> RawSlice {
        RawSlice {
            addr: self.addr,
            len: self.len,
        }
    }

    /// The bytes it occupies (empty for an empty array).
    pub fn bytes(&self) -> Range<usize> {
        self.addr..self.addr + self.len * self.dtype.size()
    }
}

impl RawSlice {
    /// The elements as a slice.
    ///
    /// # Safety
    /// `self` comes from a [`HostArray`] of element type `T` that is alive for `'a`, and no
    /// mutable slice over any of its bytes exists during `'a`.
    pub unsafe fn slice<'a, T>(self) -> &'a [T] {
        // SAFETY: by the caller's contract the address is aligned for `T` (checked at import)
        // and, for a non-empty array, points to `len` initialised elements the producer keeps
        // alive (DLPack); an empty array's address is an aligned dangling one, which a
        // zero-length slice allows.
        unsafe { std::slice::from_raw_parts(self.addr as *const T, self.len) }
    }

    /// The elements as a mutable slice.
    ///
    /// # Safety
    /// As [`RawSlice::slice`], and no other slice over any of its bytes exists during `'a`,
    /// and the array is writable (not exported read-only).
    pub unsafe fn slice_mut<'a, T>(self) -> &'a mut [T] {
        // SAFETY: as in `slice`; exclusive by the caller's contract.
        unsafe { std::slice::from_raw_parts_mut(self.addr as *mut T, self.len) }
    }
}

/// `ValueError` unless `device` is the CPU.
fn check_device(device: DLDevice, what: &str) -> PyResult<()> {
    if device.device_type == DLDeviceType::CPU {
        return Ok(());
    }
    let name = crate::cuda::device_name(device.device_type);
    Err(PyValueError::new_err(format!(
        "`{what}` is on a {name} device ({}:{}): this release of megabatch reads CPU arrays \
         only; copy it to the host first (torch: .cpu(), cupy: .get())",
        device.device_type.0, device.device_id
    )))
}

/// `obj.__dlpack__(max_version=(1, 1))`, or `obj.__dlpack__()` for producers that predate
/// versioned DLPack (numpy < 2.1 takes no `max_version`). With `stream` (a CUDA array's
/// consumer stream, in DLPack's encoding: 1 the legacy default stream, 2 the per-thread one,
/// else the `cudaStream_t`), `stream=` is passed too: the producer makes that stream wait for
/// its pending work on the array (an event, or nothing when it is the producer's current
/// stream).
pub fn call_dlpack<'py>(
    obj: &Bound<'py, PyAny>,
    what: &str,
    stream: Option<usize>,
) -> PyResult<Bound<'py, PyAny>> {
    let py = obj.py();
    let method = obj.getattr(intern!(py, "__dlpack__")).map_err(|_| {
        let kind = obj
            .get_type()
            .name()
            .map_or_else(|_| "?".into(), |n| n.to_string());
        PyTypeError::new_err(format!(
            "`{what}` must be an array with __dlpack__ (numpy, torch, ...), got {kind}"
        ))
    })?;
    let kwargs = PyDict::new(py);
    if let Some(stream) = stream {
        kwargs.set_item(intern!(py, "stream"), stream)?;
    }
    let plain = kwargs.copy()?;
    kwargs.set_item(intern!(py, "max_version"), MAX_VERSION)?;
    let result = match method.call((), Some(&kwargs)) {
        Err(e) if e.is_instance_of::<PyTypeError>(py) => method.call((), Some(&plain)),
        other => other,
    };
    // Producers refuse exports with BufferError: numpy for dtypes DLPack cannot describe
    // (strings, objects), torch for tensors that require grad. To a caller, a type error.
    result.map_err(|e| {
        if e.is_instance_of::<PyBufferError>(py) {
            PyTypeError::new_err(format!(
                "`{what}` cannot be exported through DLPack: {}",
                e.value(py)
            ))
        } else {
            e
        }
    })
}

/// `ValueError` if two of the byte ranges overlap (`names` name them for the message).
pub fn check_disjoint(arrays: &[(&str, Range<usize>)]) -> PyResult<()> {
    for (i, (name_a, a)) in arrays.iter().enumerate() {
        for (name_b, b) in &arrays[i + 1..] {
            let empty = a.is_empty() || b.is_empty();
            if !empty && a.start < b.end && b.start < a.end {
                return Err(PyValueError::new_err(format!(
                    "`{name_a}` and `{name_b}` share memory: outputs must not overlap the \
                     input or each other"
                )));
            }
        }
    }
    Ok(())
}

/// A new, uninitialised numpy array of `dtype` and `shape` (`numpy.empty`), for outputs the
/// crate writes in place.
pub fn empty<'py>(py: Python<'py>, dtype: Dtype, shape: &[usize]) -> PyResult<Bound<'py, PyAny>> {
    let kwargs = PyDict::new(py);
    kwargs.set_item(intern!(py, "dtype"), dtype.name())?;
    py.import(intern!(py, "numpy"))?
        .getattr(intern!(py, "empty"))?
        .call((PyTuple::new(py, shape)?,), Some(&kwargs))
}
