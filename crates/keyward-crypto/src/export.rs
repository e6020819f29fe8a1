//! Writing chains and key pairs for other systems: certs-only PKCS#7 (`.p7b`, DER and
//! PEM) and PKCS#12 (`.p12`/`.pfx`).
//!
//! PKCS#12 files are written by p12-keystore with its defaults (PBES2 with AES-256-CBC and
//! PBKDF2-HMAC-SHA256 for the key and certificates, HMAC-SHA256 MAC), which OpenSSL 3 and
//! Java 17 `keytool` read. The alias becomes the friendly name of the key entry.

use cms::cert::CertificateChoices;
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{CertificateSet, EncapsulatedContentInfo, SignedData, SignerInfos};
use der::asn1::{Any, SetOfVec};
use der::{Decode, Encode};
use p12_keystore::{KeyStore, KeyStoreEntry, PrivateKeyChain};

use crate::certificate::Certificate;
use crate::chain::Chain;
use crate::error::CryptoError;
use crate::key::PrivateKey;
use crate::oids;

fn build_p7b(chain: &Chain) -> Result<Vec<u8>, CryptoError> {
    let mut certificates = Vec::with_capacity(chain.certificates().len());
    for cert in chain.certificates() {
        certificates.push(CertificateChoices::Certificate(
            x509_cert::Certificate::from_der(cert.der()).map_err(CryptoError::internal)?,
        ));
    }
    let signed = SignedData {
        version: CmsVersion::V1,
        digest_algorithms: SetOfVec::new(),
        encap_content_info: EncapsulatedContentInfo {
            econtent_type: oids::ID_DATA,
            econtent: None,
        },
        certificates: Some(CertificateSet(
            SetOfVec::try_from(certificates).map_err(CryptoError::internal)?,
        )),
        crls: None,
        signer_infos: SignerInfos(SetOfVec::new()),
    };
    let info = ContentInfo {
        content_type: oids::ID_SIGNED_DATA,
        content: Any::encode_from(&signed).map_err(CryptoError::internal)?,
    };
    info.to_der().map_err(CryptoError::internal)
}

/// The chain as a certs-only PKCS#7 `SignedData` in a `ContentInfo`, DER.
///
/// DER sorts the certificates of the set by their encoding, so readers get them in no
/// particular order; [`crate::parse_certificates`] orders them again.
pub fn p7b_der(chain: &Chain) -> Vec<u8> {
    // Encoding certificates that were parsed from valid DER cannot fail; the empty vector
    // is a fallback that is never produced in practice.
    build_p7b(chain).unwrap_or_default()
}

/// The chain as a PEM `PKCS7` block.
pub fn p7b_pem(chain: &Chain) -> String {
    crate::pem::encode("PKCS7", &p7b_der(chain))
}

/// A PKCS#12 file holding `key` with `chain` (leaf first), protected by `password`, with
/// `alias` as the friendly name.
///
/// # Errors
/// [`CryptoError::EmptyPassword`] for an empty password (many tools cannot open such
/// files), [`CryptoError::InvalidParameter`] for an empty alias, [`CryptoError::Internal`]
/// when encoding fails.
pub fn pkcs12(
    key: &PrivateKey,
    chain: &Chain,
    alias: &str,
    password: &str,
) -> Result<Vec<u8>, CryptoError> {
    if password.is_empty() {
        return Err(CryptoError::EmptyPassword(
            "the PKCS#12 password must not be empty; many programs cannot open files without one"
                .to_owned(),
        ));
    }
    if alias.trim().is_empty() {
        return Err(CryptoError::InvalidParameter(
            "the PKCS#12 alias (friendly name) must not be empty".to_owned(),
        ));
    }
    let p12_key =
        p12_keystore::PrivateKey::from_der(key.pkcs8_der()).map_err(CryptoError::internal)?;
    let mut certs = Vec::with_capacity(chain.certificates().len());
    for cert in chain.certificates() {
        certs.push(p12_keystore::Certificate::from_der(cert.der()).map_err(CryptoError::internal)?);
    }
    let local_key_id = local_key_id(chain.leaf());
    let mut store = KeyStore::new();
    store.add_entry(
        alias,
        KeyStoreEntry::PrivateKeyChain(PrivateKeyChain::new(local_key_id, p12_key, certs)),
    );
    store
        .writer(password)
        .write()
        .map_err(CryptoError::internal)
}

/// The local key id linking key and certificate: the SHA-1 of the certificate, as OpenSSL
/// and Java do.
fn local_key_id(leaf: &Certificate) -> Vec<u8> {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, leaf.der())
        .as_ref()
        .to_vec()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::issue::generate;
    use keyward_domain::{KeyAlgorithm, Timestamp};

    #[test]
    fn p7b_is_a_certs_only_signed_data() {
        let (_, cert) = generate(
            KeyAlgorithm::Ed25519,
            "CN=p7",
            1,
            Timestamp::from_seconds(1_800_000_000),
        )
        .unwrap();
        let chain = Chain::new(vec![cert]).unwrap();
        let der = p7b_der(&chain);
        let info = ContentInfo::from_der(&der).unwrap();
        assert_eq!(info.content_type, oids::ID_SIGNED_DATA);
        let signed: SignedData = info.content.decode_as().unwrap();
        assert_eq!(signed.certificates.unwrap().0.len(), 1);
        assert!(signed.signer_infos.0.is_empty());
        assert!(p7b_pem(&chain).starts_with("-----BEGIN PKCS7-----\n"));
    }

    #[test]
    fn pkcs12_refuses_empty_password_and_alias() {
        let (key, cert) = generate(
            KeyAlgorithm::EcP256,
            "CN=p12",
            1,
            Timestamp::from_seconds(1_800_000_000),
        )
        .unwrap();
        let chain = Chain::new(vec![cert]).unwrap();
        let err = pkcs12(&key, &chain, "a", "").unwrap_err();
        assert!(
            err.is_user_error() && err.to_string().contains("must not be empty"),
            "{err}"
        );
        let err = pkcs12(&key, &chain, " ", "pw").unwrap_err();
        assert!(
            err.is_user_error() && err.to_string().contains("alias"),
            "{err}"
        );
    }
}
