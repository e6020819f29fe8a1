//! Aliases: the stable names under which flows find their keys.
//!
//! An alias is 1 to 250 characters from the safe set `a-z 0-9 . _ -`, and starts with a
//! letter or digit. Upper-case letters are accepted on input and folded to lower case, so
//! `Partner_A` and `partner_a` name the same entry (as in Java keystores). The set keeps an
//! alias usable unescaped in URLs, file names, flow files and shell commands.

use std::fmt;

use crate::error::DomainError;

/// Longest alias accepted, in characters.
pub const MAX_ALIAS_LEN: usize = 250;

/// A validated, lower-case alias.
///
/// The only way to build one is [`Alias::parse`], so every `Alias` in the program obeys the
/// rules in the module documentation.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Alias(String);

impl Alias {
    /// Parses user input into an alias.
    ///
    /// # Errors
    /// [`DomainError::InvalidAlias`] naming the first rule the input breaks.
    pub fn parse(input: &str) -> Result<Self, DomainError> {
        check_name(input, "an alias", MAX_ALIAS_LEN)
            .map(Self)
            .map_err(|reason| DomainError::InvalidAlias { alias: input.chars().take(80).collect(), reason })
    }

    /// The alias as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Checks a name against the alias rules (1 to `max_len` characters of `a-z 0-9 . _ -`,
/// upper case folded, starting with a letter or digit) and returns it in lower case, or
/// the first rule it breaks; `what` names the kind of name in the message ("an alias").
/// Flow names follow the same rules.
///
/// # Errors
/// The reason, for people.
pub fn check_name(input: &str, what: &str, max_len: usize) -> Result<String, String> {
    if input.is_empty() {
        return Err(format!("{what} must not be empty"));
    }
    let len = input.chars().count();
    if len > max_len {
        return Err(format!("{what} has at most {max_len} characters, this one has {len}"));
    }
    if let Some((position, bad)) = input
        .chars()
        .enumerate()
        .find(|(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "character {:?} at position {} is not allowed; use letters a-z, digits, '.', '_' and '-'",
            bad,
            position + 1
        ));
    }
    // Checked above: the string is non-empty and ASCII.
    if !input.as_bytes()[0].is_ascii_alphanumeric() {
        return Err(format!("{what} must start with a letter or a digit"));
    }
    Ok(input.to_ascii_lowercase())
}

impl fmt::Display for Alias {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Alias {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alias_rules_as_a_table() {
        let long_ok = "a".repeat(250);
        let too_long = "a".repeat(251);
        let cases: &[(&str, Option<&str>)] = &[
            ("sap_cloudintegrationcertificate", Some("sap_cloudintegrationcertificate")),
            ("Partner-A.2026", Some("partner-a.2026")),
            ("x", Some("x")),
            ("0start", Some("0start")),
            (&long_ok, Some(&long_ok)),
            ("", None),
            (&too_long, None),
            ("-leading-dash", None),
            (".hidden", None),
            ("_under", None),
            ("has space", None),
            ("slash/alias", None),
            ("back\\slash", None),
            ("quote'", None),
            ("ümlaut", None),
            ("semi;colon", None),
            ("new\nline", None),
            ("percent%20", None),
        ];
        for (input, expected) in cases {
            let got = Alias::parse(input).ok();
            assert_eq!(got.as_ref().map(Alias::as_str), *expected, "input {input:?}");
        }
    }

    #[test]
    fn error_names_the_offending_character() {
        let err = Alias::parse("bad alias").unwrap_err();
        assert!(err.to_string().contains("' '"), "{err}");
        assert!(err.to_string().contains("position 4"), "{err}");
    }
}
