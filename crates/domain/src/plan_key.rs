//! `PlanKey`: the key of a task in a plan (its `id` in a plan file, the name other tasks of the
//! plan give in `depends_on`): 1 to 64 lowercase ASCII letters, digits, `-` and `_`, starting
//! with a letter or a digit. The one place this rule lives: the CLI's plan file check and the
//! service's plan check both parse keys with it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The key of a task in a plan, such as `write-tests`. Private field: only [`PlanKey::parse`]
/// makes one.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PlanKey(String);

/// Why a text is not a plan key.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PlanKeyError {
    /// The text is empty.
    #[error("a plan key cannot be empty")]
    Empty,
    /// The text is longer than [`PlanKey::MAX_LEN`] bytes.
    #[error("a plan key is at most {} bytes long, not {len}", PlanKey::MAX_LEN)]
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// A character is not allowed, or the first one is not a letter or a digit.
    #[error(
        "invalid plan key {key:?}: use lowercase letters, digits, '-' and '_', starting with a \
         letter or a digit"
    )]
    Invalid {
        /// The text, as given.
        key: String,
    },
}

impl PlanKey {
    /// The longest key, in bytes.
    pub const MAX_LEN: usize = 64;

    /// Checks `raw` against `[a-z0-9][a-z0-9_-]{0,63}`.
    pub fn parse(raw: &str) -> Result<Self, PlanKeyError> {
        if raw.is_empty() {
            return Err(PlanKeyError::Empty);
        }
        if raw.len() > Self::MAX_LEN {
            return Err(PlanKeyError::TooLong { len: raw.len() });
        }
        let first_ok = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
        let ok = |c: char| first_ok(c) || c == '-' || c == '_';
        if raw.starts_with(first_ok) && raw.chars().all(ok) {
            Ok(Self(raw.to_owned()))
        } else {
            Err(PlanKeyError::Invalid {
                key: raw.to_owned(),
            })
        }
    }

    /// The key as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PlanKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<PlanKey> for String {
    fn from(k: PlanKey) -> String {
        k.0
    }
}

impl TryFrom<String> for PlanKey {
    type Error = PlanKeyError;
    fn try_from(s: String) -> Result<Self, PlanKeyError> {
        Self::parse(&s)
    }
}

impl FromStr for PlanKey {
    type Err = PlanKeyError;
    fn from_str(s: &str) -> Result<Self, PlanKeyError> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_keys_parse_and_show_as_given() {
        for raw in ["a", "0", "write-tests", "a_b-c9", &"x".repeat(64)] {
            let k = PlanKey::parse(raw).unwrap();
            assert_eq!(k.as_str(), raw);
            assert_eq!(k.to_string(), raw);
        }
    }

    #[test]
    fn bad_keys_say_why() {
        assert_eq!(PlanKey::parse(""), Err(PlanKeyError::Empty));
        assert_eq!(
            PlanKey::parse(&"x".repeat(65)),
            Err(PlanKeyError::TooLong { len: 65 })
        );
        for raw in ["Big", "-a", "_a", "a b", "a.b", "é"] {
            assert_eq!(
                PlanKey::parse(raw),
                Err(PlanKeyError::Invalid {
                    key: raw.to_owned()
                }),
                "{raw}"
            );
        }
        // Non-ASCII counts in bytes.
        assert!(matches!(
            PlanKey::parse(&"é".repeat(33)),
            Err(PlanKeyError::TooLong { len: 66 })
        ));
    }

    #[test]
    fn serde_goes_through_parse() {
        use serde::de::IntoDeserializer;
        use serde::de::value::{Error, StringDeserializer};
        let read = |s: &str| {
            let d: StringDeserializer<Error> = s.to_owned().into_deserializer();
            PlanKey::deserialize(d)
        };
        assert_eq!(read("ok-1").unwrap().as_str(), "ok-1");
        assert!(read("Not OK").is_err());
        assert_eq!(String::from(read("ok-1").unwrap()), "ok-1");
    }
}
