//! The clinician's input: keys, buttons and taps, as [`Input`]s on a
//! channel that the display drains between frames.
//!
//! * [`spawn_stdin_keys`] reads keys from standard input (one byte per
//!   key; a terminal delivers them when Enter is pressed).
//! * [`spawn_evdev`] reads a Linux input device (`/dev/input/eventN`):
//!   `gpio-keys` buttons, a USB keypad or a touchscreen. [`EvdevDecoder`]
//!   turns its raw events into inputs.
//!
//! A [`KeyMap`] binds keys to exam [`Command`]s; the default suits a
//! keyboard or a keypad, and board profiles may bind their own buttons.
//! A tap is passed on as a position; the display knows what is drawn there.

use crate::exam::Command;
use crossbeam_channel::Sender;
use std::io::Read;
use std::path::{Path, PathBuf};

/// One thing the clinician did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Input {
    /// A key or button bound to a command.
    Command(Command),
    /// A tap on the touchscreen, as fractions (0–1) of its width and height.
    Tap {
        /// From the left edge.
        x: f32,
        /// From the top edge.
        y: f32,
    },
}

/// Which key does what: characters from a terminal, key codes
/// (`<linux/input-event-codes.h>`) from input devices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyMap {
    characters: Vec<(u8, Command)>,
    codes: Vec<(u16, Command)>,
}

/// Linux key codes of the default map.
mod code {
    pub(super) const KEY_ENTER: u16 = 28;
    pub(super) const KEY_SPACE: u16 = 57;
    pub(super) const KEY_S: u16 = 31;
    pub(super) const KEY_R: u16 = 19;
    pub(super) const KEY_F: u16 = 33;
    pub(super) const KEY_N: u16 = 49;
    pub(super) const KEY_P: u16 = 25;
    pub(super) const KEY_D: u16 = 32;
    pub(super) const KEY_X: u16 = 45;
    pub(super) const KEY_UP: u16 = 103;
    pub(super) const KEY_LEFT: u16 = 105;
    pub(super) const KEY_RIGHT: u16 = 106;
    pub(super) const KEY_DOWN: u16 = 108;
    pub(super) const KEY_PAUSE: u16 = 119;
    pub(super) const KEY_RECORD: u16 = 167;
    pub(super) const KEY_NEXT: u16 = 407;
    pub(super) const KEY_PREVIOUS: u16 = 412;
    pub(super) const BTN_TOUCH: u16 = 0x14a;
    /// The highest key code (`KEY_MAX`); 0 is `KEY_RESERVED`, never sent.
    pub(super) const KEY_MAX: u16 = 0x2ff;
}

impl Default for KeyMap {
    /// Keyboard: `s` start, `r` or space record, `f` freeze, `n` next zone,
    /// `p` previous zone, `d` redo the zone, `x` finish. Buttons: Enter or
    /// Record record, Pause freezes, Right/Down/Next and Left/Up/Previous
    /// step through the zones.
    fn default() -> Self {
        use Command::*;
        use code::*;
        Self {
            characters: vec![
                (b's', Start),
                (b'r', Record),
                (b' ', Record),
                (b'f', ToggleFreeze),
                (b'n', NextZone),
                (b'p', PreviousZone),
                (b'd', Redo),
                (b'x', Finish),
            ],
            codes: vec![
                (KEY_S, Start),
                (KEY_R, Record),
                (KEY_SPACE, Record),
                (KEY_ENTER, Record),
                (KEY_RECORD, Record),
                (KEY_F, ToggleFreeze),
                (KEY_PAUSE, ToggleFreeze),
                (KEY_N, NextZone),
                (KEY_RIGHT, NextZone),
                (KEY_DOWN, NextZone),
                (KEY_NEXT, NextZone),
                (KEY_P, PreviousZone),
                (KEY_LEFT, PreviousZone),
                (KEY_UP, PreviousZone),
                (KEY_PREVIOUS, PreviousZone),
                (KEY_D, Redo),
                (KEY_X, Finish),
            ],
        }
    }
}

/// Why a key binding cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyMapError {
    /// A command name that is not one of the exam commands.
    #[error("unknown command '{0}' (use start, record, freeze, next, previous, redo, finish)")]
    Command(String),
    /// A key that is neither one character, a known `KEY_…` name nor a code.
    #[error("unknown key '{0}' (use one character, a KEY_… name or a key code)")]
    Key(String),
    /// A number that is not a Linux key code.
    #[error("key code {0} is not a Linux key code (1 to {max})", max = code::KEY_MAX)]
    Code(String),
    /// A key bound to two commands: which one it does would be a guess.
    #[error("key '{key}' is bound to both {first} and {second}")]
    Twice {
        /// The key as written.
        key: String,
        /// The command it was bound to first.
        first: String,
        /// The other command.
        second: String,
    },
}

