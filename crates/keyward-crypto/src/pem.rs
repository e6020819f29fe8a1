//! PEM text: splitting a file into its blocks and writing blocks.
//!
//! Reading is lenient in what OpenSSL and other tools produce: text around and between
//! blocks is ignored, any line length and CRLF line endings are accepted. Each block's
//! content is returned as bytes; interpreting it (certificate, key, PKCS#7) is up to the
//! caller, which knows the block's number and label for error messages.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use zeroize::Zeroizing;

use crate::error::CryptoError;

/// One block of a PEM file.
pub(crate) struct PemBlock {
    /// 1-based position in the file, for messages.
    pub number: usize,
    /// The label, e.g. `CERTIFICATE`.
    pub label: String,
    /// The decoded content (wiped on drop, as it may be a private key).
    pub der: Zeroizing<Vec<u8>>,
}

/// Whether `bytes` look like PEM text (contain a BEGIN line).
pub(crate) fn looks_like_pem(bytes: &[u8]) -> bool {
    // A BEGIN line at the start of a line: DER that merely contains the text (in a comment
    // extension, say) is not PEM. DER starts with a SEQUENCE tag, which no text does.
    bytes.first() != Some(&0x30)
        && bytes
            .windows(12)
            .any(|w| (w[0] == b'\n' || w[0] == b'\r') && &w[1..] == b"-----BEGIN ")
        || bytes.starts_with(b"-----BEGIN ")
}

/// Splits PEM text into blocks.
///
/// # Errors
/// [`CryptoError::InvalidPem`] naming the block that is damaged (no END line, bad base64,
/// legacy encryption headers) or saying that there is no block at all.
pub(crate) fn parse_blocks(bytes: &[u8]) -> Result<Vec<PemBlock>, CryptoError> {
    let text = String::from_utf8_lossy(bytes);
    let mut blocks = Vec::new();
    let mut rest: &str = &text;
    while let Some(begin) = rest.find("-----BEGIN ") {
        let number = blocks.len() + 1;
        let after_begin = &rest[begin + "-----BEGIN ".len()..];
        let Some(label_end) = after_begin.find("-----") else {
            return Err(CryptoError::InvalidPem(format!(
                "PEM block {number} has a damaged BEGIN line"
            )));
        };
        let label = after_begin[..label_end].trim().to_owned();
        if label.contains('\n') || label.is_empty() {
            return Err(CryptoError::InvalidPem(format!(
                "PEM block {number} has a damaged BEGIN line"
            )));
        }
        let body_start = &after_begin[label_end + "-----".len()..];
        let end_marker = format!("-----END {label}-----");
        let Some(end) = body_start.find(&end_marker) else {
            return Err(CryptoError::InvalidPem(format!(
                "PEM block {number} ({label}) has no matching \"{end_marker}\" line"
            )));
        };
        let body = &body_start[..end];
        if body.contains("Proc-Type:") || body.contains("DEK-Info:") {
            return Err(CryptoError::InvalidPem(format!(
                "PEM block {number} ({label}) is encrypted in OpenSSL's legacy format (Proc-Type header), which keyward does not read; convert it with `openssl pkcs8 -topk8` (PKCS#8) first"
            )));
        }
        let mut base64_text = Zeroizing::new(String::with_capacity(body.len()));
        for line in body.lines() {
            let line = line.trim();
            if line.contains(':') {
                // RFC 1421 style header lines carry no content.
                continue;
            }
            base64_text.extend(line.chars().filter(|c| !c.is_whitespace()));
        }
        let der = STANDARD.decode(base64_text.as_bytes()).map_err(|e| {
            CryptoError::InvalidPem(format!(
                "PEM block {number} ({label}) is damaged: its base64 content is invalid ({e})"
            ))
        })?;
        blocks.push(PemBlock {
            number,
            label,
            der: Zeroizing::new(der),
        });
        rest = &body_start[end + end_marker.len()..];
    }
    if blocks.is_empty() {
        return Err(CryptoError::InvalidPem(
            "the text contains no PEM block (no -----BEGIN line)".to_owned(),
        ));
    }
    Ok(blocks)
}

/// Writes one PEM block with 64-character lines, LF line endings and a final newline.
pub(crate) fn encode(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let mut out = String::with_capacity(body.len() + body.len() / 64 + 2 * label.len() + 40);
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    let mut line_start = 0;
    while line_start < body.len() {
        let line_end = (line_start + 64).min(body.len());
        out.push_str(&body[line_start..line_end]);
        out.push('\n');
        line_start = line_end;
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_text_around_blocks() {
        let data: Vec<u8> = (0..=255u8).collect();
        let pem = encode("THING", &data);
        assert!(pem.lines().all(|l| l.len() <= 64));
        let text = format!(
            "subject=whatever\r\n{}\nnoise\n{}",
            pem.replace('\n', "\r\n"),
            encode("OTHER", b"x")
        );
        let blocks = parse_blocks(text.as_bytes()).unwrap();
        assert_eq!(blocks.len(), 2);
        assert_eq!((blocks[0].number, blocks[0].label.as_str()), (1, "THING"));
        assert_eq!(&blocks[0].der[..], &data[..]);
        assert_eq!(
            (
                blocks[1].number,
                blocks[1].label.as_str(),
                &blocks[1].der[..]
            ),
            (2, "OTHER", &b"x"[..])
        );
    }

    #[test]
    fn damaged_blocks_are_named() {
        let cases: &[(&str, &str)] = &[
            ("nothing here", "no PEM block"),
            (
                "-----BEGIN CERTIFICATE-----\nAAAA\n",
                "PEM block 1 (CERTIFICATE) has no matching",
            ),
            (
                "-----BEGIN CERTIFICATE-----\nA*A\n-----END CERTIFICATE-----\n",
                "PEM block 1 (CERTIFICATE) is damaged",
            ),
            (
                "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nAAAA\n-----END RSA PRIVATE KEY-----\n",
                "legacy format",
            ),
            ("-----BEGIN -----\n-----END -----\n", "damaged BEGIN line"),
        ];
        for (input, needle) in cases {
            let err = parse_blocks(input.as_bytes()).err().unwrap();
            assert!(err.to_string().contains(needle), "{input:?}: {err}");
            assert!(err.is_user_error());
        }
    }
}
