//! What a planner learns about a repository (`Workspaces::summarise`), from what git lists:
//! the tree cut to a depth, languages by file extension, the top-level files worth reading
//! (the README, build files), and the build and test commands those files show. Pure: the git
//! commands that feed it are in `workspaces.rs`.

use std::collections::HashMap;

use maos_application::{CommandPurpose, DetectedCommand, SummaryLimits};

use crate::parse::TreeEntry;

/// At most this many bytes of a build file (`package.json`, a `Makefile`…) are read.
pub(crate) const MAX_FILE_BYTES: usize = 256 * 1024;

/// At most this many bytes of one entry of `git ls-tree -z` are read (a path longer than this is
/// not a path any file system holds).
pub(crate) const MAX_TREE_ENTRY: u64 = 64 * 1024;

/// How many languages a summary names.
pub(crate) const TOP_LANGUAGES: usize = 8;

/// At most this many top-level README files are considered.
const MAX_README_CANDIDATES: usize = 32;

/// At most this many characters of a commit's subject are kept.
pub(crate) const MAX_SUBJECT_CHARS: usize = 300;

/// What marks a text as cut.
const CUT: char = '…';

/// Languages by file extension (lower case): programming languages only, not documentation or
/// data formats, which say little about how the code is built.
const LANGUAGES: &[(&str, &str)] = &[
    ("rs", "Rust"),
    ("ts", "TypeScript"),
    ("tsx", "TypeScript"),
    ("mts", "TypeScript"),
    ("cts", "TypeScript"),
    ("js", "JavaScript"),
    ("jsx", "JavaScript"),
    ("mjs", "JavaScript"),
    ("cjs", "JavaScript"),
    ("py", "Python"),
    ("pyi", "Python"),
    ("go", "Go"),
    ("java", "Java"),
    ("kt", "Kotlin"),
    ("kts", "Kotlin"),
    ("scala", "Scala"),
    ("rb", "Ruby"),
    ("c", "C"),
    ("h", "C"),
    ("cc", "C++"),
    ("cpp", "C++"),
    ("cxx", "C++"),
    ("hpp", "C++"),
    ("hh", "C++"),
    ("hxx", "C++"),
    ("cs", "C#"),
    ("fs", "F#"),
    ("swift", "Swift"),
    ("m", "Objective-C"),
    ("mm", "Objective-C"),
    ("php", "PHP"),
    ("sh", "Shell"),
    ("bash", "Shell"),
    ("zsh", "Shell"),
    ("ps1", "PowerShell"),
    ("ex", "Elixir"),
    ("exs", "Elixir"),
    ("erl", "Erlang"),
    ("hs", "Haskell"),
    ("ml", "OCaml"),
    ("clj", "Clojure"),
    ("lua", "Lua"),
    ("dart", "Dart"),
    ("r", "R"),
    ("jl", "Julia"),
    ("zig", "Zig"),
    ("nim", "Nim"),
    ("pl", "Perl"),
    ("sql", "SQL"),
    ("html", "HTML"),
    ("css", "CSS"),
    ("scss", "SCSS"),
    ("vue", "Vue"),
    ("svelte", "Svelte"),
];

/// The top-level files whose presence or content shows how a repository is built or tested.
const BUILD_FILES: &[&str] = &[
    "Cargo.toml",
    "package.json",
    "pnpm-lock.yaml",
    "yarn.lock",
    "Makefile",
    "makefile",
    "GNUmakefile",
    "go.mod",
    "pyproject.toml",
    "setup.py",
    "pom.xml",
    "build.gradle",
    "build.gradle.kts",
    "justfile",
    "Justfile",
    ".justfile",
];

/// A top-level file worth reading: its name and its blob (`None` when it is not a regular file:
/// a symbolic link or a submodule, whose content is not the file's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TopFile {
    pub(crate) name: String,
    pub(crate) blob: Option<String>,
}

