//! What an adapter learns about a run, in the runtime's own terms (mapped to the domain's
//! attempt report by the supervisor).

/// Tokens and money one run used, as far as the agent reported them.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Usage {
    /// Prompt tokens, including cached ones.
    pub input_tokens: u64,
    /// Of `input_tokens`, those served from a prompt cache.
    pub cached_input_tokens: u64,
    /// Completion tokens.
    pub output_tokens: u64,
    /// What the agent itself says the run cost, in US dollars (Claude Code reports this; for
    /// others the supervisor prices the tokens).
    pub cost_usd: Option<f64>,
}

impl Usage {
    /// Adds another report's counts (costs add when both are known, else the known one stays).
    pub fn add(&mut self, other: &Usage) {
        self.input_tokens += other.input_tokens;
        self.cached_input_tokens += other.cached_input_tokens;
        self.output_tokens += other.output_tokens;
        self.cost_usd = match (self.cost_usd, other.cost_usd) {
            (Some(a), Some(b)) => Some(a + b),
            (a, b) => a.or(b),
        };
    }
}
