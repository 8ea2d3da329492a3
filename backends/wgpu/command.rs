//! Putting work on the queue: [`Context::enqueue_ordered`], the one way plans (and the
//! handle's own copies) queue work, the dispatches a plan enqueues, and waiting for the queue.

use std::sync::Arc;

use super::device::Context;
use super::error::device_error;
use crate::{DeviceErrorKind, Result};

impl Context {
    /// Runs one call's work: `encode` enqueues it (a plan's dispatches, the copies into its
    /// staging buffer) into one command encoder; then the device is checked (lost, or an error
    /// since the last check), the encoder submitted, and the device checked again. The wgpu
    /// counterpart of the CUDA backend's `enqueue_ordered` (wait on inputs, enqueue, mark
    /// outputs): wgpu's one queue runs submissions in order, so there is nothing to wait on or
    /// mark.
    pub(crate) fn enqueue_ordered(
        &self,
        encode: impl FnOnce(&mut wgpu::CommandEncoder),
    ) -> Result<()> {
        let submit = || {
            let mut encoder = self
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
            encode(&mut encoder);
            self.queue.submit(Some(encoder.finish()));
        };
        if self.adopted {
            // The uncaptured-error handler is the application's: catch this call's errors.
            self.injected(true)?;
            return self.scoped("submission", submit);
        }
        self.check()?;
        self.injected(true)?;
        submit();
        self.check()
    }

    /// Waits until all submitted work has finished.
    pub(crate) fn wait(&self) -> Result<()> {
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| device_error(DeviceErrorKind::Other, format!("poll: {e}")))?;
        self.check()
    }
}

/// One dispatch of a plan: its pipeline and workgroup count.
pub(crate) struct Dispatch {
    pub(crate) pipeline: Arc<wgpu::ComputePipeline>,
    pub(crate) workgroups: u32,
}

/// Enqueues `dispatches` (pipeline, bind group, workgroups) in one compute pass.
pub(crate) fn enqueue<'a>(
    encoder: &mut wgpu::CommandEncoder,
    dispatches: impl IntoIterator<Item = (&'a wgpu::ComputePipeline, &'a wgpu::BindGroup, u32)>,
) {
    let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
        label: None,
        timestamp_writes: None,
    });
    for (pipeline, group, workgroups) in dispatches {
        pass.set_pipeline(pipeline);
        pass.set_bind_group(0, group, &[]);
        pass.dispatch_workgroups(workgroups, 1, 1);
    }
}

/// Enqueues `dispatches`, dispatch `i` with bind group `groups[i]`, in one compute pass.
pub(crate) fn enqueue_dispatches(
    encoder: &mut wgpu::CommandEncoder,
    dispatches: &[Dispatch],
    groups: &[wgpu::BindGroup],
) {
    enqueue(
        encoder,
        dispatches
            .iter()
            .zip(groups)
            .map(|(d, g)| (&*d.pipeline, g, d.workgroups)),
    );
}
