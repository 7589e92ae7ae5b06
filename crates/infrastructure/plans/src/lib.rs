//! Plan files: the checker of a plan's text (TOML or JSON), which reports every problem with its
//! place; `PlanFiles`, the application's `PlanReader` over it (a planner's plan read, a plan
//! written, the JSON Schema and an example of the format); and the machinery that MAOS's other
//! file checkers share (`toml_doc`, `diagnostics`).

pub mod diagnostics;
pub mod keys;
pub mod plan_file;
mod reader;
mod schema;
pub mod toml_doc;

pub use reader::PlanFiles;
