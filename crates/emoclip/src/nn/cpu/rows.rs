//! The row-parallel loop every elementwise / per-row CPU kernel here shares: the output and inputs are
//! contiguous `[rows, n]` f32 buffers, split into chunks of whole rows (about 16 k elements each, enough to
//! amortise rayon's scheduling) and handed to a per-row function.
use candle_core::{CpuStorage, Layout, Result};
use rayon::prelude::*;

/// Rows per parallel chunk: about 16 k elements.
pub(crate) fn rows_per_chunk(n: usize) -> usize {
    (16384 / n.max(1)).max(1)
}

/// A new buffer as long as `inputs[0]` whose row `r` (width `n`) is written by `f(out_row, [row r of each
/// input])`, rows in parallel. Every input must be as long as the first and `n > 0` (the ops check both).
pub(crate) fn map_rows<const K: usize>(
    inputs: [&[f32]; K],
    n: usize,
    f: impl Fn(&mut [f32], [&[f32]; K]) + Sync + Send,
) -> Vec<f32> {
    let len = inputs.first().map_or(0, |x| x.len());
    if n == 0 {
        return vec![0f32; len];
    }
    let chunk = rows_per_chunk(n) * n;
    let mut out = Vec::with_capacity(len);
    out.spare_capacity_mut()[..len].par_chunks_mut(chunk).enumerate().for_each(|(i, o)| {
        for (r, orow) in zeroed(o).chunks_mut(n).enumerate() {
            let at = i * chunk + r * n;
            f(orow, inputs.map(|x| &x[at..at + n]));
        }
    });
    // SAFETY: every chunk of the first `len` elements was initialised by `zeroed`.
    unsafe { out.set_len(len) };
    out
}

/// Sets a chunk of a new buffer to zero and hands it out initialised. Parallel kernels zero their own chunk
/// right before writing it (in cache, on every core) instead of `vec![0; len]` on the calling thread while
/// the pool waits.
pub(crate) fn zeroed<T: Copy + Default>(c: &mut [std::mem::MaybeUninit<T>]) -> &mut [T] {
    for x in c.iter_mut() {
        x.write(T::default());
    }
    // SAFETY: every element was initialised just above, and `MaybeUninit<T>` has `T`'s layout.
    unsafe { &mut *(c as *mut [std::mem::MaybeUninit<T>] as *mut [T]) }
}

/// The contiguous f32 data of a CPU storage, or an error naming the kernel `op` and the operand `what`.
pub(crate) fn f32_slice<'a>(s: &'a CpuStorage, l: &Layout, op: &str, what: &str) -> Result<&'a [f32]> {
    let CpuStorage::F32(v) = s else { candle_core::bail!("{op}: {what} must be f32") };
    let Some((a, b)) = l.contiguous_offsets() else { candle_core::bail!("{op}: {what} must be contiguous") };
    Ok(&v[a..b])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_is_visited_once_with_its_own_inputs() {
        // 5000 rows of 7 span several chunks (2340 rows each) with a partial last one.
        let (rows, n) = (5000usize, 7usize);
        let x: Vec<f32> = (0..rows * n).map(|i| i as f32).collect();
        let y: Vec<f32> = (0..rows * n).map(|i| (i % n) as f32).collect();
        let out = map_rows([&x, &y], n, |o, [a, b]| {
            for ((o, &a), &b) in o.iter_mut().zip(a).zip(b) {
                *o = a * 10.0 + b;
            }
        });
        let want: Vec<f32> = x.iter().zip(&y).map(|(a, b)| a * 10.0 + b).collect();
        assert_eq!(out, want);
    }
}
