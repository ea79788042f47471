//! HL7 v2 over MLLP, the Minimal Lower Layer Protocol every interface
//! engine listens on: each message framed as `<VT> message <FS><CR>`, and
//! the receiver's acknowledgement framed the same way on the same
//! connection.
//!
//! A message counts as delivered only when its ACK says `AA` (or `CA`) and
//! names the message's control ID. `AE` and `AR` are errors that carry the
//! receiver's reason; a connection refused, reset or silent is an error
//! too. Either way the message is sent again later with the same control
//! ID, so that a receiver that did get it can drop the copy.

use super::hl7::{Acknowledgement, Hl7Message, parse_acknowledgement};
use crate::spec::HostPort;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Start of a framed message (vertical tab).
pub const START: u8 = 0x0b;
/// End of a framed message (file separator, then carriage return).
pub const END: [u8; 2] = [0x1c, 0x0d];
/// The longest acknowledgement read: an ACK is a few hundred bytes.
const MAX_ACK_BYTES: usize = 64 * 1024;

/// Why an HL7 message was not delivered.
#[derive(Debug, thiserror::Error)]
pub enum Hl7Error {
    /// The receiver could not be reached, or the connection broke.
    #[error("HL7 receiver {peer}: {cause}")]
    Io {
        /// The receiver.
        peer: String,
        /// What failed.
        cause: std::io::Error,
    },
    /// The receiver answered something that is not an ACK of this message.
    #[error("HL7 receiver {peer}: {reason}")]
    BadAck {
        /// The receiver.
        peer: String,
        /// What is wrong with the answer.
        reason: String,
    },
    /// The receiver refused the message (`AE` or `AR`).
    #[error("HL7 receiver {peer} answered {code}: {reason}")]
    Refused {
        /// The receiver.
        peer: String,
        /// MSA-1.
        code: String,
        /// The receiver's reason.
        reason: String,
    },
}

/// Frames `message` for MLLP.
pub fn frame(message: &str) -> Vec<u8> {
    let mut framed = Vec::with_capacity(message.len() + 3);
    framed.push(START);
    framed.extend_from_slice(message.as_bytes());
    framed.extend_from_slice(&END);
    framed
}

/// Sends `message` to `peer` and waits (at most `timeout` for each step)
/// for its acknowledgement, which must accept it.
pub fn send(
    peer: &HostPort,
    message: &Hl7Message,
    timeout: Duration,
) -> Result<Acknowledgement, Hl7Error> {
    let io = |cause| Hl7Error::Io {
        peer: peer.to_string(),
        cause,
    };
    let address = std::net::ToSocketAddrs::to_socket_addrs(&(peer.host.as_str(), peer.port))
        .map_err(io)?
        .next()
        .ok_or_else(|| io(std::io::ErrorKind::NotFound.into()))?;
    let mut stream = TcpStream::connect_timeout(&address, timeout).map_err(io)?;
    stream.set_read_timeout(Some(timeout)).map_err(io)?;
    stream.set_write_timeout(Some(timeout)).map_err(io)?;
    stream.write_all(&frame(&message.text)).map_err(io)?;
    stream.flush().map_err(io)?;
    let answer = read_frame(&mut std::io::BufReader::new(&stream)).map_err(io)?;
    let bad = |reason: String| Hl7Error::BadAck {
        peer: peer.to_string(),
        reason,
    };
    let text = String::from_utf8_lossy(&answer);
    let ack = parse_acknowledgement(&text).ok_or_else(|| bad("an answer without MSA".into()))?;
    if ack.control_id != message.control_id {
        return Err(bad(format!(
            "an ACK of message {} where {} was sent",
            ack.control_id, message.control_id
        )));
    }
    if !ack.accepted() {
        return Err(Hl7Error::Refused {
            peer: peer.to_string(),
            code: ack.code,
            reason: if ack.reason.is_empty() {
                "no reason given".into()
            } else {
                ack.reason
            },
        });
    }
    Ok(ack)
}

/// Reads one MLLP frame's content (bounded).
pub fn read_frame(stream: &mut impl Read) -> std::io::Result<Vec<u8>> {
    let mut data = Vec::new();
    let mut byte = [0u8; 1];
    let mut started = false;
    loop {
        if stream.read(&mut byte)? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the connection closed before the end of the frame",
            ));
        }
        match byte[0] {
            START if !started => started = true,
            _ if !started => {}
            b => data.push(b),
        }
        if data.ends_with(&END) {
            data.truncate(data.len() - END.len());
            return Ok(data);
        }
        if data.len() > MAX_ACK_BYTES {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("an answer longer than {MAX_ACK_BYTES} bytes"),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_reads_back_and_a_runaway_answer_is_cut() {
        let framed = frame("MSA|AA|1\r");
        let mut with_noise = b"junk".to_vec();
        with_noise.extend(&framed);
        assert_eq!(read_frame(&mut &with_noise[..]).unwrap(), b"MSA|AA|1\r");
        let mut endless = vec![START];
        endless.extend(vec![b'x'; MAX_ACK_BYTES + 10]);
        assert!(read_frame(&mut &endless[..]).is_err());
        assert!(read_frame(&mut &framed[..3]).is_err(), "cut short");
    }
}