impl KeyMap {
    /// A key map from bindings as a board profile writes them: each
    /// command name with its keys, a key being one character (`"r"`, `" "`),
    /// a Linux key name (`"KEY_ENTER"`) or a key code (`"28"`).
    pub fn from_bindings<'a>(
        bindings: impl IntoIterator<Item = (&'a str, &'a [String])>,
    ) -> Result<Self, KeyMapError> {
        let mut map = KeyMap {
            characters: Vec::new(),
            codes: Vec::new(),
        };
        // Each key as bound, to refuse one bound to two commands.
        let mut bound: Vec<(&str, &str, Command)> = Vec::new();
        for (name, keys) in bindings {
            let command = match name {
                "start" => Command::Start,
                "record" => Command::Record,
                "freeze" => Command::ToggleFreeze,
                "next" => Command::NextZone,
                "previous" => Command::PreviousZone,
                "redo" => Command::Redo,
                "finish" => Command::Finish,
                other => return Err(KeyMapError::Command(other.to_string())),
            };
            for key in keys {
                let twice = match (key.as_bytes(), key_code(key)?) {
                    (_, Some(code)) => {
                        let twice = map.command_for_code(code);
                        map.codes.push((code, command));
                        twice
                    }
                    ([c], None) => {
                        let twice = map.command(*c);
                        map.characters.push((c.to_ascii_lowercase(), command));
                        twice
                    }
                    _ => return Err(KeyMapError::Key(key.clone())),
                };
                if let Some(first) = twice.filter(|&c| c != command) {
                    let first = bound
                        .iter()
                        .find(|(_, _, c)| *c == first)
                        .map_or("another command", |(name, _, _)| name);
                    return Err(KeyMapError::Twice {
                        key: key.clone(),
                        first: first.to_string(),
                        second: name.to_string(),
                    });
                }
                bound.push((name, key, command));
            }
        }
        Ok(map)
    }

    /// Checks one key as a binding writes it (one character, a `KEY_…`
    /// name or a key code up to `KEY_MAX`).
    pub fn check_key(key: &str) -> Result<(), KeyMapError> {
        match (key.len(), key_code(key)?) {
            (_, Some(_)) | (1, None) => Ok(()),
            _ => Err(KeyMapError::Key(key.to_string())),
        }
    }

    /// The command bound to a character, if any (letters in either case).
    pub fn command(&self, key: u8) -> Option<Command> {
        let key = key.to_ascii_lowercase();
        self.characters
            .iter()
            .find(|(k, _)| *k == key)
            .map(|&(_, c)| c)
    }

    /// The command bound to a Linux key code, if any.
    pub fn command_for_code(&self, code: u16) -> Option<Command> {
        self.codes.iter().find(|(k, _)| *k == code).map(|&(_, c)| c)
    }
}

/// The code of a `KEY_…` name or of a number (more than one character);
/// `None` for anything else (one character), an error for a number that is
/// no key code.
fn key_code(key: &str) -> Result<Option<u16>, KeyMapError> {
    use code::*;
    const NAMES: [(&str, u16); 17] = [
        ("KEY_ENTER", KEY_ENTER),
        ("KEY_SPACE", KEY_SPACE),
        ("KEY_S", KEY_S),
        ("KEY_R", KEY_R),
        ("KEY_F", KEY_F),
        ("KEY_N", KEY_N),
        ("KEY_P", KEY_P),
        ("KEY_D", KEY_D),
        ("KEY_X", KEY_X),
        ("KEY_UP", KEY_UP),
        ("KEY_LEFT", KEY_LEFT),
        ("KEY_RIGHT", KEY_RIGHT),
        ("KEY_DOWN", KEY_DOWN),
        ("KEY_PAUSE", KEY_PAUSE),
        ("KEY_RECORD", KEY_RECORD),
        ("KEY_NEXT", KEY_NEXT),
        ("KEY_PREVIOUS", KEY_PREVIOUS),
    ];
    if let Some(&(_, code)) = NAMES.iter().find(|(name, _)| *name == key) {
        return Ok(Some(code));
    }
    if key.len() < 2 || !key.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    match key.parse::<u16>() {
        Ok(code) if (1..=KEY_MAX).contains(&code) => Ok(Some(code)),
        _ => Err(KeyMapError::Code(key.to_string())),
    }
}

