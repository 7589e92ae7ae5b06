//! MAOS application layer.
