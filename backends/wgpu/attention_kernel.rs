//! The shader variants of the wgpu attention (`shaders/attention.wgsl`): element type and
//! head dimension.

use std::fmt::Write;

use super::wgsl::{WgslFloat, ATTENTION};

/// Invocations per workgroup of the attention shader.
pub const ATTENTION_WORKGROUP: usize = 128;

/// One specialisation of the attention shader: element type and head dimension fix the tile
/// sizes, so that Q, the accumulators, K, V and the scores fit 28 KiB of workgroup memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AttentionShader {
    /// Element type (F32 or F16).
    pub elem: WgslFloat,
    /// Head dimension.
    pub head_dim: usize,
}

impl AttentionShader {
    /// Query rows per sub-tile: `R * D` = 2,048 f32.
    pub fn rows(&self) -> usize {
        (2048 / self.head_dim).max(1)
    }

    /// Keys per chunk: `C * D` = 1,024 f32.
    pub fn keys(&self) -> usize {
        (1024 / self.head_dim).max(1)
    }

    /// A cache key naming the variant.
    pub fn key(&self) -> String {
        format!("attention/{}/d{}", self.elem.name(), self.head_dim)
    }

    /// The complete WGSL source of this variant.
    pub fn source(&self) -> String {
        let mut s = String::new();
        self.elem.header(&mut s);
        let _ = writeln!(s, "alias T = {};", self.elem.name());
        for (name, value) in [
            ("D", self.head_dim),
            ("R", self.rows()),
            ("C", self.keys()),
            ("WG", ATTENTION_WORKGROUP),
        ] {
            let _ = writeln!(s, "const {name}: u32 = {value}u;");
        }
        s.push_str(ATTENTION);
        s
    }
}
