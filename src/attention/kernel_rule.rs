//! The element rule of partial blocks as the GPU kernels read it: an integer code, the window,
//! and one auxiliary `u32` table (document ids, or tile starts and element bits), shared by the
//! CUDA kernels and the WGSL shader so that both encode a mask identically.

use super::{BlockMask, MaskPredicate};
use crate::{Error, Result};

/// Code of the element-bits rule (`MB_ATT_RULE_BITS` in `kernels/attention.cu`, `5u` in
/// `shaders/attention.wgsl`); 0-4 are the built-in predicates.
pub(crate) const RULE_BITS: u32 = 5;

/// A mask's partial-block rule for a kernel.
pub(crate) struct KernelRule {
    /// 0 none, 1 causal, 2 sliding window, 3 documents, 4 causal documents, 5 element bits.
    pub code: u32,
    /// Sliding-window width (code 2), else 0.
    pub window: usize,
    /// Codes 3 and 4: the document id of every token (`[Sq]`). Code 5: the first tile of every
    /// mask row (`[Bm * Hm * QB]`, as `ElementBits::tile_start`), then the packed words from
    /// index `bits_at`. Else empty.
    pub aux: Vec<u32>,
    /// Where the packed words start in `aux` (code 5: the number of mask rows), else 0. Only
    /// the CUDA kernel takes it as a parameter (the WGSL shader computes it from the mask's
    /// dimensions).
    #[cfg_attr(not(feature = "cuda"), allow(dead_code))]
    pub bits_at: usize,
}

impl KernelRule {
    /// The rule of `mask`.
    ///
    /// # Errors
    /// [`Error::TooLarge`] if the table's indices do not fit `u32` (the kernels' index type).
    pub(crate) fn of(mask: &BlockMask) -> Result<Self> {
        let too_large = || Error::TooLarge("element bits exceed 2^32 words");
        if let Some(bits) = mask.element_bits() {
            let (bm, hm) = mask.broadcast_dims();
            let rows = bm * hm * mask.block_counts().0;
            let total = rows
                .checked_add(bits.words().len())
                .filter(|&n| u32::try_from(n).is_ok())
                .ok_or_else(too_large)?;
            let mut aux = Vec::with_capacity(total);
            aux.extend((0..rows).map(|r| bits.tile_start(r) as u32));
            aux.extend_from_slice(bits.words());
            return Ok(Self {
                code: RULE_BITS,
                window: 0,
                aux,
                bits_at: rows,
            });
        }
        let (code, window, aux) = match mask.predicate() {
            MaskPredicate::None => (0, 0, Vec::new()),
            MaskPredicate::Causal => (1, 0, Vec::new()),
            MaskPredicate::SlidingWindow { window } => (2, *window, Vec::new()),
            MaskPredicate::Documents { ids, causal } => (3 + u32::from(*causal), 0, ids.clone()),
        };
        Ok(Self {
            code,
            window,
            aux,
            bits_at: 0,
        })
    }
}
