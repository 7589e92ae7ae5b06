//! Plan files: the checker of a plan's text (TOML or JSON), which reports every problem with its
//! place, and the machinery that MAOS's other file checkers share (`toml_doc`, `diagnostics`).

pub mod diagnostics;
pub mod plan_file;
pub mod toml_doc;
