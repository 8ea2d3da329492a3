//! Buffers: [`WgpuBuffer`], the storage, uniform and staging buffers plans and the handle
//! create (inside error scopes, so a failure is a typed error of the call), queued writes, and
//! wgpu's copy alignment.

use std::sync::atomic::{AtomicU64, Ordering};

use super::device::Context;
use crate::{Error, Result};

static NEXT_BUFFER_ID: AtomicU64 = AtomicU64::new(1);

/// A storage buffer of `len` elements of `T` on one wgpu device. Sizes are padded to 4 bytes
/// (wgpu's copy alignment), so an odd-length f16 buffer holds one spare element.
pub struct WgpuBuffer<T> {
    pub(crate) buffer: wgpu::Buffer,
    pub(crate) len: usize,
    id: u64,
    _t: std::marker::PhantomData<T>,
}

impl<T> std::fmt::Debug for WgpuBuffer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WgpuBuffer")
            .field("len", &self.len)
            .finish()
    }
}

impl<T> WgpuBuffer<T> {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the buffer holds no elements.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The underlying `wgpu::Buffer` (usage `STORAGE | COPY_SRC | COPY_DST`), for interop
    /// with other wgpu code on the same device.
    pub fn raw(&self) -> &wgpu::Buffer {
        &self.buffer
    }

    /// A process-unique identity, which plans use to reuse bind groups across calls.
    pub(crate) fn key(&self) -> u64 {
        self.id
    }

    /// A zeroed buffer of `len` elements on `ctx`'s device, with a fresh identity.
    pub(crate) fn alloc(ctx: &Context, len: usize) -> Result<Self> {
        let buffer = ctx.storage_buffer("megabatch buffer", len, std::mem::size_of::<T>())?;
        Ok(WgpuBuffer {
            buffer,
            len,
            id: NEXT_BUFFER_ID.fetch_add(1, Ordering::Relaxed),
            _t: std::marker::PhantomData,
        })
    }
}

impl super::Wgpu {
    /// Adopts `buffer`, a `wgpu::Buffer` the application created on this device, as a
    /// megabatch buffer of `len` elements of `T` (its first `len * size_of::<T>()` bytes), with
    /// no copy. Its usage must include `STORAGE`, `COPY_SRC` and `COPY_DST` (megabatch binds
    /// it to shaders and copies into and out of it). Work on it is ordered with the
    /// application's by the device's one queue.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a usage without those flags; [`Error::Shape`] (in bytes)
    /// if the buffer is smaller than `len` elements; [`Error::TooLarge`] if the byte length
    /// overflows. A buffer of another device is refused (an [`Error::Device`]) by the first
    /// call that binds it.
    pub fn adopt_buffer<T: crate::Element>(
        &self,
        buffer: wgpu::Buffer,
        len: usize,
    ) -> Result<WgpuBuffer<T>> {
        let needed = wgpu::BufferUsages::STORAGE
            | wgpu::BufferUsages::COPY_SRC
            | wgpu::BufferUsages::COPY_DST;
        if !buffer.usage().contains(needed) {
            return Err(Error::InvalidArgument(
                "an adopted buffer needs STORAGE | COPY_SRC | COPY_DST usage",
            ));
        }
        let bytes = len
            .checked_mul(std::mem::size_of::<T>())
            .ok_or(Error::TooLarge("buffer size overflows usize"))?;
        if padded(bytes as u64) > buffer.size() {
            return Err(Error::Shape {
                what: "adopted buffer (bytes)",
                expected: padded(bytes as u64) as usize,
                got: buffer.size() as usize,
            });
        }
        Ok(WgpuBuffer {
            buffer,
            len,
            id: NEXT_BUFFER_ID.fetch_add(1, Ordering::Relaxed),
            _t: std::marker::PhantomData,
        })
    }
}

/// `bytes` rounded up to wgpu's copy alignment (4).
pub(crate) fn padded(bytes: u64) -> u64 {
    bytes.div_ceil(wgpu::COPY_BUFFER_ALIGNMENT) * wgpu::COPY_BUFFER_ALIGNMENT
}

impl Context {
    fn buffer(&self, label: &str, bytes: u64, usage: wgpu::BufferUsages) -> Result<wgpu::Buffer> {
        let limits = self.device.limits();
        let size = padded(bytes.max(4));
        if size > limits.max_buffer_size {
            return Err(Error::TooLarge(
                "buffer exceeds the adapter's max_buffer_size",
            ));
        }
        self.scoped(label, || {
            self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size,
                usage,
                mapped_at_creation: false,
            })
        })
    }

    /// A zeroed storage buffer of `len` elements of `elem` bytes, usable by copies.
    pub(crate) fn storage_buffer(
        &self,
        label: &str,
        len: usize,
        elem: usize,
    ) -> Result<wgpu::Buffer> {
        let bytes = len
            .checked_mul(elem)
            .ok_or(Error::TooLarge("buffer size overflows usize"))? as u64;
        self.buffer(
            label,
            bytes,
            wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST,
        )
    }

    /// A host-readable buffer for results.
    pub(crate) fn staging_buffer(&self, bytes: u64) -> Result<wgpu::Buffer> {
        self.buffer(
            "megabatch staging",
            bytes,
            wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        )
    }

    /// A uniform buffer holding `data`.
    pub(crate) fn uniform_buffer(&self, data: &[u8]) -> Result<wgpu::Buffer> {
        let buf = self.buffer(
            "megabatch params",
            data.len() as u64,
            wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        )?;
        self.write(&buf, data)?;
        Ok(buf)
    }

    /// Queues a write of `data` to the start of `buffer` (a length that is not a multiple of 4
    /// has its tail padded with zeros, inside the buffer's own padding).
    pub(crate) fn write(&self, buffer: &wgpu::Buffer, data: &[u8]) -> Result<()> {
        self.check()?;
        let whole = data.len() / 4 * 4;
        if whole > 0 {
            self.queue.write_buffer(buffer, 0, &data[..whole]);
        }
        if whole < data.len() {
            let mut tail = [0u8; 4];
            tail[..data.len() - whole].copy_from_slice(&data[whole..]);
            self.queue.write_buffer(buffer, whole as u64, &tail);
        }
        Ok(())
    }
}
