//! User kernels: CUDA C source compiled through megabatch's NVRTC cache ([`CudaKernel`]) and
//! launched on a [`CudaQueue`] with buffers as typed arguments ([`KernelArg`]), ordered with
//! megabatch's own work through the buffers' events like any operation.

use std::ffi::c_void;
use std::sync::Arc;

use cudarc::driver::sys;

use super::access::{enqueue_ordered, Access, Mode, Use, MAX_USES};
use super::buffer::CudaBuffer;
use super::command::launch_dims;
use super::driver::bind;
use super::error::cuda_error;
use super::pipeline::{KernelFn, Kernels};
use super::queue::CudaQueue;
use super::Cuda;
use crate::stable_hash::stable_hash;
use crate::{DeviceErrorKind, Element, Error, Result};

/// Most parameters a user kernel may take.
pub const MAX_KERNEL_ARGS: usize = MAX_USES;

/// A user kernel: one `extern "C" __global__` function of CUDA C source compiled for this
/// device by NVRTC (cached in the process and on disk like megabatch's kernels), with its
/// parameter sizes read from the driver (`cuFuncGetParamInfo`) so that a launch with the
/// wrong number or sizes of arguments is an error instead of undefined behaviour.
#[derive(Clone)]
pub struct CudaKernel {
    name: String,
    func: KernelFn,
    _module: Arc<Kernels>,
    /// Size in bytes of each parameter, in order.
    params: Vec<usize>,
    ctx: sys::CUcontext,
}

// SAFETY: the context handle is only compared, never used to call the driver.
unsafe impl Send for CudaKernel {}
// SAFETY: as above; `KernelFn` and `Kernels` are `Sync`.
unsafe impl Sync for CudaKernel {}

impl std::fmt::Debug for CudaKernel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CudaKernel")
            .field("name", &self.name)
            .field("param_bytes", &self.params)
            .finish()
    }
}

impl CudaKernel {
    /// The kernel's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Size in bytes of each of the kernel's parameters, in order.
    pub fn param_sizes(&self) -> &[usize] {
        &self.params
    }
}

/// Grid and block shape of a launch, and its dynamic shared memory in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LaunchDims {
    /// Blocks in x, y, z.
    pub grid: (u32, u32, u32),
    /// Threads per block in x, y, z.
    pub block: (u32, u32, u32),
    /// Dynamic shared memory per block, in bytes.
    pub shared_bytes: u32,
}

impl LaunchDims {
    /// A one-dimensional launch covering `threads` threads in blocks of `block`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `block` is 0; [`Error::TooLarge`] if the grid needs more
    /// than 2^31 - 1 blocks.
    pub fn linear(threads: usize, block: u32) -> Result<Self> {
        if block == 0 {
            return Err(Error::InvalidArgument("block size 0"));
        }
        let blocks = threads.div_ceil(block as usize).max(1);
        let blocks = u32::try_from(blocks)
            .ok()
            .filter(|&b| b < 1 << 31)
            .ok_or(Error::TooLarge("grid exceeds 2^31 - 1 blocks"))?;
        Ok(Self {
            grid: (blocks, 1, 1),
            block: (block, 1, 1),
            shared_bytes: 0,
        })
    }
}

/// One argument of a user kernel launch: a buffer the kernel reads, one it writes, or a
/// scalar passed by value. Buffers pass their device address (`const T*` / `T*` in the
/// kernel); scalars their bytes (`int`, `unsigned`, `long long`, `unsigned long long`,
/// `float`, `double`).
pub struct KernelArg<'a> {
    value: ArgValue<'a>,
}

enum ArgValue<'a> {
    Buffer {
        access: &'a Arc<Access>,
        ptr: u64,
        mode: Mode,
    },
    Scalar {
        bytes: [u8; 8],
        size: usize,
    },
}

impl<'a> KernelArg<'a> {
    /// A buffer the kernel only reads (`const T*`): the launch waits for its last write.
    pub fn read<T: Element>(buf: &'a CudaBuffer<T>) -> Self {
        Self {
            value: ArgValue::Buffer {
                access: &buf.access,
                ptr: buf.ptr(),
                mode: Mode::Read,
            },
        }
    }

