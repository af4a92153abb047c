//! Results as data, and the three ways they are shown: text for people, one JSON object per
//! line for programs (SPEC §3 shapes), and Rhai values for scripts (see `script`).

use crate::error::Error;
use serde_json::{Map, Value};

/// A command's result: named fields (the JSON shape) plus how to say it to a person.
#[derive(Debug, Clone)]
pub struct Output {
    pub cmd: String,
    pub fields: Map<String, Value>,
    pub text: String,
    /// What a Rhai call returns when it is not the whole field map (`get` returns the value).
    pub value: Option<Value>,
    /// The command ran and has results to show, yet failed (a `load` threshold broke): the
    /// results are still printed, then this error, and the exit status is non-zero.
    pub failure: Option<Error>,
    /// The failure is the answer to the question the command asks (`verify`: the copies
    /// differ): the exit status and JSON say so as for any failure, but a script gets the data
    /// and judges it itself, since asking is not failing.
    pub verdict: bool,
}

impl Output {
    pub fn new(cmd: &str) -> Self {
        Output {
            cmd: cmd.to_string(),
            fields: Map::new(),
            text: String::new(),
            value: None,
            failure: None,
            verdict: false,
        }
    }

    pub fn field(mut self, name: &str, v: impl Into<Value>) -> Self {
        self.fields.insert(name.to_string(), v.into());
        self
    }

    pub fn text(mut self, text: impl Into<String>) -> Self {
        self.text = text.into();
        self
    }

    pub fn returns(mut self, v: impl Into<Value>) -> Self {
        self.value = Some(v.into());
        self
    }

    pub fn fail(mut self, e: Error) -> Self {
        self.failure = Some(e);
        self
    }

    /// As `fail`, for a result whose answer is "no" (see `verdict`).
    pub fn answer_no(mut self, e: Error) -> Self {
        self.failure = Some(e);
        self.verdict = true;
        self
    }

    /// `{"cmd": "put", "ok": true, ...fields}`; a failed run with results also carries `error`.
    pub fn to_json(&self) -> String {
        let mut m = Map::new();
        m.insert("cmd".into(), self.cmd.clone().into());
        m.insert("ok".into(), self.failure.is_none().into());
        if let Some(e) = &self.failure {
            m.insert("error".into(), serde_json::json!({"kind": e.kind.as_str(), "message": e.message}));
        }
        m.extend(self.fields.clone());
        Value::Object(m).to_string()
    }

    /// The value a script sees.
    pub fn rhai_value(&self) -> Value {
        self.value.clone().unwrap_or_else(|| Value::Object(self.fields.clone()))
    }
}

/// `{"cmd": "get", "ok": false, "error": {"kind": "no_quorum", "message": "..."}}`
pub fn error_json(cmd: &str, e: &Error) -> String {
    serde_json::json!({"cmd": cmd, "ok": false, "error": {"kind": e.kind.as_str(), "message": e.message}}).to_string()
}

/// How tables are drawn: boxes on a terminal, aligned plain columns otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Terminal,
    Plain,
}

/// A table with columns in order of importance: on a narrow terminal the last ones go first
/// (see `fit`).
pub fn table(style: Style, header: &[&str], rows: Vec<Vec<String>>) -> String {
    super::fit::render(style, &super::fit::by_position(header), rows)
}

/// `14:03:07.215` in local time.
pub fn clock(at_ms: u64) -> String {
    let secs = (at_ms / 1000) as libc::time_t;
    // SAFETY: localtime_r writes only into the struct we pass.
    let tm = unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        libc::localtime_r(&secs, &mut tm);
        tm
    };
    format!("{:02}:{:02}:{:02}.{:03}", tm.tm_hour, tm.tm_min, tm.tm_sec, at_ms % 1000)
}

/// `1.2 s`, `340 ms`, `2 h 5 m`.
pub fn human_ms(ms: u64) -> String {
    match ms {
        0..=999 => format!("{ms} ms"),
        1000..=59_999 => format!("{:.1} s", ms as f64 / 1000.0),
        60_000..=3_599_999 => format!("{} m {} s", ms / 60_000, ms % 60_000 / 1000),
        _ => format!("{} h {} m", ms / 3_600_000, ms % 3_600_000 / 60_000),
    }
}

pub fn human_bytes(b: u64) -> String {
    match b {
        0..=1023 => format!("{b} B"),
        1024..=1_048_575 => format!("{:.1} KiB", b as f64 / 1024.0),
        _ => format!("{:.1} MiB", b as f64 / 1_048_576.0),
    }
}
