//! Agents' credentials: the secret an attempt's agent is given for MAOS's own tools (the MCP
//! server `maos mcp` serves), 32 random bytes from the operating system, written as URL-safe
//! base64 without padding (43 characters of `A-Z a-z 0-9 - _`). The supervisor keeps it with the
//! live attempt, so it stands for the attempt exactly as long as the attempt runs.

use std::io::{self, Read};

use maos_application::AgentCredential;

/// How many random bytes a credential carries.
const BYTES: usize = 32;

/// The variable that carries an attempt's credential to the processes MAOS starts for it.
pub const CREDENTIAL_ENV: &str = "MAOS_AGENT_CREDENTIAL";

/// A fresh credential, from `/dev/urandom`.
pub(crate) fn fresh() -> io::Result<AgentCredential> {
    let mut bytes = [0u8; BYTES];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    AgentCredential::parse(&base64url(&bytes))
        .map_err(|e| io::Error::other(format!("a fresh credential is malformed: {e}")))
}

/// `bytes` in URL-safe base64 without padding (RFC 4648, section 5).
fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        // One more character than whole bytes: 1 byte → 2, 2 → 3, 3 → 4.
        for i in 0..=chunk.len() {
            let six = (n >> (18 - 6 * i)) & 0x3f;
            out.push(char::from(ALPHABET[six as usize]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn base64url_follows_the_rfc() {
        // RFC 4648, section 10, in the URL-safe alphabet and without padding.
        assert_eq!(base64url(b""), "");
        assert_eq!(base64url(b"f"), "Zg");
        assert_eq!(base64url(b"fo"), "Zm8");
        assert_eq!(base64url(b"foo"), "Zm9v");
        assert_eq!(base64url(b"foob"), "Zm9vYg");
        assert_eq!(base64url(b"fooba"), "Zm9vYmE");
        assert_eq!(base64url(b"foobar"), "Zm9vYmFy");
        // The two characters that differ from standard base64.
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
    }

    #[test]
    fn fresh_credentials_are_well_formed_and_differ() {
        let mut seen = HashSet::new();
        for _ in 0..64 {
            let c = fresh().unwrap();
            let s = c.expose();
            assert_eq!(s.len(), 43, "{} characters", s.len());
            assert!(
                s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                "not URL-safe base64"
            );
            assert!(AgentCredential::parse(s).is_ok());
            assert!(seen.insert(s.to_owned()), "a credential came twice");
        }
        // Never shown by Debug.
        let c = fresh().unwrap();
        assert!(!format!("{c:?}").contains(c.expose()));
    }
}
