//! NumPy `.npy` / `.npz` in and out through npyz: C-order arrays of f16, f32, f64 and the
//! integer tensors of a block mask. Input is read whole before it is parsed, and a header
//! whose shape needs more bytes than the input holds is refused, so a hostile header cannot
//! make the reader allocate more than the file's size. Self-contained (its own error type),
//! so the fuzz targets and their regression test include this file as it is.

use std::io::{Cursor, Read};
use std::path::Path;

use half::f16;
use npyz::{AutoSerialize, Deserialize, NpyFile, Order, WriterBuilder};

/// Why an array could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum NpyError {
    /// The file system or the archive failed.
    #[error("{name}: {source}")]
    Io {
        /// The file or array.
        name: String,
        /// What failed.
        source: std::io::Error,
    },
    /// The content is not an array this tool reads.
    #[error("{name}: {reason}")]
    Format {
        /// The file or array.
        name: String,
        /// What is wrong.
        reason: String,
    },
}

/// Largest array entry of an `.npz` archive this reader inflates (a guard against archives
/// that decompress without bound).
const NPZ_ENTRY_LIMIT: u64 = 1 << 30;

/// An array read from a file: its shape and its elements in C order.
pub struct Array<T> {
    pub shape: Vec<usize>,
    pub data: Vec<T>,
}

/// A floating-point array of whichever dtype the file held.
pub enum FloatArray {
    F16(Array<f16>),
    F32(Array<f32>),
    F64(Array<f64>),
}

impl FloatArray {
    pub fn dtype(&self) -> &'static str {
        match self {
            FloatArray::F16(_) => "float16",
            FloatArray::F32(_) => "float32",
            FloatArray::F64(_) => "float64",
        }
    }
}

fn format_err(name: &str, reason: impl std::fmt::Display) -> NpyError {
    NpyError::Format {
        name: name.to_string(),
        reason: reason.to_string(),
    }
}

fn io_err(name: &str) -> impl FnOnce(std::io::Error) -> NpyError + '_ {
    move |source| NpyError::Io {
        name: name.to_string(),
        source,
    }
}

/// The data of an `.npy` whose header passed [`parse`]: a reader positioned at the elements,
/// or nothing to read (the shape has a zero dimension).
enum Body<'a> {
    Data(NpyFile<&'a [u8]>),
    Empty,
}

/// An `.npy` whose header passed [`parse`]: its body, the shape, the dtype string.
type Parsed<'a> = (Body<'a>, Vec<usize>, String);

/// Elements of an array of `shape`: 0 when any dimension is 0 (however large the others, as
/// in NumPy), else the product, `None` when it overflows `usize`.
pub fn element_count(shape: &[usize]) -> Option<usize> {
    if shape.contains(&0) {
        return Some(0);
    }
    shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d))
}

/// Where the header text of an `.npy` starts and how long it is, from its preamble; `None`
/// when the bytes do not start with an `.npy` magic string and a known version.
fn header_bounds(bytes: &[u8]) -> Option<(usize, Option<usize>)> {
    if !bytes.starts_with(b"\x93NUMPY") {
        return None;
    }
    let start = match bytes.get(6)? {
        1 => 10,
        2 | 3 => 12,
        _ => return None,
    };
    let len = match start {
        10 => bytes
            .get(8..10)
            .map(|b| usize::from(u16::from_le_bytes([b[0], b[1]]))),
        _ => bytes
            .get(8..12)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize),
    };
    Some((start, len))
}

/// Refuses a file that ends inside its header, with the sizes (npyz would say only "failed to
/// fill whole buffer"). Returns where the data starts.
fn check_header_complete(bytes: &[u8], name: &str) -> Result<Option<usize>, NpyError> {
    let Some((start, len)) = header_bounds(bytes) else {
        return Ok(None); // Not an .npy header: npyz reports the missing magic.
    };
    let truncated = |expected: String| {
        format_err(
            name,
            format!(
                "truncated .npy header (expected {expected} bytes, file has {})",
                bytes.len()
            ),
        )
    };
    let Some(len) = len else {
        return Err(truncated(format!("at least {start}")));
    };
    let end = start.saturating_add(len);
    if bytes.len() < end {
        return Err(truncated(end.to_string()));
    }
    Ok(Some(end))
}

