//! [`MultiBuffer`]: one buffer per device, each a contiguous range of the whole.

use std::ops::Range;

use crate::{Backend, Element};

/// A buffer of a [`super::Multi`]: part `k` lives on device `k` and holds elements `range_k`
/// of the whole, the ranges tiling `0..len` in device order (some may be empty). Made by
/// [`super::Multi::alloc_parts`] (a plan's split, for its device calls) or `alloc` (an even
/// split by element count).
pub struct MultiBuffer<B: Backend, T: Element> {
    parts: Vec<(Range<usize>, B::Buffer<T>)>,
    len: usize,
}

impl<B: Backend, T: Element> std::fmt::Debug for MultiBuffer<B, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ranges: Vec<&Range<usize>> = self.parts.iter().map(|(r, _)| r).collect();
        f.debug_struct("MultiBuffer")
            .field("len", &self.len)
            .field("parts", &ranges)
            .finish()
    }
}

impl<B: Backend, T: Element> MultiBuffer<B, T> {
    pub(super) fn new(parts: Vec<(Range<usize>, B::Buffer<T>)>, len: usize) -> Self {
        Self { parts, len }
    }

    /// Elements in all parts together.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the buffer holds no elements.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Each device's range of the whole and its buffer, in device order.
    pub fn parts(&self) -> &[(Range<usize>, B::Buffer<T>)] {
        &self.parts
    }

    /// As [`MultiBuffer::parts`], the buffers mutable (for the user's own kernels on each
    /// device; the ranges stay as they are).
    pub fn parts_mut(&mut self) -> &mut [(Range<usize>, B::Buffer<T>)] {
        &mut self.parts
    }

    /// Whether part `k` holds exactly `ranges[k]` for every device.
    pub(super) fn split_is(&self, ranges: impl Iterator<Item = Range<usize>>) -> bool {
        let mut count = 0;
        for (k, r) in ranges.enumerate() {
            if self.parts.get(k).is_none_or(|(own, _)| *own != r) {
                return false;
            }
            count += 1;
        }
        count == self.parts.len()
    }
}