/// Everything learnt from one pass over the tracked paths, each path seen once and none kept
/// beyond the limits.
#[derive(Debug)]
pub(crate) struct TreeWalk {
    depth: usize,
    entries: usize,
    pub(crate) tree: Vec<String>,
    pub(crate) tree_cut: usize,
    /// The components (to the depth) of the previous path and how many it had.
    previous: Vec<Vec<u8>>,
    previous_len: usize,
    languages: HashMap<&'static str, usize>,
    readmes: Vec<TopFile>,
    build_files: Vec<TopFile>,
}

impl TreeWalk {
    pub(crate) fn new(limits: &SummaryLimits) -> Self {
        TreeWalk {
            depth: limits.depth,
            entries: limits.entries,
            tree: Vec::new(),
            tree_cut: 0,
            previous: Vec::new(),
            previous_len: 0,
            languages: HashMap::new(),
            readmes: Vec::new(),
            build_files: Vec::new(),
        }
    }

    /// Takes one tracked path. Paths come in git's order (bytewise, as in the index), so the
    /// paths under a directory are contiguous and a directory is new exactly when the previous
    /// path was not under it: the tree is counted without keeping every path.
    pub(crate) fn add(&mut self, entry: &TreeEntry<'_>) {
        let components: Vec<&[u8]> = entry.path.split(|b| *b == b'/').collect();
        let count = components.len();
        let shown = count.min(self.depth);
        let mut same_so_far = true;
        for (k, component) in components.iter().take(shown).enumerate() {
            let is_dir = k + 1 < count;
            same_so_far = same_so_far
                && self.previous.get(k).is_some_and(|p| p == component)
                && (k + 1 < self.previous_len) == is_dir;
            if same_so_far {
                continue;
            }
            if self.tree.len() < self.entries {
                let mut name = components[..=k].join(&b'/');
                if is_dir {
                    name.push(b'/');
                }
                self.tree.push(String::from_utf8_lossy(&name).into_owned());
            } else {
                self.tree_cut += 1;
            }
        }
        self.previous.clear();
        self.previous
            .extend(components.iter().take(shown).map(|c| c.to_vec()));
        self.previous_len = count;

        let Some(name) = components.last() else {
            return;
        };
        if entry.is_regular_file()
            && let Some(language) = language_of(name)
        {
            *self.languages.entry(language).or_insert(0) += 1;
        }
        if count == 1 {
            self.top_file(name, entry);
        }
    }

    fn top_file(&mut self, name: &[u8], entry: &TreeEntry<'_>) {
        let Ok(name) = std::str::from_utf8(name) else {
            return;
        };
        let file = || TopFile {
            name: name.to_owned(),
            blob: entry
                .is_regular_file()
                .then(|| String::from_utf8_lossy(entry.object).into_owned()),
        };
        if is_readme(name) && self.readmes.len() < MAX_README_CANDIDATES {
            self.readmes.push(file());
        } else if BUILD_FILES.contains(&name) {
            self.build_files.push(file());
        }
    }

    /// The languages, the most files first (ties by name), at most [`TOP_LANGUAGES`].
    pub(crate) fn languages(&self) -> Vec<(String, usize)> {
        let mut languages: Vec<(String, usize)> = self
            .languages
            .iter()
            .map(|(name, files)| ((*name).to_owned(), *files))
            .collect();
        languages.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        languages.truncate(TOP_LANGUAGES);
        languages
    }

    /// The top-level README to show: a regular file, `README.md` before `README` before
    /// `README.rst` and the rest, upper case before lower case.
    pub(crate) fn readme(&self) -> Option<&TopFile> {
        self.readmes
            .iter()
            .filter(|f| f.blob.is_some())
            .min_by_key(|f| (readme_rank(&f.name), f.name.clone()))
    }

    /// The top-level build file of this name, if tracked.
    pub(crate) fn build_file(&self, name: &str) -> Option<&TopFile> {
        self.build_files.iter().find(|f| f.name == name)
    }
}

/// A top-level README: `README`, or `README.<anything>`, in any case.
fn is_readme(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower == "readme" || lower.starts_with("readme.")
}

fn readme_rank(name: &str) -> usize {
    const ORDER: &[&str] = &[
        "readme.md",
        "readme",
        "readme.rst",
        "readme.txt",
        "readme.markdown",
        "readme.adoc",
        "readme.org",
    ];
    let lower = name.to_ascii_lowercase();
    ORDER
        .iter()
        .position(|o| *o == lower)
        .unwrap_or(ORDER.len())
}

