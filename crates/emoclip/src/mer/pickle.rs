//! A pickle reader that never runs code, for MMSA feature files (`aligned_50.pkl`, `unaligned_50.pkl`):
//! a small pickle VM (protocols 2–5, in-band data) that builds plain values and reconstructs numpy
//! arrays; any global outside a short allow-list (numpy array/dtype/scalar reconstruction, OrderedDict)
//! is refused. Written by hand: candle's pickle reader has no bytes type nor protocol-4 opcodes, and no
//! crate reads numpy pickles without executing them.
//!
//! Memory: byte strings stay in the (memory-mapped) pickle as ranges, memo entries included; each numpy
//! payload is decoded once, straight into its typed vector ([`ArrayData`]: float32 stays f32), and the file
//! pages it came from are released, so a feature file costs about one copy of its arrays.
use crate::{Error, Result};
use std::collections::HashMap;
use std::path::Path;

/// A decoded value. Containers hold values; numpy arrays become [`Value::Array`].
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    List(Vec<Value>),
    Tuple(Vec<Value>),
    Dict(Vec<(Value, Value)>),
    Array(NdArray),
}

/// A numeric numpy array in C order, stored in its own element type (object arrays such as MMSA `id` /
/// `raw_text` become `Value::List` of strings instead). `dtype` is numpy's `str` form, e.g. `"<f4"`.
#[derive(Clone, Debug, PartialEq)]
pub struct NdArray {
    pub shape: Vec<usize>,
    pub dtype: String,
    pub data: ArrayData,
}

/// Typed array elements: float32 (and float16, exactly widened) as `F32`, float64 as `F64`, signed and
/// unsigned ints up to 32 bits and int64 as `I64`, uint64 as `U64`, bool as `Bool`. Decoded straight from the
/// pickle's bytes, so a float32 feature file costs its own size once (no f64 detour).
#[derive(Clone, Debug, PartialEq)]
pub enum ArrayData {
    F32(Vec<f32>),
    F64(Vec<f64>),
    I64(Vec<i64>),
    U64(Vec<u64>),
    Bool(Vec<bool>),
}

impl Default for ArrayData {
    fn default() -> Self {
        ArrayData::F32(Vec::new())
    }
}

impl ArrayData {
    pub fn len(&self) -> usize {
        match self {
            ArrayData::F32(v) => v.len(),
            ArrayData::F64(v) => v.len(),
            ArrayData::I64(v) => v.len(),
            ArrayData::U64(v) => v.len(),
            ArrayData::Bool(v) => v.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Element `i` as f64 (exact for floats and for ints below 2^53).
    pub fn get_f64(&self, i: usize) -> Option<f64> {
        Some(match self {
            ArrayData::F32(v) => *v.get(i)? as f64,
            ArrayData::F64(v) => *v.get(i)?,
            ArrayData::I64(v) => *v.get(i)? as f64,
            ArrayData::U64(v) => *v.get(i)? as f64,
            ArrayData::Bool(v) => *v.get(i)? as u8 as f64,
        })
    }
    /// All elements as f64, in order.
    pub fn iter_f64(&self) -> impl ExactSizeIterator<Item = f64> + '_ {
        (0..self.len()).map(move |i| self.get_f64(i).unwrap_or(f64::NAN))
    }
    pub fn to_f64_vec(&self) -> Vec<f64> {
        match self {
            ArrayData::F64(v) => v.clone(),
            _ => self.iter_f64().collect(),
        }
    }
    /// All elements as f32 (f64 and ints rounded once through f64, i.e. `x as f64 as f32`).
    pub fn to_f32_vec(&self) -> Vec<f32> {
        match self {
            ArrayData::F32(v) => v.clone(),
            _ => self.iter_f64().map(|x| x as f32).collect(),
        }
    }
    /// Like [`Self::to_f32_vec`], moving float32 data without a copy.
    pub fn into_f32_vec(self) -> Vec<f32> {
        match self {
            ArrayData::F32(v) => v,
            other => other.to_f32_vec(),
        }
    }
    pub fn as_f32(&self) -> Option<&[f32]> {
        if let ArrayData::F32(v) = self {
            Some(v)
        } else {
            None
        }
    }
    pub fn as_f64(&self) -> Option<&[f64]> {
        if let ArrayData::F64(v) = self {
            Some(v)
        } else {
            None
        }
    }
    pub fn as_i64(&self) -> Option<&[i64]> {
        if let ArrayData::I64(v) = self {
            Some(v)
        } else {
            None
        }
    }
    pub fn as_u64(&self) -> Option<&[u64]> {
        if let ArrayData::U64(v) = self {
            Some(v)
        } else {
            None
        }
    }
    pub fn as_bool(&self) -> Option<&[bool]> {
        if let ArrayData::Bool(v) = self {
            Some(v)
        } else {
            None
        }
    }
}

impl NdArray {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.data.len()
    }
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
    pub fn to_f64_vec(&self) -> Vec<f64> {
        self.data.to_f64_vec()
    }
    pub fn to_f32_vec(&self) -> Vec<f32> {
        self.data.to_f32_vec()
    }
    pub fn into_f32_vec(self) -> Vec<f32> {
        self.data.into_f32_vec()
    }
}

