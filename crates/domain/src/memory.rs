//! The Memory aggregate: something learned that outlives a task (a fact about a repository, a
//! lesson of a failed attempt, a person's rule), with a tier, a scope, tags and its provenance,
//! and the events that change it.
//!
//! An entry is `live` until a person forgets it or, for an ephemeral one, until its time runs
//! out and the sweep marks it `expired`. A pinned entry never expires; pinning changes nothing
//! else (its deadline stays, and applies again once it is unpinned).

use std::collections::BTreeSet;
use std::fmt;
use std::ops::Deref;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{TransitionError, ValueError};
use crate::ids::{MemoryId, OrchestrationId, TaskId};
use crate::values::{DurationMs, Timestamp, keyword_enum, parse_tag, string_value};

keyword_enum!(
    /// How much an entry matters: critical ones rank first and go into every briefing of their
    /// scope; ephemeral ones expire.
    MemoryTier, "memory tier" {
        Critical => "critical",
        Important => "important",
        Routine => "routine",
        Ephemeral => "ephemeral",
    }
);

impl MemoryTier {
    /// A number that sorts tiers, higher first (as stored): critical 3 … ephemeral 0.
    pub fn rank(self) -> u8 {
        match self {
            MemoryTier::Critical => 3,
            MemoryTier::Important => 2,
            MemoryTier::Routine => 1,
            MemoryTier::Ephemeral => 0,
        }
    }
}

keyword_enum!(
    /// Where an entry stands.
    MemoryState, "memory state" {
        Live => "live",
        Forgotten => "forgotten",
        Expired => "expired",
    }
);

string_value!(
    /// The absolute path of a repository, normalized: it starts with `/`, has no `.` or `..`
    /// component, no empty component and no trailing `/`. At most 4096 bytes, no control
    /// characters.
    RepoPath
);

impl RepoPath {
    /// The longest path accepted, in bytes.
    pub const MAX_BYTES: usize = 4096;

    /// Parses and normalizes a path: `//` and `/./` collapse, a trailing `/` goes; `..` is
    /// refused (what it means depends on symbolic links, which only the file system knows).
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        const WHAT: &str = "repository path";
        if !raw.starts_with('/') {
            return Err(ValueError::new(
                WHAT,
                shorten(raw),
                "it is not absolute; give the path from / (or `repo:.` for the current repository)",
            ));
        }
        if raw.len() > Self::MAX_BYTES {
            return Err(ValueError::new(
                WHAT,
                shorten(raw),
                format!(
                    "it is {} bytes long; the limit is {}",
                    raw.len(),
                    Self::MAX_BYTES
                ),
            ));
        }
        if raw.chars().any(char::is_control) {
            return Err(ValueError::new(
                WHAT,
                shorten(raw),
                "it contains a control character",
            ));
        }
        let mut parts = Vec::new();
        for part in raw.split('/') {
            match part {
                "" | "." => {}
                ".." => {
                    return Err(ValueError::new(
                        WHAT,
                        shorten(raw),
                        "it contains `..`; give the path without it",
                    ));
                }
                p => parts.push(p),
            }
        }
        Ok(Self(format!("/{}", parts.join("/"))))
    }
}

/// Where an entry applies: everywhere, in one repository, or in one orchestration. Written
/// `global`, `repo:<absolute path>` and `orchestration:<id>`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum MemoryScope {
    Global,
    Repository(RepoPath),
    Orchestration(OrchestrationId),
}

impl MemoryScope {
    /// Parses `global`, `repo:<path>` or `orchestration:<id>` (a full id).
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        const WHAT: &str = "memory scope";
        if raw == "global" {
            return Ok(MemoryScope::Global);
        }
        if let Some(path) = raw.strip_prefix("repo:") {
            return RepoPath::parse(path)
                .map(MemoryScope::Repository)
                .map_err(|e| ValueError::new(WHAT, shorten(raw), e.reason));
        }
        if let Some(id) = raw.strip_prefix("orchestration:") {
            return OrchestrationId::parse(id)
                .map(MemoryScope::Orchestration)
                .map_err(|e| ValueError::new(WHAT, shorten(raw), e.reason));
        }
        Err(ValueError::new(
            WHAT,
            shorten(raw),
            "expected `global`, `repo:<absolute path>` or `orchestration:<id>`",
        ))
    }
}

