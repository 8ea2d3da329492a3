//! CUDA arrays (torch CUDA tensors, CuPy arrays, any DLPack producer on a CUDA device) used in
//! place, ordered on the caller's stream, without host synchronisation.
//!
//! One call, as [`CudaCall`] runs it:
//! 1. **The queue.** The stream the work runs on: the caller's `stream=` (an int handle, a
//!    `torch.cuda.Stream`, a CuPy `Stream`), else the current stream of the input's framework
//!    (`torch.cuda.current_stream(device).cuda_stream`, `cupy.cuda.get_current_stream().ptr`;
//!    `megabatch/_device.py` knows the frameworks), borrowed with the crate's
//!    [`Cuda::borrow_queue`]; for an unknown producer, a new queue of megabatch's own.
//! 2. **The arrays.** Each exported with `__dlpack__(stream=<the queue>, max_version=(1, 1))`
//!    (the Python protocol, whose stream semantics torch and CuPy implement: the producer
//!    orders its pending work on the array before the queue's by an event wait on the device,
//!    or does nothing when the queue is its current stream, as it is by default), the capsule
//!    consumed with dlpark's `from_dlpack`, then borrowed with the crate's
//!    [`Cuda::borrow_device_ptr`] (its checks: device memory of this context, aligned, inside
//!    one allocation). No copy: the crate reads and writes the producer's memory.
//! 3. **Outputs** the caller did not give (`out=`) are made by the input's framework on the
//!    input's device (`torch.empty`, `cupy.empty`): allocated by its caching allocator on the
//!    current stream, freed by it, and returned as that framework's arrays.
//! 4. **The work** is queued on the queue with the GIL released, and the call returns without
//!    waiting. Its results are ordered for the framework's later work on the same stream.
//! 5. **Lifetimes.** Each DLPack capsule (which keeps its producer's memory alive) and each
//!    borrowed buffer go into a process-wide pending list, released once
//!    [`megabatch::backends::cuda::CudaBuffer::is_idle`] says their work finished: polled at
//!    the start of every later CUDA call and by `megabatch.synchronize()`, never waited for.
//!    So a tensor the caller drops (even one allocated on another stream) outlives the queued
//!    work that reads it.

use std::any::Any;
use std::sync::{Mutex, PoisonError};

use dlpark::ffi::DLDeviceType;
use dlpark::python::{from_dlpack, ImportedDlpack};
use dlpark::DlpackFlags;
use megabatch::backends::cuda::{Cuda, CudaQueue};
use megabatch::{Auto, AutoBuffer, AutoQueue, Element, Error};
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

use crate::dtype::Dtype;
use crate::errors::to_py;
use crate::layout::{classify, Layout};

/// Where an array lives, from its `__dlpack_device__`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// Host memory (numpy, torch CPU tensors; objects without `__dlpack_device__`).
    Host,
    /// A CUDA device, by ordinal.
    Cuda(i32),
}

impl Place {
    /// The `ValueError` for argument `arg` in `self` given to a plan (of Python class
    /// `class`) made for arrays in `plan`, the two places being different.
    pub fn mismatch(self, arg: &str, class: &str) -> PyErr {
        PyValueError::new_err(match self {
            Place::Cuda(_) => format!(
                "`{arg}` is a CUDA array and this {class} is for CPU arrays: make it with \
                 device=\"cuda\" (the one-shot functions pick by themselves)"
            ),
            Place::Host => format!(
                "`{arg}` is a CPU array and this {class} is for CUDA arrays (device=\"cuda\"): \
                 make one with device=\"cpu\" for host arrays"
            ),
        })
    }

