//! The library's `tracing` warnings (random weights, boxes outside the frame, skipped inputs...) as Python
//! warnings of category `emoclip.EmoclipWarning`: a process-wide subscriber collects WARN/ERROR events, and
//! the Python layer re-emits what was collected when each API call returns ([`_take_warnings`]).
use pyo3::prelude::*;
use std::fmt::Write as _;
use std::sync::Mutex;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;

pyo3::create_exception!(
    emoclip,
    EmoclipWarning,
    pyo3::exceptions::PyUserWarning,
    "Warnings from the emoclip library (e.g. random weights, person boxes outside the frame)."
);

static PENDING: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.push_str(value);
        } else {
            let _ = write!(self.0, " {}={value}", field.name());
        }
    }
}

struct Collect;

impl<S: Subscriber> Layer<S> for Collect {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        // `tracing` orders levels by verbosity: ERROR < WARN < INFO.
        if *event.metadata().level() > Level::WARN {
            return;
        }
        let mut m = Message(String::new());
        event.record(&mut m);
        if let Ok(mut v) = PENDING.lock() {
            v.push(m.0);
        }
    }
}

/// Installs the collecting subscriber (once per process; a subscriber someone else installed is kept).
pub fn install() {
    let filter = tracing_subscriber::filter::LevelFilter::WARN;
    let _ = tracing_subscriber::registry().with(Collect.with_filter(filter)).try_init();
}

/// Takes the collected warnings (the Python layer emits them as `EmoclipWarning` pointing at the caller's line).
#[pyfunction]
pub fn _take_warnings() -> Vec<String> {
    match PENDING.lock() {
        Ok(mut v) => std::mem::take(&mut *v),
        Err(_) => vec![],
    }
}
