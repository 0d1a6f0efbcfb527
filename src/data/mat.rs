//! A reader of just what SBD's `cls/*.mat` files need from MATLAB's level-5 MAT format: the
//! uint8 matrix in the field `Segmentation` of the struct `GTcls`.
//!
//! The format (MathWorks, "MAT-File Format", level 5): a 128-byte header, then data elements,
//! each a tag (type, byte count) and its data padded to 8 bytes. A tag whose upper 16 bits are
//! not zero is a "small" element with up to 4 bytes of data inside the tag. `miCOMPRESSED`
//! holds a zlib stream of further elements; `miMATRIX` holds an array: flags (class), dimensions,
//! name, then for a struct the field names and each field's `miMATRIX`, for a numeric array its
//! values in column-major order.

use std::io::Read;

const MI_INT8: u32 = 1;
const MI_UINT8: u32 = 2;
const MI_INT32: u32 = 5;
const MI_UINT32: u32 = 6;
const MI_MATRIX: u32 = 14;
const MI_COMPRESSED: u32 = 15;
const MX_STRUCT: u8 = 2;
const MX_UINT8: u8 = 9;

/// What is wrong with a MAT file (the caller adds the file or archive member).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct MatError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, MatError> {
    Err(MatError(msg.into()))
}

/// One data element: its type and its bytes.
struct Element<'a> {
    kind: u32,
    data: &'a [u8],
}

/// Splits the next element off `buf`; returns it and the rest.
fn next_element(buf: &[u8]) -> Result<(Element<'_>, &[u8]), MatError> {
    if buf.len() < 8 {
        return err(format!(
            "a data element tag is cut short ({} bytes left)",
            buf.len()
        ));
    }
    let word = u32::from_le_bytes(buf[0..4].try_into().expect("4 bytes"));
    if word >> 16 != 0 {
        // Small element: type in the low 16 bits, byte count in the high 16, data in bytes 4..8.
        let n = (word >> 16) as usize;
        if n > 4 {
            return err(format!("a small data element claims {n} bytes (at most 4)"));
        }
        return Ok((
            Element {
                kind: word & 0xffff,
                data: &buf[4..4 + n],
            },
            &buf[8..],
        ));
    }
    let n = u32::from_le_bytes(buf[4..8].try_into().expect("4 bytes")) as usize;
    let rest = &buf[8..];
    if rest.len() < n {
        return err(format!(
            "a data element of type {word} claims {n} bytes but {} remain: the file is truncated",
            rest.len()
        ));
    }
    // miCOMPRESSED is not padded; everything else is padded to a multiple of 8.
    let padded = if word == MI_COMPRESSED {
        n
    } else {
        n.div_ceil(8) * 8
    };
    Ok((
        Element {
            kind: word,
            data: &rest[..n],
        },
        &rest[padded.min(rest.len())..],
    ))
}

/// The top-level variables of a MAT file, with compressed ones inflated: (type, bytes).
fn variables(file: &[u8]) -> Result<Vec<(u32, Vec<u8>)>, MatError> {
    if file.len() < 128 {
        return err("shorter than the 128-byte MAT header");
    }
    if &file[126..128] != b"IM" {
        return err("not a little-endian level-5 MAT file (no \"IM\" at byte 126)");
    }
    let mut rest = &file[128..];
    let mut out = Vec::new();
    while !rest.is_empty() {
        let (e, r) = next_element(rest)?;
        rest = r;
        if e.kind == MI_COMPRESSED {
            let mut inflated = Vec::new();
            flate2::read::ZlibDecoder::new(e.data)
                .read_to_end(&mut inflated)
                .map_err(|e| MatError(format!("a compressed variable does not inflate: {e}")))?;
            let (inner, _) = next_element(&inflated)?;
            out.push((inner.kind, inner.data.to_vec()));
        } else {
            out.push((e.kind, e.data.to_vec()));
        }
    }
    Ok(out)
}