/// The dimensions of the `'shape'` tuple of header text and the tuple's byte range, read
/// without npyz: npyz multiplies the dimensions unchecked, so a shape like (0, 10**12, 10**12),
/// empty but with overflowing products, must not reach it. `None` for anything but a plain
/// tuple of decimal integers outside strings (then npyz's own parser decides).
fn scan_shape(text: &[u8]) -> Option<(std::ops::Range<usize>, Vec<u64>)> {
    if text.contains(&b'\\') {
        return None; // Escapes would make the string tracking below unreliable.
    }
    let mut i = 0;
    while i < text.len() {
        let c = text[i];
        if c != b'\'' && c != b'"' {
            i += 1;
            continue;
        }
        let close = i + 1 + text[i + 1..].iter().position(|&x| x == c)?;
        let is_shape = &text[i + 1..close] == b"shape";
        i = close + 1;
        if !is_shape {
            continue;
        }
        let skip_space = |mut j: usize| {
            while text.get(j).is_some_and(|b| b.is_ascii_whitespace()) {
                j += 1;
            }
            j
        };
        i = skip_space(i);
        if text.get(i) != Some(&b':') {
            continue; // "shape" as a value, not the key.
        }
        let open = skip_space(i + 1);
        if text.get(open) != Some(&b'(') {
            return None;
        }
        let end = open + text[open..].iter().position(|&x| x == b')')?;
        let inner = std::str::from_utf8(&text[open + 1..end]).ok()?;
        let mut dims = Vec::new();
        for (k, item) in inner.split(',').map(str::trim).enumerate() {
            let last = k == inner.split(',').count() - 1;
            match item {
                "" if last && !dims.is_empty() => {}
                d if !d.is_empty()
                    && d.bytes().all(|b| b.is_ascii_digit())
                    && (d == "0" || !d.starts_with('0')) =>
                {
                    dims.push(d.parse().ok()?)
                }
                _ => return None,
            }
        }
        // Python needs the trailing comma for one dimension: "(5)" is not a tuple.
        if dims.len() == 1 && !inner.trim_end().ends_with(',') {
            return None;
        }
        return Some((open..end + 1, dims));
    }
    None
}

/// `bytes` with the header's shape tuple replaced by `(0,)`: an empty array npyz reads
/// without multiplying the real dimensions.
fn with_empty_shape(
    bytes: &[u8],
    text_start: usize,
    data_start: usize,
    tuple: std::ops::Range<usize>,
) -> Vec<u8> {
    let mut text = bytes[text_start..data_start].to_vec();
    text.splice(tuple, *b"(0,)");
    let mut out = bytes[..text_start].to_vec();
    match text_start {
        10 => out[8..10].copy_from_slice(&(text.len() as u16).to_le_bytes()),
        _ => out[8..12].copy_from_slice(&(text.len() as u32).to_le_bytes()),
    }
    out.extend_from_slice(&text);
    out
}

/// Deepest bracket nesting a plain-dtype header needs: the dict and the shape tuple.
const MAX_HEADER_NESTING: usize = 2;

/// Refuses headers that no plain-dtype array has before npyz parses them: more than one dict
/// or brackets nested deeper than [`MAX_HEADER_NESTING`]. npyz's Python-literal grammar
/// backtracks exponentially on nested brackets (a 200-byte header of `{{{{...` ran for
/// minutes under the `npy` fuzzer).
fn check_header_shape(bytes: &[u8], name: &str) -> Result<(), NpyError> {
    let Some(text) =
        header_bounds(bytes).and_then(|(start, len)| bytes.get(start..start.checked_add(len?)?))
    else {
        // Not a header npyz can read either; let it (or the truncation check) report it.
        return Ok(());
    };
    let (mut depth, mut deepest, mut dicts) = (0usize, 0usize, 0usize);
    let mut quote = None;
    for &c in text {
        match (quote, c) {
            (Some(q), _) if c == q => quote = None,
            (Some(_), _) => {}
            (None, b'\'' | b'"') => quote = Some(c),
            (None, b'{' | b'(' | b'[') => {
                dicts += usize::from(c == b'{');
                depth += 1;
                deepest = deepest.max(depth);
            }
            (None, b'}' | b')' | b']') => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    if dicts > 1 || deepest > MAX_HEADER_NESTING {
        return Err(format_err(
            name,
            "header is not a plain-dtype array header (nested brackets)",
        ));
    }
    Ok(())
}

/// Parses the header of `bytes`: complete, C order, a plain dtype, and a shape whose elements
/// of `size_of(dtype)` bytes are all in the file after the header.
fn parse<'a>(bytes: &'a [u8], name: &str) -> Result<Parsed<'a>, NpyError> {
    check_header_shape(bytes, name)?;
    let data_start = check_header_complete(bytes, name)?;
    let text_start = header_bounds(bytes).map_or(0, |(start, _)| start);
    let scanned = data_start.and_then(|end| scan_shape(&bytes[text_start..end]));
    let too_large = || {
        format_err(
            name,
            "the header's shape has more elements than fit in memory",
        )
    };
    let empty = match (&scanned, data_start) {
        (Some((tuple, dims)), Some(end)) if dims.contains(&0) => Some((
            with_empty_shape(bytes, text_start, end, tuple.clone()),
            dims.clone(),
        )),
        (Some((_, dims)), _) => {
            // Refused here, before npyz's unchecked product of the dimensions.
            dims.iter()
                .try_fold(1u64, |n, &d| n.checked_mul(d))
                .ok_or_else(too_large)?;
            None
        }
        _ => None,
    };
    let (body, dims, dtype) = match empty {
        Some((substituted, dims)) => {
            let npy = NpyFile::new(&substituted[..]).map_err(io_err(name))?;
            (Body::Empty, dims, plain_c_dtype(&npy, name)?)
        }
        None => {
            let npy = NpyFile::new(bytes).map_err(io_err(name))?;
            let dtype = plain_c_dtype(&npy, name)?;
            let dims = npy.shape().to_vec();
            (Body::Data(npy), dims, dtype)
        }
    };
    let shape: Vec<usize> = dims
        .iter()
        .map(|&d| usize::try_from(d))
        .collect::<Result<_, _>>()
        .map_err(|_| format_err(name, "dimension exceeds usize"))?;
    let elem = usize::try_from(dtype.size_field()).unwrap_or(usize::MAX);
    let needed = element_count(&shape)
        .and_then(|n| n.checked_mul(elem))
        .ok_or_else(too_large)?;
    let available = bytes.len() - data_start.unwrap_or(0);
    if needed > available {
        return Err(format_err(
            name,
            format!(
                "truncated .npy data (shape {shape:?} of {dtype} needs {needed} bytes after the \
                 header, the file has {available})"
            ),
        ));
    }
    Ok((body, shape, dtype.to_string()))
}

