//! The `emoclip` Python package's native module (`emoclip._emoclip`): thin bindings over the library's
//! shared inference layer ([`emoclip::encoder`]) and its scoring (`embed::zero_shot`, `analyze::zeroshot`,
//! `head`). The public API is the pure-Python `emoclip` package (python/emoclip/__init__.py) that
//! wraps these classes; see docs/python.md.
use pyo3::prelude::*;

// The extension's Rust allocations (tensors, frames) go to mimalloc as the CLI's do (crates/emoclip-cli/src/main.rs),
// which reuses freed buffers where glibc malloc gave them back to the kernel and re-faulted them op after op.
// Unlike the CLI, purging (returning memory unused for a while to the system) keeps its default: a notebook
// process lives on after the work.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod analyze;
mod errors;
mod head;
mod items;
mod job;
mod model;
mod warnings;

#[pymodule]
fn _emoclip(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    warnings::install();
    m.add_class::<model::Model>()?;
    m.add_class::<head::Head>()?;
    m.add_function(wrap_pyfunction!(head::load_head, m)?)?;
    m.add_function(wrap_pyfunction!(analyze::_analyze, m)?)?;
    m.add_function(wrap_pyfunction!(warnings::_take_warnings, m)?)?;
    m.add("EmoclipWarning", py.get_type::<warnings::EmoclipWarning>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
