//! The approval policy by risk: low risk completes once verified; medium and high wait for a
//! person; high risk also waits for a person before it runs at all.

use crate::values::Risk;

/// True when a verified task of this risk must wait for a person's approval.
pub fn needs_review(risk: Risk) -> bool {
    risk >= Risk::Medium
}

/// True when a task of this risk must wait for a person's approval before it first runs.
pub fn needs_approval_to_run(risk: Risk) -> bool {
    risk == Risk::High
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_low_risk_skips_review() {
        assert!(!needs_review(Risk::Low));
        assert!(needs_review(Risk::Medium));
        assert!(needs_review(Risk::High));
        assert!(!needs_approval_to_run(Risk::Low));
        assert!(!needs_approval_to_run(Risk::Medium));
        assert!(needs_approval_to_run(Risk::High));
    }
}