    /// A buffer the kernel writes (`T*`): the launch waits for its earlier reads and writes
    /// and becomes its last write.
    pub fn write<T: Element>(buf: &'a mut CudaBuffer<T>) -> Self {
        Self {
            value: ArgValue::Buffer {
                access: &buf.access,
                ptr: buf.ptr(),
                mode: Mode::Write,
            },
        }
    }

    fn scalar<const N: usize>(raw: [u8; N]) -> Self {
        let mut bytes = [0u8; 8];
        bytes[..N].copy_from_slice(&raw);
        Self {
            value: ArgValue::Scalar { bytes, size: N },
        }
    }

    fn size(&self) -> usize {
        match self.value {
            ArgValue::Buffer { .. } => 8,
            ArgValue::Scalar { size, .. } => size,
        }
    }
}

macro_rules! scalar_args {
    ($($t:ty),*) => {$(
        impl From<$t> for KernelArg<'_> {
            /// A scalar passed by value.
            fn from(x: $t) -> Self {
                Self::scalar(x.to_ne_bytes())
            }
        }
    )*};
}
scalar_args!(i32, u32, i64, u64, f32, f64);

impl Cuda {
    /// Compiles the `extern "C" __global__` function `name` of `source` (CUDA C++17) for this
    /// device through NVRTC, or takes it from the process or disk cache.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `source` or `name` contains a NUL byte (rejected before
    /// NVRTC, which cannot take one); [`Error::Device`] with the NVRTC log when the source
    /// does not compile, when it has no kernel `name` (declare it `extern "C"`), or when the
    /// driver is too old to report parameter sizes (`cuFuncGetParamInfo`, CUDA 12.4).
    pub fn compile_kernel(&self, source: &str, name: &str) -> Result<CudaKernel> {
        if source.contains('\0') || name.contains('\0') {
            return Err(Error::InvalidArgument(
                "kernel source and name must not contain NUL bytes",
            ));
        }
        bind(&self.ctx)?;
        let key = format!("user-{:016x}", stable_hash(source.as_bytes()));
        let module = self.variant_module(&key, || source.to_owned())?;
        let func = module.get(name).map_err(|_| {
            cuda_error(
                DeviceErrorKind::Other,
                format!("the source has no kernel named `{name}` (declare it extern \"C\")"),
            )
        })?;
        let params = param_sizes(func.0, name)?;
        Ok(CudaKernel {
            name: name.to_owned(),
            func,
            _module: module,
            params,
            ctx: self.ctx.cu_ctx(),
        })
    }