impl fmt::Display for MemoryScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MemoryScope::Global => f.write_str("global"),
            MemoryScope::Repository(p) => write!(f, "repo:{p}"),
            MemoryScope::Orchestration(id) => write!(f, "orchestration:{id}"),
        }
    }
}

impl FromStr for MemoryScope {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, ValueError> {
        Self::parse(s)
    }
}

impl TryFrom<String> for MemoryScope {
    type Error = ValueError;
    fn try_from(s: String) -> Result<Self, ValueError> {
        Self::parse(&s)
    }
}

impl From<MemoryScope> for String {
    fn from(s: MemoryScope) -> String {
        s.to_string()
    }
}

string_value!(
    /// The text of an entry: 1 to 8 KiB (8192 bytes) after trimming surrounding whitespace, with
    /// no NUL character. Line breaks are kept.
    MemoryText
);

impl MemoryText {
    /// The longest text accepted, in bytes.
    pub const MAX_BYTES: usize = 8192;

    /// Parses a text, trimming surrounding whitespace.
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        const WHAT: &str = "memory text";
        let t = raw.trim();
        let shown = || shorten(raw);
        if t.is_empty() {
            return Err(ValueError::new(
                WHAT,
                shown(),
                "it is blank; write what should be remembered",
            ));
        }
        if t.len() > Self::MAX_BYTES {
            return Err(ValueError::new(
                WHAT,
                shown(),
                format!(
                    "it is {} bytes long; the limit is {} bytes (8 KiB): keep one lesson per \
                     entry",
                    t.len(),
                    Self::MAX_BYTES
                ),
            ));
        }
        if t.contains('\0') {
            return Err(ValueError::new(
                WHAT,
                shown(),
                "it contains a NUL character",
            ));
        }
        Ok(Self(t.to_owned()))
    }

    /// The first line, as shown in tables.
    pub fn first_line(&self) -> &str {
        self.0.lines().next().unwrap_or("")
    }
}

string_value!(
    /// A tag of an entry: 1–32 characters of lowercase ASCII letters, digits, `.`, `_` and `-`,
    /// starting with a letter or a digit.
    Tag
);

impl Tag {
    /// The longest tag accepted.
    pub const MAX_LEN: usize = 32;

    /// Parses a tag.
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        parse_tag("tag", raw, "._-", Self::MAX_LEN).map(Self)
    }
}

/// The tags of an entry: at most 16, without duplicates, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "Vec<Tag>", into = "Vec<Tag>")]
pub struct Tags(BTreeSet<Tag>);

impl Tags {
    /// The most tags an entry may have.
    pub const MAX: usize = 16;

    /// No tags.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Parses every raw tag (the first bad one is the error); duplicates count once.
    pub fn parse<S: AsRef<str>>(raw: impl IntoIterator<Item = S>) -> Result<Self, ValueError> {
        let tags = raw
            .into_iter()
            .map(|s| Tag::parse(s.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        Self::try_from(tags)
    }

    /// Iterates in order.
    pub fn iter(&self) -> impl Iterator<Item = &Tag> {
        self.0.iter()
    }

    /// True when `tag` is one of them.
    pub fn contains(&self, tag: &Tag) -> bool {
        self.0.contains(tag)
    }

    /// Number of tags.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl TryFrom<Vec<Tag>> for Tags {
    type Error = ValueError;
    fn try_from(tags: Vec<Tag>) -> Result<Self, ValueError> {
        let set: BTreeSet<Tag> = tags.into_iter().collect();
        if set.len() > Self::MAX {
            let all: Vec<&str> = set.iter().map(Tag::as_str).collect();
            return Err(ValueError::new(
                "tags",
                shorten(&all.join(",")),
                format!(
                    "there are {} different tags; an entry has at most {}",
                    set.len(),
                    Self::MAX
                ),
            ));
        }
        Ok(Self(set))
    }
}

impl From<Tags> for Vec<Tag> {
    fn from(t: Tags) -> Vec<Tag> {
        t.0.into_iter().collect()
    }
}

impl fmt::Display for Tags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let all: Vec<&str> = self.0.iter().map(Tag::as_str).collect();
        f.write_str(&all.join(","))
    }
}

