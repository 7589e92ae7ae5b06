//! Secrets out of what MAOS keeps: before anything an agent printed is written (its log, its
//! summary or error, a verification's output, a tool call it asks about), the values of the
//! variables its configuration passes to it (`env`, `api_key_env`), the credential MAOS gave
//! the attempt, and text shaped like common API keys are replaced with `[redacted]`. The store, the events and every command's output
//! only ever see the replaced text.

use std::ffi::OsString;

use maos_application::{AgentCredential, Launch};

/// What replaces a secret.
pub const REDACTED: &str = "[redacted]";

/// Values shorter than this are not treated as secrets (a variable holding `1` or `true` would
/// otherwise blank every digit of the output).
const MIN_SECRET: usize = 8;

/// Prefixes of well-known API keys and the shortest key after the prefix.
const KEY_PREFIXES: &[(&[u8], usize)] = &[
    (b"sk-ant-", 20),
    (b"sk-proj-", 20),
    (b"sk-", 20),
    (b"ghp_", 30),
    (b"gho_", 30),
    (b"ghs_", 30),
    (b"github_pat_", 30),
    (b"glpat-", 20),
    (b"xoxb-", 20),
    (b"xoxp-", 20),
    (b"AKIA", 16),
    (b"AIza", 30),
    (b"hf_", 30),
];

/// Replaces the secrets of one attempt.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    /// The values to replace, longest first (so that a value containing another goes whole).
    values: Vec<Vec<u8>>,
}

impl Redactor {
    /// The secrets of `launch`: the values, in the daemon's environment `env`, of the variables
    /// its agent's configuration names, and the attempt's `credential` when it was given one.
    pub fn for_launch(
        launch: &Launch,
        env: &[(OsString, OsString)],
        credential: Option<&AgentCredential>,
    ) -> Redactor {
        let settings = &launch.agent.settings;
        let names: Vec<&str> = settings
            .env
            .iter()
            .map(|n| n.as_str())
            .chain(settings.api_key_env.as_ref().map(|n| n.as_str()))
            .collect();
        let values = env
            .iter()
            .filter(|(k, _)| k.to_str().is_some_and(|k| names.contains(&k)))
            .map(|(_, v)| v.as_encoded_bytes().to_vec())
            .chain(credential.map(|c| c.expose().as_bytes().to_vec()));
        Redactor::new(values)
    }

    /// A redactor of `values` (and of key-shaped text).
    pub fn new(values: impl IntoIterator<Item = Vec<u8>>) -> Redactor {
        let mut values: Vec<Vec<u8>> = values
            .into_iter()
            .filter(|v| v.len() >= MIN_SECRET)
            .collect();
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        values.dedup();
        Redactor { values }
    }

    /// `bytes` with every secret replaced.
    pub fn bytes(&self, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        'scan: while i < bytes.len() {
            for v in &self.values {
                if bytes[i..].starts_with(v) {
                    out.extend_from_slice(REDACTED.as_bytes());
                    i += v.len();
                    continue 'scan;
                }
            }
            let boundary = i == 0 || !is_key_byte(bytes[i - 1]);
            if boundary && let Some(len) = key_at(&bytes[i..]) {
                out.extend_from_slice(REDACTED.as_bytes());
                i += len;
                continue;
            }
            out.push(bytes[i]);
            i += 1;
        }
        out
    }

    /// `text` with every secret replaced.
    pub fn text(&self, text: &str) -> String {
        let bytes = self.bytes(text.as_bytes());
        String::from_utf8(bytes)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }

    /// The longest secret value (what a streaming writer must hold back to see one whole).
    pub fn longest(&self) -> usize {
        self.values.first().map_or(0, Vec::len)
    }

    /// Where text that `bytes` was cut at `start` can safely begin: past the longest secret
    /// (a value cut in two leaves at most that much of itself) and past the run of key
    /// characters there.
    pub fn past_a_cut(&self, bytes: &[u8], start: usize) -> usize {
        let mut at = start.saturating_add(self.longest()).min(bytes.len());
        while at < bytes.len() && is_key_byte(bytes[at]) {
            at += 1;
        }
        at
    }

    /// Where to cut `bytes` at or before `cut` so that no secret is split: not inside a
    /// configured value that starts before the cut, nor inside a run of key characters (a key
    /// may be there). Never returns 0 for a positive `cut` (a pathological run of key
    /// characters is cut where asked, so that nothing waits for ever).
    pub fn safe_cut(&self, bytes: &[u8], cut: usize) -> usize {
        let cut = cut.min(bytes.len());
        let mut at = cut;
        loop {
            let from = at.saturating_sub(self.longest());
            let straddling = (from..at).find(|&p| {
                self.values
                    .iter()
                    .any(|v| bytes[p..].starts_with(v) && p + v.len() > at)
            });
            match straddling {
                Some(p) => at = p,
                None => break,
            }
        }
        if at > 0 && at < bytes.len() && is_key_byte(bytes[at - 1]) && is_key_byte(bytes[at]) {
            at = bytes[..at]
                .iter()
                .rposition(|b| !is_key_byte(*b))
                .map_or(0, |i| i + 1);
        }
        if at == 0 { cut } else { at }
    }
}

