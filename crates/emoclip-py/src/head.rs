//! `emoclip.Head`: a linear head saved by `emoclip probe --save-head` (`emoclip::head`), applied to
//! embeddings as scikit-learn's `predict_proba` / `predict`.
use std::path::PathBuf;

use numpy::{PyArray1, PyArrayMethods, PyReadonlyArray2};
use pyo3::prelude::*;

use crate::errors::to_py;
use emoclip::head::Prediction;

#[pyclass(frozen, module = "emoclip._emoclip", name = "Head")]
pub struct Head {
    head: emoclip::head::Head,
}

/// Reads a head file (`*.head.json`).
#[pyfunction]
pub fn load_head(py: Python<'_>, path: PathBuf) -> PyResult<Head> {
    let head = py.detach(|| emoclip::head::Head::load(&path)).map_err(to_py)?;
    Ok(Head { head })
}

fn rows(x: &PyReadonlyArray2<'_, f32>) -> Vec<Vec<f32>> {
    x.as_array().outer_iter().map(|r| r.to_vec()).collect()
}

#[pymethods]
impl Head {
    /// The head's name, e.g. `meld/emotion`.
    #[getter]
    fn name(&self) -> &str {
        &self.head.name
    }

    /// `logistic`, `one_vs_rest` or `ridge`.
    #[getter]
    fn task(&self) -> &'static str {
        match self.head.task {
            emoclip::head::HeadTask::Logistic => "logistic",
            emoclip::head::HeadTask::OneVsRest => "one_vs_rest",
            emoclip::head::HeadTask::Ridge => "ridge",
        }
    }

    /// Class names (classification) or target names (regression).
    #[getter]
    fn labels(&self) -> Vec<String> {
        self.head.labels.clone()
    }

    /// Feature dimension the head takes.
    #[getter]
    fn dim(&self) -> usize {
        self.head.dim()
    }

    /// Encoder fingerprint the head was fitted on.
    #[getter]
    fn encoder_fingerprint(&self) -> &str {
        &self.head.encoder.fingerprint
    }

    fn __repr__(&self) -> String {
        format!(
            "Head(name={:?}, task={:?}, labels={:?}, dim={})",
            self.head.name,
            self.task(),
            self.head.labels,
            self.dim()
        )
    }

    /// `[N, D]` float32 → `[N, C]` float32 probabilities (or values for `ridge`).
    fn _predict_proba<'py>(&self, py: Python<'py>, x: PyReadonlyArray2<'py, f32>) -> PyResult<Bound<'py, PyAny>> {
        let xs = rows(&x);
        let c = self.head.labels.len();
        let n = xs.len();
        let mut out = Vec::with_capacity(n * c);
        for r in &xs {
            let p = self.head.predict_proba(r).map_err(to_py)?;
            out.extend(p.into_iter().map(|v| v as f32));
        }
        let c = out.len().checked_div(n).unwrap_or(c);
        Ok(PyArray1::from_vec(py, out).reshape([n, c])?.into_any())
    }

    /// `[N, D]` float32 → int64 `[N]` class indices (`logistic`), bool `[N, C]` (`one_vs_rest`) or float32
    /// `[N, C]` values (`ridge`).
    fn _predict<'py>(&self, py: Python<'py>, x: PyReadonlyArray2<'py, f32>) -> PyResult<Bound<'py, PyAny>> {
        let xs = rows(&x);
        let n = xs.len();
        let c = self.head.labels.len();
        let preds: Vec<Prediction> =
            xs.iter().map(|r| self.head.predict(r)).collect::<Result<_, _>>().map_err(to_py)?;
        Ok(match self.head.task {
            emoclip::head::HeadTask::Logistic => {
                let v: Vec<i64> =
                    preds.iter().map(|p| if let Prediction::Class(k) = p { *k as i64 } else { -1 }).collect();
                PyArray1::from_vec(py, v).into_any()
            }
            emoclip::head::HeadTask::OneVsRest => {
                let v: Vec<bool> = preds
                    .iter()
                    .flat_map(|p| if let Prediction::Labels(l) = p { l.clone() } else { vec![false; c] })
                    .collect();
                PyArray1::from_vec(py, v).reshape([n, c])?.into_any()
            }
            emoclip::head::HeadTask::Ridge => {
                let v: Vec<f32> = preds
                    .iter()
                    .flat_map(|p| {
                        if let Prediction::Values(l) = p {
                            l.iter().map(|&x| x as f32).collect()
                        } else {
                            vec![f32::NAN; c]
                        }
                    })
                    .collect();
                PyArray1::from_vec(py, v).reshape([n, c])?.into_any()
            }
        })
    }
}
