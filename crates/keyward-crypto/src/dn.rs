//! Distinguished names: parsing the subject strings users type, and printing the names in
//! certificates.
//!
//! Two input styles are accepted:
//! - RFC 4514 style, most specific attribute first: `CN=flow client, O=Example AG, C=DE`.
//!   A backslash escapes the next character (`O=Example\, Inc.`) or, followed by two hex
//!   digits, gives one byte of UTF-8 (`CN=M\C3\BCller`).
//! - OpenSSL style, most general attribute first: `/C=DE/O=Example AG/CN=flow client`.
//!
//! Both produce the same encoded name. Printing ([`format_name`]) uses RFC 4514 order with
//! `", "` between attributes, so printing a generated certificate's subject gives back the
//! RFC 4514 form of what was typed.

use der::asn1::{Any, ObjectIdentifier};
use der::{Tag, Tagged};
use x509_cert::name::Name;

use crate::error::CryptoError;

/// How an attribute's value is encoded in a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ValueEncoding {
    Utf8,
    Printable,
    Ia5,
}

/// One attribute type keyward accepts in subject DNs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AttributeType {
    /// The name printed in certificates' subjects.
    pub short_name: &'static str,
    /// Other names accepted on input (compared case-insensitively, like `short_name`).
    pub aliases: &'static [&'static str],
    /// OID arcs.
    pub oid: &'static [u64],
    pub dotted: &'static str,
    pub encoding: ValueEncoding,
}

const fn at(
    short_name: &'static str,
    aliases: &'static [&'static str],
    oid: &'static [u64],
    dotted: &'static str,
    encoding: ValueEncoding,
) -> AttributeType {
    AttributeType {
        short_name,
        aliases,
        oid,
        dotted,
        encoding,
    }
}

/// Every attribute keyward accepts, with the names it prints.
pub(crate) const ATTRIBUTES: &[AttributeType] = &[
    at(
        "CN",
        &["commonName"],
        &[2, 5, 4, 3],
        "2.5.4.3",
        ValueEncoding::Utf8,
    ),
    at(
        "C",
        &["countryName"],
        &[2, 5, 4, 6],
        "2.5.4.6",
        ValueEncoding::Printable,
    ),
    at(
        "L",
        &["localityName"],
        &[2, 5, 4, 7],
        "2.5.4.7",
        ValueEncoding::Utf8,
    ),
    at(
        "ST",
        &["S", "stateOrProvinceName"],
        &[2, 5, 4, 8],
        "2.5.4.8",
        ValueEncoding::Utf8,
    ),
    at(
        "STREET",
        &["streetAddress"],
        &[2, 5, 4, 9],
        "2.5.4.9",
        ValueEncoding::Utf8,
    ),
    at(
        "O",
        &["organizationName"],
        &[2, 5, 4, 10],
        "2.5.4.10",
        ValueEncoding::Utf8,
    ),
    at(
        "OU",
        &["organizationalUnitName"],
        &[2, 5, 4, 11],
        "2.5.4.11",
        ValueEncoding::Utf8,
    ),
    at(
        "title",
        &[],
        &[2, 5, 4, 12],
        "2.5.4.12",
        ValueEncoding::Utf8,
    ),
    at(
        "postalCode",
        &[],
        &[2, 5, 4, 17],
        "2.5.4.17",
        ValueEncoding::Utf8,
    ),
    at(
        "SN",
        &["surname"],
        &[2, 5, 4, 4],
        "2.5.4.4",
        ValueEncoding::Utf8,
    ),
    at(
        "serialNumber",
        &[],
        &[2, 5, 4, 5],
        "2.5.4.5",
        ValueEncoding::Printable,
    ),
    at(
        "GN",
        &["givenName"],
        &[2, 5, 4, 42],
        "2.5.4.42",
        ValueEncoding::Utf8,
    ),
    at(
        "initials",
        &[],
        &[2, 5, 4, 43],
        "2.5.4.43",
        ValueEncoding::Utf8,
    ),
    at(
        "organizationIdentifier",
        &[],
        &[2, 5, 4, 97],
        "2.5.4.97",
        ValueEncoding::Utf8,
    ),
    at(
        "DC",
        &["domainComponent"],
        &[0, 9, 2342, 19_200_300, 100, 1, 25],
        "0.9.2342.19200300.100.1.25",
        ValueEncoding::Ia5,
    ),
    at(
        "UID",
        &["userId"],
        &[0, 9, 2342, 19_200_300, 100, 1, 1],
        "0.9.2342.19200300.100.1.1",
        ValueEncoding::Utf8,
    ),
    at(
        "emailAddress",
        &["E", "EMAIL"],
        &[1, 2, 840, 113_549, 1, 9, 1],
        "1.2.840.113549.1.9.1",
        ValueEncoding::Ia5,
    ),
];