impl Value {
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Dict(kv) => kv.iter().find(|(k, _)| matches!(k, Value::Str(s) if s == key)).map(|(_, v)| v),
            _ => None,
        }
    }
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        match self {
            Value::Dict(kv) => kv.iter_mut().find(|(k, _)| matches!(k, Value::Str(s) if s == key)).map(|(_, v)| v),
            _ => None,
        }
    }
    pub fn keys(&self) -> Vec<String> {
        match self {
            Value::Dict(kv) => {
                kv.iter().filter_map(|(k, _)| if let Value::Str(s) = k { Some(s.clone()) } else { None }).collect()
            }
            _ => Vec::new(),
        }
    }
}

/// Intermediate nodes: containers live in an arena so memoised references see later mutations.
#[derive(Clone, Debug)]
enum Node {
    V(Value),
    /// A byte string read in place: `(offset, len)` into the pickle buffer (no copy; numpy payloads are
    /// decoded from here straight into their typed vector, memo entries keep only the range).
    Raw(usize, usize),
    /// `_codecs.encode(text, "latin1")` of the string node (protocol 2 bytes), decoded on use.
    Latin1(usize),
    List(Vec<usize>),
    Tuple(Vec<usize>),
    Dict(Vec<(usize, usize)>),
    Global(String, String),
    /// `_reconstruct(...)` result waiting for BUILD, or a dtype waiting for its state.
    Reduce(usize, usize),
    Built(usize, usize),
    Mark,
}

const ALLOWED: &[(&str, &str)] = &[
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    // Protocol 5 arrays: `_frombuffer(bytes, dtype, shape, order)`.
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy", "dtype"),
    ("collections", "OrderedDict"),
    ("builtins", "list"),
    // Protocol 2 stores bytes as `_codecs.encode(text, "latin1")`; evaluated here as data, not called.
    ("_codecs", "encode"),
    ("__builtin__", "list"),
];

struct Vm<'a> {
    b: &'a [u8],
    /// The memory map `b` lies in, when read from a file: decoded payload pages are handed back to the OS.
    map: Option<&'a memmap2::Mmap>,
    pos: usize,
    arena: Vec<Node>,
    stack: Vec<usize>,
    memo: HashMap<u64, usize>,
    path: &'a Path,
}

