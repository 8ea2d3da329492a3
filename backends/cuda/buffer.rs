//! [`CudaBuffer`]: a device array, allocated by megabatch or borrowed from other code, whose
//! reads and writes on any queue are ordered by events (see `access.rs`); the pointer guards
//! through which foreign code takes part in that ordering.

use std::any::Any;
use std::sync::Arc;

use cudarc::driver::{sys, CudaContext, CudaSlice, DevicePtrMut};

use super::access::{enqueue_ordered, Access, Mode};
use super::driver::{bind, bytes_for, DeviceMemory};
use super::error::{cuda_error, DriverResultExt};
use super::queue::CudaQueue;
use super::Cuda;
use crate::{DeviceErrorKind, Element, Error, Result};

/// Where a buffer's memory comes from.
enum Memory {
    /// `cuMemAlloc`ed by megabatch, freed with the buffer.
    Owned(DeviceMemory),
    /// Someone else's allocation; `_keep` (a cudarc slice, say) is dropped with the buffer,
    /// after its work finished.
    Borrowed {
        ptr: sys::CUdeviceptr,
        _keep: Option<Box<dyn Any + Send + Sync>>,
    },
}

/// A device array of `T` in one CUDA context: made by `Cuda::alloc`, or borrowing memory
/// other code allocated ([`Cuda::borrow_device_ptr`], [`Cuda::adopt_cudarc`]) without a
/// copy.
///
/// Ordering: every operation that reads the buffer waits for its last write, every operation
/// that writes it waits for that write and every read since, on whichever queue each runs
/// (events, no host synchronisation). Foreign code joins in through [`CudaBuffer::device_ptr`]
/// and [`CudaBuffer::device_ptr_mut`], which return the address with a guard. Dropping the
/// buffer waits for the work recorded on it, then frees (or releases) the memory.
pub struct CudaBuffer<T> {
    mem: Memory,
    pub(super) len: usize,
    pub(super) access: Arc<Access>,
    _t: std::marker::PhantomData<T>,
}

impl<T> std::fmt::Debug for CudaBuffer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CudaBuffer")
            .field("len", &self.len)
            .field("borrowed", &matches!(self.mem, Memory::Borrowed { .. }))
            .finish()
    }
}

impl<T> Drop for CudaBuffer<T> {
    fn drop(&mut self) {
        // Before the memory goes: the work recorded on it must have finished.
        self.access.retire();
    }
}

impl<T> CudaBuffer<T> {
    /// `len` zeroed elements in `ctx`, never used yet.
    pub(super) fn zeroed(ctx: &Arc<CudaContext>, len: usize) -> Result<Self> {
        let bytes = bytes_for(len, std::mem::size_of::<T>())?;
        Ok(CudaBuffer {
            mem: Memory::Owned(DeviceMemory::zeroed(ctx, bytes)?),
            len,
            access: Access::new(ctx)?,
            _t: std::marker::PhantomData,
        })
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the buffer holds no elements.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether the memory was borrowed from other code rather than allocated by megabatch.
    pub fn is_borrowed(&self) -> bool {
        matches!(self.mem, Memory::Borrowed { .. })
    }

    /// Bytes of the elements (`len * size_of::<T>()`).
    pub(super) fn bytes(&self) -> usize {
        self.len * std::mem::size_of::<T>()
    }

    /// The device address (`CUdeviceptr`), for the crate's own launches.
    pub(super) fn ptr(&self) -> sys::CUdeviceptr {
        match &self.mem {
            Memory::Owned(m) => m.ptr(),
            Memory::Borrowed { ptr, .. } => *ptr,
        }
    }

    /// Whether every read and write recorded on the buffer so far (megabatch's operations,
    /// guarded foreign work, the producer's work a borrowed buffer waits for) has finished on
    /// the device. Never blocks (`cuEventQuery`), so a caller that keeps borrowed memory's
    /// owner alive while megabatch's queued work uses it (the Python bindings keep each
    /// DLPack tensor) can poll this and release the owner once it is `true`, without
    /// synchronising; dropping the buffer then returns at once.
    ///
    /// # Errors
    /// [`Error::Device`] if the driver reports an error for the recorded work.
    pub fn is_idle(&self) -> Result<bool> {
        self.access.is_idle()
    }

    /// The device address for foreign code that READS the buffer on `queue`: `queue` is made
    /// to wait for the buffer's last write, and dropping the guard records the work queued on
    /// `queue` meanwhile as a read (writers wait for it). Read only through the address while
    /// the guard lives, and only work queued on `queue`.
    ///
    /// # Errors
    /// [`Error::PlanMismatch`] if `queue` is of another context; [`Error::Device`] on a driver
    /// failure.
    pub fn device_ptr<'a>(&'a self, queue: &'a CudaQueue) -> Result<PtrGuard<'a>> {
        PtrGuard::open(&self.access, self.ptr(), queue, Mode::Read)
    }

    /// The device address for foreign code that WRITES (or reads and writes) the buffer on
    /// `queue`: `queue` waits for every earlier read and write, and dropping the guard records
    /// the work queued meanwhile as the buffer's last write. `&mut self` keeps megabatch's own
    /// operations off the buffer while the guard lives.
    ///
    /// # Errors
    /// As [`CudaBuffer::device_ptr`].
    pub fn device_ptr_mut<'a>(&'a mut self, queue: &'a CudaQueue) -> Result<PtrGuard<'a>> {
        PtrGuard::open(&self.access, self.ptr(), queue, Mode::Write)
    }
}

/// A device address lent to foreign code: the queue it was lent on waited for what the access
/// must follow, and dropping (or [`PtrGuard::finish`]ing) the guard records the work queued on
/// that queue since as the buffer's read or write.
#[must_use = "the access is recorded when the guard is dropped or finished"]
pub struct PtrGuard<'a> {
    access: &'a Arc<Access>,
    ptr: sys::CUdeviceptr,
    queue: &'a CudaQueue,
    mode: Mode,
    done: bool,
}

