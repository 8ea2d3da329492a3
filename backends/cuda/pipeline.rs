//! The compiled kernels loaded into one context, looked up by name at plan time.

use std::collections::HashMap;
use std::ffi::CString;
use std::sync::Arc;

use cudarc::driver::result as cu;
use cudarc::driver::sys;
use cudarc::driver::CudaContext;

use super::driver::bind;
use super::error::cuda_error;
use super::error::DriverResultExt;
use crate::{DeviceErrorKind, Error, Result};

/// A loaded module (`cuModuleLoadData`) and the functions plans have asked for.
pub(crate) struct Kernels {
    module: sys::CUmodule,
    functions: std::sync::Mutex<HashMap<String, KernelFn>>,
    ctx: Arc<CudaContext>,
}

/// A kernel handle, valid while its [`Kernels`] lives (plans hold an `Arc` to it).
#[derive(Clone, Copy)]
pub(crate) struct KernelFn(pub(crate) sys::CUfunction);

impl std::fmt::Debug for KernelFn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KernelFn")
    }
}

// SAFETY: function handles are immutable driver objects usable from any thread.
unsafe impl Send for KernelFn {}
// SAFETY: as above.
unsafe impl Sync for KernelFn {}
// SAFETY: the module handle is only used for lookups (serialised by the mutex) and unloading.
unsafe impl Send for Kernels {}
// SAFETY: as above.
unsafe impl Sync for Kernels {}

impl Kernels {
    pub(crate) fn load(ctx: &Arc<CudaContext>, cubin: &[u8]) -> Result<Self> {
        bind(ctx)?;
        // SAFETY: `cubin` is a complete cubin image produced by NVRTC for this device.
        let module =
            unsafe { cu::module::load_data(cubin.as_ptr().cast()) }.call("cuModuleLoadData")?;
        Ok(Self {
            module,
            functions: Default::default(),
            ctx: ctx.clone(),
        })
    }

    /// The kernel named `name` (an `extern "C"` entry point in `kernels/`).
    pub(crate) fn get(&self, name: &str) -> Result<KernelFn> {
        let mut map = self.functions.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(f) = map.get(name) {
            return Ok(*f);
        }
        bind(&self.ctx)?;
        let cname = CString::new(name).map_err(|_| Error::InvalidArgument("kernel name"))?;
        // SAFETY: the module is loaded in this context.
        let f = unsafe { cu::module::get_function(self.module, cname) }.map_err(|e| {
            cuda_error(
                DeviceErrorKind::Other,
                format!("cuModuleGetFunction({name}): {e}"),
            )
        })?;
        load_now(f);
        map.insert(name.to_owned(), KernelFn(f));
        Ok(KernelFn(f))
    }
}

/// Loads a function's code onto the device at plan time: under lazy loading (the default since
/// CUDA 12.2) the first launch would load it, inside a caller's timed call. `cuFuncLoad`
/// exists from driver 12.4; on older drivers the first launch loads as before.
fn load_now(f: sys::CUfunction) {
    // SAFETY: a function-pointer type only; nothing unsafe happens until it is called below.
    type FuncLoad = unsafe extern "C" fn(sys::CUfunction) -> sys::CUresult;
    // SAFETY: a symbol lookup in the loaded driver library; nothing is called.
    let present = unsafe { sys::culib().get::<FuncLoad>(b"cuFuncLoad").is_ok() };
    if present {
        // SAFETY: `f` is a function handle of a module loaded in the current context. A
        // failure here resurfaces at the first launch, which reports it.
        let _ = unsafe { sys::cuFuncLoad(f) };
    }
}

impl Drop for Kernels {
    fn drop(&mut self) {
        if self.ctx.bind_to_thread().is_ok() {
            // SAFETY: loaded once, unloaded once; plans hold `Arc<Kernels>`, so none is alive.
            let _ = unsafe { cu::module::unload(self.module) };
        }
    }
}
