//! Long calls run on a worker thread while the calling thread waits with the GIL released, waking every
//! [`POLL`] to run Python's signal handlers (Ctrl-C → `KeyboardInterrupt` within a fraction of a second) and the
//! progress callback. On an interrupt (or an exception from the callback) the call returns at once; the worker
//! sees the cancel flag at its next item or batch and stops, its results dropped.
use pyo3::prelude::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

/// How often the waiting thread checks for signals.
const POLL: Duration = Duration::from_millis(50);

/// Why a job stopped early.
pub enum Stop {
    /// The caller was interrupted; nobody reads the result.
    Cancelled,
    Err(PyErr),
}

impl From<emoclip::Error> for Stop {
    fn from(e: emoclip::Error) -> Self {
        Stop::Err(crate::errors::to_py(e))
    }
}

impl From<candle_core::Error> for Stop {
    fn from(e: candle_core::Error) -> Self {
        Stop::Err(crate::errors::candle(e))
    }
}

impl From<PyErr> for Stop {
    fn from(e: PyErr) -> Self {
        Stop::Err(e)
    }
}

pub type JobResult<T> = Result<T, Stop>;

enum Msg<T> {
    Progress(usize, Option<usize>),
    Done(JobResult<T>),
}

/// What the worker sees: the cancel flag and the progress channel.
pub struct Ctx<T> {
    cancel: Arc<AtomicBool>,
    tx: mpsc::Sender<Msg<T>>,
}

impl<T> Ctx<T> {
    /// `Err(Stop::Cancelled)` once the caller has gone.
    pub fn check(&self) -> JobResult<()> {
        if self.cancel.load(Ordering::Relaxed) {
            Err(Stop::Cancelled)
        } else {
            Ok(())
        }
    }

    pub fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }

    /// `done` items of the call's total are finished.
    pub fn progress(&self, done: usize) {
        let _ = self.tx.send(Msg::Progress(done, None));
    }

    /// `done` of `total` (when the total is known only while the job runs).
    pub fn progress_of(&self, done: usize, total: usize) {
        let _ = self.tx.send(Msg::Progress(done, Some(total)));
    }
}

/// Runs `job` on a worker thread (inside `pool` when given, else rayon's global pool) and waits for it with the
/// GIL released. `progress(done, total)` is called on the calling thread.
pub fn run<T, F>(
    py: Python<'_>,
    pool: Option<Arc<rayon::ThreadPool>>,
    total: usize,
    progress: Option<&Bound<'_, PyAny>>,
    job: F,
) -> PyResult<T>
where
    T: Send + 'static,
    F: FnOnce(&Ctx<T>) -> JobResult<T> + Send + 'static,
{
    let cancel = Arc::new(AtomicBool::new(false));
    let (tx, mut rx) = mpsc::channel::<Msg<T>>();
    let ctx = Ctx { cancel: cancel.clone(), tx };
    std::thread::Builder::new()
        .name("emoclip-job".into())
        .spawn(move || {
            let run = std::panic::AssertUnwindSafe(|| match &pool {
                Some(p) => p.install(|| job(&ctx)),
                None => job(&ctx),
            });
            let out = std::panic::catch_unwind(run).unwrap_or_else(|payload| {
                let why = payload
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| payload.downcast_ref::<&str>().copied())
                    .unwrap_or("unknown panic");
                Err(Stop::Err(pyo3::exceptions::PyRuntimeError::new_err(format!(
                    "internal error in emoclip (please report it): {why}"
                ))))
            });
            let _ = ctx.tx.send(Msg::Done(out));
        })
        .map_err(|e| pyo3::exceptions::PyRuntimeError::new_err(format!("cannot start a worker thread: {e}")))?;
    let stop = |e: PyErr| {
        cancel.store(true, Ordering::Relaxed);
        e
    };
    if let Some(cb) = progress {
        cb.call1((0usize, total)).map_err(stop)?;
    }
    loop {
        // The receiver is not `Sync`: it travels into the GIL-free closure and back.
        let (msg, back) = py.detach(move || (rx.recv_timeout(POLL), rx));
        rx = back;
        match msg {
            Ok(Msg::Progress(done, of)) => {
                if let Some(cb) = progress {
                    cb.call1((done, of.unwrap_or(total))).map_err(stop)?;
                }
            }
            Ok(Msg::Done(r)) => {
                return match r {
                    Ok(v) => Ok(v),
                    Err(Stop::Err(e)) => Err(e),
                    Err(Stop::Cancelled) => Err(pyo3::exceptions::PyKeyboardInterrupt::new_err("cancelled")),
                };
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err(pyo3::exceptions::PyRuntimeError::new_err(
                    "the emoclip worker thread stopped without a result (please report it)",
                ));
            }
        }
        py.check_signals().map_err(stop)?;
    }
}