/// The language of a file name by its extension (`main.rs`: Rust); none for a name without one
/// or starting with its only dot (`.bashrc`).
fn language_of(name: &[u8]) -> Option<&'static str> {
    let dot = name.iter().rposition(|b| *b == b'.')?;
    if dot == 0 {
        return None;
    }
    let extension = std::str::from_utf8(&name[dot + 1..]).ok()?;
    LANGUAGES
        .iter()
        .find(|(e, _)| e.eq_ignore_ascii_case(extension))
        .map(|(_, language)| *language)
}

/// The first `max` characters of `text`, the last of them `…` when there was more (`more`: the
/// text read was itself only the start of the file).
pub(crate) fn cut_text(text: &str, max: usize, more: bool) -> String {
    let mut chars = text.char_indices();
    let end = chars.nth(max).map(|(i, _)| i);
    match end {
        None if !more => text.to_owned(),
        _ => {
            let keep = max.saturating_sub(1);
            let mut out: String = text.chars().take(keep).collect();
            if max > 0 {
                out.push(CUT);
            }
            out
        }
    }
}

/// A top-level file's start, as read from git: its text (invalid UTF-8 replaced) and whether
/// it was read whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileText {
    pub(crate) text: String,
    pub(crate) whole: bool,
}

/// The build and test commands the top-level files of `walk` show, in a fixed order (Cargo,
/// npm, make, Go, Python, Maven, Gradle, just); `read` answers a file's text (`None` for one
/// that is not a regular file).
pub(crate) fn detect_commands<E>(
    walk: &TreeWalk,
    mut read: impl FnMut(&TopFile) -> Result<Option<FileText>, E>,
) -> Result<Vec<DetectedCommand>, E> {
    let mut found = Vec::new();
    let mut add = |purpose, command: String, source: &str| {
        found.push(DetectedCommand {
            purpose,
            command,
            source: source.to_owned(),
        });
    };
    let has = |name: &str| walk.build_file(name).is_some();

    if has("Cargo.toml") {
        add(CommandPurpose::Build, "cargo build".into(), "Cargo.toml");
        add(CommandPurpose::Test, "cargo test".into(), "Cargo.toml");
    }
    if let Some(file) = walk.build_file("package.json")
        && let Some(text) = read(file)?
    {
        let (run, test) = if has("pnpm-lock.yaml") {
            ("pnpm run", "pnpm test")
        } else if has("yarn.lock") {
            ("yarn", "yarn test")
        } else {
            ("npm run", "npm test")
        };
        let scripts = package_scripts(&text);
        if scripts.build {
            add(CommandPurpose::Build, format!("{run} build"), &file.name);
        }
        if scripts.test {
            add(CommandPurpose::Test, test.into(), &file.name);
        }
    }
    for name in ["GNUmakefile", "makefile", "Makefile"] {
        let Some(file) = walk.build_file(name) else {
            continue;
        };
        // make reads the first of these it finds, in this order.
        if let Some(text) = read(file)? {
            for (purpose, target) in [
                (CommandPurpose::Build, "build"),
                (CommandPurpose::Test, "test"),
            ] {
                if has_make_target(&text.text, target) {
                    add(purpose, format!("make {target}"), &file.name);
                }
            }
        }
        break;
    }
    if has("go.mod") {
        add(CommandPurpose::Build, "go build ./...".into(), "go.mod");
        add(CommandPurpose::Test, "go test ./...".into(), "go.mod");
    }
    if let Some(source) = ["pyproject.toml", "setup.py"].into_iter().find(|f| has(f)) {
        add(CommandPurpose::Test, "python -m pytest".into(), source);
    }
    if has("pom.xml") {
        add(CommandPurpose::Build, "mvn -q package".into(), "pom.xml");
        add(CommandPurpose::Test, "mvn -q test".into(), "pom.xml");
    }
    if let Some(source) = ["build.gradle.kts", "build.gradle"]
        .into_iter()
        .find(|f| has(f))
    {
        add(CommandPurpose::Build, "./gradlew build".into(), source);
        add(CommandPurpose::Test, "./gradlew test".into(), source);
    }
    for name in ["justfile", "Justfile", ".justfile"] {
        let Some(file) = walk.build_file(name) else {
            continue;
        };
        if let Some(text) = read(file)? {
            for (purpose, recipe) in [
                (CommandPurpose::Build, "build"),
                (CommandPurpose::Test, "test"),
            ] {
                if has_just_recipe(&text.text, recipe) {
                    add(purpose, format!("just {recipe}"), &file.name);
                }
            }
        }
        break;
    }
    Ok(found)
}