/// What a person or an agent searches memory for: the words of a query, without any syntax.
/// Every run of letters and digits is a word (anything else separates words, so `"`, `*`, `(`
/// or `NEAR` are never operators); words are compared without regard to case and each counts
/// once. 1 to 1024 bytes, at most 32 different words.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MemoryQuery {
    words: Vec<String>,
}

impl MemoryQuery {
    /// The longest query accepted, in bytes.
    pub const MAX_BYTES: usize = 1024;
    /// The most different words a query may have.
    pub const MAX_WORDS: usize = 32;

    /// Parses a query into its words.
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        const WHAT: &str = "search query";
        if raw.len() > Self::MAX_BYTES {
            return Err(ValueError::new(
                WHAT,
                shorten(raw),
                format!(
                    "it is {} bytes long; the limit is {}",
                    raw.len(),
                    Self::MAX_BYTES
                ),
            ));
        }
        let mut words: Vec<String> = Vec::new();
        for word in raw.split(|c: char| !c.is_alphanumeric()) {
            let word = word.to_lowercase();
            if !word.is_empty() && !words.contains(&word) {
                words.push(word);
            }
        }
        if words.is_empty() {
            return Err(ValueError::new(
                WHAT,
                shorten(raw),
                "it has no word to search for (letters or digits)",
            ));
        }
        if words.len() > Self::MAX_WORDS {
            return Err(ValueError::new(
                WHAT,
                shorten(raw),
                format!(
                    "it has {} different words; the limit is {}",
                    words.len(),
                    Self::MAX_WORDS
                ),
            ));
        }
        Ok(Self { words })
    }

    /// A query of what a text (a task's title and prompt) is about, to find what memory knows
    /// of it: its first [`Self::MAX_WORDS`] different words of 3 to 64 characters, lowercase,
    /// leaving out a few common English words that say nothing of a subject ("the", "and",
    /// "with"…); none when it has no such word. Never refused, whatever the text's length.
    pub fn about(text: &str) -> Option<Self> {
        let mut words: Vec<String> = Vec::new();
        for word in text.split(|c: char| !c.is_alphanumeric()) {
            if words.len() == Self::MAX_WORDS {
                break;
            }
            let chars = word.chars().count();
            if !(3..=64).contains(&chars) {
                continue;
            }
            let word = word.to_lowercase();
            if !COMMON_WORDS.contains(&word.as_str()) && !words.contains(&word) {
                words.push(word);
            }
        }
        (!words.is_empty()).then_some(Self { words })
    }

    /// The words, lowercase, in the order given, each once.
    pub fn words(&self) -> &[String] {
        &self.words
    }
}

impl fmt::Display for MemoryQuery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.words.join(" "))
    }
}

/// Words of three letters or more too common to say what a text is about.
const COMMON_WORDS: &[&str] = &[
    "all", "and", "any", "are", "but", "can", "does", "for", "from", "has", "have", "into", "its",
    "not", "one", "our", "should", "that", "the", "them", "then", "there", "these", "this", "was",
    "were", "what", "when", "where", "which", "who", "will", "with", "you", "your",
];

/// `raw` cut to its first 64 bytes (at a character boundary) with `…`, for an error that
/// echoes a value that may be huge.
fn shorten(raw: &str) -> String {
    const SHOWN: usize = 64;
    if raw.len() <= SHOWN {
        return raw.to_owned();
    }
    let mut end = SHOWN;
    while !raw.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &raw[..end])
}

/// Who wrote an entry: a person, or an agent during an attempt of a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum Provenance {
    Person,
    Attempt { task: TaskId, attempt: u32 },
}