    /// `"cpu"` or `"cuda"` (the `device=` argument's names).
    pub fn name(self) -> &'static str {
        match self {
            Place::Host => "cpu",
            Place::Cuda(_) => "cuda",
        }
    }

    /// A `device=` argument: `"cpu"`, `"cuda"` or `"cuda:0"` (the device megabatch runs on).
    pub fn parse(device: &str) -> PyResult<Self> {
        match device.to_ascii_lowercase().as_str() {
            "cpu" => Ok(Place::Host),
            "cuda" | "cuda:0" => Ok(Place::Cuda(0)),
            other if other.starts_with("cuda:") => Err(PyValueError::new_err(format!(
                "device {device:?}: megabatch runs on CUDA device 0 (select another GPU with \
                 CUDA_VISIBLE_DEVICES)"
            ))),
            _ => Err(PyValueError::new_err(format!(
                "device must be \"cpu\" or \"cuda\", got {device:?}"
            ))),
        }
    }
}

/// Where `obj` lives. Objects without `__dlpack_device__` are host arrays (numpy < 1.22's
/// exports, lists made into arrays); devices other than the CPU and CUDA are a `ValueError`.
pub fn place_of(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Place> {
    let py = obj.py();
    let Ok(device) = obj.getattr(intern!(py, "__dlpack_device__")) else {
        return Ok(Place::Host);
    };
    let (device_type, device_id): (u32, i32) = device.call0()?.extract()?;
    match DLDeviceType(device_type) {
        DLDeviceType::CPU => Ok(Place::Host),
        DLDeviceType::CUDA => Ok(Place::Cuda(device_id)),
        other => Err(PyValueError::new_err(format!(
            "`{what}` is on a {} device ({}:{device_id}): megabatch reads CPU arrays and CUDA \
             arrays (device 0); copy it first",
            device_name(other),
            other.0
        ))),
    }
}

/// A readable name of a DLPack device type.
pub fn device_name(device_type: DLDeviceType) -> &'static str {
    match device_type {
        DLDeviceType::CPU => "CPU",
        DLDeviceType::CUDA => "CUDA",
        DLDeviceType::CUDAHOST => "CUDA host (pinned)",
        DLDeviceType::CUDAMANAGED => "CUDA managed",
        DLDeviceType::ROCM => "ROCm",
        DLDeviceType::METAL => "Metal",
        DLDeviceType::VULKAN => "Vulkan",
        DLDeviceType::ONEAPI => "oneAPI",
        _ => "non-CPU",
    }
}

/// A CUDA array imported through DLPack: the producer's memory stays allocated while this
/// (or the pending entry it moves into) lives.
pub struct DeviceArray {
    /// The capsule's managed tensor: dropping it runs the producer's deleter.
    owner: ImportedDlpack,
    /// The address of the first element (data pointer plus byte offset); 0 for an empty array.
    pub ptr: u64,
    /// Number of elements.
    pub len: usize,
    pub name: String,
    pub shape: Vec<usize>,
    pub layout: Layout,
    pub dtype: Dtype,
    pub read_only: bool,
}

impl DeviceArray {
    /// The bytes it occupies on the device (for overlap checks).
    pub fn bytes(&self) -> std::ops::Range<usize> {
        let start = self.ptr as usize;
        start..start + self.len * self.dtype.size()
    }
}

/// What a call leaves behind until its queued work finished: borrowed buffers (polled), then
/// whatever else must outlive the work (a one-shot plan), then the capsules (the producers'
/// memory). Dropped in that order (field order).
struct Pending {
    buffers: Vec<Box<dyn Idle>>,
    payload: Vec<Box<dyn Any + Send>>,
    owners: Vec<ImportedDlpack>,
}

/// A buffer whose recorded work can be polled.
pub trait Idle: Send {
    /// Whether its recorded work has finished (a device error counts as finished: there is
    /// nothing left to wait for).
    fn idle(&self) -> bool;
}

impl<T: Element> Idle for AutoBuffer<T> {
    fn idle(&self) -> bool {
        self.as_cuda().is_none_or(|b| b.is_idle().unwrap_or(true))
    }
}

