//! Bind groups: how a shader uses each binding ([`Binding`]), the layout entries pipelines
//! are built with, bind groups of a plan's buffers, and the cache of the last ones a plan's
//! device-buffer call bound ([`BindCache`]).

use super::device::Context;
use crate::{Error, Result};

/// How a shader uses one binding.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Binding {
    /// `var<storage, read>`.
    Read,
    /// `var<storage, read_write>`.
    ReadWrite,
    /// `var<uniform>`.
    Uniform,
}

/// The layout entries of group 0: binding `i` of kind `bindings[i]`, visible to compute.
pub(crate) fn layout_entries(bindings: &[Binding]) -> Vec<wgpu::BindGroupLayoutEntry> {
    bindings
        .iter()
        .enumerate()
        .map(|(i, b)| wgpu::BindGroupLayoutEntry {
            binding: i as u32,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: match b {
                    Binding::Read => wgpu::BufferBindingType::Storage { read_only: true },
                    Binding::ReadWrite => wgpu::BufferBindingType::Storage { read_only: false },
                    Binding::Uniform => wgpu::BufferBindingType::Uniform,
                },
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        })
        .collect()
}

impl Context {
    /// A bind group of `pipeline`'s group 0 with `buffers` at bindings 0, 1, ...
    pub(crate) fn bind_group(
        &self,
        pipeline: &wgpu::ComputePipeline,
        buffers: &[&wgpu::Buffer],
    ) -> Result<wgpu::BindGroup> {
        self.scoped("bind group", || {
            let entries: Vec<wgpu::BindGroupEntry> = buffers
                .iter()
                .enumerate()
                .map(|(i, b)| wgpu::BindGroupEntry {
                    binding: i as u32,
                    resource: b.as_entire_binding(),
                })
                .collect();
            self.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: None,
                layout: &pipeline.get_bind_group_layout(0),
                entries: &entries,
            })
        })
    }

    /// Checks that a binding of `bytes` fits the adapter.
    pub(crate) fn check_binding(&self, bytes: usize, what: &'static str) -> Result<()> {
        if bytes as u64 > self.summary.max_storage_binding {
            return Err(Error::TooLarge(what));
        }
        Ok(())
    }
}

/// The bind groups (one per dispatch) of the last `N` caller buffers a plan's device-buffer
/// call bound, keyed by the buffers' ids (0 for an absent one): a loop over the same buffers
/// creates them once.
#[derive(Default)]
pub(crate) struct BindCache<const N: usize> {
    key: Option<[u64; N]>,
    groups: Vec<wgpu::BindGroup>,
}

impl<const N: usize> BindCache<N> {
    pub(crate) fn holds(&self, key: [u64; N]) -> bool {
        self.key == Some(key)
    }

    pub(crate) fn set(&mut self, key: [u64; N], groups: Vec<wgpu::BindGroup>) {
        self.key = Some(key);
        self.groups = groups;
    }

    pub(crate) fn groups(&self) -> &[wgpu::BindGroup] {
        &self.groups
    }
}
