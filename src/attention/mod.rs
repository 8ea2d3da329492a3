//! Block-sparse attention: the FlexAttention-format [`BlockMask`] and the element rules of
//! partial blocks. The `SparseAttention` trait and its kernels are not written yet (issue 3).

mod mask;
mod predicate;

pub use mask::{BlockMask, BlockMaskParts, BLOCK_SIZES};
pub use predicate::MaskPredicate;