impl fmt::Display for Provenance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Provenance::Person => f.write_str("a person"),
            Provenance::Attempt { task, attempt } => {
                write!(f, "attempt {attempt} of task {}", task.short())
            }
        }
    }
}

/// What a new entry says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemorySpec {
    pub tier: MemoryTier,
    pub scope: MemoryScope,
    pub text: MemoryText,
    #[serde(default)]
    pub tags: Tags,
    pub provenance: Provenance,
}

/// The state of an entry. Read it through [`Memory`]; change it only through `Memory`'s
/// methods.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryData {
    pub id: MemoryId,
    pub tier: MemoryTier,
    pub scope: MemoryScope,
    pub text: MemoryText,
    pub tags: Tags,
    pub provenance: Provenance,
    pub pinned: bool,
    pub state: MemoryState,
    /// Why it was forgotten, when the person said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forgotten_because: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// When an ephemeral entry stops counting (unless pinned); `None` for the other tiers.
    pub expires_at: Option<Timestamp>,
    /// Number of events applied since it was added.
    pub version: u64,
}

/// Something that happened to an entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MemoryEvent {
    Added {
        spec: Box<MemorySpec>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expires_at: Option<Timestamp>,
    },
    Pinned,
    Unpinned,
    Forgotten {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    Expired,
}

impl MemoryEvent {
    /// Every name [`Self::kind`] gives, in the order of `kind`'s arms.
    pub const KINDS: &'static [&'static str] = &[
        "memory.added",
        "memory.pinned",
        "memory.unpinned",
        "memory.forgotten",
        "memory.expired",
    ];

    /// The event's name in the event log.
    pub fn kind(&self) -> &'static str {
        match self {
            MemoryEvent::Added { .. } => "memory.added",
            MemoryEvent::Pinned => "memory.pinned",
            MemoryEvent::Unpinned => "memory.unpinned",
            MemoryEvent::Forgotten { .. } => "memory.forgotten",
            MemoryEvent::Expired => "memory.expired",
        }
    }
}

/// A memory entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Memory(MemoryData);

impl Deref for Memory {
    type Target = MemoryData;
    fn deref(&self) -> &MemoryData {
        &self.0
    }
}

impl Memory {
    /// Adds an entry at `at`. An ephemeral one expires `ephemeral_ttl` later; the other tiers
    /// never do.
    pub fn add(
        id: MemoryId,
        spec: MemorySpec,
        ephemeral_ttl: DurationMs,
        at: Timestamp,
    ) -> (Memory, Vec<MemoryEvent>) {
        let expires_at = (spec.tier == MemoryTier::Ephemeral).then(|| at.plus(ephemeral_ttl));
        let memory = Memory::from_spec(id, &spec, expires_at, at);
        (
            memory,
            vec![MemoryEvent::Added {
                spec: Box::new(spec),
                expires_at,
            }],
        )
    }

    /// Rebuilds an entry from stored state (for repositories).
    pub fn restore(data: MemoryData) -> Memory {
        Memory(data)
    }

    /// The stored state.
    pub fn data(&self) -> &MemoryData {
        &self.0
    }

    /// Rebuilds an entry by folding its events, oldest first. `None` if the first is not an
    /// addition.
    pub fn from_events<'a>(
        id: MemoryId,
        events: impl IntoIterator<Item = (&'a MemoryEvent, Timestamp)>,
    ) -> Option<Memory> {
        let mut it = events.into_iter();
        let (first, at) = it.next()?;
        let MemoryEvent::Added { spec, expires_at } = first else {
            return None;
        };
        let mut memory = Memory::from_spec(id, spec, *expires_at, at);
        for (e, at) in it {
            memory.apply(e, at);
        }
        Some(memory)
    }

    fn from_spec(
        id: MemoryId,
        spec: &MemorySpec,
        expires_at: Option<Timestamp>,
        at: Timestamp,
    ) -> Memory {
        Memory(MemoryData {
            id,
            tier: spec.tier,
            scope: spec.scope.clone(),
            text: spec.text.clone(),
            tags: spec.tags.clone(),
            provenance: spec.provenance,
            pinned: false,
            state: MemoryState::Live,
            forgotten_because: None,
            created_at: at,
            updated_at: at,
            expires_at,
            version: 1,
        })
    }

