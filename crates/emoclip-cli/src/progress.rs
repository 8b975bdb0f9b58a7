//! Progress of long commands: an indicatif bar when stderr is a terminal; otherwise (batch jobs, Slurm logs,
//! pipes) plain lines, so a log shows the job is alive: one every `EMOCLIP_PROGRESS_SECS` seconds (default 30)
//! and one at each 10 % step once the job has run that long, plus a last line when it ends.
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Default seconds between plain progress lines.
const DEFAULT_SECS: f64 = 30.0;

/// A progress display; shareable between threads (`&Progress` is `Sync`).
pub struct Progress {
    what: String,
    bar: Option<ProgressBar>,
    plain: Option<Mutex<Plain>>,
}

struct Plain {
    len: u64,
    pos: u64,
    msg: String,
    start: Instant,
    last: Instant,
    last_step: u64,
    printed: bool,
    interval: Duration,
}

impl Plain {
    fn line(&self, now: Instant) -> String {
        let elapsed = now - self.start;
        let mut s = format!("{}/{}", self.pos, self.len);
        if self.len > 0 {
            s.push_str(&format!(" ({:.0}%)", 100.0 * self.pos as f64 / self.len as f64));
        }
        if !self.msg.is_empty() {
            s.push_str(&format!(" {}", self.msg));
        }
        s.push_str(&format!(", {} elapsed", clock(elapsed)));
        if self.pos > 0 && self.pos < self.len {
            let eta = elapsed.mul_f64((self.len - self.pos) as f64 / self.pos as f64);
            s.push_str(&format!(", eta {}", clock(eta)));
        }
        s
    }
}

/// `h:mm:ss` or `m:ss`.
fn clock(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

/// Seconds between plain lines: `EMOCLIP_PROGRESS_SECS` (0: a line at every update), else 30.
fn interval() -> Duration {
    let secs = std::env::var("EMOCLIP_PROGRESS_SECS")
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .unwrap_or(DEFAULT_SECS);
    Duration::from_secs_f64(secs)
}

impl Progress {
    /// Progress of `len` steps of `what` (e.g. "embedding"): a bar on a terminal, plain lines otherwise.
    pub fn new(len: u64, what: &str) -> Self {
        if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new(len);
            bar.set_style(
                ProgressStyle::with_template("{spinner} {prefix} [{bar:30}] {pos}/{len} {msg} (eta {eta})")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            bar.set_prefix(what.to_string());
            return Self { what: what.into(), bar: Some(bar), plain: None };
        }
        let now = Instant::now();
        let plain = Plain {
            len,
            pos: 0,
            msg: String::new(),
            start: now,
            last: now,
            last_step: 0,
            printed: false,
            interval: interval(),
        };
        Self { what: what.into(), bar: None, plain: Some(Mutex::new(plain)) }
    }

    /// Shows nothing (e.g. on ranks other than 0).
    pub fn hidden() -> Self {
        Self { what: String::new(), bar: None, plain: None }
    }

    fn update(&self, f: impl FnOnce(&mut Plain)) {
        let Some(m) = &self.plain else { return };
        let mut p = m.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut p);
        let now = Instant::now();
        let step = (p.pos.min(p.len) * 10).checked_div(p.len).unwrap_or(0);
        let due = now - p.last >= p.interval || (step > p.last_step && now - p.start >= p.interval);
        if due {
            eprintln!("{}: {}", self.what, p.line(now));
            p.last = now;
            p.last_step = step;
            p.printed = true;
        }
    }

    pub fn inc(&self, n: u64) {
        if let Some(b) = &self.bar {
            b.inc(n);
        }
        self.update(|p| p.pos += n);
    }

    pub fn set_position(&self, pos: u64) {
        if let Some(b) = &self.bar {
            b.set_position(pos);
        }
        self.update(|p| p.pos = pos);
    }

    pub fn set_length(&self, len: u64) {
        if let Some(b) = &self.bar {
            b.set_length(len);
        }
        if let Some(m) = &self.plain {
            m.lock().unwrap_or_else(|e| e.into_inner()).len = len;
        }
    }

    /// The text after the counts (e.g. the current loss); shown with the next line or bar redraw.
    pub fn set_message(&self, msg: impl Into<String>) {
        let msg = msg.into();
        if let Some(b) = &self.bar {
            b.set_message(msg.clone());
        }
        if let Some(m) = &self.plain {
            m.lock().unwrap_or_else(|e| e.into_inner()).msg = msg;
        }
    }

    /// Prints a line above the bar (or as is, without one).
    pub fn println(&self, line: impl AsRef<str>) {
        match &self.bar {
            Some(b) => b.println(line.as_ref()),
            None if self.plain.is_some() => eprintln!("{}", line.as_ref()),
            None => {}
        }
    }

    /// Runs `f` (e.g. a log message) with the bar hidden.
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        match &self.bar {
            Some(b) => b.suspend(f),
            None => f(),
        }
    }

    /// Clears the bar; without a terminal, prints a last line when earlier lines were printed.
    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
        if let Some(m) = &self.plain {
            let p = m.lock().unwrap_or_else(|e| e.into_inner());
            if p.printed {
                eprintln!("{}: done, {}", self.what, p.line(Instant::now()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_line_counts_and_eta() {
        let start = Instant::now();
        let p = Plain {
            len: 10,
            pos: 4,
            msg: "loss 1.5".into(),
            start,
            last: start,
            last_step: 0,
            printed: false,
            interval: Duration::ZERO,
        };
        let line = p.line(start + Duration::from_secs(80));
        assert_eq!(line, "4/10 (40%) loss 1.5, 1:20 elapsed, eta 2:00");
        assert_eq!(clock(Duration::from_secs(3725)), "1:02:05");
    }
}