fn is_key_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// The length of the API key that starts `bytes`, if one does.
fn key_at(bytes: &[u8]) -> Option<usize> {
    KEY_PREFIXES.iter().find_map(|(prefix, min)| {
        if !bytes.starts_with(prefix) {
            return None;
        }
        let body = bytes[prefix.len()..]
            .iter()
            .take_while(|b| is_key_byte(**b))
            .count();
        (body >= *min).then_some(prefix.len() + body)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_values_and_key_shaped_text_are_replaced() {
        let r = Redactor::new([b"hunter2-secret-value".to_vec(), b"short".to_vec()]);
        assert_eq!(
            r.text("the key is hunter2-secret-value, twice: hunter2-secret-value"),
            "the key is [redacted], twice: [redacted]"
        );
        // Too short to be a secret: left alone.
        assert_eq!(r.text("short"), "short");
        assert_eq!(
            r.text("export ANTHROPIC_API_KEY=sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123"),
            "export ANTHROPIC_API_KEY=[redacted]"
        );
        assert_eq!(
            r.text("token ghp_0123456789abcdefghijklmnopqrstuvwxyz."),
            "token [redacted]."
        );
        // Not a key: too short, or inside a longer word.
        assert_eq!(r.text("sk-short and task-sk-"), "sk-short and task-sk-");
        assert_eq!(
            r.text("risk-assessment-of-the-project"),
            "risk-assessment-of-the-project"
        );
    }

    #[test]
    fn text_after_a_cut_begins_past_any_piece_of_a_secret() {
        let r = Redactor::new([b"0123456789".to_vec()]);
        // The window begins inside "0123456789": skip its longest possible rest and the run.
        assert_eq!(r.past_a_cut(b"xx0123456789     tail", 4), 14);
        let none = Redactor::default();
        assert_eq!(none.past_a_cut(b"ab cd", 1), 2);
        assert_eq!(none.past_a_cut(b"\0\0\0", 1), 1);
    }

    #[test]
    fn a_cut_never_splits_a_secret() {
        let r = Redactor::new([b"value with spaces 42".to_vec()]);
        let text = b"aaaa value with spaces 42 bbbb";
        // Inside the configured value: before it.
        assert_eq!(r.safe_cut(text, 10), 5);
        // Inside a run of key characters: before the run.
        let key = b"x: sk-ant-api03-ABCDEFGHIJKLMNOPQRSTUVWXYZ tail";
        assert_eq!(r.safe_cut(key, 20), 3);
        // Between words: where asked.
        assert_eq!(r.safe_cut(b"aaaa bbbb", 5), 5);
        // A run of key characters from the start: where asked, not never.
        assert_eq!(r.safe_cut(b"abcdefgh", 4), 4);
    }

    #[test]
    fn the_longest_value_goes_whole() {
        let r = Redactor::new([b"abcdefgh".to_vec(), b"abcdefgh-and-more".to_vec()]);
        assert_eq!(r.text("x abcdefgh-and-more y"), "x [redacted] y");
        assert_eq!(r.longest(), 17);
    }

    #[test]
    fn bytes_that_are_not_utf8_pass_through() {
        let r = Redactor::new([b"secret-value-1".to_vec()]);
        assert_eq!(
            r.bytes(b"\xff secret-value-1 \xfe"),
            b"\xff [redacted] \xfe".to_vec()
        );
    }
}
