//! Editing a flow file's signer steps, keeping the rest of the file (comments, order,
//! layout) as it was: what a renewal does when it adds a temporary alias to every sign
//! step that signs with an alias, and removes it again.
//!
//! Both functions work on request and response sign steps, written as arrays of tables
//! (`[[steps.signers]]`) or as inline tables (`signers = [{ alias = "a" }]`), and return a
//! file that [`parse`](crate::flow::parse) accepts.

use keyward_domain::Alias;
use toml_edit::{DocumentMut, InlineTable, Item, Table, Value};

use crate::flow::{self, FlowError};

/// The step lists a flow file has.
const STEP_LISTS: [&str; 2] = ["steps", "response_steps"];

fn invalid(field: &str, message: String) -> FlowError {
    FlowError::Invalid { line: 1, column: 1, field: field.to_owned(), message }
}

fn document(source: &str) -> Result<DocumentMut, FlowError> {
    // The file parses as a flow (callers edit deployed flows), so it parses as TOML.
    source.parse::<DocumentMut>().map_err(|e| invalid("", format!("not a TOML document: {e}")))
}

/// The sign steps of the file, as mutable tables (whatever their syntax).
fn sign_steps(doc: &mut DocumentMut, mut each: impl FnMut(&str, &mut Item)) {
    for list in STEP_LISTS {
        let Some(item) = doc.get_mut(list) else { continue };
        let mut visit = |index: usize, kind: Option<&str>, signers: Option<&mut Item>| {
            if kind.map(|k| k.trim().eq_ignore_ascii_case("sign")) == Some(true)
                && let Some(signers) = signers
            {
                each(&format!("{list}[{index}]"), signers);
            }
        };
        match item {
            Item::ArrayOfTables(steps) => {
                for (index, step) in steps.iter_mut().enumerate() {
                    let kind = step.get("type").and_then(Item::as_str).map(str::to_owned);
                    visit(index, kind.as_deref(), step.get_mut("signers"));
                }
            }
            Item::Value(Value::Array(steps)) => {
                for (index, step) in steps.iter_mut().enumerate() {
                    let Some(step) = step.as_inline_table_mut() else { continue };
                    let kind = step.get("type").and_then(Value::as_str).map(str::to_owned);
                    // Inline signers are a value inside an inline table: wrap for the visitor.
                    if let Some(signers) = step.get_mut("signers") {
                        let mut item = Item::Value(signers.clone());
                        visit(index, kind.as_deref(), Some(&mut item));
                        if let Item::Value(changed) = item {
                            *signers = changed;
                        }
                    }
                }
            }
            _ => {}
        }
    }
}

fn alias_of_table(table: &Table) -> Option<&str> {
    table.get("alias").and_then(Item::as_str)
}

fn alias_of_inline(table: &InlineTable) -> Option<&str> {
    table.get("alias").and_then(Value::as_str)
}

/// Adds a signer with alias `new` next to every signer with alias `existing`, with the same
/// parameters (digest, scheme, certificates, signing_time), and `if_active = true`: a node
/// that does not hold `new`'s key yet (or any more) skips it rather than failing.
///
/// # Errors
/// No sign step signs with `existing`; a result that is not a valid flow.
pub fn add_signer(source: &str, existing: &Alias, new: &Alias) -> Result<String, FlowError> {
    let mut doc = document(source)?;
    let mut found = false;
    sign_steps(&mut doc, |_, signers| match signers {
        Item::ArrayOfTables(tables) => {
            let Some(template) = tables.iter().find(|t| alias_of_table(t) == Some(existing.as_str())) else { return };
            found = true;
            if tables.iter().any(|t| alias_of_table(t) == Some(new.as_str())) {
                return;
            }
            let mut table = Table::new();
            for (key, value) in template.iter() {
                table.insert(key, value.clone());
            }
            table.insert("alias", toml_edit::value(new.as_str()));
            table.insert("if_active", toml_edit::value(true));
            // Appended, it renders right after the last signer of its step.
            tables.push(table);
        }
        Item::Value(Value::Array(array)) => {
            let template = array
                .iter()
                .filter_map(Value::as_inline_table)
                .find(|t| alias_of_inline(t) == Some(existing.as_str()))
                .cloned();
            let Some(mut table) = template else { return };
            found = true;
            if array.iter().filter_map(Value::as_inline_table).any(|t| alias_of_inline(t) == Some(new.as_str())) {
                return;
            }
            table.insert("alias", new.as_str().into());
            table.insert("if_active", true.into());
            array.push(table);
        }
        _ => {}
    });
    if !found {
        return Err(invalid("steps", format!("no sign step signs with {existing}")));
    }
    checked(doc)
}

