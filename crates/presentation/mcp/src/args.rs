//! Reading a tool's arguments: each one by name and type, bounded, with an error that names the
//! argument, what was wrong and what is expected. Unknown arguments are refused (a misspelt one
//! would otherwise be ignored silently).

use rmcp::model::JsonObject;
use serde_json::Value;

use crate::calls::ToolError;

/// The task states a filter may name.
pub(crate) const TASK_STATES: [&str; 12] = [
    "pending",
    "ready",
    "assigned",
    "running",
    "verifying",
    "awaiting_approval",
    "completed",
    "failed",
    "retrying",
    "blocked",
    "cancelled",
    "escalated",
];

/// The longest string argument read at all (the tools' own limits are smaller).
const MAX_STRING: usize = 64 << 10;

/// A tool's arguments.
pub(crate) struct Args<'a> {
    map: &'a JsonObject,
}

impl<'a> Args<'a> {
    /// The arguments, once every key is one of `allowed`.
    pub(crate) fn new(map: &'a JsonObject, allowed: &[&str]) -> Result<Args<'a>, ToolError> {
        if let Some(bad) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
            let expected = if allowed.is_empty() {
                "it takes no arguments".to_owned()
            } else {
                format!("it takes {}", allowed.join(", "))
            };
            return Err(ToolError::invalid(format!(
                "unknown argument {:?}; {expected}",
                maos_application::text::clip(bad, 40)
            )));
        }
        Ok(Args { map })
    }

    /// A string argument, when given (null counts as absent).
    pub(crate) fn str(&self, key: &str, max: usize) -> Result<Option<&'a str>, ToolError> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => {
                let max = max.min(MAX_STRING);
                if s.chars().count() > max {
                    return Err(ToolError::invalid(format!(
                        "`{key}` is {} characters long; the limit is {max}",
                        s.chars().count()
                    )));
                }
                Ok(Some(s.as_str()))
            }
            Some(other) => Err(wrong_type(key, "a string", other)),
        }
    }

    /// A string argument that must be given.
    pub(crate) fn required_str(&self, key: &str, max: usize) -> Result<&'a str, ToolError> {
        self.str(key, max)?
            .ok_or_else(|| ToolError::invalid(format!("`{key}` is required")))
    }

    /// A whole number in `min..=max`, or `default`.
    pub(crate) fn int(
        &self,
        key: &str,
        min: u64,
        max: u64,
        default: u64,
    ) -> Result<u64, ToolError> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(Value::Number(n)) => match n.as_u64() {
                Some(v) if (min..=max).contains(&v) => Ok(v),
                _ => Err(ToolError::invalid(format!(
                    "`{key}` is {n}; give a whole number from {min} to {max}"
                ))),
            },
            Some(other) => Err(wrong_type(key, "a whole number", other)),
        }
    }

    /// A boolean, or `default`.
    pub(crate) fn bool(&self, key: &str, default: bool) -> Result<bool, ToolError> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(other) => Err(wrong_type(key, "true or false", other)),
        }
    }

    /// A list of strings, at most `max` of them, each at most `each` characters.
    pub(crate) fn strings(
        &self,
        key: &str,
        max: usize,
        each: usize,
    ) -> Result<Vec<&'a str>, ToolError> {
        let items = self.array(key, max)?;
        items
            .iter()
            .map(|v| match v {
                Value::String(s) if s.chars().count() <= each => Ok(s.as_str()),
                Value::String(s) => Err(ToolError::invalid(format!(
                    "an item of `{key}` is {} characters long; the limit is {each}",
                    s.chars().count()
                ))),
                other => Err(wrong_type(key, "a list of strings", other)),
            })
            .collect()
    }

    /// A list, at most `max` long (absent: empty).
    pub(crate) fn array(&self, key: &str, max: usize) -> Result<&'a [Value], ToolError> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(&[]),
            Some(Value::Array(items)) if items.len() <= max => Ok(items.as_slice()),
            Some(Value::Array(items)) => Err(ToolError::invalid(format!(
                "`{key}` has {} items; the limit is {max}",
                items.len()
            ))),
            Some(other) => Err(wrong_type(key, "a list", other)),
        }
    }
}

fn wrong_type(key: &str, expected: &str, got: &Value) -> ToolError {
    let got = match got {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    };
    ToolError::invalid(format!("`{key}` must be {expected}, not {got}"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn map(v: Value) -> JsonObject {
        match v {
            Value::Object(m) => m,
            _ => JsonObject::new(),
        }
    }

    #[test]
    fn unknown_arguments_and_wrong_types_are_named() {
        let m = map(json!({"nte": "x"}));
        let e = Args::new(&m, &["note"]).err().map(|e| e.message);
        assert_eq!(
            e.as_deref(),
            Some("unknown argument \"nte\"; it takes note")
        );
        let m = map(json!({"note": 3, "limit": -1, "wait": "yes"}));
        let a = Args::new(&m, &["note", "limit", "wait"]).unwrap();
        assert_eq!(
            a.str("note", 10).err().map(|e| e.message).as_deref(),
            Some("`note` must be a string, not a number")
        );
        assert_eq!(
            a.int("limit", 1, 5, 2).err().map(|e| e.message).as_deref(),
            Some("`limit` is -1; give a whole number from 1 to 5")
        );
        assert!(a.bool("wait", false).is_err());
        assert_eq!(a.int("absent", 1, 5, 2).unwrap(), 2);
    }

    #[test]
    fn strings_and_lists_are_bounded() {
        let m = map(json!({"s": "abcdef", "l": ["a", "b", "c"]}));
        let a = Args::new(&m, &["s", "l"]).unwrap();
        assert!(a.str("s", 5).is_err());
        assert_eq!(a.str("s", 6).unwrap(), Some("abcdef"));
        assert!(a.strings("l", 2, 10).is_err());
        assert_eq!(a.strings("l", 3, 10).unwrap(), ["a", "b", "c"]);
        assert!(a.required_str("missing", 5).is_err());
    }
}
