//! The committed generated code matches `schema/maos.capnp`. With `MAOS_REGENERATE=1` the test
//! rewrites it instead:
//!
//! ```text
//! MAOS_REGENERATE=1 cargo test -p maos-ipc --test ipc generated_code_is_current
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;

const REGENERATE: &str =
    "MAOS_REGENERATE=1 cargo test -p maos-ipc --test ipc generated_code_is_current";

/// The line of the header that names the `capnp` binary's version: another version of the
/// compiler produces the same code, so it does not count as drift.
const BINARY_VERSION_LINE: &str = "// capnp binary version:";

fn crate_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Generates the Rust code for `schema/maos.capnp` into the directory `out` with capnpc (which
/// runs the `capnp` binary); answers the generated file.
pub(crate) fn generate(out: &Path) -> Result<PathBuf, String> {
    let schema_dir = crate_dir().join("../../../schema");
    capnpc::CompilerCommand::new()
        .src_prefix(&schema_dir)
        .file(schema_dir.join("maos.capnp"))
        .output_path(out)
        .run()
        .map_err(|e| e.to_string())?;
    Ok(out.join("maos_capnp.rs"))
}

/// Fails, with what to install, when the schema compiler or its standard imports are missing.
fn require_the_schema_compiler() {
    let install = "install Debian's `capnproto` and `libcapnp-dev` \
                   (`apt-get install capnproto libcapnp-dev`; .ci/run does it)";
    if let Err(e) = Command::new("capnp").arg("--version").output() {
        panic!(
            "the Cap'n Proto schema compiler `capnp` cannot be run ({e}): {install} so that the \
             generated code can be checked against the schema"
        );
    }
    let imports = ["/usr/include", "/usr/local/include"];
    if !imports
        .iter()
        .any(|dir| Path::new(dir).join("capnp/stream.capnp").is_file())
    {
        panic!(
            "capnp/stream.capnp is in none of {imports:?} (the schema imports it for `-> \
             stream`): {install}"
        );
    }
}

fn without_binary_version(code: &str) -> Vec<&str> {
    code.lines()
        .filter(|l| !l.starts_with(BINARY_VERSION_LINE))
        .collect()
}

#[test]
fn generated_code_is_current() {
    require_the_schema_compiler();
    let out = tempfile::tempdir().unwrap();
    let fresh_path = generate(out.path())
        .unwrap_or_else(|e| panic!("regenerating the code from schema/maos.capnp failed: {e}"));
    let fresh = std::fs::read_to_string(&fresh_path).unwrap();
    let committed_path = crate_dir().join("src/generated/maos_capnp.rs");

    if std::env::var_os("MAOS_REGENERATE").is_some_and(|v| !v.is_empty() && v != "0") {
        std::fs::write(&committed_path, &fresh).unwrap();
        eprintln!("rewrote {}", committed_path.display());
        return;
    }

    let committed = std::fs::read_to_string(&committed_path).unwrap_or_default();
    let (fresh_lines, committed_lines) = (
        without_binary_version(&fresh),
        without_binary_version(&committed),
    );
    if fresh_lines != committed_lines {
        let first = fresh_lines
            .iter()
            .zip(&committed_lines)
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| fresh_lines.len().min(committed_lines.len()));
        panic!(
            "crates/infrastructure/ipc/src/generated/maos_capnp.rs is out of date with \
             schema/maos.capnp (they first differ around line {}; the schema now gives {} \
             lines, the committed file has {}).\nRegenerate it with\n\n    {REGENERATE}\n\n\
             and commit both files.",
            first + 2,
            fresh_lines.len(),
            committed_lines.len(),
        );
    }
}