/// Removes every signer with alias `alias`.
///
/// # Errors
/// No sign step signs with `alias`; a sign step that would be left with no signer; a
/// result that is not a valid flow.
pub fn remove_signer(source: &str, alias: &Alias) -> Result<String, FlowError> {
    let mut doc = document(source)?;
    let mut found = false;
    let mut emptied: Option<String> = None;
    sign_steps(&mut doc, |step, signers| {
        let (before, after) = match signers {
            Item::ArrayOfTables(tables) => {
                let before = tables.len();
                tables.retain(|t| alias_of_table(t) != Some(alias.as_str()));
                (before, tables.len())
            }
            Item::Value(Value::Array(array)) => {
                let before = array.len();
                array.retain(|v| v.as_inline_table().and_then(alias_of_inline) != Some(alias.as_str()));
                (before, array.len())
            }
            _ => return,
        };
        if after < before {
            found = true;
            if after == 0 {
                emptied.get_or_insert_with(|| step.to_owned());
            }
        }
    });
    if let Some(step) = emptied {
        return Err(invalid(&format!("{step}.signers"), format!("{alias} is the only signer of {step}; a sign step needs one")));
    }
    if !found {
        return Err(invalid("steps", format!("no sign step signs with {alias}")));
    }
    checked(doc)
}

fn checked(doc: DocumentMut) -> Result<String, FlowError> {
    let out = doc.to_string();
    flow::parse(&out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::{Step, parse};

    fn alias(a: &str) -> Alias {
        Alias::parse(a).unwrap()
    }

    fn signers(source: &str, response: bool) -> Vec<(String, bool)> {
        let flow = parse(source).unwrap();
        let steps = if response { &flow.response_steps } else { &flow.steps };
        steps
            .iter()
            .flat_map(|s| match s {
                Step::Sign { signers, .. } => signers.iter().map(|s| (s.alias.to_string(), s.if_active)).collect(),
                _ => Vec::new(),
            })
            .collect()
    }

    const TABLES: &str = r#"# orders to ACME
name = "orders"

[[steps]]
type = "sign"
  [[steps.signers]]
  alias = "signer"       # the signing key
  digest = "sha384"
  if_active = true

[[steps]]
type = "encrypt"
recipients = ["acme-enc"]

[[response_steps]]
type = "sign"
signers = [{ alias = "signer", signing_time = false }]

[receiver]
url = "https://127.0.0.1:9/in"
"#;

    #[test]
    fn adds_next_to_every_use_and_keeps_the_rest() {
        let out = add_signer(TABLES, &alias("signer"), &alias("signer.next")).unwrap();
        assert_eq!(signers(&out, false), vec![("signer".into(), true), ("signer.next".into(), true)]);
        assert_eq!(signers(&out, true), vec![("signer".into(), false), ("signer.next".into(), true)]);
        assert!(out.contains("# orders to ACME") && out.contains("# the signing key"), "{out}");
        let flow = parse(&out).unwrap();
        let Step::Sign { signers, .. } = &flow.steps[0] else { panic!() };
        assert_eq!(signers[1].digest, signers[0].digest, "same parameters");
        assert!(matches!(flow.steps[1], Step::Encrypt { .. }), "the steps keep their order: {out}");
        // Adding twice changes nothing more.
        assert_eq!(add_signer(&out, &alias("signer"), &alias("signer.next")).unwrap(), out);
    }

    #[test]
    fn removes_again_to_the_original_signers() {
        let added = add_signer(TABLES, &alias("signer"), &alias("signer.next")).unwrap();
        let removed = remove_signer(&added, &alias("signer.next")).unwrap();
        assert_eq!(signers(&removed, false), signers(TABLES, false));
        assert_eq!(signers(&removed, true), signers(TABLES, true));
        assert_eq!(parse(&removed).unwrap(), parse(TABLES).unwrap());
    }

    #[test]
    fn refusals() {
        let err = add_signer(TABLES, &alias("nobody"), &alias("x")).unwrap_err().to_string();
        assert!(err.contains("no sign step signs with nobody"), "{err}");
        let err = remove_signer(TABLES, &alias("signer")).unwrap_err().to_string();
        assert!(err.contains("only signer of steps[0]"), "{err}");
        assert!(remove_signer(TABLES, &alias("nobody")).is_err());
    }
}
