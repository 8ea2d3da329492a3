//! Host staging: results come back to the host through mapped staging buffers. Each plan keeps
//! its own `HostStaging` (device copies of its host-call operands and one staging buffer, made
//! with the plan, or by `prepare_*_host` for a plan of `plan_*_device`), as the CUDA plans do; here are the reads that
//! map a staging buffer, and the handle's 8-byte one for single values.

use super::buffer::padded;
use super::device::Context;
use super::error::device_error;
use crate::{DeviceErrorKind, Result};

/// Mappings of staging buffers (reads of results back to the host) made by megabatch in this
/// process, for the tests that count read-backs per iteration.
pub(crate) static HOST_READS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The 8-byte staging buffer of a device, for `read_first`.
pub(crate) fn scalar_buffer(device: &wgpu::Device) -> wgpu::Buffer {
    device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("megabatch scalar"),
        size: 8,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    })
}

impl Context {
    /// Maps `staging` (already written by submitted work), copies its first `dst.len()` bytes
    /// to `dst` and unmaps it.
    pub(crate) fn read_back(&self, staging: &wgpu::Buffer, dst: &mut [u8]) -> Result<()> {
        self.read_mapped(staging, dst.len() as u64, |view| {
            dst.copy_from_slice(&view[..dst.len()])
        })
    }

    /// Reads the first `dst.len()` (at most 8) bytes of `src` through the handle's scalar
    /// staging buffer: one copy, one wait, one mapping.
    pub(crate) fn read_first(&self, src: &wgpu::Buffer, dst: &mut [u8]) -> Result<()> {
        let staging = self.scalar.lock().unwrap_or_else(|p| p.into_inner());
        let bytes = padded(dst.len() as u64);
        self.enqueue_ordered(|encoder| encoder.copy_buffer_to_buffer(src, 0, &staging, 0, bytes))?;
        self.read_back(&staging, dst)
    }

    /// Maps the first `bytes` of `staging`, waiting for submitted work, and hands them to `read`.
    pub(crate) fn read_mapped<R>(
        &self,
        staging: &wgpu::Buffer,
        bytes: u64,
        read: impl FnOnce(&[u8]) -> R,
    ) -> Result<R> {
        if bytes == 0 {
            self.wait()?;
            return Ok(read(&[]));
        }
        let bytes = padded(bytes);
        HOST_READS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        staging.map_async(wgpu::MapMode::Read, ..bytes, |_| {});
        self.wait()?;
        let out = {
            let view = staging
                .get_mapped_range(..bytes)
                .map_err(|e| device_error(DeviceErrorKind::Other, format!("map: {e}")))?;
            read(&view)
        };
        staging.unmap();
        Ok(out)
    }
}
