//! The small text formats that sources, displays, grabber options, the
//! phantom, board profiles and the command line share: a name from a fixed
//! list ([`Named`]), a `key=value,key=value` option list ([`options`]) and
//! a `WxH` size ([`size`]).
//!
//! Each parser fails with a [`SpecError`] that repeats what was written and
//! says what would have been accepted, so that a typo at the bedside or in
//! a profile is fixed from the message alone.

use std::str::FromStr;

/// Why a piece of text is not what it had to be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// A name that is not in its list.
    #[error("unknown {what} '{found}' (use {choices})")]
    UnknownName {
        /// What the name names, e.g. `precision`.
        what: &'static str,
        /// The name written.
        found: String,
        /// The names accepted, e.g. `f32, q8 or int8`.
        choices: String,
    },
    /// An option that is not `key=value`.
    #[error("{what} option '{found}' is not key=value")]
    NotKeyValue {
        /// Whose option, e.g. `phantom`.
        what: &'static str,
        /// The option written.
        found: String,
    },
    /// An option key that is not one of its list.
    #[error("unknown {what} option '{key}' (use {choices})")]
    UnknownOption {
        /// Whose option.
        what: &'static str,
        /// The key written.
        key: String,
        /// The keys accepted.
        choices: String,
    },
    /// An option's value that does not follow its rule.
    #[error("{what} {key} '{value}': {rule}")]
    BadValue {
        /// Whose option.
        what: &'static str,
        /// The key.
        key: String,
        /// The value written.
        value: String,
        /// What the value must be.
        rule: String,
    },
    /// Text that is not a size `WxH`.
    #[error("'{0}' is not a size WxH")]
    NotASize(String),
    /// A size outside the sides Pleura takes.
    #[error(transparent)]
    Size(#[from] crate::frame::SizeError),
    /// Text that is not a DICOM AE title.
    #[error(
        "'{0}' is not a DICOM AE title (1 to 16 characters: letters, digits, spaces and \
         punctuation but '\\')"
    )]
    NotAnAeTitle(String),
    /// Text that is not `HOST:PORT`.
    #[error("'{0}' is not HOST:PORT (a host and a port 1 to 65535)")]
    NotAHostPort(String),
    /// Text that is not `AE@HOST:PORT`.
    #[error("'{0}' is not a DICOM peer AE@HOST:PORT (an AE title, a host and a port 1 to 65535)")]
    NotAnAeAddress(String),
}

/// A network peer: host and port (`HOST:PORT`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    /// Its host name or address.
    pub host: String,
    /// Its port.
    pub port: u16,
}

impl std::fmt::Display for HostPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl std::str::FromStr for HostPort {
    type Err = SpecError;

    fn from_str(text: &str) -> Result<Self, SpecError> {
        host_port(text).ok_or_else(|| SpecError::NotAHostPort(text.to_string()))
    }
}

/// `HOST:PORT` (an IPv6 host in brackets), port 1 to 65535.
fn host_port(text: &str) -> Option<HostPort> {
    let (host, port) = text.rsplit_once(':')?;
    let port: u16 = port.parse().ok().filter(|p| *p > 0)?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    (!host.is_empty() && !host.contains(char::is_whitespace)).then(|| HostPort {
        host: host.to_string(),
        port,
    })
}

/// A DICOM peer: its AE title, host and port (`AE@HOST:PORT`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AeAddress {
    /// The peer's AE title.
    pub ae_title: String,
    /// Its host name or address.
    pub host: String,
    /// Its port.
    pub port: u16,
}

impl std::fmt::Display for AeAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}:{}", self.ae_title, self.host, self.port)
    }
}

impl std::str::FromStr for AeAddress {
    type Err = SpecError;

    fn from_str(text: &str) -> Result<Self, SpecError> {
        let bad = || SpecError::NotAnAeAddress(text.to_string());
        let (ae, address) = text.rsplit_once('@').ok_or_else(bad)?;
        let HostPort { host, port } = host_port(address).ok_or_else(bad)?;
        Ok(Self {
            ae_title: ae_title(ae).map_err(|_| bad())?,
            host,
            port,
        })
    }
}