/// An array's class, dimensions, name and the elements after them.
struct Array<'a> {
    class: u8,
    dims: Vec<usize>,
    name: String,
    rest: &'a [u8],
}

fn array(matrix: &[u8]) -> Result<Array<'_>, MatError> {
    let (flags, rest) = next_element(matrix)?;
    if flags.kind != MI_UINT32 || flags.data.len() < 4 {
        return err("an array without its flags");
    }
    let (dims, rest) = next_element(rest)?;
    if dims.kind != MI_INT32 || dims.data.len() % 4 != 0 {
        return err("an array without its dimensions");
    }
    let (name, rest) = next_element(rest)?;
    if name.kind != MI_INT8 {
        return err("an array without its name");
    }
    Ok(Array {
        class: flags.data[0],
        dims: dims
            .data
            .chunks_exact(4)
            .map(|d| i32::from_le_bytes(d.try_into().expect("4 bytes")).max(0) as usize)
            .collect(),
        name: String::from_utf8_lossy(name.data).into_owned(),
        rest,
    })
}

/// The field `field` of the 1x1 struct `a`: its `miMATRIX` bytes.
fn struct_field<'a>(a: &Array<'a>, field: &str) -> Result<&'a [u8], MatError> {
    if a.class != MX_STRUCT {
        return err(format!("{} is not a struct (class {})", a.name, a.class));
    }
    let (len, rest) = next_element(a.rest)?;
    let len = len
        .data
        .get(..4)
        .map(|b| i32::from_le_bytes(b.try_into().expect("4 bytes")) as usize)
        .filter(|&n| n > 0)
        .ok_or_else(|| MatError(format!("struct {} has no field-name length", a.name)))?;
    let (names, mut rest) = next_element(rest)?;
    let names: Vec<String> = names
        .data
        .chunks(len)
        .map(|n| {
            String::from_utf8_lossy(n)
                .trim_end_matches('\0')
                .to_string()
        })
        .collect();
    // A 1x1 struct holds one miMATRIX per field, in the order of the names.
    for name in &names {
        let (value, r) = next_element(rest)?;
        rest = r;
        if value.kind != MI_MATRIX {
            return err(format!("field {name} of {} is not an array", a.name));
        }
        if name == field {
            return Ok(value.data);
        }
    }
    err(format!(
        "struct {} has no field {field} (fields: {})",
        a.name,
        names.join(", ")
    ))
}

/// Reads `variable.field` of a MAT file as a uint8 matrix: `(height, width, row-major values)`.
pub fn read_uint8_field(
    file: &[u8],
    variable: &str,
    field: &str,
) -> Result<(usize, usize, Vec<u8>), MatError> {
    let vars = variables(file)?;
    let mut names = Vec::new();
    for (kind, bytes) in &vars {
        if *kind != MI_MATRIX {
            continue;
        }
        let a = array(bytes)?;
        if a.name != variable {
            names.push(a.name);
            continue;
        }
        let m = array(struct_field(&a, field)?)?;
        if m.class != MX_UINT8 || m.dims.len() != 2 {
            return err(format!(
                "{variable}.{field} is not a 2-D uint8 matrix (class {}, {} dimensions)",
                m.class,
                m.dims.len()
            ));
        }
        let (h, w) = (m.dims[0], m.dims[1]);
        let (values, _) = next_element(m.rest)?;
        if values.kind != MI_UINT8 || values.data.len() != h * w {
            return err(format!(
                "{variable}.{field}: {} values of type {} for a {h}x{w} matrix",
                values.data.len(),
                values.kind
            ));
        }
        // Column-major (MATLAB) to row-major.
        let mut out = vec![0u8; h * w];
        for (i, &v) in values.data.iter().enumerate() {
            out[(i % h) * w + i / h] = v;
        }
        return Ok((h, w, out));
    }
    err(format!(
        "no variable {variable} (variables: {})",
        names.join(", ")
    ))
}
