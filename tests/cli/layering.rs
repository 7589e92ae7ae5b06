//! The dependency rule of the hexagonal workspace (each layer depends only on the layers inside
//! it), checked against what Cargo actually builds: `cargo metadata --no-deps` lists every
//! workspace crate with the dependencies its manifest declares.
//!
//! ```text
//!                 the binary (crates/maos): the composition root
//!                                |
//! presentation (crates/presentation/*)  ->  adapters (crates/infrastructure/*)
//!        \                                        |
//!         +------------>  maos-application  <-----+
//!                                |
//!                           maos-domain   (pure: thiserror and serde only)
//! ```
//!
//! - `maos-domain` depends on no workspace crate, and its library on nothing but a short list of
//!   pure crates: no I/O, no async runtime, no clocks, no randomness, no serde_json.
//! - `maos-application` depends on no workspace crate but `maos-domain`, and its library on
//!   nothing but `maos-domain` and `thiserror`.
//! - An adapter (a crate under `crates/infrastructure/`) never depends on another adapter or on a
//!   presentation crate.
//! - Nothing depends on a presentation crate but the composition root: front ends (the CLI, the
//!   web dashboard) never depend on each other.
//! - The composition root (`crates/maos`, the `maos` binary) puts the front ends together;
//!   nothing depends on it.
//!
//! Crates are placed in their layer by where their manifest lives, so a new adapter or front end
//! is covered the day it is added, and a workspace crate that fits no layer is itself a failure.
//! "The library depends on" means normal and build dependencies (target-specific ones included,
//! whatever the target); dev-dependencies are for tests and benches and may pull in test tools
//! (proptest) or a second adapter to compose with (a clock for the store's tests), but never a
//! crate of an outer layer into domain or application, and never a presentation crate.
//!
//! Beside the layers, one rule on text: the sources and documents (`crates/` but for generated
//! code, `tests/`, `docs/`, `adr/`, `ARCHITECTURE.md`, `README.md`) cite no issue numbers and no
//! document outside the repository; each says what it means instead.