/// The longest attribute value accepted on input.
const MAX_VALUE_CHARS: usize = 256;

/// One attribute of a parsed DN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DnAttribute {
    pub attribute: AttributeType,
    pub value: String,
}

fn known_names() -> String {
    ATTRIBUTES
        .iter()
        .map(|a| a.short_name)
        .collect::<Vec<_>>()
        .join(", ")
}

fn lookup(name: &str) -> Option<AttributeType> {
    ATTRIBUTES.iter().copied().find(|a| {
        a.short_name.eq_ignore_ascii_case(name)
            || a.aliases
                .iter()
                .any(|alias| alias.eq_ignore_ascii_case(name))
    })
}

/// Splits `input` at unescaped `separator`s, keeping escapes in the pieces.
fn split_unescaped(input: &str, separator: char) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in input.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == separator {
            pieces.push(&input[start..i]);
            start = i + c.len_utf8();
        }
    }
    pieces.push(&input[start..]);
    pieces
}

/// Removes escapes from a value and trims unescaped spaces at both ends.
fn unescape(raw: &str) -> Result<String, String> {
    // (byte, escaped)
    let mut bytes: Vec<(u8, bool)> = Vec::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    let mut buf = [0u8; 4];
    while let Some(c) = chars.next() {
        if c != '\\' {
            for b in c.encode_utf8(&mut buf).bytes() {
                bytes.push((b, false));
            }
            continue;
        }
        let Some(next) = chars.next() else {
            return Err("it ends with a lone backslash".to_owned());
        };
        if next.is_ascii_hexdigit() && chars.peek().is_some_and(char::is_ascii_hexdigit) {
            let low = chars.next().and_then(|l| l.to_digit(16)).unwrap_or(0);
            let high = next.to_digit(16).unwrap_or(0);
            // Both digits are below 16, so the byte value fits.
            bytes.push((u8::try_from(high * 16 + low).unwrap_or(0), true));
        } else {
            for b in next.encode_utf8(&mut buf).bytes() {
                bytes.push((b, true));
            }
        }
    }
    let start = bytes
        .iter()
        .position(|(b, esc)| *esc || !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|(b, esc)| *esc || !b.is_ascii_whitespace())
        .map_or(start, |p| p + 1);
    let value: Vec<u8> = bytes[start..end].iter().map(|(b, _)| *b).collect();
    String::from_utf8(value).map_err(|_| "an escaped byte sequence is not valid UTF-8".to_owned())
}

/// Checks that an unescaped `+` (a multi-valued RDN) does not occur.
fn has_unescaped_plus(component: &str) -> bool {
    split_unescaped(component, '+').len() > 1
}

