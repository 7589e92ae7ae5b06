//! The approval policy by risk: low risk completes once verified; medium and high wait for a
//! person (high risk will also need approval before it runs, once approvals exist).

use crate::values::Risk;

/// True when a verified task of this risk must wait for a person's approval.
pub fn needs_review(risk: Risk) -> bool {
    risk >= Risk::Medium
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_low_risk_skips_review() {
        assert!(!needs_review(Risk::Low));
        assert!(needs_review(Risk::Medium));
        assert!(needs_review(Risk::High));
    }
}