impl std::fmt::Debug for PtrGuard<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PtrGuard")
            .field("ptr", &self.ptr)
            .field("mode", &self.mode)
            .finish()
    }
}

impl<'a> PtrGuard<'a> {
    fn open(
        access: &'a Arc<Access>,
        ptr: sys::CUdeviceptr,
        queue: &'a CudaQueue,
        mode: Mode,
    ) -> Result<Self> {
        bind(queue.stream.ctx())?;
        // The waits of an empty operation: `queue` now follows what this access must follow.
        enqueue_ordered(&queue.stream, &[Some((access, mode))], || Ok(()))?;
        Ok(Self {
            access,
            ptr,
            queue,
            mode,
            done: false,
        })
    }

    /// The device address (`CUdeviceptr`, as `u64`).
    pub fn ptr(&self) -> u64 {
        self.ptr
    }

    /// Records the work queued on the guard's queue since it was opened as the buffer's read
    /// or write, returning the driver's error if that fails (dropping the guard does the same
    /// and ignores errors).
    ///
    /// # Errors
    /// [`Error::Device`] if recording the event fails.
    pub fn finish(mut self) -> Result<()> {
        self.done = true;
        self.record()
    }

    fn record(&self) -> Result<()> {
        enqueue_ordered(
            &self.queue.stream,
            &[Some((self.access, self.mode))],
            || Ok(()),
        )
    }
}

impl Drop for PtrGuard<'_> {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.record();
        }
    }
}

impl Cuda {
    /// Borrows `len` elements of `T` at device address `ptr`, allocated by other code (the
    /// CUDA runtime, PyTorch, CuPy, another library) in this device's context, as a buffer:
    /// no copy. The buffer's first access waits for the work queued on `producer` so far (the
    /// producer's pending writes to the memory).
    ///
    /// Checks, each an error rather than undefined behaviour: `ptr` is a device (or managed)
    /// allocation of this context (`cuPointerGetAttribute`), aligned for `T`, and the whole
    /// range `[ptr, ptr + len * size_of::<T>())` lies inside that one allocation
    /// (`cuMemGetAddressRange`).
    ///
    /// # Safety
    /// The memory must stay allocated, and must not be freed or reused by its owner, until
    /// the returned buffer is dropped (dropping waits for megabatch's work on it); other code
    /// that accesses it meanwhile must do so through [`CudaBuffer::device_ptr`] /
    /// [`CudaBuffer::device_ptr_mut`] guards or otherwise order itself with megabatch's work.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a null or misaligned pointer, or a range that overruns
    /// the allocation; [`Error::PlanMismatch`] for memory of another device or context, or a
    /// `producer` of another context; [`Error::Device`] when the driver does not know the
    /// address; [`Error::TooLarge`] if the byte length overflows.
    pub unsafe fn borrow_device_ptr<T: Element>(
        &self,
        ptr: u64,
        len: usize,
        producer: &CudaQueue,
    ) -> Result<CudaBuffer<T>> {
        self.check_queue(producer)?;
        bind(&self.ctx)?;
        let bytes = bytes_for(len, std::mem::size_of::<T>())?;
        if bytes > 0 {
            self.check_foreign_range(ptr, bytes, std::mem::align_of::<T>())?;
        }
        let buffer = CudaBuffer {
            mem: Memory::Borrowed { ptr, _keep: None },
            len,
            access: Access::new(&self.ctx)?,
            _t: std::marker::PhantomData,
        };
        buffer.record_producer(producer)?;
        Ok(buffer)
    }