fn check_value(attribute: AttributeType, value: &str) -> Result<(), String> {
    let name = attribute.short_name;
    if value.is_empty() {
        return Err(format!("{name} has an empty value"));
    }
    if value.chars().count() > MAX_VALUE_CHARS {
        return Err(format!(
            "the value of {name} is longer than {MAX_VALUE_CHARS} characters"
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(format!("the value of {name} contains a control character"));
    }
    match attribute.encoding {
        ValueEncoding::Utf8 => {}
        ValueEncoding::Printable => {
            if !value.chars().all(is_printable_string_char) {
                return Err(format!(
                    "{name} may only contain letters, digits, spaces and ' ( ) + , - . / : = ?"
                ));
            }
        }
        ValueEncoding::Ia5 => {
            if !value.is_ascii() {
                return Err(format!("{name} may only contain ASCII characters"));
            }
        }
    }
    if name == "C" && !(value.len() == 2 && value.chars().all(|c| c.is_ascii_alphabetic())) {
        return Err(format!(
            "C must be a two-letter country code such as DE, not {value:?}"
        ));
    }
    Ok(())
}

fn is_printable_string_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || " '()+,-./:=?".contains(c)
}

/// Parses a subject DN typed by a user. Returns the attributes in encoding order (most
/// general first, as they appear in the certificate).
///
/// # Errors
/// [`CryptoError::InvalidDn`] saying what is wrong: empty, no CN, unknown attribute, an
/// attribute given twice, a multi-valued RDN, or a value that cannot be encoded.
pub(crate) fn parse_dn(input: &str) -> Result<Vec<DnAttribute>, CryptoError> {
    let invalid = |reason: String| CryptoError::InvalidDn {
        dn: input.to_owned(),
        reason,
    };
    // Only leading space is cut here: trailing space may be escaped (`CN=x\ `); values
    // are trimmed one by one.
    let trimmed = input.trim_start();
    if trimmed.is_empty() {
        return Err(invalid(
            "it is empty; give at least a common name such as CN=my client".to_owned(),
        ));
    }
    let (components, openssl_style) = match trimmed.strip_prefix('/') {
        Some(rest) => (split_unescaped(rest, '/'), true),
        None => (split_unescaped(trimmed, ','), false),
    };
    let mut attributes = Vec::with_capacity(components.len());
    for (index, component) in components.iter().enumerate() {
        let position = index + 1;
        if component.trim().is_empty() {
            return Err(invalid(format!(
                "attribute {position} is empty (two separators in a row or one at the end)"
            )));
        }
        if has_unescaped_plus(component) {
            return Err(invalid(format!(
                "attribute {position} ({}) holds an unescaped '+' (a multi-valued RDN, which keyward does not support); write \\+ for a literal plus",
                component.trim()
            )));
        }
        let Some((name, raw_value)) = component.split_once('=') else {
            return Err(invalid(format!(
                "attribute {position} ({}) has no '='; write it as NAME=value, e.g. CN=my client",
                component.trim()
            )));
        };
        let name = name.trim();
        let attribute = lookup(name).ok_or_else(|| {
            invalid(format!(
                "unknown attribute {name:?}; keyward accepts {}",
                known_names()
            ))
        })?;
        let value =
            unescape(raw_value).map_err(|e| invalid(format!("the value of {name}: {e}")))?;
        check_value(attribute, &value).map_err(&invalid)?;
        if attributes
            .iter()
            .any(|a: &DnAttribute| a.attribute == attribute)
        {
            return Err(invalid(format!(
                "attribute {} appears more than once; keyward accepts each attribute once",
                attribute.short_name
            )));
        }
        attributes.push(DnAttribute { attribute, value });
    }
    if !attributes.iter().any(|a| a.attribute.short_name == "CN") {
        return Err(invalid(
            "it has no CN (common name) attribute; add one such as CN=my client".to_owned(),
        ));
    }
    if !openssl_style {
        attributes.reverse();
    }
    Ok(attributes)
}

/// The printed name of an attribute type: its short name, or the dotted OID.
fn attribute_label(oid: &ObjectIdentifier) -> String {
    let dotted = oid.to_string();
    ATTRIBUTES
        .iter()
        .find(|a| a.dotted == dotted)
        .map_or(dotted, |a| a.short_name.to_owned())
}

/// Escapes a value for RFC 4514 output.
fn escape_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == '#' || c == ' '))
            || (i == last && c == ' ');
        if special {
            out.push('\\');
        }
        if c == '\0' {
            out.push_str("\\00");
        } else {
            out.push(c);
        }
    }
    out
}

/// Decodes a directory string value to text, or `None` for types that are not text.
fn value_text(value: &Any) -> Option<String> {
    let bytes = value.value();
    match value.tag() {
        Tag::Utf8String
        | Tag::PrintableString
        | Tag::Ia5String
        | Tag::VisibleString
        | Tag::NumericString => std::str::from_utf8(bytes).ok().map(str::to_owned),
        // T.61 strings in practice hold Latin-1.
        Tag::TeletexString => Some(bytes.iter().map(|b| char::from(*b)).collect()),
        Tag::BmpString => {
            if !bytes.len().is_multiple_of(2) {
                return None;
            }
            let units: Vec<u16> = bytes
                .chunks_exact(2)
                .map(|p| u16::from_be_bytes([p[0], p[1]]))
                .collect();
            String::from_utf16(&units).ok()
        }
        _ => None,
    }
}