/// Event types and axes of `<linux/input-event-codes.h>`.
const EV_SYN: u16 = 0;
const EV_KEY: u16 = 1;
const EV_ABS: u16 = 3;
const ABS_X: u16 = 0;
const ABS_Y: u16 = 1;
const ABS_MT_POSITION_X: u16 = 0x35;
const ABS_MT_POSITION_Y: u16 = 0x36;

/// The range of a touchscreen axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AxisRange {
    /// Smallest value.
    pub min: i32,
    /// Largest value.
    pub max: i32,
}

impl AxisRange {
    fn fraction(self, value: i32) -> f32 {
        let span = (self.max - self.min).max(1) as f32;
        ((value - self.min) as f32 / span).clamp(0.0, 1.0)
    }
}

/// Turns raw input events into [`Input`]s: key presses through the key map
/// (auto-repeat ignored), and a touch into a tap where the finger lifts.
#[derive(Debug, Clone)]
pub struct EvdevDecoder {
    map: KeyMap,
    x_range: Option<AxisRange>,
    y_range: Option<AxisRange>,
    position: (Option<i32>, Option<i32>),
}

impl EvdevDecoder {
    /// A decoder; the ranges come from the device (none for buttons).
    pub fn new(map: KeyMap, x_range: Option<AxisRange>, y_range: Option<AxisRange>) -> Self {
        Self {
            map,
            x_range,
            y_range,
            position: (None, None),
        }
    }

    /// Decodes one event (`type`, `code`, `value` as the kernel sends it).
    pub fn event(&mut self, kind: u16, code: u16, value: i32) -> Option<Input> {
        match (kind, code) {
            (EV_ABS, ABS_X | ABS_MT_POSITION_X) => {
                self.position.0 = Some(value);
                None
            }
            (EV_ABS, ABS_Y | ABS_MT_POSITION_Y) => {
                self.position.1 = Some(value);
                None
            }
            (EV_KEY, code::BTN_TOUCH) if value == 0 => {
                let (x, y) = self.position;
                Some(Input::Tap {
                    x: self.x_range?.fraction(x?),
                    y: self.y_range?.fraction(y?),
                })
            }
            // 1 = pressed (0 released, 2 auto-repeat).
            (EV_KEY, code) if value == 1 => self.map.command_for_code(code).map(Input::Command),
            (EV_SYN, _) => None, // the end of one report
            _ => None,
        }
    }
}

/// Reads an input device on a thread of its own, until it fails (an
/// unplugged keypad is logged, not fatal) or nobody listens.
pub fn spawn_evdev(path: &Path, map: KeyMap, inputs: Sender<Input>) -> std::io::Result<()> {
    let mut device = evdev::Device::open(path)?;
    let mut ranges = (None, None);
    if let Ok(axes) = device.get_absinfo() {
        for (axis, info) in axes {
            let range = Some(AxisRange {
                min: info.minimum(),
                max: info.maximum(),
            });
            match axis.0 {
                ABS_X | ABS_MT_POSITION_X => ranges.0 = range,
                ABS_Y | ABS_MT_POSITION_Y => ranges.1 = range,
                _ => {}
            }
        }
    }
    let mut decoder = EvdevDecoder::new(map, ranges.0, ranges.1);
    let path: PathBuf = path.to_path_buf();
    std::thread::Builder::new()
        .name("evdev".into())
        .spawn(move || {
            loop {
                let events = match device.fetch_events() {
                    Ok(events) => events,
                    Err(e) => {
                        log::warn!("input {}: {e}; no more input from it", path.display());
                        return;
                    }
                };
                for event in events {
                    if let Some(input) =
                        decoder.event(event.event_type().0, event.code(), event.value())
                        && inputs.send(input).is_err()
                    {
                        return;
                    }
                }
            }
        })?;
    Ok(())
}

