use super::{
    Reply,
    command::Command,
    error::{ControlChanError, ControlChanErrorKind},
    line_parser,
};

/// swiftftp patch: the longest command line taken, CRLF included. Paths of Swift's longest names (a 256-byte
/// container and a 1,024-byte object, percent-free UTF-8) fit several times over.
pub const MAX_LINE: usize = 8192;

use bytes::BytesMut;
use std::io::Write;
use tokio_util::codec::{Decoder, Encoder};

// FTPCodec implements tokio's `Decoder` and `Encoder` traits for the control channel, that we'll
// use to decode FTP commands and encode their responses.
pub struct FtpCodec {
    // Stored index of the next index to examine for a '\n' character. This is used to optimize
    // searching. For example, if `decode` was called with `abc`, it would hold `3`, because that
    // is the next index to examine. The next time `decode` is called with `abcde\n`, we will only
    // look at `de\n` before returning.
    next_index: usize,
}

impl FtpCodec {
    pub fn new() -> Self {
        FtpCodec { next_index: 0 }
    }
}

impl Decoder for FtpCodec {
    type Item = Command;
    type Error = ControlChanError;

    // Here we decode the incoming bytes into a meaningful command. We'll split on newlines, and
    // parse the resulting line using `Command::parse()`. This method will be called by tokio.
    // swiftftp patch: a line longer than MAX_LINE is an error (the control loop replies and closes), instead of
    // being buffered until a newline comes, however many megabytes that takes.
    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Command>, Self::Error> {
        if let Some(newline_offset) = buf[self.next_index..].iter().position(|b| *b == b'\n') {
            let newline_index = newline_offset + self.next_index;
            if newline_index + 1 > MAX_LINE {
                return Err(ControlChanError::new(ControlChanErrorKind::LineTooLong));
            }
            let line = without_telnet_commands(buf.split_to(newline_index + 1));
            self.next_index = 0;
            // swiftftp patch: a parse error is a command the loop answers, not a decoder error (which would end
            // the stream, and with it the session).
            Ok(Some(
                line_parser::parse(line).unwrap_or_else(|e| Command::Malformed(ControlChanError::from(e).kind().clone())),
            ))
        } else if buf.len() > MAX_LINE {
            Err(ControlChanError::new(ControlChanErrorKind::LineTooLong))
        } else {
            self.next_index = buf.len();
            Ok(None)
        }
    }
}

/// Telnet's "interpret as command" byte, and the two commands RFC 959 has a client send before `ABOR`.
const IAC: u8 = 0xFF;
const IP: u8 = 0xF4;
const DM: u8 = 0xF2;

/// swiftftp patch: the line without the Telnet Interrupt Process and Synch that RFC 959 (4.1.3) has a client send
/// before `ABOR` (lftp does): `IAC IP`, `IAC DM`, and an `IAC` right after them whose DM went out of band as TCP
/// urgent data. Left in, they made the line "invalid UTF-8", and the session closed under a client that only
/// wanted its transfer stopped. Any other 0xFF stays, and a line holding it is refused as before: a lone 0xFF in
/// a name is no Telnet command, and removing it would name another file.
fn without_telnet_commands(line: BytesMut) -> BytesMut {
    if !line.contains(&IAC) {
        return line;
    }
    let mut out = BytesMut::with_capacity(line.len());
    let mut after_command = false;
    let mut i = 0;
    while i < line.len() {
        match (line[i], line.get(i + 1)) {
            (IAC, Some(&(IP | DM))) => {
                i += 2;
                after_command = true;
            }
            (IAC, _) if after_command => {
                i += 1;
                after_command = false;
            }
            (b, _) => {
                out.extend_from_slice(&[b]);
                i += 1;
                after_command = false;
            }
        }
    }
    out
}

impl Encoder<Reply> for FtpCodec {
    type Error = ControlChanError;

    // Here we encode the outgoing response
    fn encode(&mut self, reply: Reply, buf: &mut BytesMut) -> Result<(), Self::Error> {
        let mut buffer = vec![];
        match reply {
            Reply::None => {
                return Ok(());
            }
            Reply::CodeAndMsg { code, msg } => {
                let msg = one_line(msg);
                if msg.is_empty() {
                    writeln!(buffer, "{}\r", code as u32)?;
                } else {
                    writeln!(buffer, "{} {}\r", code as u32, msg)?;
                }
            }
            Reply::MultiLine { code, lines } => {
                let mut lines: Vec<String> = lines.into_iter().map(one_line).collect();
                // Get the last line since it needs to be preceded by the response code.
                let last_line = lines.pop().unwrap_or_default();

                // Lines starting with a digit should be indented
                for it in lines.iter_mut() {
                    if it.chars().next().is_some_and(|c| c.is_ascii_digit()) {
                        it.insert(0, ' ');
                    }
                }
                if lines.is_empty() {
                    writeln!(buffer, "{} {}\r", code as u32, last_line)?;
                } else {
                    write!(buffer, "{}-{}\r\n{} {}\r\n", code as u32, lines.join("\r\n"), code as u32, last_line)?;
                }
            }
        }
        buf.extend(&buffer);
        Ok(())
    }
}

/// swiftftp patch: a reply's text with every CR, LF and NUL replaced by `?`. Texts echo names (paths, listing
/// entries in `STAT`, `MLST` facts) that another user may have given a line break in Swift: unreplaced, it would
/// end the reply line and let the name forge further replies.
fn one_line(text: String) -> String {
    if text.contains(['\r', '\n', '\0']) {
        text.replace(['\r', '\n', '\0'], "?")
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::super::ReplyCode;
    use super::*;

    #[test]
    fn encode_multiline_reply_with_blank_line_does_not_panic() {
        let mut codec = FtpCodec::new();
        let mut buf = BytesMut::new();
        let reply = Reply::new_multiline(ReplyCode::HelpMessage, vec!["Usage: foo", "", "Options:"]);

        codec.encode(reply, &mut buf).unwrap();

        assert_eq!(buf, "214-Usage: foo\r\n\r\n214 Options:\r\n".as_bytes());
    }

    #[test]
    fn telnet_commands_are_not_part_of_the_command() {
        let decode = |bytes: &[u8]| FtpCodec::new().decode(&mut BytesMut::from(bytes)).unwrap().unwrap();
        // IP and Synch in band, and with the Synch's DM gone out of band.
        assert_eq!(decode(b"\xff\xf4\xff\xf2ABOR\r\n"), Command::Abor);
        assert_eq!(decode(b"\xff\xf4\xffABOR\r\n"), Command::Abor);
        // Any other 0xFF stays, and the line is refused: a lone one in a name, a doubled one, a negotiation.
        for line in [&b"DELE a\xffb\r\n"[..], b"DELE a\xff\xff\r\n", b"\xff\xfb\x01NOOP\r\n"] {
            assert!(matches!(decode(line), Command::Malformed(_)), "{line:?}");
            assert_eq!(without_telnet_commands(BytesMut::from(line)), line);
        }
    }

    #[test]
    fn no_reply_text_breaks_its_line() {
        let mut codec = FtpCodec::new();
        let mut buf = BytesMut::new();
        codec
            .encode(Reply::new_with_string(ReplyCode::FileStatus, "a\r\n226 forged".to_owned()), &mut buf)
            .unwrap();
        codec
            .encode(Reply::new_multiline(ReplyCode::FileStatus, vec!["x\ny", "z\r"]), &mut buf)
            .unwrap();
        assert_eq!(buf, "213 a??226 forged\r\n213-x?y\r\n213 z?\r\n".as_bytes());
    }
}
