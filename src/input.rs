//! The clinician's input: keys mapped to exam [`Command`]s.
//!
//! A [`KeyMap`] binds single keys to commands; the default suits a
//! keyboard or a keypad, and board profiles may bind their own buttons.
//! [`spawn_stdin_keys`] reads keys from standard input (one byte per key;
//! a terminal delivers them when Enter is pressed) and sends the commands
//! on a channel that the display drains between frames.

use crate::exam::Command;
use crossbeam_channel::Sender;
use std::io::Read;

/// Which key does what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyMap {
    bindings: Vec<(u8, Command)>,
}

impl Default for KeyMap {
    /// `s` start, `r` or space record, `f` freeze, `n` next zone, `p`
    /// previous zone, `d` redo the zone, `x` finish.
    fn default() -> Self {
        Self {
            bindings: vec![
                (b's', Command::Start),
                (b'r', Command::Record),
                (b' ', Command::Record),
                (b'f', Command::ToggleFreeze),
                (b'n', Command::NextZone),
                (b'p', Command::PreviousZone),
                (b'd', Command::Redo),
                (b'x', Command::Finish),
            ],
        }
    }
}

impl KeyMap {
    /// The command bound to `key`, if any (letters in either case).
    pub fn command(&self, key: u8) -> Option<Command> {
        let key = key.to_ascii_lowercase();
        self.bindings
            .iter()
            .find(|(k, _)| *k == key)
            .map(|&(_, c)| c)
    }
}

/// Reads keys from standard input on a thread of its own until the input
/// ends or nobody listens any more.
pub fn spawn_stdin_keys(map: KeyMap, commands: Sender<Command>) {
    let spawned = std::thread::Builder::new()
        .name("keys".into())
        .spawn(move || {
            let mut byte = [0u8; 1];
            let mut stdin = std::io::stdin().lock();
            while let Ok(1) = stdin.read(&mut byte) {
                if let Some(command) = map.command(byte[0]) {
                    if commands.send(command).is_err() {
                        break;
                    }
                }
            }
        });
    if let Err(e) = spawned {
        log::warn!("keyboard input unavailable: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_keys_cover_the_exam_workflow() {
        let map = KeyMap::default();
        assert_eq!(map.command(b'S'), Some(Command::Start));
        assert_eq!(map.command(b' '), Some(Command::Record));
        assert_eq!(map.command(b'x'), Some(Command::Finish));
        assert_eq!(map.command(b'\n'), None);
    }
}