/// An enum whose values are written by name on the command line and in
/// board profiles.
pub trait Named: Sized + Copy + PartialEq + 'static {
    /// What the names name, in messages (e.g. `precision`).
    const WHAT: &'static str;
    /// Every name with its value. A value's first name is its own; later
    /// ones are accepted aliases and are not offered in messages.
    const NAMES: &'static [(&'static str, Self)];

    /// The value named `text`.
    fn from_name(text: &str) -> Result<Self, SpecError> {
        Self::NAMES
            .iter()
            .find(|(name, _)| *name == text)
            .map(|&(_, value)| value)
            .ok_or_else(|| SpecError::UnknownName {
                what: Self::WHAT,
                found: text.to_string(),
                choices: Self::choices(),
            })
    }

    /// The names offered in messages: `a, b or c`.
    fn choices() -> String {
        let own: Vec<&str> = Self::NAMES
            .iter()
            .enumerate()
            .filter(|&(i, (_, value))| !Self::NAMES[..i].iter().any(|(_, v)| v == value))
            .map(|(_, (name, _))| *name)
            .collect();
        one_of(&own)
    }
}

/// `a, b or c`.
pub(crate) fn one_of(names: &[&str]) -> String {
    match names {
        [] => String::new(),
        [only] => only.to_string(),
        [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
    }
}

/// The options of `what` (e.g. `phantom`) written as `key=value,…`, in
/// order; empty parts are skipped. Each key must be one of `keys`.
pub fn options<'a>(
    what: &'static str,
    text: &'a str,
    keys: &'static [&'static str],
) -> impl Iterator<Item = Result<KeyValue<'a>, SpecError>> + 'a {
    text.split(',')
        .filter(|part| !part.is_empty())
        .map(move |part| {
            let (key, value) = part.split_once('=').ok_or_else(|| SpecError::NotKeyValue {
                what,
                found: part.to_string(),
            })?;
            if !keys.contains(&key) {
                return Err(SpecError::UnknownOption {
                    what,
                    key: key.to_string(),
                    choices: one_of(keys),
                });
            }
            Ok(KeyValue { what, key, value })
        })
}

/// One `key=value` option of a list ([`options`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyValue<'a> {
    what: &'static str,
    /// The key.
    pub key: &'a str,
    /// The value, as written.
    pub value: &'a str,
}

impl KeyValue<'_> {
    /// The value parsed as `T`; `rule` says what it must be when it is not.
    pub fn parse<T: FromStr>(&self, rule: &str) -> Result<T, SpecError> {
        self.value.parse().map_err(|_| self.bad(rule))
    }

    /// The value as a size `WxH` ([`size`]).
    pub fn size(&self) -> Result<(usize, usize), SpecError> {
        size(self.value).map_err(|e| self.bad(&e.to_string()))
    }

    /// The value as a name of `T`'s list.
    pub fn name<T: Named>(&self) -> Result<T, SpecError> {
        T::from_name(self.value).map_err(|_| self.bad(&format!("use {}", T::choices())))
    }

    /// The error for this option's value, with the rule it breaks.
    pub fn bad(&self, rule: &str) -> SpecError {
        SpecError::BadValue {
            what: self.what,
            key: self.key.to_string(),
            value: self.value.to_string(),
            rule: rule.to_string(),
        }
    }
}

/// Parses `WxH` and checks it against the sides of every picture Pleura
/// reads ([`crate::frame::SIDES`]).
pub fn size(text: &str) -> Result<(usize, usize), SpecError> {
    let bad = || SpecError::NotASize(text.to_string());
    let (w, h) = text.split_once('x').ok_or_else(bad)?;
    let (w, h) = (w.parse().map_err(|_| bad())?, h.parse().map_err(|_| bad())?);
    Ok(crate::frame::check_size(w, h)?)
}

