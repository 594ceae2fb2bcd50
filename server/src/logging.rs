//! The log's writer: one event is one line, whatever the event's fields hold. A path, a
//! header or a message body from outside with a newline in it would otherwise start a line
//! of its own that looks like the server's ("log forging"); here every CR, LF and other
//! control character inside an event is written escaped (`\n`, `\r`, `\x07`), so only the
//! event's own end of line ends a line. (ANSI colour escapes are left alone.)

use std::io::Write;
use tracing_subscriber::fmt::MakeWriter;

/// `tracing_subscriber::fmt().with_writer(OneLine)`: standard output, one line per event.
#[derive(Clone, Copy, Debug, Default)]
pub struct OneLine;

impl<'a> MakeWriter<'a> for OneLine {
    type Writer = OneLineWriter<std::io::Stdout>;
    fn make_writer(&'a self) -> Self::Writer {
        OneLineWriter(std::io::stdout())
    }
}

/// Escapes control characters in what it is given (one formatted event per write), except
/// a final newline.
pub struct OneLineWriter<W: Write>(pub W);

pub fn escape_event(buf: &[u8]) -> Vec<u8> {
    let (body, end) = match buf.strip_suffix(b"\n") {
        Some(b) => (b, &b"\n"[..]),
        None => (buf, &b""[..]),
    };
    let mut out = Vec::with_capacity(buf.len() + 8);
    for &b in body {
        match b {
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' | 0x1b => out.push(b), // tabs and ANSI colour escapes
            c if c < 0x20 || c == 0x7f => out.extend_from_slice(format!("\\x{c:02x}").as_bytes()),
            c => out.push(c),
        }
    }
    out.extend_from_slice(end);
    out
}

impl<W: Write> Write for OneLineWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write_all(&escape_event(buf))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_newline_in_a_field_cannot_start_a_forged_line() {
        let event = b"INFO request refused path=\"/x\nERROR admin signed in\" done\n";
        let out = String::from_utf8(escape_event(event)).unwrap();
        assert_eq!(out.lines().count(), 1, "{out}");
        assert!(out.contains("/x\\nERROR admin signed in"), "{out}");
        assert_eq!(escape_event(b"a\rb\x07c\td\n"), b"a\\rb\\x07c\td\n");
    }

    #[test]
    fn the_subscriber_writes_one_line_per_event() {
        use std::sync::{Arc, Mutex};
        #[derive(Clone, Default)]
        struct Buf(Arc<Mutex<Vec<u8>>>);
        impl Write for Buf {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buf = Buf::default();
        let sink = buf.clone();
        let subscriber = tracing_subscriber::fmt().with_ansi(false).with_writer(move || OneLineWriter(sink.clone())).finish();
        tracing::subscriber::with_default(subscriber, || {
            let path = "/drops/DR1\n2026-12-01T00:00:00Z  INFO signed in user_id=1";
            tracing::info!(path = %path, "not found");
        });
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
    }
}
