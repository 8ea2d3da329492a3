//! Compute pipelines compiled once per shader variant, cached in the device's [`Context`] by
//! the variant's key (the CUDA backend's counterpart is its loaded-module cache).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::bind::{layout_entries, Binding};
use super::device::Context;
use crate::Result;

/// The compiled pipelines of one device, by shader variant key.
#[derive(Default)]
pub(crate) struct Pipelines {
    cache: Mutex<HashMap<String, Arc<wgpu::ComputePipeline>>>,
}

impl Context {
    /// The compute pipeline for `key`, compiled from `source()` on first use, with an explicit
    /// layout: group 0, binding `i` of kind `bindings[i]` (so bindings a variant does not use
    /// stay in the layout, unlike wgpu's derived layouts).
    pub(crate) fn pipeline(
        &self,
        key: &str,
        bindings: &[Binding],
        source: impl FnOnce() -> String,
    ) -> Result<Arc<wgpu::ComputePipeline>> {
        let mut cache = self
            .pipelines
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(p) = cache.get(key) {
            return Ok(Arc::clone(p));
        }
        let pipeline = self.compute_pipeline(key, bindings, &source(), "main")?;
        let pipeline = Arc::new(pipeline);
        cache.insert(key.to_owned(), Arc::clone(&pipeline));
        Ok(pipeline)
    }

    /// Compiles `source`'s entry point `entry` with the explicit layout of `bindings`, inside
    /// error scopes (a WGSL or layout error is an `Error::Device` carrying wgpu's message).
    pub(crate) fn compute_pipeline(
        &self,
        label: &str,
        bindings: &[Binding],
        source: &str,
        entry: &str,
    ) -> Result<wgpu::ComputePipeline> {
        self.scoped(label, || {
            let entries = layout_entries(bindings);
            let group = self
                .device
                .create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                    label: Some(label),
                    entries: &entries,
                });
            let layout = self
                .device
                .create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                    label: Some(label),
                    bind_group_layouts: &[Some(&group)],
                    immediate_size: 0,
                });
            let module = self
                .device
                .create_shader_module(wgpu::ShaderModuleDescriptor {
                    label: Some(label),
                    source: wgpu::ShaderSource::Wgsl(source.into()),
                });
            self.device
                .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some(label),
                    layout: Some(&layout),
                    module: &module,
                    entry_point: Some(entry),
                    compilation_options: Default::default(),
                    cache: None,
                })
        })
    }
}