/// Reads keys from standard input on a thread of its own until the input
/// ends or nobody listens any more.
pub fn spawn_stdin_keys(map: KeyMap, inputs: Sender<Input>) {
    let spawned = std::thread::Builder::new()
        .name("keys".into())
        .spawn(move || {
            let mut byte = [0u8; 1];
            let mut stdin = std::io::stdin().lock();
            while let Ok(1) = stdin.read(&mut byte) {
                if let Some(command) = map.command(byte[0])
                    && inputs.send(Input::Command(command)).is_err()
                {
                    break;
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

    #[test]
    fn a_button_press_is_a_command_and_its_repeat_and_release_are_not() {
        let mut decoder = EvdevDecoder::new(KeyMap::default(), None, None);
        assert_eq!(
            decoder.event(EV_KEY, code::KEY_RECORD, 1),
            Some(Input::Command(Command::Record))
        );
        assert_eq!(decoder.event(EV_KEY, code::KEY_RECORD, 2), None);
        assert_eq!(decoder.event(EV_KEY, code::KEY_RECORD, 0), None);
        assert_eq!(
            decoder.event(EV_KEY, code::KEY_NEXT, 1),
            Some(Input::Command(Command::NextZone))
        );
        assert_eq!(
            decoder.event(EV_KEY, 240, 1),
            None,
            "unbound keys do nothing"
        );
    }

    #[test]
    fn a_touch_becomes_a_tap_where_the_finger_lifts() {
        let range = Some(AxisRange { min: 0, max: 4000 });
        let mut decoder = EvdevDecoder::new(KeyMap::default(), range, range);
        assert_eq!(decoder.event(EV_KEY, code::BTN_TOUCH, 1), None);
        assert_eq!(decoder.event(EV_ABS, ABS_MT_POSITION_X, 1000), None);
        assert_eq!(decoder.event(EV_ABS, ABS_MT_POSITION_Y, 3000), None);
        assert_eq!(decoder.event(EV_SYN, 0, 0), None);
        assert_eq!(decoder.event(EV_ABS, ABS_MT_POSITION_X, 2000), None);
        assert_eq!(
            decoder.event(EV_KEY, code::BTN_TOUCH, 0),
            Some(Input::Tap { x: 0.5, y: 0.75 })
        );
    }

    #[test]
    fn a_board_profile_binds_its_own_buttons() {
        let record = ["KEY_ENTER".to_string(), "256".to_string(), "R".to_string()];
        let next = ["KEY_NEXT".to_string()];
        let map = KeyMap::from_bindings([("record", &record[..]), ("next", &next[..])]).unwrap();
        assert_eq!(map.command_for_code(28), Some(Command::Record));
        assert_eq!(
            map.command_for_code(256),
            Some(Command::Record),
            "BTN_0 by its code"
        );
        assert_eq!(map.command(b'r'), Some(Command::Record));
        assert_eq!(map.command_for_code(407), Some(Command::NextZone));
        assert_eq!(map.command(b's'), None, "only what the profile binds");
        let bad_key = ["KEY_BOGUS".to_string()];
        let err = KeyMap::from_bindings([("record", &bad_key[..])]).unwrap_err();
        assert!(err.to_string().contains("KEY_BOGUS"), "{err}");
        let err = KeyMap::from_bindings([("launch", &record[..])]).unwrap_err();
        assert!(err.to_string().contains("launch"), "{err}");
    }

    #[test]
    fn a_number_past_key_max_or_a_key_bound_twice_is_refused() {
        for code in ["00", "768", "60000", "99999"] {
            let keys = [code.to_string()];
            let err = KeyMap::from_bindings([("record", &keys[..])]).unwrap_err();
            let err = err.to_string();
            assert!(err.contains(code) && err.contains("1 to 767"), "{err}");
        }
        assert!(KeyMap::from_bindings([("record", &["767".to_string()][..])]).is_ok());
        let enter = ["KEY_ENTER".to_string()];
        let also_enter = ["28".to_string()];
        let err = KeyMap::from_bindings([("record", &enter[..]), ("next", &also_enter[..])])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("'28'") && err.contains("record") && err.contains("next"),
            "{err}"
        );
        let (r, upper_r) = (["r".to_string()], ["R".to_string()]);
        let err = KeyMap::from_bindings([("record", &r[..]), ("redo", &upper_r[..])]).unwrap_err();
        assert!(err.to_string().contains("'R'"), "{err}");
        // The same key twice for one command is harmless.
        let twice = ["KEY_ENTER".to_string(), "28".to_string()];
        assert!(KeyMap::from_bindings([("record", &twice[..])]).is_ok());
    }

    #[test]
    fn a_touch_without_known_axes_is_ignored() {
        let mut decoder = EvdevDecoder::new(KeyMap::default(), None, None);
        decoder.event(EV_ABS, ABS_X, 10);
        decoder.event(EV_ABS, ABS_Y, 10);
        assert_eq!(decoder.event(EV_KEY, code::BTN_TOUCH, 0), None);
    }
}