/// The pending entries of every CUDA call in this process, with the process id (a forked
/// child leaks its parent's: their contexts do not exist there).
static PENDING: Mutex<(u32, Vec<Pending>)> = Mutex::new((0, Vec::new()));

/// Releases the pending entries whose work finished. Called with the GIL held (capsule
/// deleters may run Python code), never waits.
fn release_finished(_py: Python<'_>) {
    let done: Vec<Pending> = {
        let mut pending = PENDING.lock().unwrap_or_else(PoisonError::into_inner);
        let pid = std::process::id();
        if pending.0 != pid {
            std::mem::forget(std::mem::take(&mut pending.1));
            pending.0 = pid;
        }
        let (done, left) = std::mem::take(&mut pending.1)
            .into_iter()
            .partition(|p| p.buffers.iter().all(|b| b.idle()));
        pending.1 = left;
        done
    };
    drop(done);
}

/// Waits for every pending call's work, then releases its arrays (`megabatch.synchronize()`).
///
/// # Errors
/// None so far; a device error surfaces on the next call.
pub fn synchronize(py: Python<'_>) -> PyResult<()> {
    let all: Vec<Pending> = {
        let mut pending = PENDING.lock().unwrap_or_else(PoisonError::into_inner);
        if pending.0 != std::process::id() {
            return Ok(());
        }
        std::mem::take(&mut pending.1)
    };
    let mut owners = Vec::new();
    let mut rest = Vec::new();
    for p in all {
        owners.push(p.owners);
        rest.push((p.buffers, p.payload));
    }
    // Dropping a buffer waits for its work (the crate's `retire`): without the GIL.
    py.detach(move || drop(rest));
    drop(owners);
    Ok(())
}

/// How many calls' arrays are still kept alive (a test hook).
pub fn pending_count() -> usize {
    let pending = PENDING.lock().unwrap_or_else(PoisonError::into_inner);
    if pending.0 == std::process::id() {
        pending.1.len()
    } else {
        0
    }
}