/// A DICOM application entity title: 1 to 16 printable ASCII characters,
/// not all spaces, without a backslash (PS3.5 6.2, VR AE). Leading and
/// trailing spaces are not significant and are dropped.
pub fn ae_title(text: &str) -> Result<String, SpecError> {
    let title = text.trim_matches(' ');
    let printable = title
        .bytes()
        .all(|b| (b' '..=b'~').contains(&b) && b != b'\\');
    if title.is_empty() || title.len() > 16 || !printable {
        return Err(SpecError::NotAnAeTitle(text.to_string()));
    }
    Ok(title.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dicom_peer_is_ae_at_host_colon_port() {
        let peer: AeAddress = "ORTHANC@127.0.0.1:4242".parse().unwrap();
        assert_eq!(
            (peer.ae_title.as_str(), peer.host.as_str(), peer.port),
            ("ORTHANC", "127.0.0.1", 4242)
        );
        assert_eq!(peer.to_string(), "ORTHANC@127.0.0.1:4242");
        assert_eq!("PACS@[::1]:104".parse::<AeAddress>().unwrap().host, "::1");
        for bad in [
            "ORTHANC",
            "@host:1",
            "A@host",
            "A@host:0",
            "A@:104",
            "A@host:99999",
        ] {
            let message = bad.parse::<AeAddress>().unwrap_err().to_string();
            assert!(message.contains("AE@HOST:PORT"), "{message}");
        }
    }

    #[test]
    fn a_peer_is_host_colon_port() {
        let peer: HostPort = "engine.local:2575".parse().unwrap();
        assert_eq!((peer.host.as_str(), peer.port), ("engine.local", 2575));
        assert_eq!(
            "[::1]:2575".parse::<HostPort>().unwrap().to_string(),
            "[::1]:2575"
        );
        for bad in ["engine", ":2575", "engine:0", "engine:x"] {
            assert!(
                bad.parse::<HostPort>()
                    .unwrap_err()
                    .to_string()
                    .contains("HOST:PORT")
            );
        }
    }

    #[test]
    fn ae_titles_follow_dicom() {
        assert_eq!(ae_title("PLEURA ").unwrap(), "PLEURA");
        assert_eq!(ae_title("ICU-US 3").unwrap(), "ICU-US 3");
        for bad in ["", "   ", "A_TITLE_LONGER_THAN_16", "BACK\\SLASH", "ÉCHO"] {
            let message = ae_title(bad).unwrap_err().to_string();
            assert!(message.contains("not a DICOM AE title"), "{message}");
        }
    }

    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Fruit {
        Apple,
        Pear,
    }

    impl Named for Fruit {
        const WHAT: &'static str = "fruit";
        const NAMES: &'static [(&'static str, Self)] = &[
            ("apple", Fruit::Apple),
            ("pear", Fruit::Pear),
            ("poire", Fruit::Pear),
        ];
    }

    #[test]
    fn a_name_or_an_alias_gives_its_value_and_a_typo_lists_the_own_names() {
        assert_eq!(Fruit::from_name("poire"), Ok(Fruit::Pear));
        assert_eq!(
            Fruit::from_name("aple").unwrap_err().to_string(),
            "unknown fruit 'aple' (use apple or pear)"
        );
    }

    #[test]
    fn options_are_split_checked_and_parsed_with_their_rules() {
        let parsed: Vec<_> = options("tray", "fruit=pear,,count=3", &["fruit", "count"])
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(parsed[0].name::<Fruit>(), Ok(Fruit::Pear));
        assert_eq!(parsed[1].parse::<u8>("a number"), Ok(3));
        let error = |text| {
            options("tray", text, &["fruit", "count"])
                .find_map(Result::err)
                .unwrap()
                .to_string()
        };
        assert_eq!(error("fruit"), "tray option 'fruit' is not key=value");
        assert_eq!(
            error("colour=red"),
            "unknown tray option 'colour' (use fruit or count)"
        );
        let bad = options("tray", "fruit=fig", &["fruit"]).next().unwrap();
        assert_eq!(
            bad.unwrap().name::<Fruit>().unwrap_err().to_string(),
            "tray fruit 'fig': use apple or pear"
        );
    }

    #[test]
    fn sizes_parse_within_the_picture_sides() {
        assert_eq!(size("800x480"), Ok((800, 480)));
        assert_eq!(size("16x4096"), Ok((16, 4096)));
        for bad in ["800", "800x", "x480", "800X480", "-1x480", "800x480x3"] {
            assert!(size(bad).unwrap_err().to_string().contains("WxH"), "{bad}");
        }
        for bad in ["8x480", "800x5000"] {
            assert!(
                size(bad).unwrap_err().to_string().contains("16 to 4096"),
                "{bad}"
            );
        }
    }
}