/// Prints a name in RFC 4514 order (last RDN first) with `", "` between attributes and
/// `+` inside multi-valued RDNs, e.g. `CN=a, O=b, C=DE`. Values that are not strings are
/// printed as `#` and the hex of their DER encoding.
pub(crate) fn format_name(name: &Name) -> String {
    let rdns: Vec<String> = name
        .iter_rdn()
        .map(|rdn| {
            rdn.iter()
                .map(|atv| {
                    let label = attribute_label(&atv.oid);
                    let value = match value_text(&atv.value) {
                        Some(text) => escape_value(&text),
                        None => match der::Encode::to_der(&atv.value) {
                            Ok(der) => format!("#{}", hex::encode(der)),
                            Err(_) => "#".to_owned(),
                        },
                    };
                    format!("{label}={value}")
                })
                .collect::<Vec<_>>()
                .join("+")
        })
        .collect();
    rdns.into_iter().rev().collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn pairs(input: &str) -> Vec<(String, String)> {
        parse_dn(input)
            .unwrap()
            .into_iter()
            .map(|a| (a.attribute.short_name.to_owned(), a.value))
            .collect()
    }

    fn p(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect()
    }

    #[test]
    fn accepted_dns() {
        let table: &[(&str, &[(&str, &str)])] = &[
            ("CN=a", &[("CN", "a")]),
            (
                "CN=flow client, O=Example AG, OU=Integration, C=DE, L=Walldorf, ST=BW",
                &[
                    ("ST", "BW"),
                    ("L", "Walldorf"),
                    ("C", "DE"),
                    ("OU", "Integration"),
                    ("O", "Example AG"),
                    ("CN", "flow client"),
                ],
            ),
            (
                "/C=DE/O=Example AG/CN=flow client",
                &[("C", "DE"), ("O", "Example AG"), ("CN", "flow client")],
            ),
            ("cn=x,o=y", &[("O", "y"), ("CN", "x")]),
            (
                r"CN=a, O=Example\, Inc.",
                &[("O", "Example, Inc."), ("CN", "a")],
            ),
            (r"CN=M\C3\BCller", &[("CN", "Müller")]),
            (r"CN=\ padded\ ", &[("CN", " padded ")]),
            (
                "  CN =  spaced out  ,O=x",
                &[("O", "x"), ("CN", "spaced out")],
            ),
            (r"CN=1\+1", &[("CN", "1+1")]),
            (r"/CN=a\/b/O=x", &[("CN", "a/b"), ("O", "x")]),
            ("CN=a=b", &[("CN", "a=b")]),
            (
                "E=ops@example.com, CN=ops",
                &[("CN", "ops"), ("emailAddress", "ops@example.com")],
            ),
            ("CN=x, DC=example", &[("DC", "example"), ("CN", "x")]),
            ("CN=Ünïcødé 名前", &[("CN", "Ünïcødé 名前")]),
        ];
        for (input, expected) in table {
            assert_eq!(pairs(input), p(expected), "input {input:?}");
        }
    }

    #[test]
    fn refused_dns_say_why() {
        let table: &[(&str, &str)] = &[
            ("", "it is empty"),
            ("   ", "it is empty"),
            ("O=Example", "no CN"),
            ("CN=a, XX=b", "unknown attribute \"XX\""),
            ("CN=a, O=b, O=c", "appears more than once"),
            ("CN=a, C=Germany", "two-letter country code"),
            ("CN=a, C=D1", "two-letter country code"),
            ("CN=", "CN has an empty value"),
            ("CN=a,,O=b", "attribute 2 is empty"),
            ("CN=a,", "attribute 2 is empty"),
            ("CN=a+O=b", "multi-valued RDN"),
            ("CN", "has no '='"),
            (r"CN=a\", "lone backslash"),
            (r"CN=\FF", "not valid UTF-8"),
            ("CN=a, E=müller@example.com", "ASCII"),
            ("CN=a, serialNumber=x_y", "serialNumber may only contain"),
            ("CN=a\tb", "control character"),
        ];
        for (input, needle) in table {
            let err = parse_dn(input).unwrap_err();
            assert!(err.is_user_error());
            let text = err.to_string();
            assert!(text.contains(needle), "input {input:?}: {text}");
            assert!(text.starts_with("the subject DN"), "{text}");
        }
        let long = format!("CN={}", "x".repeat(300));
        assert!(
            parse_dn(&long)
                .unwrap_err()
                .to_string()
                .contains("longer than 256")
        );
    }

    #[test]
    fn escaping_for_output() {
        assert_eq!(escape_value("a,b"), r"a\,b");
        assert_eq!(escape_value("#x"), r"\#x");
        assert_eq!(escape_value(" x "), r"\ x\ ");
        assert_eq!(escape_value("a+b<c>;\"\\"), r#"a\+b\<c\>\;\"\\"#);
        assert_eq!(escape_value("plain"), "plain");
        // What we print, we parse back.
        for value in ["a,b", " lead", "trail ", "#hash", "x+y", r"back\slash"] {
            let parsed = pairs(&format!("CN={}", escape_value(value)));
            assert_eq!(parsed, p(&[("CN", value)]), "{value:?}");
        }
    }
}