/// `megabatch._device`, the framework helpers (Python).
fn helpers(py: Python<'_>) -> PyResult<&Bound<'_, PyModule>> {
    static MODULE: PyOnceLock<Py<PyModule>> = PyOnceLock::new();
    MODULE
        .get_or_try_init(py, || py.import("megabatch._device").map(Bound::unbind))
        .map(|m| m.bind(py))
}

/// One call on CUDA arrays: the backend, the queue, the arrays imported so far. See the module
/// docs for the steps.
pub struct CudaCall {
    pub cuda: Cuda,
    pub queue: CudaQueue,
    /// The raw stream handle the arrays are imported for.
    stream: usize,
    owners: Vec<ImportedDlpack>,
}

impl CudaCall {
    /// Starts a call on the CUDA backend of `auto`, on `stream` (`None`: the current stream of
    /// `like`'s framework). Releases what earlier calls left whose work finished.
    ///
    /// # Errors
    /// `RuntimeError` if this process has no CUDA backend; `TypeError` for a `stream` that is
    /// not a stream; `ValueError` for a stream of another context.
    pub fn begin(
        py: Python<'_>,
        auto: &Auto,
        like: &Bound<'_, PyAny>,
        stream: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        release_finished(py);
        let cuda = auto.cuda().cloned().ok_or_else(|| {
            let why: Vec<String> = auto
                .notes()
                .into_iter()
                .filter(|n| n.starts_with("cuda"))
                .collect();
            PyRuntimeError::new_err(format!(
                "a CUDA array, but this process has no CUDA backend{}",
                if why.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", why.join("; "))
                }
            ))
        })?;
        let handle: Option<usize> = helpers(py)?
            .getattr(intern!(py, "stream_handle"))?
            .call1((like, stream))?
            .extract()?;
        let queue = match handle {
            // SAFETY: the handle is the caller's stream or its framework's current stream, of
            // the device's primary context (checked by `borrow_queue`), which its owner keeps
            // (torch and CuPy never destroy a stream with queued work before it finished;
            // cuStreamDestroy lets queued work complete). The queue is used during this call
            // only: nothing of it is kept.
            Some(h) => unsafe { cuda.borrow_queue(h as _) },
            None => cuda.new_queue(),
        }
        .map_err(|e| to_py(py, e, None))?;
        Ok(CudaCall {
            stream: queue.raw() as usize,
            cuda,
            queue,
            owners: Vec::new(),
        })
    }

    /// The queue as `Auto`'s.
    pub fn auto_queue(&self) -> AutoQueue {
        AutoQueue::Cuda(self.queue.clone())
    }

    /// Imports the CUDA array `obj` (argument `what`) for this call's stream, in place.
    ///
    /// # Errors
    /// `ValueError` for an array on the host or another device, a malformed capsule, or a
    /// misaligned pointer; `TypeError` for an unsupported dtype or a non-array.
    pub fn import(&mut self, obj: &Bound<'_, PyAny>, what: &str) -> PyResult<DeviceArray> {
        let py = obj.py();
        match place_of(obj, what)? {
            Place::Cuda(0) => {}
            Place::Cuda(id) => {
                return Err(PyValueError::new_err(format!(
                    "`{what}` is on CUDA device {id}: megabatch runs on CUDA device 0 (select \
                     the GPU with CUDA_VISIBLE_DEVICES)"
                )))
            }
            Place::Host => {
                return Err(PyValueError::new_err(format!(
                    "`{what}` is a CPU array, the others are on CUDA: pass every array on one \
                     device"
                )))
            }
        }
        if !obj.hasattr(intern!(py, "__dlpack__"))? {
            return Err(PyTypeError::new_err(format!(
                "`{what}` must be an array with __dlpack__"
            )));
        }
        // DLPack's encoding of the consumer stream: 1 for the legacy default stream (null).
        let stream = match self.stream {
            0 => 1,
            raw => raw,
        };
        let capsule = crate::array::call_dlpack(obj, what, Some(stream))?;
        let owner = from_dlpack(capsule.as_borrowed(), None, None)?;
        let read_only = owner.flags().contains(DlpackFlags::READ_ONLY);
        let (ptr, len, shape, layout, dtype) = {
            let tensor = owner
                .validate()
                .map_err(|e| PyValueError::new_err(format!("`{what}`: {e}")))?;
            let device = tensor.device();
            if device.device_type != DLDeviceType::CUDA || device.device_id != 0 {
                return Err(PyValueError::new_err(format!(
                    "`{what}` was exported on {} device {}, not CUDA device 0",
                    device_name(device.device_type),
                    device.device_id
                )));
            }
            let dtype = Dtype::from_dlpack(tensor.dtype())
                .map_err(|e| PyTypeError::new_err(format!("`{what}`: {}", e.value(py))))?;
            let shape: Vec<usize> = tensor.shape().iter().map(|&d| d as usize).collect();
            let layout = classify(&shape, tensor.strides());
            let len = tensor.num_elements();
            let ptr = if len == 0 {
                0
            } else {
                // SAFETY: the pointer is computed (checked for overflow), never dereferenced
                // on the host.
                let p = unsafe { tensor.offset_bytes_ptr() }
                    .map_err(|e| PyValueError::new_err(format!("`{what}`: {e}")))?;
                p as u64
            };
            (ptr, len, shape, layout, dtype)
        };
        Ok(DeviceArray {
            owner,
            ptr,
            len,
            name: what.to_string(),
            shape,
            layout,
            dtype,
            read_only,
        })
    }

    /// A new array of `like`'s framework on its device (`torch.empty`, `cupy.empty`), of
    /// `dtype` and `shape`, imported; for outputs the caller did not give.
    ///
    /// # Errors
    /// `TypeError` when `like`'s framework is neither torch nor CuPy (pass `out=`), or has
    /// no such dtype; `MemoryError` from the framework's allocator.
    pub fn output<'py>(
        &mut self,
        like: &Bound<'py, PyAny>,
        what: &str,
        dtype: Dtype,
        shape: &[usize],
    ) -> PyResult<(Bound<'py, PyAny>, DeviceArray)> {
        let py = like.py();
        let obj = helpers(py)?.getattr(intern!(py, "empty"))?.call1((
            like,
            shape.to_vec(),
            dtype.name(),
        ))?;
        let array = self.import(&obj, what)?;
        Ok((obj, array))
    }

    /// Borrows `array`'s memory as a crate buffer of `T` (no copy), its first use ordered
    /// after the work queued on this call's queue so far.
    ///
    /// # Safety
    /// `array` holds elements of `T` and stays alive (in this call, then in its pending entry)
    /// until the buffer's recorded work finished.
    pub unsafe fn borrow<T: Element>(&self, array: &DeviceArray) -> Result<AutoBuffer<T>, Error> {
        // SAFETY: the caller's contract: the capsule keeps the producer's allocation alive
        // while the buffer may be used; other code reaching the memory meanwhile is ordered by
        // the stream (the producer's work before, the framework's later work after, on the
        // same queue) or by the DLPack event handshake.
        let buffer = unsafe {
            self.cuda
                .borrow_device_ptr::<T>(array.ptr, array.len, &self.queue)
        }?;
        Ok(AutoBuffer::from_cuda(buffer))
    }

    /// Ends the call: `arrays`' capsules, the `buffers` the work uses and the `payload` that
    /// must outlive it go to the pending list, released once the buffers are idle.
    pub fn finish(
        mut self,
        arrays: Vec<DeviceArray>,
        buffers: Vec<Box<dyn Idle>>,
        payload: Vec<Box<dyn Any + Send>>,
    ) {
        self.owners.extend(arrays.into_iter().map(|a| a.owner));
        let entry = Pending {
            buffers,
            payload,
            owners: std::mem::take(&mut self.owners),
        };
        let mut pending = PENDING.lock().unwrap_or_else(PoisonError::into_inner);
        if pending.0 != std::process::id() {
            std::mem::forget(std::mem::take(&mut pending.1));
            pending.0 = std::process::id();
        }
        pending.1.push(entry);
    }
}

