//! User kernels on wgpu: a WGSL compute entry point compiled on megabatch's (or the adopted)
//! device with an explicit layout ([`WgpuKernel`]), its buffers bound once
//! ([`WgpuBinding`]), and dispatches submitted to the one queue megabatch's own work uses, so
//! they run in order with it.

use super::bind::Binding;
use super::buffer::WgpuBuffer;
use super::device::Wgpu;
use super::error::unsupported;
use crate::{Error, Result};

/// How a user kernel uses one binding of group 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WgpuBindingKind {
    /// `var<storage, read>`.
    ReadOnly,
    /// `var<storage, read_write>`.
    ReadWrite,
    /// `var<uniform>`.
    Uniform,
}

/// A WGSL compute entry point compiled into a pipeline whose group 0 has binding `i` of kind
/// `kinds[i]` (an explicit layout: bindings the entry point does not use stay in it).
pub struct WgpuKernel {
    pipeline: wgpu::ComputePipeline,
    kinds: Vec<WgpuBindingKind>,
    entry: String,
}

impl std::fmt::Debug for WgpuKernel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WgpuKernel")
            .field("entry", &self.entry)
            .field("bindings", &self.kinds)
            .finish()
    }
}

/// A buffer bound to a user kernel: megabatch's [`WgpuBuffer`] or any `wgpu::Buffer` of the
/// same device (a uniform buffer of parameters, the application's own storage).
#[derive(Debug, Clone, Copy)]
pub struct WgpuArg<'a> {
    buffer: &'a wgpu::Buffer,
}

impl<'a, T> From<&'a WgpuBuffer<T>> for WgpuArg<'a> {
    fn from(b: &'a WgpuBuffer<T>) -> Self {
        Self { buffer: &b.buffer }
    }
}

impl<'a> From<&'a wgpu::Buffer> for WgpuArg<'a> {
    fn from(buffer: &'a wgpu::Buffer) -> Self {
        Self { buffer }
    }
}

/// A user kernel with its buffers bound (a bind group), made once and dispatched many times:
/// dispatching allocates no bind group.
pub struct WgpuBinding {
    pipeline: wgpu::ComputePipeline,
    group: wgpu::BindGroup,
}

impl std::fmt::Debug for WgpuBinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WgpuBinding")
    }
}

impl Wgpu {
    /// Compiles the compute entry point `entry` of WGSL `source`, with group 0 laid out as
    /// `kinds` (binding `i` of kind `kinds[i]`).
    ///
    /// # Errors
    /// [`Error::Device`] (kind `Other`) carrying wgpu's message when the source does not
    /// parse or validate, has no such entry point, or does not fit the layout;
    /// [`Error::InvalidArgument`] for a NUL byte in `entry`.
    pub fn compile_kernel(
        &self,
        source: &str,
        entry: &str,
        kinds: &[WgpuBindingKind],
    ) -> Result<WgpuKernel> {
        if entry.contains('\0') {
            return Err(Error::InvalidArgument("NUL byte in the entry point's name"));
        }
        let ctx = &self.ctx;
        let bindings: Vec<Binding> = kinds
            .iter()
            .map(|k| match k {
                WgpuBindingKind::ReadOnly => Binding::Read,
                WgpuBindingKind::ReadWrite => Binding::ReadWrite,
                WgpuBindingKind::Uniform => Binding::Uniform,
            })
            .collect();
        let pipeline = ctx.compute_pipeline(entry, &bindings, source, entry)?;
        Ok(WgpuKernel {
            pipeline,
            kinds: kinds.to_vec(),
            entry: entry.to_owned(),
        })
    }

    /// Binds `args` to `kernel`'s bindings 0, 1, ... (plan time: this creates a bind group).
    ///
    /// # Errors
    /// [`Error::KernelArguments`] if the number of arguments differs from the kernel's
    /// bindings; [`Error::Device`] carrying wgpu's message if a buffer does not fit its
    /// binding (usage, size, alignment, or a buffer of another device).
    pub fn bind_kernel(&self, kernel: &WgpuKernel, args: &[WgpuArg<'_>]) -> Result<WgpuBinding> {
        if args.len() != kernel.kinds.len() {
            return Err(Error::KernelArguments {
                kernel: kernel.entry.clone(),
                message: format!(
                    "it has {} bindings, {} buffers given",
                    kernel.kinds.len(),
                    args.len()
                ),
            });
        }
        let buffers: Vec<&wgpu::Buffer> = args.iter().map(|a| a.buffer).collect();
        let group = self.ctx.bind_group(&kernel.pipeline, &buffers)?;
        Ok(WgpuBinding {
            pipeline: kernel.pipeline.clone(),
            group,
        })
    }

    /// Submits `dispatches` (each a bound kernel and its workgroup counts in x, y, z) as one
    /// compute pass in one submission, after everything submitted before (megabatch's calls
    /// and the application's). Returns without waiting.
    ///
    /// # Errors
    /// [`Error::Unsupported`] for a workgroup count above the adapter's per-dimension limit;
    /// [`Error::Device`] if the device was lost or wgpu rejects the submission.
    pub fn dispatch(&self, dispatches: &[(&WgpuBinding, (u32, u32, u32))]) -> Result<()> {
        let max = self.ctx.summary.max_workgroups_per_dim;
        if dispatches
            .iter()
            .any(|(_, (x, y, z))| *x > max || *y > max || *z > max)
        {
            return Err(unsupported(format!(
                "a dispatch of more than {max} workgroups in one dimension"
            )));
        }
        self.ctx.enqueue_ordered(|encoder| {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: None,
                timestamp_writes: None,
            });
            for (binding, (x, y, z)) in dispatches {
                pass.set_pipeline(&binding.pipeline);
                pass.set_bind_group(0, &binding.group, &[]);
                pass.dispatch_workgroups(*x, *y, *z);
            }
        })
    }
}
