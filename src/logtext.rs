//! Text from outside (spool file names, event ids, record types, CAA tags,
//! anything a producer or a tenant wrote) on its way into the log.
//!
//! Two layers. [`Escaped`] is for the code that logs: wrap user text in it
//! (`file = %Escaped(&name)`) or log it with `?`, never splice it into a
//! message. [`EscapingStderr`] is the log's writer and the backstop: the
//! formatter hands it one whole event at a time, and it escapes every line
//! break and control character but the event's final newline, so no text
//! anywhere in an event can start a line of its own, move the cursor or
//! ring a bell. This module does no I/O but the writer's own write to
//! stderr.

use std::fmt::{self, Write as _};
use std::io::{self, Write};

/// User text shown with every character that could forge or disturb a log
/// line escaped: C0 and C1 controls (`\n`, `\r`, ESC, BEL, NEL, …), DEL,
/// the Unicode line and paragraph separators, and the bidirectional
/// controls that reorder what a reader sees (U+202E and friends), written
/// as `\n`, `\r`, `\t` or `\u{…}`; a backslash is doubled so that an
/// escape in the text cannot pass for one of ours. Everything else is
/// written as it is.
#[derive(Clone, Copy)]
pub(crate) struct Escaped<'a>(pub(crate) &'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_escaped(f, self.0)
    }
}

impl fmt::Debug for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"")?;
        write_escaped(f, self.0)?;
        f.write_str("\"")
    }
}

/// Whether `c` must not reach a log line as it is.
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}'
                | '\u{200E}'
                | '\u{200F}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2066}'..='\u{2069}'
        )
}

fn write_escaped(out: &mut impl fmt::Write, text: &str) -> fmt::Result {
    for c in text.chars() {
        match c {
            '\\' => out.write_str("\\\\")?,
            '\n' => out.write_str("\\n")?,
            '\r' => out.write_str("\\r")?,
            '\t' => out.write_str("\\t")?,
            c if needs_escape(c) => write!(out, "\\u{{{:x}}}", u32::from(c))?,
            c => out.write_char(c)?,
        }
    }
    Ok(())
}

/// The log's writer: stderr, one formatted event per `write`, with every
/// control character but the event's last newline escaped (see the module
/// docs) as `\n`, `\r`, `\t` or `\uXXXX`: escapes that are also valid
/// inside a JSON string, where the JSON format leaves C1 controls, line
/// separators and bidi controls raw. With `ansi` the formatter's own colour
/// sequences (ESC `[` …) are let through, for a terminal; the daemon under
/// systemd logs without.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EscapingStderr {
    pub(crate) ansi: bool,
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for EscapingStderr {
    type Writer = EscapingWriter<io::Stderr>;

    fn make_writer(&'a self) -> Self::Writer {
        EscapingWriter {
            inner: io::stderr(),
            ansi: self.ansi,
        }
    }
}

/// Escapes what is written to it, then writes it to `inner` (see
/// [`EscapingStderr`]).
#[derive(Debug)]
pub(crate) struct EscapingWriter<W> {
    pub(crate) inner: W,
    pub(crate) ansi: bool,
}

impl<W: Write> Write for EscapingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        let (body, newline) = match text.strip_suffix('\n') {
            Some(body) => (body, "\n"),
            None => (&*text, ""),
        };
        let mut out = String::with_capacity(text.len() + 16);
        for c in body.chars() {
            match c {
                '\u{1b}' if self.ansi => out.push(c),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                // Every character escaped is in the BMP: four digits do.
                c if needs_escape(c) => {
                    let _ = write!(out, "\\u{:04x}", u32::from(c));
                }
                c => out.push(c),
            }
        }
        out.push_str(newline);
        self.inner.write_all(out.as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaped_shows_controls_and_keeps_the_rest() {
        let cases = [
            ("plain.example", "plain.example"),
            (
                "a\nINFO zoneagent: deployed",
                "a\\nINFO zoneagent: deployed",
            ),
            ("cr\rbell\u{7}esc\u{1b}[2J", "cr\\rbell\\u{7}esc\\u{1b}[2J"),
            ("nel\u{85}ls\u{2028}", "nel\\u{85}ls\\u{2028}"),
            ("rtl\u{202e}moc.knab", "rtl\\u{202e}moc.knab"),
            ("back\\nslash", "back\\\\nslash"),
            ("café tab\t", "café tab\\t"),
        ];
        for (input, want) in cases {
            assert_eq!(Escaped(input).to_string(), want, "{input:?}");
        }
        assert_eq!(format!("{:?}", Escaped("a\nb")), "\"a\\nb\"");
    }

    #[test]
    fn writer_keeps_one_event_on_one_line() {
        let mut w = EscapingWriter {
            inner: Vec::new(),
            ansi: false,
        };
        w.write_all(b" WARN refused spool entry file=x\n INFO zoneagent: deployed\r\x1b[1A\n")
            .unwrap();
        let out = String::from_utf8(w.inner).unwrap();
        assert_eq!(
            out,
            " WARN refused spool entry file=x\\n INFO zoneagent: deployed\\r\\u001b[1A\n"
        );
        assert_eq!(out.lines().count(), 1);

        let mut w = EscapingWriter {
            inner: Vec::new(),
            ansi: true,
        };
        w.write_all(b"\x1b[33m WARN\x1b[0m a\nb\n").unwrap();
        assert_eq!(w.inner, b"\x1b[33m WARN\x1b[0m a\\nb\n");
    }

    /// The JSON format escapes C0 controls itself but leaves NEL, the
    /// line separators and bidi controls raw: the writer's escapes for
    /// them keep every line valid JSON.
    #[test]
    fn writer_keeps_json_lines_json() {
        let mut w = EscapingWriter {
            inner: Vec::new(),
            ansi: false,
        };
        let line = serde_json::json!({"fields": {"file": "a\u{85}b\u{2028}c\u{202e}d\n\u{1b}"}});
        w.write_all(format!("{line}\n").as_bytes()).unwrap();
        let out = String::from_utf8(w.inner).unwrap();
        assert_eq!(out.lines().count(), 1);
        let back: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(back, line);
        assert!(
            out.contains("\\u0085") && out.contains("\\u2028") && out.contains("\\u202e"),
            "{out}"
        );
    }
}
