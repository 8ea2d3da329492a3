//! What a plan holds: the memory a plan allocates for its own use, as a query.

/// The memory a plan holds for its own use, beyond the caller's buffers, in bytes: the sizes
/// of the allocations the plan made (at plan time, or for the host path when a GPU plan first
/// needed it), read from the allocations themselves rather than estimated again
/// (rustfft's `get_*_scratch_len` for plans of the eigh, reduction and attention operations).
///
/// Every plan type implements it: [`crate::backends::cpu`]'s, the GPU backends', and
/// [`crate::Auto`]'s, which add their own host staging to the chosen backend's numbers.
/// Neither query counts the plan's bookkeeping (offset tables on the host, launch lists,
/// compiled kernels, bind groups), nor the memory a library the plan calls keeps per thread
/// (faer's matrix-product packing buffers).
///
/// ```
/// use megabatch::{backends::cpu::Cpu, BatchedEigh, EighPlan, EighSpec, PlanFootprint};
///
/// let cpu = Cpu::with_threads(1)?;
/// // No call fixes the element type here, so the binding names it.
/// let plan: EighPlan<Cpu, f64> = cpu.plan_eigh(&EighSpec::uniform(20, 8))?;
/// assert!(plan.scratch_bytes() > 20 * 20 * 8); // at least one 20 x 20 work matrix
/// assert_eq!(plan.device_bytes(), 0);
/// # Ok::<(), megabatch::Error>(())
/// ```
pub trait PlanFootprint {
    /// Host memory the plan holds for scratch and staging, in bytes: the CPU's per-thread
    /// arenas and partial results, a GPU plan's host mirrors of its operands (pinned on CUDA,
    /// mappable read-back buffers on wgpu) once allocated, and `Auto`'s staging copies as large
    /// as they have grown. Infallible; 0 when the plan holds none.
    fn scratch_bytes(&self) -> usize;

    /// Device memory the plan holds, in bytes: workspaces, partial results, per-matrix and
    /// mask tables, status words, parameter buffers, and a GPU plan's device copies of its
    /// operands for host calls once allocated (wgpu sizes as allocated, padded to 4 bytes).
    /// Always 0 on the CPU. Infallible.
    fn device_bytes(&self) -> usize;
}