/// `ValueError` unless `array` can be written in place: C-contiguous and writable.
pub fn check_output(array: &DeviceArray) -> PyResult<()> {
    if array.layout != Layout::RowMajor {
        return Err(PyValueError::new_err(format!(
            "`{}` must be C-contiguous: megabatch writes outputs in place",
            array.name
        )));
    }
    if array.read_only {
        return Err(PyValueError::new_err(format!(
            "`{}` is read-only",
            array.name
        )));
    }
    Ok(())
}

/// ``synchronize()``: waits for the queued CUDA work of every megabatch call whose arrays
/// megabatch still keeps alive, then releases them (their producers may free the memory).
///
/// Calls on CUDA arrays never wait by themselves: megabatch keeps a reference to each array
/// of a call until that call's work has finished, and releases finished ones at the start of
/// the next CUDA call. This releases the rest now: before a framework's ``empty_cache()``, or
/// to return memory at the end of a phase. Synchronising the stream (``torch.cuda.synchronize``)
/// orders the work but keeps the references until the next megabatch call. Host arrays are
/// never kept.
///
/// Raises nothing: a device error surfaces at the next call.
#[pyfunction]
#[pyo3(name = "synchronize")]
pub fn py_synchronize(py: Python<'_>) -> PyResult<()> {
    synchronize(py)
}

/// `megabatch._pending()`: how many calls' CUDA arrays megabatch still keeps alive (test hook).
#[pyfunction]
#[pyo3(name = "_pending")]
pub fn py_pending() -> usize {
    pending_count()
}
