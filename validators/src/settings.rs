//! A validator's configuration table (`Validate.config_json`), read strictly: a key the wrapper
//! does not know is a mistake worth a clear message, not something to ignore. Every refusal is
//! an [`Error::Config`], which the coordinator reports as `config_error` (exit status 2).

use protocol::sdk::Error;
use serde_json::{Map, Value};

/// The keys of one validator's table.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    validator: &'static str,
    table: Map<String, Value>,
}

impl Settings {
    /// Parses the table, refusing keys outside `known`.
    pub fn parse(json: &str, validator: &'static str, known: &[&str]) -> Result<Settings, Error> {
        let table = match serde_json::from_str(json) {
            Ok(Value::Object(table)) => table,
            _ => {
                return Err(Error::config(format!(
                    "[validators.{validator}] is not a table"
                )))
            }
        };
        if let Some(key) = table.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(Error::config(format!(
                "[validators.{validator}] has an unknown key `{key}`; the known keys are {} \
                 (and the coordinator's: enabled, timeout, files, exclude, batch_size)",
                known.join(", ")
            )));
        }
        Ok(Settings { validator, table })
    }

    /// Whether the table has the key.
    pub fn has(&self, key: &str) -> bool {
        self.table.contains_key(key)
    }

    /// A list of strings; empty when absent.
    pub fn strings(&self, key: &str) -> Result<Vec<String>, Error> {
        match self.table.get(key) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| self.wrong(key, "a list of strings"))
                })
                .collect(),
            Some(_) => Err(self.wrong(key, "a list of strings")),
        }
    }

    /// A string, if present.
    pub fn string(&self, key: &str) -> Result<Option<String>, Error> {
        match self.table.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(self.wrong(key, "a string")),
        }
    }

    /// One of `choices`, if present.
    pub fn choice(&self, key: &str, choices: &[&str]) -> Result<Option<String>, Error> {
        match self.string(key)? {
            Some(v) if !choices.contains(&v.as_str()) => Err(Error::config(format!(
                "validators.{}.{key} is {v:?}; it must be one of {}",
                self.validator,
                choices.join(", ")
            ))),
            other => Ok(other),
        }
    }

    /// A number, if present.
    pub fn number(&self, key: &str) -> Result<Option<f64>, Error> {
        self.typed(key, "a number", Value::as_f64)
    }

    /// A whole number of at least zero, if present.
    pub fn count(&self, key: &str) -> Result<Option<u64>, Error> {
        self.typed(key, "a whole number, 0 or more", Value::as_u64)
    }

    /// A boolean, if present.
    pub fn flag(&self, key: &str) -> Result<Option<bool>, Error> {
        self.typed(key, "true or false", Value::as_bool)
    }

    /// A value `read` accepts, if present; `expected` names what it accepts.
    fn typed<T>(
        &self,
        key: &str,
        expected: &str,
        read: impl Fn(&Value) -> Option<T>,
    ) -> Result<Option<T>, Error> {
        self.table
            .get(key)
            .map(|v| read(v).ok_or_else(|| self.wrong(key, expected)))
            .transpose()
    }

    fn wrong(&self, key: &str, expected: &str) -> Error {
        Error::config(format!(
            "validators.{}.{key} must be {expected}",
            self.validator
        ))
    }
}

/// Parses `"500ms"`, `"30s"`, `"2m"`, `"1h"`, `"30d"` (whole or decimal numbers).
pub fn parse_duration(text: &str) -> Option<std::time::Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let seconds = match unit.trim() {
        "ms" => number / 1000.0,
        "s" => number,
        "m" => number * 60.0,
        "h" => number * 3600.0,
        "d" => number * 86400.0,
        _ => return None,
    };
    std::time::Duration::try_from_secs_f64(seconds).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn unknown_keys_are_refused_with_the_known_ones() {
        let err = Settings::parse(r#"{"selct": []}"#, "ruff", &["select", "ignore"])
            .expect_err("unknown");
        assert!(matches!(err, Error::Config(_)), "{err:?}");
        assert_eq!(
            err.to_string(),
            "[validators.ruff] has an unknown key `selct`; the known keys are select, ignore \
             (and the coordinator's: enabled, timeout, files, exclude, batch_size)"
        );
    }

    #[test]
    fn values_are_checked_by_type_and_choice() {
        let s = Settings::parse(
            r#"{"select": ["E", 1], "mode": "loud"}"#,
            "x",
            &["select", "mode"],
        )
        .expect("known keys");
        assert_eq!(
            s.strings("select").expect_err("mixed").to_string(),
            "validators.x.select must be a list of strings"
        );
        assert!(s.choice("mode", &["basic", "strict"]).is_err());
        assert_eq!(
            s.strings("absent").expect("absent is empty"),
            Vec::<String>::new()
        );
    }

    #[test]
    fn durations_take_the_usual_units() {
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_duration("30d"), Some(Duration::from_secs(30 * 86400)));
        assert_eq!(parse_duration("10"), None);
        assert_eq!(parse_duration("s"), None);
    }
}