use std::fmt::Write as _;
use std::path::{Component, Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;

/// External crates the domain's library may use: pure, no I/O, no global state.
const DOMAIN_ALLOWED: &[&str] = &["thiserror", "serde"];

/// External crates the application's library may use (besides `maos-domain`).
const APPLICATION_ALLOWED: &[&str] = &["thiserror"];

/// Crates that do I/O, own a runtime, read a clock or draw randomness, with the reason each is
/// kept out of the domain. The allowlists already refuse them; this names them in the failure.
const IO_CRATES: &[(&str, &str)] = &[
    ("tokio", "an async runtime and I/O"),
    ("mio", "non-blocking I/O"),
    ("rusqlite", "the SQLite store"),
    ("capnp", "the IPC wire format"),
    ("capnp-rpc", "the IPC runtime"),
    (
        "serde_json",
        "JSON is an outside-world shape; it lives in presentation",
    ),
    ("reqwest", "HTTP client I/O"),
    ("hyper", "HTTP I/O"),
    ("libc", "system calls"),
    ("rand", "randomness; ids come in as values"),
    ("getrandom", "randomness; ids come in as values"),
    ("fastrand", "randomness; ids come in as values"),
    ("chrono", "clocks; time comes in as a value"),
    ("time", "clocks; time comes in as a value"),
    ("uuid", "id generation; ids come in as values"),
    ("etcetera", "the file system's XDG directories"),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Layer {
    Domain,
    Application,
    Infrastructure,
    Presentation,
    Root,
}

impl Layer {
    /// The layer of a crate whose manifest lives in `dir` (relative to the workspace root).
    fn of(dir: &Path) -> Option<Layer> {
        let parts: Vec<&str> = dir
            .components()
            .filter_map(|c| match c {
                Component::Normal(s) => s.to_str(),
                _ => None,
            })
            .collect();
        match parts.as_slice() {
            ["crates", "domain"] => Some(Layer::Domain),
            ["crates", "application"] => Some(Layer::Application),
            ["crates", "infrastructure", _] => Some(Layer::Infrastructure),
            ["crates", "presentation", _] => Some(Layer::Presentation),
            ["crates", "maos"] => Some(Layer::Root),
            _ => None,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Layer::Domain => "the domain",
            Layer::Application => "the application layer",
            Layer::Infrastructure => "an adapter",
            Layer::Presentation => "a presentation crate",
            Layer::Root => "the composition root",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Normal,
    Build,
    Dev,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Normal => "[dependencies]",
            Kind::Build => "[build-dependencies]",
            Kind::Dev => "[dev-dependencies]",
        }
    }

    /// Whether the library (or its build script) is built with it, as opposed to tests only.
    fn ships(self) -> bool {
        self != Kind::Dev
    }
}

#[derive(Debug)]
struct Dep {
    /// The package name (a renamed dependency is listed under its real name).
    name: String,
    kind: Kind,
    /// The workspace crate it is, if it is one.
    member: Option<usize>,
}

#[derive(Debug)]
struct Crate {
    name: String,
    /// The manifest's directory, relative to the workspace root.
    dir: PathBuf,
    layer: Option<Layer>,
    deps: Vec<Dep>,
}

impl Crate {
    fn at(&self) -> String {
        format!("{} ({})", self.name, self.dir.display())
    }
}

#[derive(Debug)]
struct Workspace {
    crates: Vec<Crate>,
}

impl Workspace {
    fn load() -> Workspace {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let out = Command::new(&cargo)
            .args(["metadata", "--format-version", "1", "--no-deps"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap_or_else(|e| panic!("could not run {cargo:?} metadata: {e}"));
        assert!(
            out.status.success(),
            "`cargo metadata` failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let doc: Value = serde_json::from_slice(&out.stdout).expect("cargo metadata prints JSON");
        Workspace::parse(&doc)
    }

    fn parse(doc: &Value) -> Workspace {
        let root = PathBuf::from(doc["workspace_root"].as_str().expect("workspace_root"));
        let members: Vec<&str> = doc["workspace_members"]
            .as_array()
            .expect("workspace_members")
            .iter()
            .map(|m| m.as_str().expect("member id"))
            .collect();
        let packages: Vec<&Value> = doc["packages"]
            .as_array()
            .expect("packages")
            .iter()
            .filter(|p| members.contains(&p["id"].as_str().unwrap_or_default()))
            .collect();

        let dirs: Vec<PathBuf> = packages
            .iter()
            .map(|p| {
                let manifest = Path::new(p["manifest_path"].as_str().expect("manifest_path"));
                relative(&root, manifest.parent().expect("manifest has a directory"))
            })
            .collect();
        let names: Vec<&str> = packages
            .iter()
            .map(|p| p["name"].as_str().expect("name"))
            .collect();

        let crates = packages
            .iter()
            .zip(&dirs)
            .map(|(p, dir)| {
                let deps = p["dependencies"]
                    .as_array()
                    .expect("dependencies")
                    .iter()
                    .map(|d| {
                        let name = d["name"].as_str().expect("dependency name").to_owned();
                        let kind = match d["kind"].as_str() {
                            None | Some("normal") => Kind::Normal,
                            Some("build") => Kind::Build,
                            Some("dev") => Kind::Dev,
                            Some(other) => panic!("unknown dependency kind {other:?}"),
                        };
                        // A path dependency is a workspace crate if its path is a member's
                        // directory; a dependency from a registry or git never is.
                        let member = match d["path"].as_str() {
                            Some(path) => dirs
                                .iter()
                                .position(|m| *m == relative(&root, Path::new(path))),
                            None if d["source"].is_null() => names.iter().position(|n| *n == name),
                            None => None,
                        };
                        Dep { name, kind, member }
                    })
                    .collect();
                Crate {
                    name: p["name"].as_str().expect("name").to_owned(),
                    dir: dir.clone(),
                    layer: Layer::of(dir),
                    deps,
                }
            })
            .collect();
        Workspace { crates }
    }

    fn named(&self, name: &str) -> Option<&Crate> {
        self.crates.iter().find(|c| c.name == name)
    }
}

/// `path` relative to the workspace root (unchanged if it lies outside).
fn relative(root: &Path, path: &Path) -> PathBuf {
    path.strip_prefix(root).unwrap_or(path).to_path_buf()
}

/// The workspace this test was built in, read once.
fn workspace() -> &'static Workspace {
    static WORKSPACE: OnceLock<Workspace> = OnceLock::new();
    WORKSPACE.get_or_init(Workspace::load)
}

/// Fails with every violation listed, if there are any.
fn report(rule: &str, violations: &[String]) {
    if violations.is_empty() {
        return;
    }
    let mut msg = format!(
        "layering rule broken: {rule}\n(the dependency rule: presentation -> adapters -> \
         application -> domain; the rules are in tests/cli/layering.rs)\n"
    );
    for v in violations {
        let _ = writeln!(msg, "  - {v}");
    }
    panic!("{msg}");
}

/// Checks one inner-layer crate: no workspace crate outside `allowed_members` (whatever the kind
/// of dependency), and nothing its library is built with outside `allowed_external`. An I/O crate
/// is named as such.
fn inner_violations(
    ws: &Workspace,
    crate_name: &str,
    allowed_members: &[&str],
    allowed_external: &[&str],
    advice: &str,
) -> Vec<String> {
    let Some(krate) = ws.named(crate_name) else {
        return vec![format!(
            "{crate_name} is not in the workspace (renamed? update tests/cli/layering.rs)"
        )];
    };
    let mut violations = Vec::new();
    for dep in &krate.deps {
        if let Some(member) = dep.member.map(|m| &ws.crates[m]) {
            if !allowed_members.contains(&member.name.as_str()) {
                violations.push(format!(
                    "{} depends on workspace crate {} in {}: {} may depend on {}",
                    krate.at(),
                    member.at(),
                    dep.kind.label(),
                    krate.layer.map_or("it", Layer::describe),
                    if allowed_members.is_empty() {
                        "no workspace crate".to_owned()
                    } else {
                        allowed_members.join(", ")
                    },
                ));
            }
            continue;
        }
        if !dep.kind.ships() {
            continue;
        }
        let io = IO_CRATES.iter().find(|(n, _)| *n == dep.name);
        // The denylist wins over the allowlist, so widening the allowlist by mistake cannot let
        // an I/O crate in.
        if io.is_none() && allowed_external.contains(&dep.name.as_str()) {
            continue;
        }
        let why = match io {
            Some((_, reason)) => format!("`{}` is an I/O crate ({reason})", dep.name),
            None => format!("`{}` is not on the allowlist of pure crates", dep.name),
        };
        violations.push(format!(
            "{} depends on `{}` in {}: {why}; allowed: {}. {advice}",
            krate.at(),
            dep.name,
            dep.kind.label(),
            allowed_external.join(", "),
        ));
    }
    violations
}

fn placement_violations(ws: &Workspace) -> Vec<String> {
    let mut violations = Vec::new();
    for krate in ws.crates.iter().filter(|c| c.layer.is_none()) {
        violations.push(format!(
            "{} is in no layer: put it under crates/domain, crates/application, \
             crates/infrastructure/<adapter>, crates/presentation/<front end> or crates/maos \
             (the binary), or teach tests/cli/layering.rs where it belongs",
            krate.at()
        ));
    }
    for (name, layer) in [
        ("maos-domain", Layer::Domain),
        ("maos-application", Layer::Application),
        ("maos-cli", Layer::Presentation),
        ("maos-web", Layer::Presentation),
        ("maos", Layer::Root),
    ] {
        match ws.named(name) {
            Some(c) if c.layer == Some(layer) => {}
            Some(c) => violations.push(format!("{} should be {}", c.at(), layer.describe())),
            None => violations.push(format!("{name} is missing from the workspace")),
        }
    }
    if !ws
        .crates
        .iter()
        .any(|c| c.layer == Some(Layer::Infrastructure))
    {
        violations.push("no adapter found under crates/infrastructure/".to_owned());
    }
    violations
}

fn domain_violations(ws: &Workspace) -> Vec<String> {
    inner_violations(
        ws,
        "maos-domain",
        &[],
        DOMAIN_ALLOWED,
        "Keep the domain pure: take time and ids as values, and put I/O behind a port in \
         maos-application.",
    )
}

fn application_violations(ws: &Workspace) -> Vec<String> {
    inner_violations(
        ws,
        "maos-application",
        &["maos-domain"],
        &[&["maos-domain"], APPLICATION_ALLOWED].concat(),
        "Declare what the use cases need as a port (a trait) here and implement it in an adapter \
         under crates/infrastructure/.",
    )
}

fn adapter_violations(ws: &Workspace) -> Vec<String> {
    let mut violations = Vec::new();
    for krate in ws
        .crates
        .iter()
        .filter(|c| c.layer == Some(Layer::Infrastructure))
    {
        for dep in &krate.deps {
            let Some(member) = dep.member.map(|m| &ws.crates[m]) else {
                continue;
            };
            if member.layer == Some(Layer::Presentation) {
                violations.push(format!(
                    "adapter {} depends on presentation crate {} in {}: presentation composes \
                     adapters, never the other way round",
                    krate.at(),
                    member.at(),
                    dep.kind.label()
                ));
            }
            if member.layer == Some(Layer::Infrastructure)
                && member.name != krate.name
                && dep.kind.ships()
            {
                violations.push(format!(
                    "adapter {} depends on adapter {} in {}: an adapter depends only on \
                     maos-application and maos-domain; put what they share behind a port, and \
                     compose adapters in presentation",
                    krate.at(),
                    member.at(),
                    dep.kind.label()
                ));
            }
        }
    }
    violations
}

fn presentation_violations(ws: &Workspace) -> Vec<String> {
    let mut violations = Vec::new();
    for krate in &ws.crates {
        for dep in &krate.deps {
            let Some(member) = dep.member.map(|m| &ws.crates[m]) else {
                continue;
            };
            if member.layer == Some(Layer::Root) && member.name != krate.name {
                violations.push(format!(
                    "{} depends on the composition root {} in {}: the binary puts the crates \
                     together, nothing builds on it",
                    krate.at(),
                    member.at(),
                    dep.kind.label()
                ));
            }
            if member.layer == Some(Layer::Presentation)
                && member.name != krate.name
                && krate.layer != Some(Layer::Root)
            {
                violations.push(format!(
                    "{} depends on presentation crate {} in {}: presentation is the outermost \
                     layer and front ends do not build on each other; move what is shared into \
                     maos-application or an adapter, and compose front ends in the binary \
                     (crates/maos)",
                    krate.at(),
                    member.at(),
                    dep.kind.label()
                ));
            }
        }
    }
    violations
}

#[test]
fn every_workspace_crate_sits_in_a_layer() {
    report(
        "every workspace crate belongs to a layer",
        &placement_violations(workspace()),
    );
}

#[test]
fn domain_is_pure() {
    report(
        "maos-domain depends on no workspace crate and on no I/O crate",
        &domain_violations(workspace()),
    );
}

#[test]
fn application_depends_on_domain_only() {
    report(
        "maos-application depends on maos-domain only",
        &application_violations(workspace()),
    );
}

#[test]
fn adapters_do_not_depend_on_each_other() {
    report(
        "an adapter never depends on another adapter or on presentation",
        &adapter_violations(workspace()),
    );
}

#[test]
fn nothing_depends_on_presentation() {
    report(
        "nothing depends on a presentation crate",
        &presentation_violations(workspace()),
    );
}

/// A hand-made workspace that breaks every rule once, so that a rule which can never fire (a
/// typo in a path, a misread field of `cargo metadata`) is noticed.
#[test]
fn the_rules_catch_what_they_are_for() {
    fn registry(name: &str, kind: Option<&str>) -> Value {
        serde_json::json!({
            "name": name, "kind": kind,
            "source": "registry+https://github.com/rust-lang/crates.io-index",
        })
    }
    fn local(name: &str, kind: Option<&str>, dir: &str) -> Value {
        serde_json::json!({ "name": name, "kind": kind, "source": null, "path": format!("/ws/{dir}") })
    }
    fn package(name: &str, dir: &str, deps: Vec<Value>) -> Value {
        serde_json::json!({
            "id": name, "name": name,
            "manifest_path": format!("/ws/{dir}/Cargo.toml"),
            "dependencies": deps,
        })
    }
    let good = || {
        vec![
            package(
                "maos-domain",
                "crates/domain",
                vec![
                    registry("serde", None),
                    registry("thiserror", None),
                    registry("proptest", Some("dev")),
                ],
            ),
            package(
                "maos-application",
                "crates/application",
                vec![
                    local("maos-domain", None, "crates/domain"),
                    registry("thiserror", None),
                ],
            ),
            package(
                "maos-pg",
                "crates/infrastructure/pg",
                vec![
                    local("maos-application", None, "crates/application"),
                    local("maos-domain", None, "crates/domain"),
                    registry("tokio", None),
                    local("maos-clock", Some("dev"), "crates/infrastructure/clock"),
                ],
            ),
            package(
                "maos-clock",
                "crates/infrastructure/clock",
                vec![local("maos-application", None, "crates/application")],
            ),
            package(
                "maos-cli",
                "crates/presentation/cli",
                vec![
                    local("maos-pg", None, "crates/infrastructure/pg"),
                    local("maos-clock", None, "crates/infrastructure/clock"),
                    registry("serde_json", None),
                ],
            ),
            package(
                "maos-web",
                "crates/presentation/web",
                vec![local("maos-application", None, "crates/application")],
            ),
            package(
                "maos",
                "crates/maos",
                vec![
                    local("maos-cli", None, "crates/presentation/cli"),
                    local("maos-web", None, "crates/presentation/web"),
                ],
            ),
        ]
    };
    let ws_of = |packages: Vec<Value>| {
        let ids: Vec<Value> = packages.iter().map(|p| p["id"].clone()).collect();
        Workspace::parse(&serde_json::json!({
            "workspace_root": "/ws", "workspace_members": ids, "packages": packages,
        }))
    };
    let all = |ws: &Workspace| {
        [
            placement_violations(ws),
            domain_violations(ws),
            application_violations(ws),
            adapter_violations(ws),
            presentation_violations(ws),
        ]
        .concat()
    };
    let clean = ws_of(good());
    assert_eq!(all(&clean), Vec::<String>::new());

    // One broken rule per case: (package index, extra dependency, words the message must hold).
    let cases: &[(usize, Value, &[&str])] = &[
        (
            0,
            registry("tokio", None),
            &["maos-domain", "`tokio`", "I/O crate"],
        ),
        (
            0,
            registry("serde_json", Some("build")),
            &["`serde_json`", "[build-dependencies]"],
        ),
        (
            0,
            registry("itertools", None),
            &["`itertools`", "allowlist"],
        ),
        (
            0,
            local("maos-application", Some("dev"), "crates/application"),
            &["workspace crate maos-application"],
        ),
        (
            1,
            registry("rusqlite", None),
            &["maos-application", "`rusqlite`", "I/O crate"],
        ),
        (1, registry("serde", None), &["maos-application", "`serde`"]),
        (
            1,
            local("maos-pg", None, "crates/infrastructure/pg"),
            &["workspace crate maos-pg"],
        ),
        (
            2,
            local("maos-clock", None, "crates/infrastructure/clock"),
            &["adapter maos-pg", "adapter maos-clock"],
        ),
        (
            3,
            local("maos-cli", Some("dev"), "crates/presentation/cli"),
            &["adapter maos-clock", "presentation crate maos-cli"],
        ),
        (
            1,
            local("maos-cli", Some("dev"), "crates/presentation/cli"),
            &["maos-application", "presentation crate maos-cli"],
        ),
        (
            5,
            local("maos-cli", None, "crates/presentation/cli"),
            &["maos-web", "presentation crate maos-cli", "front ends"],
        ),
        (
            4,
            local("maos", Some("dev"), "crates/maos"),
            &["maos-cli", "composition root maos"],
        ),
    ];
    for (index, dep, words) in cases {
        let mut packages = good();
        packages[*index]["dependencies"]
            .as_array_mut()
            .unwrap()
            .push(dep.clone());
        let found = all(&ws_of(packages));
        assert!(
            found.iter().any(|v| words.iter().all(|w| v.contains(w))),
            "adding {dep} to package {index} should be reported with {words:?}; got {found:#?}"
        );
    }

    // A crate outside every layer, and a misplaced domain.
    let mut packages = good();
    packages.push(package("xtask", "xtask", vec![]));
    assert!(
        all(&ws_of(packages))
            .iter()
            .any(|v| v.contains("xtask (xtask) is in no layer"))
    );
    let mut packages = good();
    packages[0]["manifest_path"] = "/ws/domain/Cargo.toml".into();
    assert!(!placement_violations(&ws_of(packages)).is_empty());
}

// ---------------------------------------------------------------------------------------------
// Citations: the sources and documents say what they mean without pointing outside the repository

/// Where no text may cite an issue number or a document outside the repository (relative to the
/// workspace root).
const CITATION_SCOPE: &[&str] = &[
    "crates",
    "tests",
    "docs",
    "adr",
    "ARCHITECTURE.md",
    "README.md",
];

/// Code generated from the schema, which says what its generator writes.
const CITATION_EXEMPT: &[&str] = &["crates/infrastructure/ipc/src/generated"];

/// The workspace root: this test's crate (the binary's) is in `crates/maos`.
fn repository_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("the binary's crate lives two directories below the workspace root")
}

/// The citations in `text`, case-insensitively, as (line, what was cited): an issue number
/// (`issue` or `issues`, then a number, possibly after `#`), the product brief's file name, or
/// its folder of example inputs.
fn citations(text: &str) -> Vec<(usize, String)> {
    // ASCII lowering keeps every byte where it was, so offsets hold for `text` too.
    let lower = text.to_ascii_lowercase();
    let b = lower.as_bytes();
    let starts_word = |i: usize| i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_');
    let skip_space = |mut j: usize| {
        while b.get(j).is_some_and(u8::is_ascii_whitespace) {
            j += 1;
        }
        j
    };
    let mut found: Vec<(usize, usize)> = Vec::new();
    for (i, _) in lower.match_indices("issue") {
        if !starts_word(i) {
            continue;
        }
        let mut j = i + "issue".len();
        if b.get(j) == Some(&b's') {
            j += 1;
        }
        j = skip_space(j);
        if b.get(j) == Some(&b'#') {
            j = skip_space(j + 1);
        }
        if b.get(j).is_some_and(u8::is_ascii_digit) {
            while b.get(j).is_some_and(u8::is_ascii_digit) {
                j += 1;
            }
            found.push((i, j));
        }
    }
    // Built here, so that this file does not cite them itself.
    for needle in [["design", ".md"].concat(), ["seeds", "/"].concat()] {
        for (i, m) in lower.match_indices(needle.as_str()) {
            if starts_word(i) {
                found.push((i, i + m.len()));
            }
        }
    }
    found.sort_unstable();
    found
        .into_iter()
        .map(|(i, j)| (lower[..i].matches('\n').count() + 1, text[i..j].to_owned()))
        .collect()
}

/// Every text file under `path` (or `path` itself), skipping build output and exempt paths.
fn text_files(root: &Path, path: &Path, out: &mut Vec<PathBuf>) {
    let rel = relative(root, path);
    if CITATION_EXEMPT.iter().any(|e| rel == Path::new(e)) {
        return;
    }
    if path.is_dir() {
        if path.file_name().is_some_and(|n| n == "target") {
            return;
        }
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .unwrap_or_else(|e| panic!("cannot list {}: {e}", path.display()))
            .map(|e| e.expect("a directory entry").path())
            .collect();
        entries.sort();
        for entry in entries {
            text_files(root, &entry, out);
        }
    } else if path.is_file() {
        out.push(path.to_path_buf());
    }
}

#[test]
fn sources_and_documents_cite_no_issue_numbers_or_outside_documents() {
    let root = repository_root();
    let mut files = Vec::new();
    for top in CITATION_SCOPE {
        let path = root.join(top);
        assert!(path.exists(), "{} should exist", path.display());
        text_files(root, &path, &mut files);
    }
    assert!(
        files.len() > 100,
        "only {} files were found under {}",
        files.len(),
        root.display()
    );
    let mut violations = Vec::new();
    for file in &files {
        // Binary files (none is expected) cannot cite anything a reader sees.
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        for (line, cited) in citations(&text) {
            violations.push(format!(
                "{}:{line}: `{cited}`",
                relative(root, file).display()
            ));
        }
    }
    assert!(
        violations.is_empty(),
        "tests and documents say what they mean without citing issue numbers or documents \
         outside the repository (describe the rule or the target instead):\n  {}",
        violations.join("\n  ")
    );
}

/// The citation check finds what it is for and leaves ordinary words alone.
#[test]
fn the_citation_check_catches_what_it_is_for() {
    let issue = "issue";
    let design = ["DESIGN", ".md"].concat();
    let seeds = ["seeds", "/"].concat();
    let cited = [
        (format!("target ({issue} 2)"), format!("{issue} 2")),
        (format!("see {issue} #12."), format!("{issue} #12")),
        (format!("see {issue}#7"), format!("{issue}#7")),
        (format!("{} 3 adds", "Issue"), format!("{} 3", "Issue")),
        (format!("{}s 2 and 3", "ISSUE"), format!("{}s 2", "ISSUE")),
        (format!("({design} §1)"), design.clone()),
        (
            format!("docs/{}", design.to_lowercase()),
            design.to_lowercase(),
        ),
        (format!("from {seeds}plan.toml"), seeds.clone()),
        (
            format!("from the {}", seeds.to_uppercase()),
            seeds.to_uppercase(),
        ),
    ];
    for (text, what) in &cited {
        assert_eq!(
            citations(text),
            [(1, what.clone())],
            "{text:?} cites {what:?}"
        );
    }
    assert_eq!(
        citations(&format!("one\ntwo ({issue} 6)\n")),
        [(2, format!("{issue} 6"))]
    );
    for text in [
        format!("t{issue} 5"),
        format!("an {issue} with the store"),
        format!("3 {issue}s"),
        format!("{issue}_3"),
        "seed 42, fixed seeds".to_owned(),
        format!("the design notes, my{design}"),
        format!("old{seeds}x"),
    ] {
        assert_eq!(citations(&text), Vec::new(), "{text:?} cites nothing");
    }
}

// ---------------------------------------------------------------------------------------------
// CLI text: the domain and the application return data; command lines are the front end's

/// Where code may not write a `maos` command line into a string (ADR 0015).
const NO_CLI_TEXT: &[&str] = &["crates/domain/src", "crates/application/src"];

/// Files that still write command lines into strings, each with what is left to do. The list
/// only shrinks: a file that no longer has any must leave it (the test says so). Empty: every
/// reason, refusal and hint of the application is data, rendered by the front ends.
const CLI_TEXT_LEFT: &[(&str, &str)] = &[];

/// The lines of `text` (Rust source) whose code, not comments, writes a `maos` command inside a
/// string literal: a quote or a backtick followed by `maos ` and a lowercase word.
fn cli_text(text: &str) -> Vec<usize> {
    let mut found = Vec::new();
    let mut in_string = false;
    for (n, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if !in_string && (trimmed.starts_with("//") || trimmed.starts_with("#[doc")) {
            continue;
        }
        let b = line.as_bytes();
        let mut hit = false;
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'\\' if in_string => i += 1,
                b'"' => in_string = !in_string,
                b'/' if !in_string && b.get(i + 1) == Some(&b'/') => break,
                _ if in_string && b[i..].starts_with(b"maos ") => {
                    let next = b.get(i + 5).copied().unwrap_or(b' ');
                    let before = if i == 0 { b'"' } else { b[i - 1] };
                    if next.is_ascii_lowercase() && matches!(before, b'`' | b'"' | b' ' | b'(') {
                        hit = true;
                    }
                }
                _ => {}
            }
            i += 1;
        }
        if hit {
            found.push(n + 1);
        }
    }
    found
}

#[test]
fn domain_and_application_write_no_command_lines() {
    let root = repository_root();
    let mut files = Vec::new();
    for top in NO_CLI_TEXT {
        text_files(root, &root.join(top), &mut files);
    }
    assert!(files.len() > 20, "only {} files found", files.len());
    let mut violations = Vec::new();
    let mut clean_but_listed = Vec::new();
    for file in files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "rs"))
    {
        let rel = relative(root, file);
        let text = std::fs::read_to_string(file).expect("a source file reads");
        let lines = cli_text(&text);
        let listed = CLI_TEXT_LEFT.iter().any(|(path, _)| rel == Path::new(path));
        match (lines.is_empty(), listed) {
            (false, false) => {
                violations.extend(lines.iter().map(|l| format!("{}:{l}", rel.display())))
            }
            (true, true) => clean_but_listed.push(rel.display().to_string()),
            _ => {}
        }
    }
    assert!(
        violations.is_empty(),
        "the domain and the application return data, and front ends write command lines \
         (ADR 0015): return a reason or a next step instead of these strings:\n  {}",
        violations.join("\n  ")
    );
    assert!(
        clean_but_listed.is_empty(),
        "these files write no command line any more: take them off CLI_TEXT_LEFT:\n  {}",
        clean_but_listed.join("\n  ")
    );
}

#[test]
fn the_command_text_check_catches_what_it_is_for() {
    let hits = [
        r#"    format!("run `maos task retry {id}` again")"#,
        r#"    "maos agent list shows them".into()"#,
        "    let s = \"a\\\"b maos gc now\";",
    ];
    for h in hits {
        assert_eq!(cli_text(h), [1], "{h}");
    }
    let misses = [
        "    /// Counts for `maos status`.",
        "    // `maos gc` removed it",
        r#"    let s = "maos"; // in a comment: `maos gc`"#,
        r#"    x.maos_task(); "maos""#,
        r#"    "run MAOS status".into()"#,
    ];
    for m in misses {
        assert_eq!(cli_text(m), Vec::<usize>::new(), "{m}");
    }
    // A string that spans lines is followed across them.
    assert_eq!(
        cli_text("let s = \"first line\n    then `maos task show x`\";"),
        [2]
    );
}