/// Which of the scripts `build` and `test` a `package.json` defines.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Scripts {
    build: bool,
    test: bool,
}

/// The scripts of a `package.json`; none when it is not JSON (or was too long to be read
/// whole). npm's placeholder test script (`echo "Error: no test specified" && exit 1`) is no
/// test command.
fn package_scripts(file: &FileText) -> Scripts {
    if !file.whole {
        return Scripts::default();
    }
    let Ok(doc) = serde_json::from_str::<serde_json::Value>(&file.text) else {
        return Scripts::default();
    };
    let script = |name: &str| {
        doc.get("scripts")
            .and_then(|s| s.get(name))
            .and_then(serde_json::Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    };
    Scripts {
        build: script("build").is_some(),
        test: script("test").is_some_and(|s| !s.contains("no test specified")),
    }
}

/// True when a makefile has a rule for `target` (`target:` or `a target b: …` at the start of a
/// line, not a variable assignment such as `target := x`).
fn has_make_target(text: &str, target: &str) -> bool {
    text.lines().any(|line| {
        if line.starts_with(['\t', ' ', '#', '.']) {
            return false;
        }
        let Some(colon) = line.find(':') else {
            return false;
        };
        let rest = &line[colon + 1..];
        if rest.starts_with('=') || rest.starts_with(":=") {
            return false;
        }
        let targets = &line[..colon];
        !targets.contains('=') && targets.split_whitespace().any(|t| t == target)
    })
}

/// True when a justfile has a recipe `recipe` (`recipe:`, `recipe *args:`, `@recipe:` at the
/// start of a line; not an assignment `recipe := …`).
fn has_just_recipe(text: &str, recipe: &str) -> bool {
    text.lines().any(|line| {
        let line = line.strip_prefix('@').unwrap_or(line);
        let Some(rest) = line.strip_prefix(recipe) else {
            return false;
        };
        if !rest.starts_with([' ', ':', '\t']) {
            return false;
        }
        let rest = rest.trim_start();
        !rest.starts_with(":=") && rest.contains(':')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str) -> TreeEntry<'_> {
        TreeEntry {
            mode: b"100644",
            object: b"abc",
            path: path.as_bytes(),
        }
    }

    fn walk(paths: &[&str], depth: usize, entries: usize) -> TreeWalk {
        let mut walk = TreeWalk::new(&SummaryLimits {
            depth,
            entries,
            ..SummaryLimits::default()
        });
        for path in paths {
            walk.add(&entry(path));
        }
        walk
    }

    const PATHS: &[&str] = &[
        "Cargo.toml",
        "README.md",
        "a.txt",
        "a/b/c.rs",
        "a/b/d.rs",
        "a/e.py",
        "a0",
        "z/y/x/w.go",
    ];

    #[test]
    fn the_tree_is_cut_to_the_depth_each_directory_once() {
        let one = walk(PATHS, 1, 100);
        assert_eq!(
            one.tree,
            ["Cargo.toml", "README.md", "a.txt", "a/", "a0", "z/"]
        );
        assert_eq!(one.tree_cut, 0);
        let two = walk(PATHS, 2, 100);
        assert_eq!(
            two.tree,
            [
                "Cargo.toml",
                "README.md",
                "a.txt",
                "a/",
                "a/b/",
                "a/e.py",
                "a0",
                "z/",
                "z/y/"
            ]
        );
        let mut sorted = two.tree.clone();
        sorted.sort();
        assert_eq!(sorted, two.tree, "git's order is the sorted order");
        assert!(walk(PATHS, 0, 100).tree.is_empty());
    }

    #[test]
    fn entries_past_the_limit_are_counted_once_each() {
        let cut = walk(PATHS, 2, 4);
        assert_eq!(cut.tree, ["Cargo.toml", "README.md", "a.txt", "a/"]);
        // a/b/, a/e.py, a0, z/, z/y/
        assert_eq!(cut.tree_cut, 5);
        let none = walk(PATHS, 2, 0);
        assert!(none.tree.is_empty());
        assert_eq!(none.tree_cut, 9);
    }

    #[test]
    fn languages_by_extension_most_files_first() {
        let w = walk(
            &[
                "a.rs", "b.RS", "c.py", "d.ts", "e.tsx", "f.h", ".bashrc", "g",
            ],
            1,
            10,
        );
        assert_eq!(
            w.languages(),
            [
                ("Rust".to_owned(), 2),
                ("TypeScript".to_owned(), 2),
                ("C".to_owned(), 1),
                ("Python".to_owned(), 1)
            ]
        );
        let many: Vec<String> = LANGUAGES.iter().map(|(e, _)| format!("f.{e}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        assert_eq!(walk(&many, 1, 10).languages().len(), TOP_LANGUAGES);
    }

    #[test]
    fn the_readme_is_a_top_level_regular_file_by_preference() {
        let w = walk(
            &["README.rst", "docs/README.md", "readme.md", "README"],
            1,
            10,
        );
        assert_eq!(w.readme().map(|f| f.name.as_str()), Some("readme.md"));
        let w = walk(&["README.rst", "README"], 1, 10);
        assert_eq!(w.readme().map(|f| f.name.as_str()), Some("README"));
        let mut link = walk(&[], 1, 10);
        link.add(&TreeEntry {
            mode: b"120000",
            object: b"abc",
            path: b"README.md",
        });
        assert_eq!(link.readme(), None);
        assert_eq!(walk(&["READMEFIRST.txt"], 1, 10).readme(), None);
    }

    #[test]
    fn texts_are_cut_on_character_boundaries_and_marked() {
        assert_eq!(cut_text("héllo", 10, false), "héllo");
        assert_eq!(cut_text("héllo", 5, false), "héllo");
        assert_eq!(cut_text("héllo wörld", 5, false), "héll…");
        assert_eq!(cut_text("héllo", 5, true), "héll…");
        assert_eq!(cut_text("日本語のテキスト", 3, false), "日本…");
        assert_eq!(cut_text("abc", 0, false), "");
    }

    fn text(s: &str) -> FileText {
        FileText {
            text: s.into(),
            whole: true,
        }
    }

    #[test]
    fn package_scripts_are_read_as_json() {
        let both = text(r#"{"scripts": {"build": "tsc", "test": "vitest"}}"#);
        assert_eq!(
            package_scripts(&both),
            Scripts {
                build: true,
                test: true
            }
        );
        let placeholder =
            text(r#"{"scripts": {"test": "echo \"Error: no test specified\" && exit 1"}}"#);
        assert_eq!(package_scripts(&placeholder), Scripts::default());
        assert_eq!(package_scripts(&text("{not json")), Scripts::default());
        assert_eq!(
            package_scripts(&FileText {
                whole: false,
                ..both
            }),
            Scripts::default()
        );
    }

    #[test]
    fn make_targets_and_just_recipes() {
        let make = "CC := gcc\n.PHONY: build test\nall build: deps\n\tcc -o x\ntest:: x\n";
        assert!(has_make_target(make, "build"));
        assert!(has_make_target(make, "test"));
        assert!(!has_make_target(make, "deps"));
        assert!(!has_make_target("build := x\n\ttest:\n# test:\n", "build"));
        assert!(!has_make_target("build := x\n\ttest:\n# test:\n", "test"));

        let just = "build-docs:\n  x\n@test *ARGS:\n  cargo test\nbuild := 'x'\n";
        assert!(has_just_recipe(just, "test"));
        assert!(!has_just_recipe(just, "build"));
        assert!(has_just_recipe("build: fmt\n", "build"));
    }
}
