//! Log set-up: logfmt (the Prometheus ecosystem's default) or JSON, to stderr.

use std::fmt;

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
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

fn write_value(w: &mut Writer<'_>, v: &str) -> fmt::Result {
    if !v.is_empty() && !v.contains([' ', '"', '=', '\\', '\n', '\t']) {
        return w.write_str(v);
    }
    w.write_char('"')?;
    for c in v.chars() {
        match c {
            '"' => w.write_str("\\\"")?,
            '\\' => w.write_str("\\\\")?,
            '\n' => w.write_str("\\n")?,
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

/// Installs the global subscriber. Our own crate logs at `level`; others at warn.
pub fn init(level: LogLevel, format: LogFormat) {
    let lvl = match level {
        LogLevel::Error => "error",
        LogLevel::Warn => "warn",
        LogLevel::Info => "info",
        LogLevel::Debug => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::new(format!("warn,cloud_assistant_exporter={lvl}"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
        LogFormat::Logfmt => builder.event_format(Logfmt).try_init(),
    };
}
