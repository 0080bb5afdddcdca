//! The `human` log format (`server.log_format = "human"`): each event on
//! one line, as tracing-subscriber's default ("full") format writes it,
//!
//! ```text
//! 2026-12-02T16:40:00.123456Z  INFO bulwark::server: request request_id=… status=200 …
//! ```
//!
//! written with less work per line when it goes to a file or a pipe (no
//! colours): the timestamp formatted in one step, the level, the target
//! and the fields written as plain text (with the default field format,
//! `DefaultFields`). The server writes one such line per request, so this
//! is on the path of every cache hit. Colours (a terminal), events inside
//! spans and events bridged from the `log` crate take tracing-subscriber's
//! own formatter, unchanged; so do a message, an error and a raw-identifier
//! field name, which it escapes or rewrites. Installed by `main.rs`.

use std::fmt;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::field::VisitOutput as _;
use tracing_subscriber::fmt::format::{DefaultVisitor, Format, Full, Writer};
use tracing_subscriber::fmt::time::SystemTime;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The `human` event format (see the module documentation).
#[derive(Debug, Default)]
pub struct Human {
    full: Format<Full, SystemTime>,
}

/// The level as the full format pads it (five columns).
fn level(l: &Level) -> &'static str {
    match *l {
        Level::TRACE => "TRACE",
        Level::DEBUG => "DEBUG",
        Level::INFO => " INFO",
        Level::WARN => " WARN",
        Level::ERROR => "ERROR",
    }
}

impl<S, N> FormatEvent<S, N> for Human
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let in_span = ctx
            .event_scope()
            .is_some_and(|s| s.from_root().next().is_some());
        // An event of the `log` crate carries its own target in fields.
        let bridged = meta.fields().field("log.target").is_some();
        if writer.has_ansi_escapes() || in_span || bridged {
            return self.full.format_event(ctx, writer, event);
        }
        write!(
            writer,
            "{} ",
            humantime::format_rfc3339_micros(std::time::SystemTime::now())
        )?;
        writer.write_str(level(meta.level()))?;
        writer.write_char(' ')?;
        writer.write_str(meta.target())?;
        writer.write_str(": ")?;
        let mut fields = Fields {
            writer: writer.by_ref(),
            is_empty: true,
            result: Ok(()),
        };
        event.record(&mut fields);
        fields.result?;
        writeln!(writer)
    }
}

/// An event's fields as `DefaultFields` writes them without colours:
/// `name=value` (the value's `Debug`), separated by spaces.
struct Fields<'w> {
    writer: Writer<'w>,
    /// Whether nothing was written yet (no space before the next field).
    is_empty: bool,
    result: fmt::Result,
}

impl Fields<'_> {
    /// One field written by tracing-subscriber's own visitor.
    fn stock(&mut self, record: impl FnOnce(&mut DefaultVisitor<'_>)) {
        let mut v = DefaultVisitor::new(self.writer.by_ref(), self.is_empty);
        record(&mut v);
        self.result = v.finish();
        self.is_empty = false;
    }
}

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.record_debug(field, &format_args!("{value}"));
        } else {
            self.record_debug(field, &value);
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        if self.result.is_err() || field.name().starts_with("log.") {
            return;
        }
        self.stock(|v| v.record_error(field, value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // Fields of the `log` bridge are metadata, not written.
        if self.result.is_err() || field.name().starts_with("log.") {
            return;
        }
        let name = field.name();
        if name == "message" || name.starts_with("r#") {
            return self.stock(|v| v.record_debug(field, value));
        }
        if !self.is_empty {
            self.result = self.writer.write_char(' ');
        }
        self.is_empty = false;
        if self.result.is_ok() {
            self.result = self
                .writer
                .write_str(name)
                .and_then(|()| self.writer.write_char('='))
                .and_then(|()| write!(self.writer, "{value:?}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// The lines `emit` logs through a subscriber with `format`.
    fn lines<F>(format: F, emit: impl FnOnce()) -> String
    where
        F: FormatEvent<
                tracing_subscriber::Registry,
                tracing_subscriber::fmt::format::DefaultFields,
            > + Send
            + Sync
            + 'static,
    {
        let buf = Buf::default();
        let out = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || out.clone())
            .event_format(format)
            .finish();
        tracing::subscriber::with_default(subscriber, emit);
        let b = buf.0.lock().unwrap().clone();
        String::from_utf8(b).unwrap()
    }

    /// A line without its timestamp (the first 27 bytes).
    fn untimed(line: &str) -> &str {
        &line[27..]
    }

    #[test]
    fn human_lines_are_the_full_format_lines() {
        let emit = || {
            let path = "/example.com/m/@v/v1.0.0.mod".to_string();
            tracing::info!(
                request_id = %"0011",
                path = %path,
                route = "gomod.mod",
                status = 200u16,
                elapsed_ms = 0.25,
                "request"
            );
            tracing::warn!(upstream = "u", "refused: {}", "a \"reason\"");
            tracing::error!(error = %io::Error::other("disk"), "failed");
            let e = io::Error::other("disk full");
            let dynerr: &(dyn std::error::Error + 'static) = &e;
            tracing::error!(
                error = dynerr,
                r#type = "raw",
                flag = true,
                n = -3i64,
                "\u{1b}[31mred"
            );
            tracing::info!(empty = "", text = "a \"quoted\" str");
        };
        let ours = lines(Human::default(), emit);
        let theirs = lines(Format::<Full, SystemTime>::default(), emit);
        let (ours, theirs): (Vec<_>, Vec<_>) = (ours.lines().collect(), theirs.lines().collect());
        assert_eq!(ours.len(), 5, "{ours:?}");
        assert_eq!(ours.len(), theirs.len());
        for (a, b) in ours.iter().zip(&theirs) {
            assert_eq!(untimed(a), untimed(b));
            // The same timestamp shape: 2026-12-02T16:40:00.123456Z.
            assert_eq!(a.len() - untimed(a).len(), 27);
            assert!(a.as_bytes()[26] == b'Z' && a.as_bytes()[19] == b'.', "{a}");
        }
        assert!(ours[0].ends_with(
            "  INFO bulwark::logging::tests: request request_id=0011 \
             path=/example.com/m/@v/v1.0.0.mod route=\"gomod.mod\" status=200 elapsed_ms=0.25"
        ));
    }
}