    /// Launches `kernel` on `queue` with `args`, after the work its buffer arguments must
    /// follow (the last write of each `read` buffer; every earlier access of each `write`
    /// buffer), and records the launch as their last read or write: a user kernel and
    /// megabatch's operations on one queue, or on several, chain without host
    /// synchronisation. No allocation. Inside [`Cuda::capture`] the launch is captured.
    ///
    /// # Safety
    /// The kernel must access buffer arguments only within their lengths (as the other
    /// arguments tell it), write only those passed with [`KernelArg::write`], and interpret
    /// each scalar as the type it was passed as (sizes are checked, types are not). A kernel
    /// that breaks this can corrupt any device memory of the process.
    ///
    /// # Errors
    /// [`Error::KernelArguments`] if the number of arguments or any argument's size differs
    /// from the kernel's parameters; [`Error::PlanMismatch`] if the kernel or queue belong to
    /// another context; [`Error::Device`] when the launch is refused (a block too large, too
    /// much shared memory: `LaunchFailure` or `Other`, the context stays usable) or the device
    /// is lost.
    pub unsafe fn launch_kernel(
        &self,
        queue: &CudaQueue,
        kernel: &CudaKernel,
        dims: LaunchDims,
        args: &[KernelArg<'_>],
    ) -> Result<()> {
        self.check_queue(queue)?;
        if kernel.ctx != self.ctx.cu_ctx() {
            return Err(Error::PlanMismatch(
                "kernel compiled in another CUDA context",
            ));
        }
        if args.len() != kernel.params.len() {
            return Err(Error::KernelArguments {
                kernel: kernel.name.clone(),
                message: format!(
                    "it takes {} arguments, {} given",
                    kernel.params.len(),
                    args.len()
                ),
            });
        }
        if let Some((i, (arg, want))) = args
            .iter()
            .zip(&kernel.params)
            .enumerate()
            .find(|(_, (a, &want))| a.size() != want)
        {
            return Err(Error::KernelArguments {
                kernel: kernel.name.clone(),
                message: format!(
                    "argument {i} is {} bytes, the kernel's parameter {want}",
                    arg.size()
                ),
            });
        }
        bind(&self.ctx)?;
        let mut values = [[0u8; 8]; MAX_KERNEL_ARGS];
        let mut uses: [Option<Use<'_>>; MAX_KERNEL_ARGS] = [None; MAX_KERNEL_ARGS];
        for (i, arg) in args.iter().enumerate() {
            match &arg.value {
                ArgValue::Buffer { access, ptr, mode } => {
                    values[i] = ptr.to_ne_bytes();
                    uses[i] = Some((access, *mode));
                }
                ArgValue::Scalar { bytes, .. } => values[i] = *bytes,
            }
        }
        let mut params = [std::ptr::null_mut::<c_void>(); MAX_KERNEL_ARGS];
        for (p, v) in params.iter_mut().zip(values.iter_mut()) {
            *p = v.as_mut_ptr().cast();
        }
        let stream = &queue.stream;
        enqueue_ordered(stream, &uses[..args.len()], || {
            // SAFETY: the count and sizes match the kernel's parameters (checked above); what
            // the kernel does with them is the caller's contract; the buffers stay alive until
            // the stream passes the launch (their drop waits for the events recorded after it).
            unsafe {
                launch_dims(
                    kernel.func.0,
                    dims.grid,
                    dims.block,
                    dims.shared_bytes,
                    stream,
                    &mut params[..args.len()],
                )
            }
        })
    }
}

fn too_many_params(name: &str) -> Error {
    cuda_error(
        DeviceErrorKind::Other,
        format!("kernel `{name}` takes more than {MAX_KERNEL_ARGS} parameters"),
    )
}

/// The byte size of each parameter of `f`, from the driver.
fn param_sizes(f: sys::CUfunction, name: &str) -> Result<Vec<usize>> {
    // SAFETY: a function-pointer type only; nothing is called here.
    type ParamInfo =
        unsafe extern "C" fn(sys::CUfunction, usize, *mut usize, *mut usize) -> sys::CUresult;
    // SAFETY: a symbol lookup in the loaded driver library; nothing is called.
    let present = unsafe { sys::culib().get::<ParamInfo>(b"cuFuncGetParamInfo").is_ok() };
    if !present {
        return Err(cuda_error(
            DeviceErrorKind::Other,
            "the driver cannot report kernel parameters (cuFuncGetParamInfo needs CUDA 12.4)",
        ));
    }
    // The count first where the driver reports it (cuFuncGetParamCount, CUDA 12.9): probing
    // past the last parameter is an API error that compute-sanitizer reports.
    type ParamCount = unsafe extern "C" fn(sys::CUfunction, *mut usize) -> sys::CUresult;
    // SAFETY: a symbol lookup in the loaded driver library, called with a loaded function and
    // an output valid for writes.
    let known = unsafe {
        sys::culib()
            .get::<ParamCount>(b"cuFuncGetParamCount")
            .ok()
            .and_then(|count_of| {
                let mut count = 0usize;
                (count_of(f, &mut count) == sys::CUresult::CUDA_SUCCESS).then_some(count)
            })
    };
    if known.is_some_and(|c| c > MAX_KERNEL_ARGS) {
        return Err(too_many_params(name));
    }
    let mut sizes = Vec::new();
    while known.is_none_or(|c| sizes.len() < c) {
        let (mut offset, mut size) = (0usize, 0usize);
        // SAFETY: `f` is a loaded function; the outputs are valid for writes. An index past
        // the last parameter returns CUDA_ERROR_INVALID_VALUE.
        let r = unsafe { sys::cuFuncGetParamInfo(f, sizes.len(), &mut offset, &mut size) };
        if r != sys::CUresult::CUDA_SUCCESS {
            if known.is_some() {
                return Err(cuda_error(
                    DeviceErrorKind::Other,
                    format!(
                        "the driver did not report parameter {} of kernel `{name}`",
                        sizes.len()
                    ),
                ));
            }
            break;
        }
        sizes.push(size);
        if sizes.len() > MAX_KERNEL_ARGS {
            return Err(too_many_params(name));
        }
    }
    Ok(sizes)
}
