//! Log set-up: logfmt (the Prometheus ecosystem's default) or JSON, to stderr.

use std::fmt;

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Logfmt,
    Json,
}

/// `ts=… level=… msg="…" key=value …`, values quoted when they need it.
struct Logfmt;

/// Characters that must not reach a terminal or a log file raw: control
/// characters (a `\r` rewrites the line, `\x1b` starts a terminal escape,
/// `\0` cuts it for some readers) and the Unicode line separators.
fn unsafe_char(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}')
}

/// A logfmt value: bare when it can be, else quoted with every special
/// character escaped, so one event is always exactly one line.
fn write_value(w: &mut impl fmt::Write, v: &str) -> fmt::Result {
    if !v.is_empty() && !v.contains([' ', '"', '=', '\\']) && !v.chars().any(unsafe_char) {
        return w.write_str(v);
    }
    w.write_char('"')?;
    for c in v.chars() {
        match c {
            '"' => w.write_str("\\\"")?,
            '\\' => w.write_str("\\\\")?,
            '\n' => w.write_str("\\n")?,
            '\r' => w.write_str("\\r")?,
            '\t' => w.write_str("\\t")?,
            c if unsafe_char(c) && (c as u32) < 0x100 => write!(w, "\\x{:02x}", c as u32)?,
            c if unsafe_char(c) => write!(w, "\\u{{{:04x}}}", c as u32)?,
            c => w.write_char(c)?,
        }
    }
    w.write_char('"')
}

struct Fields {
    msg: String,
    rest: Vec<(&'static str, String)>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.msg = value.to_string();
        } else {
            self.rest.push((field.name(), value.to_string()));
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            self.msg = format!("{value:?}");
        } else {
            self.rest.push((field.name(), format!("{value:?}")));
        }
    }
}

impl<S, N> FormatEvent<S, N> for Logfmt
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let ts = crate::clock::format_iso8601(now.as_secs() as i64);
        write!(
            w,
            "ts={}.{:03}Z level={}",
            &ts[..ts.len() - 1],
            now.subsec_millis(),
            event.metadata().level().as_str().to_lowercase()
        )?;
        let mut f = Fields {
            msg: String::new(),
            rest: Vec::new(),
        };
        event.record(&mut f);
        w.write_str(" msg=")?;
        write_value(&mut w, &f.msg)?;
        for (k, v) in f.rest {
            write!(w, " {k}=")?;
            write_value(&mut w, &v)?;
        }
        writeln!(w)
    }
}

/// JSON lines with the characters serde_json leaves raw (DEL, the C1
/// controls, the Unicode line separators) written as `\uXXXX`: they can
/// only stand inside strings, where the escape means the same.
struct JsonSafe<M>(M);

struct JsonSafeWriter<W>(W);

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for JsonSafe<M> {
    type Writer = JsonSafeWriter<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        JsonSafeWriter(self.0.make_writer())
    }
}

impl<W: std::io::Write> std::io::Write for JsonSafeWriter<W> {
    /// Takes the whole buffer: the formatter writes one event at a time.
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        if !text.chars().any(unsafe_char) {
            self.0.write_all(buf)?;
            return Ok(buf.len());
        }
        let mut out = String::with_capacity(text.len() + 16);
        for c in text.chars() {
            // `\n` ends the line; serde_json escaped every other C0 control.
            if unsafe_char(c) && c != '\n' {
                out.push_str(&format!("\\u{:04x}", c as u32));
            } else {
                out.push(c);
            }
        }
        self.0.write_all(out.as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// Every line with the secrets the process holds taken out (see
/// [`crate::secret::scrub`]), whatever the level and format.
struct Scrubbed<M>(M);

struct ScrubbedWriter<W>(W);

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for Scrubbed<M> {
    type Writer = ScrubbedWriter<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        ScrubbedWriter(self.0.make_writer())
    }
}

impl<W: std::io::Write> std::io::Write for ScrubbedWriter<W> {
    /// Takes the whole buffer: the formatter writes one event at a time.
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        match crate::secret::scrub(&text) {
            std::borrow::Cow::Borrowed(_) => self.0.write_all(buf)?,
            std::borrow::Cow::Owned(clean) => self.0.write_all(clean.as_bytes())?,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// The subscriber `init` installs, writing to `writer`.
fn subscriber<W>(level: LogLevel, format: LogFormat, writer: W) -> Box<dyn Subscriber + Send + Sync>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let lvl = match level {
        LogLevel::Error => "error",
        LogLevel::Warn => "warn",
        LogLevel::Info => "info",
        LogLevel::Debug => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::new(format!("warn,cloud_assistant_exporter={lvl}"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Json => Box::new(
            builder
                .with_writer(JsonSafe(Scrubbed(writer)))
                .json()
                .flatten_event(true)
                .with_current_span(false)
                .finish(),
        ),
        LogFormat::Logfmt => Box::new(
            builder
                .with_writer(Scrubbed(writer))
                .event_format(Logfmt)
                .finish(),
        ),
    }
}

/// Installs the global subscriber. Our own crate logs at `level`; others at warn.
pub fn init(level: LogLevel, format: LogFormat) {
    use tracing_subscriber::util::SubscriberInitExt;
    let _ = subscriber(level, format, std::io::stderr).try_init();
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Capture {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if let Ok(mut v) = self.0.lock() {
                v.extend_from_slice(buf);
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn logged(format: LogFormat, value: &str) -> String {
        let cap = Capture::default();
        let sink = cap.clone();
        let sub = subscriber(LogLevel::Debug, format, move || sink.clone());
        tracing::subscriber::with_default(sub, || {
            tracing::warn!(value = %value, debugged = ?value, "message {value}");
        });
        let bytes = cap.0.lock().map(|v| v.clone()).unwrap_or_default();
        String::from_utf8(bytes).expect("utf8")
    }

    #[test]
    fn control_characters_never_reach_the_output_raw() {
        let hostile = "a\rb\x1b[2Jc\0d\u{9b}31me\u{7f}f\ng\th\u{2028}i\"j\\k";
        for format in [LogFormat::Logfmt, LogFormat::Json] {
            let out = logged(format, hostile);
            assert_eq!(
                out.matches('\n').count(),
                1,
                "{format:?}: one line: {out:?}"
            );
            assert!(out.ends_with('\n'));
            let raw = out.trim_end_matches('\n');
            assert!(!raw.chars().any(unsafe_char), "{format:?}: {raw:?}");
            if format == LogFormat::Json {
                let v: serde_json::Value = serde_json::from_str(raw).expect("one JSON object");
                assert_eq!(v["value"], hostile, "the value survives, escaped");
            } else {
                assert!(
                    raw.contains(r#"value="a\rb\x1b[2Jc\x00d\x9b31me\x7ff\ng\th\u{2028}i\"j\\k""#),
                    "{raw}"
                );
            }
        }
    }

    #[test]
    fn plain_values_stay_bare() {
        let out = logged(LogFormat::Logfmt, "cn-hangzhou");
        assert!(out.contains(" value=cn-hangzhou "), "{out}");
    }
}