    /// Applies one event (already validated by the command that produced it).
    pub fn apply(&mut self, event: &MemoryEvent, at: Timestamp) {
        let d = &mut self.0;
        match event {
            MemoryEvent::Added { .. } => {}
            MemoryEvent::Pinned => d.pinned = true,
            MemoryEvent::Unpinned => d.pinned = false,
            MemoryEvent::Forgotten { reason } => {
                d.state = MemoryState::Forgotten;
                d.forgotten_because = reason.clone();
            }
            MemoryEvent::Expired => d.state = MemoryState::Expired,
        }
        d.updated_at = at;
        d.version += 1;
    }

    fn emit(&mut self, event: MemoryEvent, at: Timestamp) -> Vec<MemoryEvent> {
        self.apply(&event, at);
        vec![event]
    }

    fn refuse(&self, action: &'static str) -> TransitionError {
        TransitionError::Memory {
            id: self.id,
            from: self.state,
            pinned: self.pinned,
            action,
        }
    }

    /// True when the entry counts at `now`: live, and pinned or not past its deadline. An entry
    /// past its deadline that the sweep has not marked yet does not count.
    pub fn is_live_at(&self, now: Timestamp) -> bool {
        self.state == MemoryState::Live && !self.is_due(now)
    }

    /// True when the sweep should expire it at `now`: live, not pinned, past its deadline.
    pub fn is_due(&self, now: Timestamp) -> bool {
        self.state == MemoryState::Live
            && !self.pinned
            && self.expires_at.is_some_and(|deadline| deadline <= now)
    }

    /// Pins the entry: it ranks first and never expires. Refused when it is pinned already or
    /// no longer live (forgotten, expired, or past its deadline).
    pub fn pin(&mut self, at: Timestamp) -> Result<Vec<MemoryEvent>, TransitionError> {
        if !self.is_live_at(at) {
            return Err(self.refuse("pinned"));
        }
        if self.pinned {
            return Err(self.refuse("pinned again"));
        }
        Ok(self.emit(MemoryEvent::Pinned, at))
    }

    /// Unpins the entry; an ephemeral one expires at its deadline again. Refused when it is
    /// not pinned or no longer live.
    pub fn unpin(&mut self, at: Timestamp) -> Result<Vec<MemoryEvent>, TransitionError> {
        if self.state != MemoryState::Live {
            return Err(self.refuse("unpinned"));
        }
        if !self.pinned {
            return Err(self.refuse("unpinned (it is not pinned)"));
        }
        Ok(self.emit(MemoryEvent::Unpinned, at))
    }

    /// Forgets the entry for good (it stays in the log). Refused when it is no longer live.
    pub fn forget(
        &mut self,
        reason: Option<String>,
        at: Timestamp,
    ) -> Result<Vec<MemoryEvent>, TransitionError> {
        if self.state == MemoryState::Forgotten {
            return Err(self.refuse("forgotten again"));
        }
        if !self.is_live_at(at) {
            return Err(self.refuse("forgotten"));
        }
        Ok(self.emit(MemoryEvent::Forgotten { reason }, at))
    }

    /// Marks an ephemeral entry whose time ran out as expired. Refused when it is not due: not
    /// live, pinned, without a deadline, or before it.
    pub fn expire(&mut self, at: Timestamp) -> Result<Vec<MemoryEvent>, TransitionError> {
        if !self.is_due(at) {
            return Err(self.refuse("expired"));
        }
        Ok(self.emit(MemoryEvent::Expired, at))
    }
}