impl<'a> Vm<'a> {
    fn err(&self, msg: impl std::fmt::Display) -> Error {
        Error::Msg(format!("{}: malformed pickle at byte {}: {msg}", self.path.display(), self.pos))
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.pos + n > self.b.len() {
            return Err(Error::Msg(format!(
                "{}: truncated pickle (needs {n} more bytes at {}); re-download the file",
                self.path.display(),
                self.pos
            )));
        }
        let s = &self.b[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn le(&mut self, n: usize) -> Result<u64> {
        let s = self.take(n)?;
        Ok(s.iter().rev().fold(0u64, |a, &x| (a << 8) | x as u64))
    }
    fn line(&mut self) -> Result<String> {
        let start = self.pos;
        while self.pos < self.b.len() && self.b[self.pos] != b'\n' {
            self.pos += 1;
        }
        let s = String::from_utf8_lossy(&self.b[start..self.pos]).to_string();
        self.take(1)?;
        Ok(s)
    }
    fn push(&mut self, n: Node) {
        self.arena.push(n);
        self.stack.push(self.arena.len() - 1);
    }
    fn pop(&mut self) -> Result<usize> {
        self.stack.pop().ok_or_else(|| self.err("stack underflow"))
    }
    fn pop_mark(&mut self) -> Result<Vec<usize>> {
        let mut items = Vec::new();
        loop {
            let i = self.pop()?;
            if matches!(self.arena[i], Node::Mark) {
                items.reverse();
                return Ok(items);
            }
            items.push(i);
        }
    }
    fn top(&self) -> Result<usize> {
        self.stack.last().copied().ok_or_else(|| self.err("empty stack"))
    }
    fn str_node(&mut self, n: usize) -> Result<()> {
        let s = self.take(n)?;
        let s = String::from_utf8(s.to_vec()).map_err(|_| self.err("invalid UTF-8 string"))?;
        self.push(Node::V(Value::Str(s)));
        Ok(())
    }
    fn bytes_node(&mut self, n: usize) -> Result<()> {
        let start = self.pos;
        self.take(n)?;
        self.push(Node::Raw(start, n));
        Ok(())
    }
    /// The bytes of a byte-string node, borrowed when they lie in the pickle buffer.
    fn payload(&self, i: usize) -> Result<Option<std::borrow::Cow<'a, [u8]>>> {
        use std::borrow::Cow;
        Ok(match &self.arena[i] {
            Node::Raw(start, n) => Some(Cow::Borrowed(&self.b[*start..*start + *n])),
            Node::V(Value::Bytes(b)) => Some(Cow::Owned(b.clone())),
            Node::Latin1(j) => match &self.arena[*j] {
                Node::V(Value::Str(t)) => Some(Cow::Owned(
                    t.chars()
                        .map(|c| u8::try_from(c as u32).map_err(|_| self.err("non-latin1 bytes")))
                        .collect::<Result<Vec<u8>>>()?,
                )),
                _ => return Err(self.err("bad _codecs.encode arguments")),
            },
            _ => None,
        })
    }
    /// Offset in the pickle buffer of a byte-string node read in place.
    fn raw_offset(&self, i: usize) -> Option<usize> {
        if let Node::Raw(start, _) = self.arena[i] {
            Some(start)
        } else {
            None
        }
    }
    /// Once `[from, to)` of the mapped file has been decoded, drops those pages from this process (they stay in
    /// the page cache): resident memory holds the decoded arrays, not the file as well. Whole 64 KiB blocks
    /// only (a multiple of every page size), so a partly decoded page is never dropped.
    fn release(&self, from: usize, to: usize) {
        const BLOCK: usize = 1 << 16;
        let (a, b) = (from.div_ceil(BLOCK) * BLOCK, to / BLOCK * BLOCK);
        #[cfg(unix)]
        if let Some(map) = self.map {
            if b > a && b <= map.len() {
                // SAFETY: the map is private and read-only, so its pages were never modified: after DONTNEED a
                // later read of the range (a memoised payload used twice) faults the same file bytes back in.
                let _ = unsafe { map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, a, b - a) };
            }
        }
        let _ = (a, b);
    }
    fn global(&mut self, module: String, name: String) -> Result<()> {
        if !ALLOWED.iter().any(|(m, n)| *m == module && *n == name) {
            return Err(Error::Msg(format!(
                "{}: the pickle references the Python object {module}.{name}; refusing to load it (only numpy arrays, \
                 lists, dicts and plain values are read, and no pickle code is ever run)",
                self.path.display()
            )));
        }
        self.push(Node::Global(module, name));
        Ok(())
    }

