//! Partners: the receiver and sender systems outside keyward, and what they can do
//! during a renewal.
//!
//! A partner's declared [`Capability`]s decide which variant of a renewal procedure
//! applies to it (see [`crate::procedure`]): a receiver that accepts the old and the new
//! client certificate at the same time needs no downtime, one that accepts only one does.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use crate::alias::check_name;

/// Something a partner system can do at the same time with old and new material.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Capability {
    /// As a TLS server, accepts the old and the new client certificate at once.
    TwoClientCertificates,
    /// Trusts the old and the new client CA at once.
    TwoCas,
    /// Verifies signatures of the old and of the new signing key at once.
    TwoSigningKeys,
    /// Accepts CMS signed data carrying two signatures.
    TwoSignatures,
    /// Decrypts with its old and its new key at once.
    TwoDecryptionKeys,
    /// As a sender, verifies responses signed by the old and by the new key at once.
    TwoResponseKeys,
}

impl Capability {
    /// Every capability, in a stable order.
    pub const ALL: [Capability; 6] = [
        Capability::TwoClientCertificates,
        Capability::TwoCas,
        Capability::TwoSigningKeys,
        Capability::TwoSignatures,
        Capability::TwoDecryptionKeys,
        Capability::TwoResponseKeys,
    ];

    /// The name used on the command line, in the API and in storage.
    pub fn as_str(self) -> &'static str {
        match self {
            Capability::TwoClientCertificates => "two-client-certificates",
            Capability::TwoCas => "two-cas",
            Capability::TwoSigningKeys => "two-signing-keys",
            Capability::TwoSignatures => "two-signatures",
            Capability::TwoDecryptionKeys => "two-decryption-keys",
            Capability::TwoResponseKeys => "two-response-keys",
        }
    }

    /// What the capability means, in words.
    pub fn describe(self) -> &'static str {
        match self {
            Capability::TwoClientCertificates => "accepts the old and the new client certificate at once",
            Capability::TwoCas => "trusts the old and the new client CA at once",
            Capability::TwoSigningKeys => "verifies signatures of the old and the new key at once",
            Capability::TwoSignatures => "accepts CMS data with two signatures",
            Capability::TwoDecryptionKeys => "decrypts with its old and its new key at once",
            Capability::TwoResponseKeys => "verifies responses signed by the old and the new key at once",
        }
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Capability {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Capability::ALL.into_iter().find(|c| c.as_str() == s).ok_or_else(|| {
            let names: Vec<&str> = Capability::ALL.iter().map(|c| c.as_str()).collect();
            format!("unknown capability {s:?}; expected one of {}", names.join(", "))
        })
    }
}

/// A set of capabilities.
pub type Capabilities = BTreeSet<Capability>;

/// Parses a comma-separated list of capability names (`none` or empty for none).
///
/// # Errors
/// The first unknown name.
pub fn parse_capabilities(list: &str) -> Result<Capabilities, String> {
    let list = list.trim();
    if list.is_empty() || list == "none" {
        return Ok(Capabilities::new());
    }
    list.split(',').map(|name| name.trim().parse()).collect()
}

/// Writes a set of capabilities as `parse_capabilities` reads it.
pub fn format_capabilities(capabilities: &Capabilities) -> String {
    if capabilities.is_empty() {
        return "none".to_owned();
    }
    capabilities.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(",")
}

/// Checks a partner name: the alias rules (1-100 characters of `a-z 0-9 . _ -`, folded to
/// lower case).
///
/// # Errors
/// The rule the name breaks.
pub fn check_partner_name(name: &str) -> Result<String, String> {
    check_name(name, "partner name", 100)
}

/// A partner system as declared by the tenant administrator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partner {
    /// The partner's name, which flows' channels refer to.
    pub name: String,
    /// Where the partner is reached (its endpoint; probes use the flows' channel URLs).
    pub url: Option<String>,
    /// What the partner can do with old and new material at once.
    pub capabilities: Capabilities,
    /// Free text: who administers it, how to reach them.
    pub description: Option<String>,
}

impl Partner {
    /// Whether the partner declared `capability`.
    pub fn can(&self, capability: Capability) -> bool {
        self.capabilities.contains(&capability)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capability_names_round_trip() {
        for c in Capability::ALL {
            assert_eq!(c.as_str().parse::<Capability>(), Ok(c));
        }
        let set = parse_capabilities("two-cas, two-client-certificates").unwrap();
        assert_eq!(format_capabilities(&set), "two-client-certificates,two-cas");
        assert_eq!(parse_capabilities("none").unwrap(), Capabilities::new());
        assert_eq!(format_capabilities(&Capabilities::new()), "none");
        let err = parse_capabilities("two-cas,three-cas").unwrap_err();
        assert!(err.contains("three-cas") && err.contains("two-signatures"), "{err}");
    }

    #[test]
    fn partner_names_follow_alias_rules() {
        assert_eq!(check_partner_name("ACME-Erp").unwrap(), "acme-erp");
        assert!(check_partner_name("").is_err());
        assert!(check_partner_name("a b").is_err());
    }
}