/// The dtype of a C-order, plain-dtype array; refuses Fortran order and record dtypes.
fn plain_c_dtype(npy: &NpyFile<&[u8]>, name: &str) -> Result<npyz::TypeStr, NpyError> {
    if npy.order() != Order::C {
        return Err(format_err(
            name,
            "Fortran-order array; save it with np.ascontiguousarray first",
        ));
    }
    match npy.dtype() {
        npyz::DType::Plain(ts) => Ok(ts),
        other => Err(format_err(name, format!("unsupported dtype {other:?}"))),
    }
}

fn elements<T: Deserialize>(body: Body, name: &str) -> Result<Vec<T>, NpyError> {
    match body {
        Body::Data(npy) => npy.into_vec::<T>().map_err(io_err(name)),
        Body::Empty => Ok(Vec::new()),
    }
}

/// Reads a float16, float32 or float64 array (either byte order) from `.npy` bytes.
pub fn float_from_bytes(bytes: &[u8], name: &str) -> Result<FloatArray, NpyError> {
    let (npy, shape, dtype) = parse(bytes, name)?;
    Ok(match dtype.get(1..).unwrap_or("") {
        "f2" => FloatArray::F16(Array {
            data: elements(npy, name)?,
            shape,
        }),
        "f4" => FloatArray::F32(Array {
            data: elements(npy, name)?,
            shape,
        }),
        "f8" => FloatArray::F64(Array {
            data: elements(npy, name)?,
            shape,
        }),
        _ => {
            return Err(format_err(
                name,
                format!("dtype {dtype}: expected float16, float32 or float64"),
            ))
        }
    })
}

/// Reads a float16, float32 or float64 `.npy` file.
pub fn read_float(path: &Path) -> Result<FloatArray, NpyError> {
    let name = path.display().to_string();
    let bytes = std::fs::read(path).map_err(io_err(&name))?;
    float_from_bytes(&bytes, &name)
}

/// Packed bits of an `.npz`: uint8 bytes or uint32 words.
pub enum BitsArray {
    /// `uint8`, as `numpy.packbits` writes.
    Bytes(Array<u8>),
    /// `uint32` words.
    Words(Array<u32>),
}

/// Reads array `array` of the `.npz` file at `path` as packed bits (uint8 or uint32), or
/// `None` if the archive has no array of that name.
pub fn read_npz_bits(path: &Path, array: &str) -> Result<Option<BitsArray>, NpyError> {
    let name = path.display().to_string();
    let bytes = std::fs::read(path).map_err(io_err(&name))?;
    let Some(inflated) = npz_entry(&bytes, &name, array)? else {
        return Ok(None);
    };
    let label = format!("{name}: {array}");
    let (npy, shape, dtype) = parse(&inflated, &label)?;
    Ok(Some(match dtype.get(1..).unwrap_or("") {
        "u1" => BitsArray::Bytes(Array {
            data: elements(npy, &label)?,
            shape,
        }),
        "u4" => BitsArray::Words(Array {
            data: elements(npy, &label)?,
            shape,
        }),
        _ => {
            return Err(format_err(
                &label,
                format!("dtype {dtype}: expected uint8 or uint32"),
            ))
        }
    }))
}