    /// Takes over a cudarc [`CudaSlice`] as a buffer without copying; the slice is kept (and
    /// freed by cudarc) when the buffer is dropped, after megabatch's work on it. The buffer's
    /// first access waits for the work cudarc queued on the slice.
    ///
    /// # Errors
    /// [`Error::PlanMismatch`] if the slice belongs to another context; [`Error::Device`] on a
    /// driver failure.
    pub fn adopt_cudarc<T: Element>(&self, mut slice: CudaSlice<T>) -> Result<CudaBuffer<T>> {
        let stream = Arc::clone(slice.stream());
        let producer = self.queue_from_cudarc(stream)?;
        bind(&self.ctx)?;
        let len = slice.len();
        let ptr = {
            // Waits (on the slice's stream) for cudarc's reads and writes of the slice.
            let (ptr, _record) = slice.device_ptr_mut(&producer.stream.inner);
            ptr
        };
        let buffer = CudaBuffer {
            mem: Memory::Borrowed {
                ptr,
                _keep: Some(Box::new(slice)),
            },
            len,
            access: Access::new(&self.ctx)?,
            _t: std::marker::PhantomData,
        };
        buffer.record_producer(&producer)?;
        Ok(buffer)
    }

    fn check_foreign_range(&self, ptr: u64, bytes: usize, align: usize) -> Result<()> {
        if ptr == 0 {
            return Err(Error::InvalidArgument("null device pointer"));
        }
        if !ptr.is_multiple_of(align as u64) {
            return Err(Error::InvalidArgument(
                "device pointer not aligned for its element type",
            ));
        }
        let attribute = |out: *mut std::ffi::c_void, which| {
            // SAFETY: queries an attribute of an address (any value is allowed; unknown ones
            // fail); `out` is valid for writes of the attribute's type (below).
            unsafe { sys::cuPointerGetAttribute(out, which, ptr) }.result()
        };
        use sys::CUpointer_attribute as A;
        let mut memory_type: u32 = 0;
        if let Err(e) = attribute(
            (&mut memory_type as *mut u32).cast(),
            A::CU_POINTER_ATTRIBUTE_MEMORY_TYPE,
        ) {
            return Err(cuda_error(
                DeviceErrorKind::Other,
                format!("cuPointerGetAttribute({ptr:#x}): not a CUDA allocation ({e})"),
            ));
        }
        if memory_type != sys::CUmemorytype::CU_MEMORYTYPE_DEVICE as u32 {
            return Err(Error::InvalidArgument(
                "the pointer is not device memory (host or array memory cannot be borrowed)",
            ));
        }
        let mut ordinal: i32 = -1;
        attribute(
            (&mut ordinal as *mut i32).cast(),
            A::CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL,
        )
        .call("cuPointerGetAttribute(DEVICE_ORDINAL)")?;
        // Stream-ordered (pool) allocations belong to a device, not a context: no context.
        let mut ctx: sys::CUcontext = std::ptr::null_mut();
        attribute(
            (&mut ctx as *mut sys::CUcontext).cast(),
            A::CU_POINTER_ATTRIBUTE_CONTEXT,
        )
        .call("cuPointerGetAttribute(CONTEXT)")?;
        if usize::try_from(ordinal).ok() != Some(self.ctx.ordinal())
            || (!ctx.is_null() && ctx != self.ctx.cu_ctx())
        {
            return Err(Error::PlanMismatch(
                "the device pointer belongs to another device or context",
            ));
        }
        let (mut base, mut size) = (0 as sys::CUdeviceptr, 0usize);
        // SAFETY: `ptr` is an address of this context (checked above); outputs are valid.
        unsafe { sys::cuMemGetAddressRange_v2(&mut base, &mut size, ptr) }
            .result()
            .call("cuMemGetAddressRange")?;
        let end = ptr.checked_add(bytes as u64);
        if end.is_none_or(|end| end > base + size as u64) {
            return Err(Error::InvalidArgument(
                "the borrowed range runs past the end of its device allocation",
            ));
        }
        Ok(())
    }
}

impl<T> CudaBuffer<T> {
    /// Orders the buffer's first access after the work queued on `producer` so far.
    fn record_producer(&self, producer: &CudaQueue) -> Result<()> {
        enqueue_ordered(
            &producer.stream,
            &[Some((&self.access, Mode::Write))],
            || Ok(()),
        )
    }
}