impl fmt::Display for Memory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}, {}, {})",
            self.id.short(),
            self.tier,
            self.scope,
            self.state
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(tier: MemoryTier) -> MemorySpec {
        MemorySpec {
            tier,
            scope: MemoryScope::Global,
            text: MemoryText::parse("cargo test needs --locked").unwrap(),
            tags: Tags::parse(["ci", "cargo"]).unwrap(),
            provenance: Provenance::Person,
        }
    }

    fn ttl() -> DurationMs {
        DurationMs::from_millis(1_000).unwrap()
    }

    #[test]
    fn repo_paths_are_absolute_and_normalized() {
        assert_eq!(RepoPath::parse("/a//b/./c/").unwrap().as_str(), "/a/b/c");
        assert_eq!(RepoPath::parse("/").unwrap().as_str(), "/");
        assert!(
            RepoPath::parse("a/b")
                .unwrap_err()
                .reason
                .contains("absolute")
        );
        assert!(
            RepoPath::parse("/a/../b")
                .unwrap_err()
                .reason
                .contains("..")
        );
        assert!(RepoPath::parse("/a\nb").is_err());
        let long = RepoPath::parse(&format!("/{}", "a".repeat(5000))).unwrap_err();
        assert!(long.value.len() < 100, "the error does not repeat the path");
    }

    #[test]
    fn scopes_parse_and_print_the_same() {
        let id = OrchestrationId::from_bits(7);
        for s in [
            "global".to_owned(),
            "repo:/src/maos".to_owned(),
            format!("orchestration:{id}"),
        ] {
            assert_eq!(MemoryScope::parse(&s).unwrap().to_string(), s);
        }
        assert_eq!(
            MemoryScope::parse("repo:/x/").unwrap().to_string(),
            "repo:/x"
        );
        for bad in [
            "",
            "Global",
            "repo:",
            "repo:rel",
            "orchestration:abc",
            "team:x",
        ] {
            let e = MemoryScope::parse(bad).unwrap_err();
            assert_eq!(e.what, "memory scope", "{bad}");
        }
    }

    #[test]
    fn texts_are_trimmed_bounded_and_free_of_nul() {
        assert_eq!(
            MemoryText::parse("  hi\nthere \n").unwrap().as_str(),
            "hi\nthere"
        );
        assert!(
            MemoryText::parse(" \n\t")
                .unwrap_err()
                .reason
                .contains("blank")
        );
        assert!(
            MemoryText::parse(&" ".repeat(10_000))
                .unwrap_err()
                .value
                .len()
                < 100
        );
        assert_eq!(MemoryText::parse("a\0").unwrap_err().value, "a\0");
        let max = "x".repeat(MemoryText::MAX_BYTES);
        assert!(MemoryText::parse(&max).is_ok());
        let e = MemoryText::parse(&format!("{max}y")).unwrap_err();
        assert!(e.reason.contains("8192"), "{}", e.reason);
        assert!(e.value.len() < 100, "the error does not repeat 8 KiB");
        assert!(
            MemoryText::parse("a\0b")
                .unwrap_err()
                .reason
                .contains("NUL")
        );
        // A multibyte character at the cut of the shown value does not panic.
        let wide = "é".repeat(MemoryText::MAX_BYTES);
        assert!(MemoryText::parse(&wide).is_err());
        assert_eq!(
            MemoryText::parse("first\nsecond").unwrap().first_line(),
            "first"
        );
    }

    #[test]
    fn tags_are_checked_deduplicated_sorted_and_counted() {
        let t = Tags::parse(["b", "a", "b"]).unwrap();
        assert_eq!(t.to_string(), "a,b");
        assert!(Tag::parse("Rust").unwrap_err().reason.contains("\"rust\""));
        assert!(Tag::parse("a b").is_err());
        assert!(Tag::parse(&"a".repeat(33)).is_err());
        assert!(Tag::parse(&"a".repeat(32)).is_ok());
        let many: Vec<String> = (0..17).map(|i| format!("t{i}")).collect();
        assert!(Tags::parse(&many).unwrap_err().reason.contains("16"));
        let lots: Vec<String> = (0..10_000).map(|i| format!("t{i}")).collect();
        assert!(Tags::parse(&lots).unwrap_err().value.len() < 100);
        assert!(Tags::parse(&many[..16]).is_ok());
        let json = serde_json_like(&t);
        assert_eq!(json, vec!["a", "b"]);
    }

    fn serde_json_like(t: &Tags) -> Vec<String> {
        Vec::<Tag>::from(t.clone())
            .into_iter()
            .map(String::from)
            .collect()
    }

    #[test]
    fn queries_are_words_without_syntax() {
        let q = MemoryQuery::parse(r#"NEAR(foo* "bar" OR -baz) foo"#).unwrap();
        assert_eq!(q.words(), ["near", "foo", "bar", "or", "baz"]);
        assert_eq!(
            MemoryQuery::parse("Ünïcode wörds").unwrap().words(),
            ["ünïcode", "wörds"]
        );
        assert!(
            MemoryQuery::parse(r#" "* ( ) ""#)
                .unwrap_err()
                .reason
                .contains("no word")
        );
        assert!(MemoryQuery::parse("").is_err());
        let long = "é".repeat(600);
        assert!(
            MemoryQuery::parse(&long)
                .unwrap_err()
                .reason
                .contains("1024")
        );
        let many: Vec<String> = (0..33).map(|i| format!("w{i}")).collect();
        assert!(
            MemoryQuery::parse(&many.join(" "))
                .unwrap_err()
                .reason
                .contains("32")
        );
    }

    #[test]
    fn a_text_becomes_the_query_of_what_it_is_about() {
        let q = MemoryQuery::about("Fix the FTS5 index: it's slow (NEAR \"x\")").unwrap();
        assert_eq!(q.words(), ["fix", "fts5", "index", "slow", "near"]);
        assert!(MemoryQuery::about("And the, with THE").is_none());
        assert!(MemoryQuery::about("a b c -- ( )").is_none());
        let many: Vec<String> = (0..100).map(|i| format!("word{i}")).collect();
        let q = MemoryQuery::about(&format!("{} {}", "x".repeat(100_000), many.join(" "))).unwrap();
        assert_eq!(q.words().len(), MemoryQuery::MAX_WORDS);
        assert_eq!(q.words()[0], "word0");
    }

    #[test]
    fn only_ephemeral_entries_get_a_deadline() {
        let at = Timestamp::from_millis(10);
        for tier in MemoryTier::ALL {
            let (m, events) = Memory::add(MemoryId::from_bits(1), spec(*tier), ttl(), at);
            assert_eq!(events.len(), 1);
            let expected = (*tier == MemoryTier::Ephemeral).then(|| Timestamp::from_millis(1_010));
            assert_eq!(m.expires_at, expected);
            assert_eq!(m.state, MemoryState::Live);
        }
    }

    #[test]
    fn a_pinned_ephemeral_entry_does_not_expire_until_unpinned() {
        let id = MemoryId::from_bits(1);
        let (mut m, _) = Memory::add(
            id,
            spec(MemoryTier::Ephemeral),
            ttl(),
            Timestamp::from_millis(0),
        );
        m.pin(Timestamp::from_millis(1)).unwrap();
        assert!(m.pin(Timestamp::from_millis(2)).is_err());
        let late = Timestamp::from_millis(5_000);
        assert!(m.is_live_at(late));
        assert!(m.expire(late).is_err());
        m.unpin(late).unwrap();
        assert!(!m.is_live_at(late));
        m.expire(late).unwrap();
        assert_eq!(m.state, MemoryState::Expired);
        assert!(m.forget(None, late).is_err());
        assert!(m.pin(late).is_err());
        assert!(m.unpin(late).is_err());
    }

    #[test]
    fn refusals_say_what_and_why() {
        let id = MemoryId::from_bits(1);
        let (mut m, _) = Memory::add(
            id,
            spec(MemoryTier::Routine),
            ttl(),
            Timestamp::from_millis(0),
        );
        m.forget(Some("wrong".into()), Timestamp::from_millis(1))
            .unwrap();
        assert_eq!(m.forgotten_because.as_deref(), Some("wrong"));
        let e = m.pin(Timestamp::from_millis(2)).unwrap_err();
        assert!(e.to_string().contains("forgotten"), "{e}");
        assert!(m.expire(Timestamp::from_millis(2)).is_err());
    }
}