/// Reads integer array `array` of `.npz` bytes as i64 (int32 or int64 in the archive), or
/// `None` if the archive has no array of that name.
pub fn npz_ints_from_bytes(
    bytes: &[u8],
    name: &str,
    array: &str,
) -> Result<Option<Array<i64>>, NpyError> {
    let Some(inflated) = npz_entry(bytes, name, array)? else {
        return Ok(None);
    };
    let label = format!("{name}: {array}");
    let (npy, shape, dtype) = parse(&inflated, &label)?;
    let data = match dtype.get(1..).unwrap_or("") {
        "i4" => elements::<i32>(npy, &label)?
            .into_iter()
            .map(i64::from)
            .collect(),
        "i8" => elements::<i64>(npy, &label)?,
        _ => {
            return Err(format_err(
                &label,
                format!("dtype {dtype}: expected int32 or int64"),
            ))
        }
    };
    Ok(Some(Array { shape, data }))
}

/// The inflated `.npy` bytes of array `array` of `.npz` bytes (at most 1 GiB, so a zip bomb
/// cannot exhaust memory), or `None` if the archive has no array of that name.
fn npz_entry(bytes: &[u8], name: &str, array: &str) -> Result<Option<Vec<u8>>, NpyError> {
    let mut archive = npyz::npz::NpzArchive::new(Cursor::new(bytes)).map_err(io_err(name))?;
    let entry_name = npyz::npz::file_name_from_array_name(array);
    let mut entry = match archive.zip_archive().by_name(&entry_name) {
        Ok(entry) => entry,
        Err(npyz::zip::result::ZipError::FileNotFound) => return Ok(None),
        Err(e) => return Err(format_err(name, e)),
    };
    let mut inflated = Vec::new();
    (&mut entry)
        .take(NPZ_ENTRY_LIMIT + 1)
        .read_to_end(&mut inflated)
        .map_err(io_err(name))?;
    if inflated.len() as u64 > NPZ_ENTRY_LIMIT {
        return Err(format_err(name, format!("{array} inflates beyond 1 GiB")));
    }
    Ok(Some(inflated))
}

/// Reads integer array `array` of the `.npz` file at `path` (see [`npz_ints_from_bytes`]).
pub fn read_npz_ints(path: &Path, array: &str) -> Result<Option<Array<i64>>, NpyError> {
    let name = path.display().to_string();
    let bytes = std::fs::read(path).map_err(io_err(&name))?;
    npz_ints_from_bytes(&bytes, &name, array)
}

/// Writes `data` with `shape` (C order, little-endian, the dtype of `T`).
pub fn write<T: AutoSerialize + Copy>(
    path: &Path,
    shape: &[usize],
    data: &[T],
) -> Result<(), NpyError> {
    let name = path.display().to_string();
    if element_count(shape) == Some(0) {
        return std::fs::write(path, empty_npy::<T>(shape)).map_err(io_err(&name));
    }
    let file = std::fs::File::create(path).map_err(io_err(&name))?;
    let shape: Vec<u64> = shape.iter().map(|&d| d as u64).collect();
    let mut writer = npyz::WriteOptions::new()
        .default_dtype()
        .shape(&shape)
        .writer(std::io::BufWriter::new(file))
        .begin_nd()
        .map_err(io_err(&name))?;
    writer.extend(data.iter().copied()).map_err(io_err(&name))?;
    writer.finish().map_err(io_err(&name))
}

/// A whole `.npy` (version 1.0) of an array without elements. Written here, not by npyz,
/// which multiplies the dimensions unchecked: (0, 10**12, 10**12) is a valid empty array.
fn empty_npy<T: AutoSerialize>(shape: &[usize]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
    let tuple = match dims.as_slice() {
        [one] => format!("({one},)"),
        _ => format!("({})", dims.join(", ")),
    };
    let mut text = format!(
        "{{'descr': {}, 'fortran_order': False, 'shape': {tuple}, }}",
        T::default_dtype().descr()
    );
    // NumPy pads the header with spaces and a newline to a multiple of 64 bytes.
    let padded = (10 + text.len() + 1).next_multiple_of(64) - 10;
    while text.len() + 1 < padded {
        text.push(' ');
    }
    text.push('\n');
    // Version 1.0 counts the header in 16 bits; 2.0 in 32, for shapes of very high rank.
    let mut out = b"\x93NUMPY".to_vec();
    match u16::try_from(text.len()) {
        Ok(len) => out.extend([1, 0].into_iter().chain(len.to_le_bytes())),
        Err(_) => {
            text.insert_str(text.len() - 1, "  "); // 12-byte preamble: stay 64-aligned.
            out.extend([2, 0].into_iter().chain((text.len() as u32).to_le_bytes()));
        }
    }
    out.extend_from_slice(text.as_bytes());
    out
}
