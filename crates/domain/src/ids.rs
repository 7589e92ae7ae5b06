//! Identifiers of aggregates: 125 random bits written as 25 lowercase Crockford base32 characters
//! (`0-9a-z` without `i l o u`). The randomness comes from the caller; the domain only encodes.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::ValueError;

const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// Number of characters of a full id.
pub const ID_LEN: usize = 25;
/// Number of characters shown where an id is abbreviated.
pub const SHORT_LEN: usize = 8;

fn encode(bits: u128) -> String {
    // Bytes first, then one string: ids are written for every row a store saves, and collecting
    // characters one by one showed in its profile.
    let mut out = [0u8; ID_LEN];
    for (i, b) in out.iter_mut().enumerate() {
        let shift = 5 * (ID_LEN - 1 - i);
        *b = ALPHABET[((bits >> shift) & 31) as usize];
    }
    // Every byte comes from the ASCII alphabet, so this is always valid UTF-8.
    String::from_utf8(out.to_vec()).unwrap_or_default()
}

/// Each ASCII character's value in the alphabet (`NOT_A_DIGIT` for the others): ids are parsed
/// for every row a store reads, so a lookup beats a search of the alphabet.
const DIGITS: [u8; 128] = {
    let mut table = [NOT_A_DIGIT; 128];
    let mut i = 0;
    while i < ALPHABET.len() {
        table[ALPHABET[i] as usize] = i as u8;
        i += 1;
    }
    table
};
const NOT_A_DIGIT: u8 = u8::MAX;

fn digit(c: char) -> Option<u128> {
    match DIGITS.get(c as usize) {
        Some(&d) if d != NOT_A_DIGIT => Some(u128::from(d)),
        _ => None,
    }
}

/// Checks that `raw` is a prefix of some id: 1–25 characters of the id alphabet.
pub fn check_prefix(what: &'static str, raw: &str) -> Result<String, ValueError> {
    let lower = raw.to_ascii_lowercase();
    if lower.is_empty() || lower.len() > ID_LEN {
        return Err(ValueError::new(
            what,
            raw,
            format!("an id is 1 to {ID_LEN} characters; give the id or a unique prefix of it"),
        ));
    }
    if let Some(bad) = lower.chars().find(|c| digit(*c).is_none()) {
        return Err(ValueError::new(
            what,
            raw,
            format!("{bad:?} never appears in an id (ids use 0-9 and a-z without i, l, o, u)"),
        ));
    }
    Ok(lower)
}

macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident, $what:literal) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(u128);

        impl $name {
            /// Builds the id from random bits (only the low 125 bits are used).
            pub const fn from_bits(bits: u128) -> Self {
                Self(bits & ((1u128 << 125) - 1))
            }

            /// The id's bits.
            pub const fn bits(self) -> u128 {
                self.0
            }

            /// Parses a full 25-character id (case-insensitive).
            pub fn parse(raw: &str) -> Result<Self, ValueError> {
                let s = check_prefix($what, raw)?;
                if s.len() != ID_LEN {
                    return Err(ValueError::new(
                        $what,
                        raw,
                        format!("a full id has {ID_LEN} characters"),
                    ));
                }
                let mut bits = 0u128;
                for c in s.chars() {
                    bits = (bits << 5) | digit(c).unwrap_or(0);
                }
                Ok(Self(bits))
            }

            /// The first eight characters, as shown in tables.
            pub fn short(self) -> String {
                let mut s = encode(self.0);
                s.truncate(SHORT_LEN);
                s
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&encode(self.0))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), encode(self.0))
            }
        }

        impl FromStr for $name {
            type Err = ValueError;
            fn from_str(s: &str) -> Result<Self, ValueError> {
                Self::parse(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = ValueError;
            fn try_from(s: String) -> Result<Self, ValueError> {
                Self::parse(&s)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.to_string()
            }
        }
    };
}

id_type!(
    /// Identifies a task.
    TaskId, "task id"
);
id_type!(
    /// Identifies an agent registration (agents are addressed by name; the id names one lifetime
    /// of that name in the event log).
    AgentId, "agent id"
);
id_type!(
    /// Identifies an orchestration.
    OrchestrationId, "orchestration id"
);
id_type!(
    /// Identifies a memory entry.
    MemoryId, "memory id"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_abbreviate() {
        for bits in [
            0u128,
            1,
            31,
            32,
            u128::MAX,
            0x0123_4567_89ab_cdef_0123_4567_89ab_cdef,
        ] {
            let id = TaskId::from_bits(bits);
            let text = id.to_string();
            assert_eq!(text.len(), ID_LEN);
            assert_eq!(TaskId::parse(&text).unwrap(), id);
            assert_eq!(TaskId::parse(&text.to_uppercase()).unwrap(), id);
            assert!(text.starts_with(&id.short()));
        }
    }

    #[test]
    fn bad_ids_are_explained() {
        assert!(TaskId::parse("abc").unwrap_err().reason.contains("25"));
        assert!(
            check_prefix("task id", "abl")
                .unwrap_err()
                .reason
                .contains("'l'")
        );
        assert!(check_prefix("task id", "").is_err());
        assert_eq!(check_prefix("task id", "AB").unwrap(), "ab");
    }
}
