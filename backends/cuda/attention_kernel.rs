//! Which compiled variant of `kernels/attention.cu` runs a given attention spec: tile sizes are
//! compile-time constants there (register arrays), so each (dtype, D, tile shape) is its own
//! NVRTC program, compiled on first use and cached (in the process and on disk).

use std::sync::Arc;

use super::nvrtc::compile_source;
use crate::Result;

/// Source of the attention kernels.
pub const ATTENTION_SOURCE: &str = include_str!("../../kernels/attention.cu");

/// One compiled variant of the attention kernel.
///
/// f16/bf16 run `attention_mma` (tensor cores, mma.sync m16n8k16, f32 accumulation): a CTA of
/// `warps` warps owns `16 * m_tiles * warps` query rows and walks keys in chunks of `kv_tile`.
/// f32 runs `attention_fma` (plain FMA; `warps = 4`, 16 query rows and 16-key chunks).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AttentionKernel {
    /// `"f16"`, `"bf16"` or `"f32"`.
    pub dtype: &'static str,
    /// Head dimension D.
    pub head_dim: usize,
    /// Warps per CTA.
    pub warps: usize,
    /// 16-row MMA tiles per warp (1 or 2).
    pub m_tiles: usize,
    /// Keys per chunk (divides BK).
    pub kv_tile: usize,
}

impl AttentionKernel {
    /// The variant for inputs of `dtype` with head dimension `d` and mask blocks `(bq, bk)`
    /// (each in [`crate::attention::BLOCK_SIZES`]).
    ///
    /// Tiles, as measured on the H100 (docs/benchmarks/attention-h100.md, "tile shapes"): a CTA
    /// covers min(BQ, 128) query rows, 16 per warp (eight warps at BQ = 128), except at
    /// D = 96 and 128, where four warps of two 16-row tiles each (each K/V fragment read from
    /// shared memory feeds two MMAs, as in FlashAttention-2's 128-row tiles) measured faster.
    /// Key chunks: 64, or 32 with two row tiles per warp (their accumulators fill the
    /// registers), capped by BK.
    pub fn for_shape(dtype: &'static str, d: usize, bq: usize, bk: usize) -> Self {
        if dtype == "f32" {
            return Self {
                dtype,
                head_dim: d,
                warps: 4,
                m_tiles: 1,
                kv_tile: 16,
            };
        }
        let (warps, m_tiles) = match bq {
            16 => (1, 1),
            32 => (2, 1),
            64 => (4, 1),
            _ if d == 96 || d == 128 => (4, 2),
            _ => (8, 1),
        };
        let kv_max = if m_tiles == 2 { 32 } else { 64 };
        Self {
            dtype,
            head_dim: d,
            warps,
            m_tiles,
            kv_tile: bk.min(kv_max),
        }
    }

    /// Checks that this variant can run a call of `dtype`, head dimension `d` and mask blocks
    /// `block`: same dtype and D; for the tensor-core kernel 1, 2, 4 or 8 warps of 1 or 2
    /// 16-row tiles, a query tile dividing BQ and a key chunk (16 to 128) dividing BK; the f32
    /// kernel has one shape.
    ///
    /// # Errors
    /// [`crate::Error::InvalidArgument`] naming the first mismatch.
    pub fn check_fits(&self, dtype: &'static str, d: usize, block: (usize, usize)) -> Result<()> {
        use crate::Error::InvalidArgument as Bad;
        if self.dtype != dtype || self.head_dim != d {
            return Err(Bad(
                "attention kernel: dtype or head_dim differ from the call's",
            ));
        }
        if dtype == "f32" {
            return if *self == Self::for_shape(dtype, d, block.0, block.1) {
                Ok(())
            } else {
                Err(Bad("attention kernel: the f32 kernel has a single shape"))
            };
        }
        if ![1, 2, 4, 8].contains(&self.warps) || ![1, 2].contains(&self.m_tiles) {
            return Err(Bad(
                "attention kernel: 1, 2, 4 or 8 warps of 1 or 2 row tiles",
            ));
        }
        if self.query_tile() > block.0 || !block.0.is_multiple_of(self.query_tile()) {
            return Err(Bad("attention kernel: query tile must divide BQ"));
        }
        if ![16, 32, 64, 128].contains(&self.kv_tile) || !block.1.is_multiple_of(self.kv_tile) {
            return Err(Bad(
                "attention kernel: key chunk must be 16-128 and divide BK",
            ));
        }
        Ok(())
    }

    /// Every variant [`AttentionKernel::for_shape`] can return, for compile tests.
    pub fn all() -> Vec<Self> {
        use crate::attention::{BLOCK_SIZES, HEAD_DIMS};
        let mut all = Vec::new();
        for dtype in ["f16", "bf16", "f32"] {
            for d in HEAD_DIMS {
                for bq in BLOCK_SIZES {
                    for bk in BLOCK_SIZES {
                        let k = Self::for_shape(dtype, d, bq, bk);
                        if !all.contains(&k) {
                            all.push(k);
                        }
                    }
                }
            }
        }
        all
    }

    /// The kernel's entry point.
    pub fn entry(&self) -> &'static str {
        if self.dtype == "f32" {
            "attention_fma"
        } else {
            "attention_mma"
        }
    }

    /// Query rows per CTA.
    pub fn query_tile(&self) -> usize {
        if self.dtype == "f32" {
            16
        } else {
            16 * self.m_tiles * self.warps
        }
    }

    /// Threads per CTA.
    pub fn threads(&self) -> usize {
        if self.dtype == "f32" {
            128
        } else {
            32 * self.warps
        }
    }

    /// Dynamic shared memory per CTA in bytes: the Q tile and two K and two V chunk buffers,
    /// rows padded by 16 bytes (the f32 kernel's tiles are static).
    pub fn shared_bytes(&self) -> usize {
        if self.dtype == "f32" {
            return 0;
        }
        (self.query_tile() + 4 * self.kv_tile) * (self.head_dim + 8) * 2
    }

    /// The NVRTC source of this variant: its defines, then `kernels/attention.cu`.
    pub fn source(&self) -> String {
        format!(
            "#define MB_ATT_D {}\n#define MB_ATT_WARPS {}\n#define MB_ATT_MT {}\n\
             #define MB_ATT_KT {}\n#define MB_ATT_BF16 {}\n#define MB_ATT_FMA {}\n{ATTENTION_SOURCE}",
            self.head_dim,
            self.warps,
            self.m_tiles,
            self.kv_tile,
            u8::from(self.dtype == "bf16"),
            u8::from(self.dtype == "f32"),
        )
    }

    /// Compiles this variant for `arch` (e.g. `"sm_90"`); cached.
    ///
    /// # Errors
    /// [`crate::Error::Device`] when libnvrtc is missing or the compile fails (with the log).
    pub fn compile(&self, arch: &str) -> Result<Arc<Vec<u8>>> {
        compile_source(arch, &self.source())
    }
}
