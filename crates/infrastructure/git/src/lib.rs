//! MAOS's workspaces through the git command line (being written): implements the application's
//! `Workspaces` port.