    fn run(&mut self) -> Result<usize> {
        loop {
            let op = self.u8()?;
            match op {
                0x80 => {
                    self.u8()?;
                } // PROTO
                0x95 => {
                    self.le(8)?;
                } // FRAME
                b'.' => return self.pop(), // STOP
                b'(' => self.push(Node::Mark),
                b'0' => {
                    self.pop()?;
                }
                b'1' => {
                    self.pop_mark()?;
                }
                b'2' => {
                    let t = self.top()?;
                    self.stack.push(t);
                }
                b'N' => self.push(Node::V(Value::None)),
                0x88 => self.push(Node::V(Value::Bool(true))),
                0x89 => self.push(Node::V(Value::Bool(false))),
                b'J' => {
                    let v = self.le(4)? as u32 as i32 as i64;
                    self.push(Node::V(Value::Int(v)))
                }
                b'K' => {
                    let v = self.u8()? as i64;
                    self.push(Node::V(Value::Int(v)))
                }
                b'M' => {
                    let v = self.le(2)? as i64;
                    self.push(Node::V(Value::Int(v)))
                }
                b'I' => {
                    let l = self.line()?;
                    let v = match l.as_str() {
                        "00" => Value::Bool(false),
                        "01" => Value::Bool(true),
                        s => Value::Int(s.trim().parse().map_err(|_| self.err("bad INT"))?),
                    };
                    self.push(Node::V(v))
                }
                0x8a | 0x8b => {
                    let n = if op == 0x8a { self.u8()? as usize } else { self.le(4)? as usize };
                    if n > 8 {
                        return Err(self.err("integer too large"));
                    }
                    let s = self.take(n)?;
                    let mut v: i64 = 0;
                    for (i, &x) in s.iter().enumerate() {
                        v |= (x as i64) << (8 * i);
                    }
                    if n > 0 && n < 8 && s[n - 1] & 0x80 != 0 {
                        v -= 1i64 << (8 * n);
                    }
                    self.push(Node::V(Value::Int(v)))
                }
                b'G' => {
                    let s = self.take(8)?;
                    let v = f64::from_be_bytes(s.try_into().map_err(|_| self.err("float"))?);
                    self.push(Node::V(Value::Float(v)))
                }
                b'X' => {
                    let n = self.le(4)? as usize;
                    self.str_node(n)?
                }
                0x8c => {
                    let n = self.u8()? as usize;
                    self.str_node(n)?
                }
                0x8d => {
                    let n = self.le(8)? as usize;
                    self.str_node(n)?
                }
                b'B' => {
                    let n = self.le(4)? as usize;
                    self.bytes_node(n)?
                }
                b'C' => {
                    let n = self.u8()? as usize;
                    self.bytes_node(n)?
                }
                0x8e | 0x96 => {
                    let n = self.le(8)? as usize;
                    self.bytes_node(n)?
                }
                b'T' => {
                    let n = self.le(4)? as usize;
                    self.bytes_node(n)?
                } // py2 str as bytes
                b'U' => {
                    let n = self.u8()? as usize;
                    self.bytes_node(n)?
                }
                b']' => self.push(Node::List(Vec::new())),
                b'l' => {
                    let items = self.pop_mark()?;
                    self.push(Node::List(items))
                }
                b')' => self.push(Node::Tuple(Vec::new())),
                b't' => {
                    let items = self.pop_mark()?;
                    self.push(Node::Tuple(items))
                }
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    let mut items = Vec::with_capacity(n);
                    for _ in 0..n {
                        items.push(self.pop()?);
                    }
                    items.reverse();
                    self.push(Node::Tuple(items))
                }
                b'}' => self.push(Node::Dict(Vec::new())),
                b'd' => {
                    let items = self.pop_mark()?;
                    let kv = items.chunks(2).filter(|c| c.len() == 2).map(|c| (c[0], c[1])).collect();
                    self.push(Node::Dict(kv))
                }
                b'a' => {
                    let v = self.pop()?;
                    let l = self.top()?;
                    match &mut self.arena[l] {
                        Node::List(items) => items.push(v),
                        _ => return Err(self.err("APPEND to a non-list")),
                    }
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    let l = self.top()?;
                    match &mut self.arena[l] {
                        Node::List(v) => v.extend(items),
                        _ => return Err(self.err("APPENDS to a non-list")),
                    }
                }
                b's' | b'u' => {
                    let items = if op == b's' {
                        let v = self.pop()?;
                        let k = self.pop()?;
                        vec![k, v]
                    } else {
                        self.pop_mark()?
                    };
                    let d = self.top()?;
                    let kv: Vec<(usize, usize)> =
                        items.chunks(2).filter(|c| c.len() == 2).map(|c| (c[0], c[1])).collect();
                    match &mut self.arena[d] {
                        Node::Dict(v) => v.extend(kv),
                        // OrderedDict() built by REDUCE: becomes a dict.
                        Node::Reduce(..) => self.arena[d] = Node::Dict(kv),
                        _ => return Err(self.err("SETITEM on a non-dict")),
                    }
                }
                b'c' => {
                    let m = self.line()?;
                    let n = self.line()?;
                    self.global(m, n)?
                }
                0x93 => {
                    let n = self.pop()?;
                    let m = self.pop()?;
                    let s = |vm: &Self, i: usize| match &vm.arena[i] {
                        Node::V(Value::Str(s)) => Ok(s.clone()),
                        _ => Err(vm.err("STACK_GLOBAL needs strings")),
                    };
                    let (m, n) = (s(self, m)?, s(self, n)?);
                    self.global(m, n)?
                }
                b'R' | 0x81 => {
                    let args = self.pop()?;
                    let f = self.pop()?;
                    if let Node::Global(m, n) = &self.arena[f] {
                        if n == "OrderedDict" {
                            self.push(Node::Dict(Vec::new()));
                            continue;
                        }
                        if n == "list" {
                            self.push(Node::List(Vec::new()));
                            continue;
                        }
                        if m == "_codecs" && n == "encode" {
                            let text = match &self.arena[args] {
                                Node::Tuple(a) if !a.is_empty() => match &self.arena[a[0]] {
                                    Node::V(Value::Str(t)) if t.chars().all(|c| (c as u32) < 256) => a[0],
                                    Node::V(Value::Str(_)) => return Err(self.err("non-latin1 bytes")),
                                    _ => return Err(self.err("bad _codecs.encode arguments")),
                                },
                                _ => return Err(self.err("bad _codecs.encode arguments")),
                            };
                            // Kept as a reference to the text: the array decoder reads it without a bytes copy.
                            self.push(Node::Latin1(text));
                            continue;
                        }
                    }
                    self.push(Node::Reduce(f, args))
                }
                b'b' => {
                    let state = self.pop()?;
                    let obj = self.pop()?;
                    self.push(Node::Built(obj, state))
                }
                0x94 => {
                    let t = self.top()?;
                    let k = self.memo.len() as u64;
                    self.memo.insert(k, t);
                }
                b'q' | b'r' | b'p' => {
                    let k = match op {
                        b'q' => self.u8()? as u64,
                        b'r' => self.le(4)?,
                        _ => self.line()?.trim().parse().map_err(|_| self.err("bad PUT"))?,
                    };
                    let t = self.top()?;
                    self.memo.insert(k, t);
                }
                b'h' | b'j' | b'g' => {
                    let k = match op {
                        b'h' => self.u8()? as u64,
                        b'j' => self.le(4)?,
                        _ => self.line()?.trim().parse().map_err(|_| self.err("bad GET"))?,
                    };
                    let i = *self.memo.get(&k).ok_or_else(|| self.err(format!("memo {k} missing")))?;
                    self.stack.push(i);
                }
                other => return Err(self.err(format!("unsupported opcode 0x{other:02x}"))),
            }
        }
    }

    fn value(&self, i: usize, depth: usize) -> Result<Value> {
        if depth > 200 {
            return Err(self.err("nesting too deep"));
        }
        Ok(match &self.arena[i] {
            Node::V(v) => v.clone(),
            Node::Raw(..) | Node::Latin1(_) => {
                Value::Bytes(self.payload(i)?.map(|c| c.into_owned()).unwrap_or_default())
            }
            Node::List(items) => Value::List(items.iter().map(|&j| self.value(j, depth + 1)).collect::<Result<_>>()?),
            Node::Tuple(items) => Value::Tuple(items.iter().map(|&j| self.value(j, depth + 1)).collect::<Result<_>>()?),
            Node::Dict(kv) => Value::Dict(
                kv.iter()
                    .map(|&(k, v)| Ok((self.value(k, depth + 1)?, self.value(v, depth + 1)?)))
                    .collect::<Result<_>>()?,
            ),
            Node::Built(obj, state) => self.array(*obj, *state, depth)?,
            Node::Reduce(f, args) => self.scalar(*f, *args, depth)?,
            Node::Global(m, n) => return Err(self.err(format!("bare reference to {m}.{n}"))),
            Node::Mark => return Err(self.err("stray MARK")),
        })
    }

    /// `numpy.dtype(code)` (+ BUILD state with the byte order) → e.g. "<f4".
    fn dtype(&self, i: usize, depth: usize) -> Result<String> {
        let (red, state) = match &self.arena[i] {
            Node::Built(r, s) => (*r, Some(*s)),
            _ => (i, None),
        };
        let Node::Reduce(_, args) = &self.arena[red] else { return Err(self.err("expected a numpy dtype")) };
        let Value::Tuple(a) = self.value(*args, depth + 1)? else { return Err(self.err("bad dtype args")) };
        let Some(Value::Str(code)) = a.first() else { return Err(self.err("bad dtype code")) };
        let order = match state.map(|s| self.value(s, depth + 1)).transpose()? {
            Some(Value::Tuple(t)) => match t.get(1) {
                Some(Value::Str(o)) => o.clone(),
                _ => "<".into(),
            },
            _ => "<".into(),
        };
        Ok(format!("{}{code}", if order == "|" { "<" } else { &order }))
    }

    /// Element width in bytes of a dtype string such as `"<f4"` (1 when it has no number).
    fn width(dtype: &str) -> usize {
        dtype.get(2..).and_then(|w| w.parse().ok()).unwrap_or(1)
    }

    /// Raw array bytes → typed elements (numpy dtype `str`, byte order first). `offset`: where `raw` lies in
    /// the mapped file, to release its pages as decoding goes (8 MiB at a time).
    fn decode(&self, dtype: &str, raw: &[u8], offset: Option<usize>) -> Result<ArrayData> {
        const CHUNK: usize = 8 << 20;
        let (order, code) = if dtype.is_char_boundary(1) { dtype.split_at(1) } else { ("<", dtype) };
        let be = order == ">";
        macro_rules! conv {
            ($t:ty, $n:expr, $as:ty) => {{
                let mut out = Vec::with_capacity(raw.len() / $n);
                // CHUNK is a multiple of every width, so no element straddles two chunks.
                for (k, part) in raw.chunks(CHUNK).enumerate() {
                    out.extend(part.chunks_exact($n).map(|c| {
                        let a: [u8; $n] = c.try_into().unwrap_or([0; $n]);
                        (if be { <$t>::from_be_bytes(a) } else { <$t>::from_le_bytes(a) }) as $as
                    }));
                    if let Some(o) = offset {
                        self.release(o, o + k * CHUNK + part.len());
                    }
                }
                out
            }};
        }
        Ok(match code {
            "f4" => ArrayData::F32(conv!(f32, 4, f32)),
            "f8" => ArrayData::F64(conv!(f64, 8, f64)),
            "f2" => ArrayData::F32(
                raw.chunks_exact(2)
                    .map(|c| {
                        half::f16::from_bits(if be {
                            u16::from_be_bytes([c[0], c[1]])
                        } else {
                            u16::from_le_bytes([c[0], c[1]])
                        })
                        .to_f32()
                    })
                    .collect(),
            ),
            "i8" => ArrayData::I64(conv!(i64, 8, i64)),
            "i4" => ArrayData::I64(conv!(i32, 4, i64)),
            "i2" => ArrayData::I64(conv!(i16, 2, i64)),
            "i1" => ArrayData::I64(raw.iter().map(|&x| x as i8 as i64).collect()),
            "u1" => ArrayData::I64(raw.iter().map(|&x| x as i64).collect()),
            "b1" => ArrayData::Bool(raw.iter().map(|&x| x != 0).collect()),
            "u4" => ArrayData::I64(conv!(u32, 4, i64)),
            "u8" => ArrayData::U64(conv!(u64, 8, u64)),
            other => return Err(self.err(format!("numpy dtype {other} is not supported (numeric arrays only)"))),
        })
    }

    /// Checks the payload size and decodes `[shape]` elements of `dtype`, then turns Fortran into C order.
    fn typed(
        &self,
        raw: &[u8],
        offset: Option<usize>,
        shape: &[usize],
        dtype: &str,
        fortran: bool,
    ) -> Result<ArrayData> {
        let n = shape
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .ok_or_else(|| self.err(format!("array shape {shape:?} is too large")))?;
        let width = Self::width(dtype);
        if n.checked_mul(width) != Some(raw.len()) {
            return Err(self.err(format!(
                "array {shape:?} {dtype} holds {} bytes, expected {}",
                raw.len(),
                n.saturating_mul(width)
            )));
        }
        let data = self.decode(dtype, raw, offset)?;
        Ok(if fortran && shape.len() > 1 {
            match data {
                ArrayData::F32(v) => ArrayData::F32(to_c_order(&v, shape)),
                ArrayData::F64(v) => ArrayData::F64(to_c_order(&v, shape)),
                ArrayData::I64(v) => ArrayData::I64(to_c_order(&v, shape)),
                ArrayData::U64(v) => ArrayData::U64(to_c_order(&v, shape)),
                ArrayData::Bool(v) => ArrayData::Bool(to_c_order(&v, shape)),
            }
        } else {
            data
        })
    }

    /// `_reconstruct(ndarray, (0,), b'b')` + BUILD `(version, shape, dtype, fortran, data)`.
    fn array(&self, obj: usize, state: usize, depth: usize) -> Result<Value> {
        let Node::Reduce(f, _) = &self.arena[obj] else { return Err(self.err("BUILD of an unsupported object")) };
        if !matches!(&self.arena[*f], Node::Global(_, n) if n == "_reconstruct") {
            return Err(self.err("BUILD of an unsupported object"));
        }
        let Node::Tuple(st) = &self.arena[state] else { return Err(self.err("bad ndarray state")) };
        if st.len() != 5 {
            return Err(self.err("bad ndarray state"));
        }
        let Value::Tuple(shape) = self.value(st[1], depth + 1)? else { return Err(self.err("bad ndarray shape")) };
        let shape: Vec<usize> = shape
            .iter()
            .map(|v| if let Value::Int(i) = v { Ok(*i as usize) } else { Err(self.err("bad dim")) })
            .collect::<Result<_>>()?;
        let dtype = self.dtype(st[2], depth)?;
        let fortran = matches!(self.value(st[3], depth + 1)?, Value::Bool(true));
        // The payload is decoded from the pickle buffer in place: no intermediate bytes value.
        if let Some(raw) = self.payload(st[4])? {
            let data = self.typed(&raw, self.raw_offset(st[4]), &shape, &dtype, fortran)?;
            return Ok(Value::Array(NdArray { shape, dtype, data }));
        }
        match self.value(st[4], depth + 1)? {
            // Object arrays (e.g. MMSA `id`, `raw_text`) are lists of Python values: return them as a list.
            Value::List(items) => Ok(Value::List(items)),
            _ => Err(self.err("unsupported ndarray data")),
        }
    }

    /// `numpy.core.multiarray.scalar(dtype, bytes)` → a float/int value.
    fn scalar(&self, f: usize, args: usize, depth: usize) -> Result<Value> {
        match &self.arena[f] {
            Node::Global(_, n) if n == "scalar" => {
                let Node::Tuple(a) = &self.arena[args] else { return Err(self.err("bad scalar")) };
                let dtype = self.dtype(*a.first().ok_or_else(|| self.err("bad scalar"))?, depth)?;
                let Some(raw) = self.payload(*a.get(1).ok_or_else(|| self.err("bad scalar"))?)? else {
                    return Err(self.err("bad scalar data"));
                };
                Ok(Value::Float(self.decode(&dtype, &raw, None)?.get_f64(0).ok_or_else(|| self.err("empty scalar"))?))
            }
            Node::Global(_, n) if n == "_frombuffer" => {
                let Node::Tuple(a) = &self.arena[args] else { return Err(self.err("bad _frombuffer")) };
                if a.len() != 4 {
                    return Err(self.err("bad _frombuffer arguments"));
                }
                let Some(raw) = self.payload(a[0])? else { return Err(self.err("bad _frombuffer data")) };
                let dtype = self.dtype(a[1], depth)?;
                let Value::Tuple(shape) = self.value(a[2], depth + 1)? else {
                    return Err(self.err("bad _frombuffer shape"));
                };
                let shape: Vec<usize> = shape
                    .iter()
                    .map(|v| if let Value::Int(i) = v { Ok(*i as usize) } else { Err(self.err("bad dim")) })
                    .collect::<Result<_>>()?;
                let fortran = matches!(self.value(a[3], depth + 1)?, Value::Str(o) if o == "F");
                let data = self.typed(&raw, self.raw_offset(a[0]), &shape, &dtype, fortran)?;
                Ok(Value::Array(NdArray { shape, dtype, data }))
            }
            Node::Global(m, n) => Err(self.err(format!("call of {m}.{n} outside an array"))),
            _ => Err(self.err("unsupported REDUCE")),
        }
    }
}

