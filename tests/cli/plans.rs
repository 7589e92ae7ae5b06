//! Plans, workflows and the orchestration lifecycle end to end (being written).