fn to_c_order<T: Copy + Default>(data: &[T], shape: &[usize]) -> Vec<T> {
    let n = data.len();
    let mut out = vec![T::default(); n];
    let rank = shape.len();
    let mut idx = vec![0usize; rank];
    for (f, &v) in data.iter().enumerate() {
        // f is the Fortran-order position; compute the multi-index, then the C-order position.
        let mut r = f;
        for d in 0..rank {
            idx[d] = r % shape[d];
            r /= shape[d];
        }
        let c = idx.iter().zip(shape).fold(0, |a, (&i, &s)| a * s + i);
        out[c] = v;
    }
    out
}

/// Parses pickle bytes (`path` only names the source in errors).
pub fn parse(bytes: &[u8], path: &Path) -> Result<Value> {
    run(bytes, None, path)
}

fn run(bytes: &[u8], map: Option<&memmap2::Mmap>, path: &Path) -> Result<Value> {
    let mut vm = Vm { b: bytes, map, pos: 0, arena: Vec::new(), stack: Vec::new(), memo: HashMap::new(), path };
    let root = vm.run()?;
    vm.value(root, 0)
}

/// Reads a pickle file. It is memory-mapped (read-only) rather than copied: the opcodes are walked first
/// without touching the array payloads, then each payload is decoded into its typed vector and its pages are
/// dropped, so the peak is about one copy of the arrays (a plain read where mapping fails). As with any
/// mapped file, do not rewrite the file while it is being read.
pub fn read(path: &Path) -> Result<Value> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    // SAFETY: a private read-only map; every access is bounds-checked by the VM. The caveat is the usual one
    // for mapped files (candle, safetensors): another process truncating the file meanwhile would fault.
    let map = if len > 0 { unsafe { memmap2::Mmap::map(&file) }.ok() } else { None };
    match map {
        Some(map) => run(&map, Some(&map), path),
        None => {
            let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
            parse(&bytes, path)
        }
    }
}
