//! Round trips through [`crate::encrypt`] and [`crate::decrypt`] for every key transport and
//! content encryption, and what decryption says about wrong keys, strangers, damaged,
//! truncated and foreign messages.

use std::sync::OnceLock;

use base64::Engine as _;
use cms::authenveloped_data::AuthEnvelopedData;
use cms::content_info::{CmsVersion, ContentInfo};
use cms::enveloped_data::{EnvelopedData, RecipientIdentifier, RecipientInfo, RecipientInfos};
use der::asn1::{Any, ObjectIdentifier, OctetString, SetOfVec};
use der::{Decode, Encode};
use keyward_crypto::{Certificate, Chain, KeyAlgorithm, OaepHash, PrivateKey, generate};
use keyward_domain::Timestamp;
use x509_cert::ext::pkix::SubjectKeyIdentifier;

use crate::{
    CmsError, ContentEncryption, DigestAlgorithm, IncludeCertificates, KeyTransport, RecipientId,
    Signer, decrypt, encrypt, recipients, sign,
};

const NOW: Timestamp = Timestamp::from_seconds(1_800_000_000);
/// 43 bytes: the last of three CBC blocks holds 11 bytes and 5 bytes of padding.
const PAYLOAD: &[u8] = b"invoice 4711\r\nline two\n\x00\xff binary tail!!";

struct Identity {
    key: PrivateKey,
    certificate: Certificate,
}

fn identity(algorithm: KeyAlgorithm, name: &str) -> Identity {
    let (key, certificate) =
        generate(algorithm, &format!("CN={name}, O=Example AG"), 30, NOW).unwrap();
    Identity { key, certificate }
}

fn alice() -> &'static Identity {
    static CELL: OnceLock<Identity> = OnceLock::new();
    CELL.get_or_init(|| identity(KeyAlgorithm::Rsa2048, "alice"))
}

fn bob() -> &'static Identity {
    static CELL: OnceLock<Identity> = OnceLock::new();
    CELL.get_or_init(|| identity(KeyAlgorithm::Rsa2048, "bob"))
}

fn mallory() -> &'static Identity {
    static CELL: OnceLock<Identity> = OnceLock::new();
    CELL.get_or_init(|| identity(KeyAlgorithm::Rsa2048, "mallory"))
}

fn for_alice(transport: KeyTransport, content: ContentEncryption) -> Vec<u8> {
    encrypt(PAYLOAD, &[&alice().certificate], transport, content).unwrap()
}

fn decrypt_as(message: &[u8], identity: &Identity) -> Result<Vec<u8>, CmsError> {
    decrypt(message, &identity.key, &identity.certificate)
}

/// The parts of an enveloped message that tests change.
struct Parts {
    content_type: ObjectIdentifier,
    recipients: Vec<RecipientInfo>,
    encrypted: cms::enveloped_data::EncryptedContentInfo,
    mac: Option<Vec<u8>>,
}

fn parts(message: &[u8]) -> Parts {
    let info = ContentInfo::from_der(message).unwrap();
    if info.content_type == crate::encryption::ID_ENVELOPED_DATA {
        let data: EnvelopedData = info.content.decode_as().unwrap();
        assert_eq!(data.version, CmsVersion::V0);
        Parts {
            content_type: info.content_type,
            recipients: data.recip_infos.0.into_vec(),
            encrypted: data.encrypted_content,
            mac: None,
        }
    } else {
        let data: AuthEnvelopedData = info.content.decode_as().unwrap();
        assert_eq!(data.version, CmsVersion::V0);
        Parts {
            content_type: info.content_type,
            recipients: data.recip_infos.0.into_vec(),
            encrypted: data.auth_encrypted_content_info,
            mac: Some(data.mac.as_bytes().to_vec()),
        }
    }
}

fn assemble(parts: Parts) -> Vec<u8> {
    let recip_infos = RecipientInfos(SetOfVec::try_from(parts.recipients).unwrap());
    let content = match parts.mac {
        None => Any::encode_from(&EnvelopedData {
            version: CmsVersion::V0,
            originator_info: None,
            recip_infos,
            encrypted_content: parts.encrypted,
            unprotected_attrs: None,
        }),
        Some(mac) => Any::encode_from(&AuthEnvelopedData {
            version: CmsVersion::V0,
            originator_info: None,
            recip_infos,
            auth_encrypted_content_info: parts.encrypted,
            auth_attrs: None,
            mac: OctetString::new(mac).unwrap(),
            unauth_attrs: None,
        }),
    }
    .unwrap();
    ContentInfo {
        content_type: parts.content_type,
        content,
    }
    .to_der()
    .unwrap()
}

fn rewrite(message: &[u8], change: impl FnOnce(&mut Parts)) -> Vec<u8> {
    let mut parts = parts(message);
    change(&mut parts);
    assemble(parts)
}

fn ktri(parts: &mut Parts) -> &mut cms::enveloped_data::KeyTransRecipientInfo {
    match &mut parts.recipients[0] {
        RecipientInfo::Ktri(ktri) => ktri,
        other => panic!("not a key-transport recipient: {other:?}"),
    }
}

fn ciphertext(parts: &mut Parts) -> Vec<u8> {
    parts
        .encrypted
        .encrypted_content
        .as_ref()
        .unwrap()
        .as_bytes()
        .to_vec()
}

#[test]
fn every_transport_and_content_round_trips_for_two_recipients() {
    let recipients_given = [&alice().certificate, &bob().certificate];
    for transport in KeyTransport::ALL {
        for content in ContentEncryption::ALL {
            let case = format!("{transport} {content}");
            let message = encrypt(PAYLOAD, &recipients_given, transport, content).unwrap();
            assert_eq!(decrypt_as(&message, alice()).unwrap(), PAYLOAD, "{case}");
            assert_eq!(decrypt_as(&message, bob()).unwrap(), PAYLOAD, "{case}");

            let listed = recipients(&message).unwrap();
            assert_eq!(listed.len(), 2, "{case}");
            for identity in [alice(), bob()] {
                assert_eq!(
                    listed
                        .iter()
                        .filter(|id| id.matches(&identity.certificate))
                        .count(),
                    1,
                    "{case}"
                );
            }
            assert!(!listed.iter().any(|id| id.matches(&mallory().certificate)));

            let mut parts = parts(&message);
            let expected_type = if content.is_authenticated() {
                "1.2.840.113549.1.9.16.1.23"
            } else {
                "1.2.840.113549.1.7.3"
            };
            assert_eq!(parts.content_type.to_string(), expected_type, "{case}");
            assert_eq!(
                parts.mac.as_ref().map(Vec::len),
                content.is_authenticated().then_some(16)
            );
            let written = ktri(&mut parts);
            assert_eq!(written.version, CmsVersion::V0);
            assert!(matches!(
                written.rid,
                RecipientIdentifier::IssuerAndSerialNumber(_)
            ));
            assert_eq!(written.enc_key.as_bytes().len(), 256);
            assert_eq!(
                KeyTransport::from_identifier(&written.key_enc_alg).unwrap(),
                transport
            );
        }
    }
}

#[test]
fn gcm_parameters_name_a_12_byte_nonce_and_a_16_byte_tag() {
    let message = for_alice(
        KeyTransport::RsaOaep(OaepHash::Sha256),
        ContentEncryption::Aes256Gcm,
    );
    let parts = parts(&message);
    let parameters = parts.encrypted.content_enc_alg.parameters.unwrap();
    let der = parameters.to_der().unwrap();
    // SEQUENCE { OCTET STRING (12 bytes), INTEGER 16 }
    assert_eq!(der.len(), 2 + 14 + 3, "{der:02x?}");
    assert_eq!(&der[..4], [0x30, 0x11, 0x04, 0x0c]);
    assert_eq!(&der[16..], [0x02, 0x01, 0x10]);
    assert_eq!(ciphertext_len(&message), PAYLOAD.len());
    // CBC: PKCS#7 padding to whole blocks, the IV as parameters.
    let message = for_alice(KeyTransport::RsaPkcs1v15, ContentEncryption::Aes128Cbc);
    assert_eq!(ciphertext_len(&message), 48);
    let iv = parts_of_iv(&message);
    assert_eq!(iv.len(), 16);
}

fn ciphertext_len(message: &[u8]) -> usize {
    ciphertext(&mut parts(message)).len()
}

fn parts_of_iv(message: &[u8]) -> Vec<u8> {
    parts(message)
        .encrypted
        .content_enc_alg
        .parameters
        .unwrap()
        .decode_as::<OctetString>()
        .unwrap()
        .as_bytes()
        .to_vec()
}

#[test]
fn each_message_has_fresh_keys_and_ivs() {
    let content = ContentEncryption::Aes128Cbc;
    let transport = KeyTransport::RsaOaep(OaepHash::Sha256);
    let first = for_alice(transport, content);
    let second = for_alice(transport, content);
    assert_ne!(parts_of_iv(&first), parts_of_iv(&second));
    assert_ne!(ciphertext_len(&first), 0);
    assert_ne!(
        ciphertext(&mut parts(&first)),
        ciphertext(&mut parts(&second))
    );
}

#[test]
fn a_key_of_another_certificate_is_refused() {
    let message = for_alice(
        KeyTransport::RsaOaep(OaepHash::Sha256),
        ContentEncryption::Aes256Gcm,
    );
    let err = decrypt(&message, &bob().key, &alice().certificate).unwrap_err();
    assert!(matches!(err, CmsError::InvalidParameter(_)), "{err}");
    assert!(err.is_user_error());
    assert!(
        err.to_string()
            .contains("the private key does not belong to the certificate \"CN=alice"),
        "{err}"
    );
}

#[test]
fn a_stranger_is_told_it_is_not_a_recipient() {
    let message = encrypt(
        PAYLOAD,
        &[&alice().certificate, &bob().certificate],
        KeyTransport::RsaPkcs1v15,
        ContentEncryption::Aes128Gcm,
    )
    .unwrap();
    let err = decrypt_as(&message, mallory()).unwrap_err();
    assert!(matches!(err, CmsError::NotRecipient(_)), "{err}");
    assert!(err.is_user_error());
    let text = err.to_string();
    assert!(
        text.contains("\"CN=mallory, O=Example AG\"")
            && text.contains("is not a recipient of the message"),
        "{text}"
    );
    for identity in [alice(), bob()] {
        let named = format!(
            "issuer={} serial={}",
            identity.certificate.issuer().replace(", ", ","),
            identity.certificate.serial_hex()
        );
        assert!(text.contains(&named), "{named} missing in {text}");
    }
}

#[test]
fn a_changed_encrypted_key_fails_to_decrypt() {
    for transport in KeyTransport::ALL {
        for content in ContentEncryption::ALL {
            let case = format!("{transport} {content}");
            let message = rewrite(&for_alice(transport, content), |parts| {
                let ktri = ktri(parts);
                let mut key = ktri.enc_key.as_bytes().to_vec();
                key[17] ^= 0x40;
                ktri.enc_key = OctetString::new(key).unwrap();
            });
            match decrypt_as(&message, alice()) {
                Err(err) => {
                    assert!(
                        matches!(err, CmsError::DecryptionFailed(_)),
                        "{case}: {err}"
                    );
                    assert!(
                        err.to_string()
                            .contains("wrong key, or the message was damaged"),
                        "{case}: {err}"
                    );
                }
                // PKCS#1 v1.5 goes on with a random key; unauthenticated CBC may then
                // decrypt to garbage with valid padding.
                Ok(garbage) => {
                    assert!(
                        transport == KeyTransport::RsaPkcs1v15 && !content.is_authenticated(),
                        "{case} decrypted a changed key"
                    );
                    assert_ne!(garbage, PAYLOAD, "{case}");
                }
            }
        }
    }
}

#[test]
fn pkcs1_failures_look_like_content_failures() {
    // A broken PKCS#1 v1.5 encrypted key is not reported as such (padding oracle): the
    // error is the content's, the same as for a key that unwraps but is wrong.
    let message = for_alice(KeyTransport::RsaPkcs1v15, ContentEncryption::Aes256Gcm);
    let broken_key = rewrite(&message, |parts| {
        let ktri = ktri(parts);
        ktri.enc_key = OctetString::new(vec![0x11; 256]).unwrap();
    });
    let broken_tag = rewrite(&message, |parts| {
        let tag = parts.mac.as_mut().unwrap();
        tag[0] ^= 1;
    });
    let first = decrypt_as(&broken_key, alice()).unwrap_err().to_string();
    let second = decrypt_as(&broken_tag, alice()).unwrap_err().to_string();
    assert_eq!(first, second);
    assert!(
        first.contains("the authentication tag does not match"),
        "{first}"
    );
}

#[test]
fn changed_content_is_detected() {
    let transport = KeyTransport::RsaOaep(OaepHash::Sha256);
    for content in ContentEncryption::ALL {
        let message = for_alice(transport, content);
        // The last byte of the second block: in CBC this flips the last padding byte of the
        // third block, so the padding check fails; in GCM the tag does not match.
        let changed = rewrite(&message, |parts| {
            let mut bytes = ciphertext(parts);
            bytes[31] ^= 0x01;
            parts.encrypted.encrypted_content = Some(OctetString::new(bytes).unwrap());
        });
        let err = decrypt_as(&changed, alice()).unwrap_err();
        assert!(
            matches!(err, CmsError::DecryptionFailed(_)),
            "{content}: {err}"
        );
        let expected = if content.is_authenticated() {
            "the authentication tag does not match"
        } else {
            "the padding of the decrypted content is not valid"
        };
        assert!(err.to_string().contains(expected), "{content}: {err}");

        // A change in the first block: CBC notices nothing (it is not authenticated), but
        // the content differs; GCM refuses.
        let changed = rewrite(&message, |parts| {
            let mut bytes = ciphertext(parts);
            bytes[0] ^= 0x01;
            parts.encrypted.encrypted_content = Some(OctetString::new(bytes).unwrap());
        });
        match decrypt_as(&changed, alice()) {
            Ok(garbage) => {
                assert!(!content.is_authenticated(), "{content} missed a change");
                assert_ne!(garbage, PAYLOAD);
            }
            Err(err) => assert!(matches!(err, CmsError::DecryptionFailed(_)), "{err}"),
        }

        // Cut to a part of a block.
        let cut = rewrite(&message, |parts| {
            let bytes = ciphertext(parts);
            parts.encrypted.encrypted_content =
                Some(OctetString::new(&bytes[..bytes.len() - 1]).unwrap());
        });
        let err = decrypt_as(&cut, alice()).unwrap_err();
        assert!(
            matches!(err, CmsError::DecryptionFailed(_)),
            "{content}: {err}"
        );
    }
}

#[test]
fn a_changed_or_missing_tag_is_detected() {
    for content in [ContentEncryption::Aes128Gcm, ContentEncryption::Aes256Gcm] {
        let message = for_alice(KeyTransport::RsaOaep(OaepHash::Sha1), content);
        for change in [
            (|tag: &mut Vec<u8>| tag[15] ^= 0x80) as fn(&mut Vec<u8>),
            |tag| tag.truncate(12),
            |tag| tag.clear(),
            |tag| tag.push(0),
        ] {
            let changed = rewrite(&message, |parts| change(parts.mac.as_mut().unwrap()));
            let err = decrypt_as(&changed, alice()).unwrap_err();
            assert!(
                matches!(err, CmsError::DecryptionFailed(_)),
                "{content}: {err}"
            );
            assert!(err.to_string().contains("authentication tag"), "{err}");
        }
    }
}

#[test]
fn every_truncation_is_refused() {
    for content in [ContentEncryption::Aes128Cbc, ContentEncryption::Aes128Gcm] {
        let message = encrypt(
            b"hi",
            &[&alice().certificate],
            KeyTransport::RsaOaep(OaepHash::Sha256),
            content,
        )
        .unwrap();
        assert_eq!(decrypt_as(&message, alice()).unwrap(), b"hi");
        for len in 0..message.len() {
            let err = decrypt_as(&message[..len], alice()).unwrap_err();
            assert!(err.is_user_error(), "{len}: {err}");
            assert!(
                matches!(err, CmsError::Malformed(_) | CmsError::Unsupported(_)),
                "{len}: {err}"
            );
            assert!(recipients(&message[..len]).is_err(), "{len}");
        }
    }
}

#[test]
fn random_bytes_are_refused_without_panic() {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for round in 0..400 {
        let len = usize::try_from(next() % 600).unwrap();
        let mut bytes: Vec<u8> = (0..len).map(|_| next().to_le_bytes()[0]).collect();
        if round % 2 == 0 && !bytes.is_empty() {
            // Start like a DER SEQUENCE so that parsing gets further.
            bytes[0] = 0x30;
        }
        let err = decrypt_as(&bytes, alice()).unwrap_err();
        assert!(err.is_user_error(), "{err}");
        assert!(recipients(&bytes).is_err());
    }
    // A real message with single bytes changed anywhere: an error or (in CBC, which is not
    // authenticated) other content, never a panic.
    // Fields nothing depends on (the content type of the encrypted content) may change
    // without effect; a change in the ciphertext never yields the payload.
    let message = for_alice(
        KeyTransport::RsaOaep(OaepHash::Sha256),
        ContentEncryption::Aes128Cbc,
    );
    let encrypted = ciphertext(&mut parts(&message));
    let start = message
        .windows(encrypted.len())
        .position(|window| window == encrypted.as_slice())
        .unwrap();
    for index in 0..message.len() {
        let mut changed = message.clone();
        changed[index] ^= 0x5a;
        if let Ok(content) = decrypt_as(&changed, alice()) {
            assert!(
                content != PAYLOAD || !(start..start + encrypted.len()).contains(&index),
                "{index}"
            );
        }
    }
}

#[test]
fn only_rsa_recipients_are_accepted() {
    let ec = identity(KeyAlgorithm::EcP256, "ec recipient");
    let err = encrypt(
        PAYLOAD,
        &[&alice().certificate, &ec.certificate],
        KeyTransport::RsaOaep(OaepHash::Sha256),
        ContentEncryption::Aes256Gcm,
    )
    .unwrap_err();
    assert!(matches!(err, CmsError::InvalidParameter(_)), "{err}");
    assert_eq!(
        err.to_string(),
        "the recipient certificate \"CN=ec recipient, O=Example AG\" holds an EC P-256 key; keyward encrypts only for RSA keys (key transport)"
    );
    let err = encrypt(
        PAYLOAD,
        &[],
        KeyTransport::RsaPkcs1v15,
        ContentEncryption::Aes128Cbc,
    )
    .unwrap_err();
    assert!(err.to_string().contains("at least one recipient"), "{err}");
    let message = for_alice(KeyTransport::RsaPkcs1v15, ContentEncryption::Aes128Cbc);
    let err = decrypt(&message, &ec.key, &ec.certificate).unwrap_err();
    assert!(err.to_string().contains("only with RSA keys"), "{err}");
}

#[test]
fn a_certificate_given_twice_is_one_recipient() {
    let message = encrypt(
        PAYLOAD,
        &[&alice().certificate, &alice().certificate],
        KeyTransport::RsaOaep(OaepHash::Sha256),
        ContentEncryption::Aes128Gcm,
    )
    .unwrap();
    assert_eq!(recipients(&message).unwrap().len(), 1);
}

#[test]
fn recipients_named_by_key_identifier_are_found() {
    let parsed = x509_cert::Certificate::from_der(alice().certificate.der()).unwrap();
    let Some((_, key_identifier)) = parsed
        .tbs_certificate()
        .get_extension::<SubjectKeyIdentifier>()
        .unwrap()
    else {
        panic!("generated certificates carry a subjectKeyIdentifier");
    };
    let message = rewrite(
        &for_alice(
            KeyTransport::RsaOaep(OaepHash::Sha512),
            ContentEncryption::Aes256Cbc,
        ),
        |parts| {
            let ktri = ktri(parts);
            ktri.version = CmsVersion::V2;
            ktri.rid = RecipientIdentifier::SubjectKeyIdentifier(key_identifier.clone());
        },
    );
    let listed = recipients(&message).unwrap();
    assert_eq!(
        listed,
        [RecipientId::SubjectKeyId(
            key_identifier.0.as_bytes().to_vec()
        )]
    );
    assert!(listed[0].matches(&alice().certificate));
    assert!(!listed[0].matches(&bob().certificate));
    assert!(listed[0].to_string().starts_with("subjectKeyIdentifier="));
    assert_eq!(decrypt_as(&message, alice()).unwrap(), PAYLOAD);
    let err = decrypt_as(&message, bob()).unwrap_err();
    assert!(
        err.to_string()
            .contains("its recipients are subjectKeyIdentifier="),
        "{err}"
    );
}

#[test]
fn pem_and_base64_messages_are_read() {
    let message = for_alice(
        KeyTransport::RsaOaep(OaepHash::Sha384),
        ContentEncryption::Aes128Gcm,
    );
    let encoded = base64::engine::general_purpose::STANDARD.encode(&message);
    let pem = format!("-----BEGIN CMS-----\n{encoded}\n-----END CMS-----\n");
    assert_eq!(decrypt_as(pem.as_bytes(), alice()).unwrap(), PAYLOAD);
    assert_eq!(decrypt_as(encoded.as_bytes(), alice()).unwrap(), PAYLOAD);
    assert_eq!(recipients(pem.as_bytes()).unwrap().len(), 1);
}

#[test]
fn unsupported_algorithms_and_kinds_are_named() {
    let message = for_alice(
        KeyTransport::RsaOaep(OaepHash::Sha256),
        ContentEncryption::Aes128Cbc,
    );
    let triple_des = rewrite(&message, |parts| {
        parts.encrypted.content_enc_alg.oid = ObjectIdentifier::new_unwrap("1.2.840.113549.3.7");
    });
    let err = decrypt_as(&triple_des, alice()).unwrap_err();
    assert!(matches!(err, CmsError::Unsupported(_)), "{err}");
    assert!(
        err.to_string().contains("des-ede3-cbc is not supported"),
        "{err}"
    );

    let other_transport = rewrite(&message, |parts| {
        ktri(parts).key_enc_alg.oid = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
    });
    let err = decrypt_as(&other_transport, alice()).unwrap_err();
    assert!(
        err.to_string().contains("id-ecPublicKey is not supported"),
        "{err}"
    );

    // GCM content belongs in AuthEnvelopedData.
    let gcm = for_alice(
        KeyTransport::RsaOaep(OaepHash::Sha256),
        ContentEncryption::Aes128Gcm,
    );
    let misplaced = rewrite(&gcm, |parts| {
        parts.content_type = crate::encryption::ID_ENVELOPED_DATA;
        parts.mac = None;
    });
    let err = decrypt_as(&misplaced, alice()).unwrap_err();
    assert!(
        err.to_string()
            .contains("must be in authenticated enveloped data"),
        "{err}"
    );

    let detached = rewrite(&message, |parts| parts.encrypted.encrypted_content = None);
    let err = decrypt_as(&detached, alice()).unwrap_err();
    assert!(err.to_string().contains("detached"), "{err}");

    let chain = Chain::new(vec![alice().certificate.clone()]).unwrap();
    let signed = sign(
        PAYLOAD,
        &[Signer {
            key: &alice().key,
            chain: &chain,
            digest: DigestAlgorithm::Sha256,
            scheme: None,
            include: IncludeCertificates::Signer,
            signing_time: None,
        }],
        false,
    )
    .unwrap();
    let err = decrypt_as(&signed, alice()).unwrap_err();
    assert!(err.to_string().contains("signed, not encrypted"), "{err}");
    let err = recipients(&signed).unwrap_err();
    assert!(matches!(err, CmsError::Unsupported(_)), "{err}");
}

#[test]
fn empty_and_large_payloads_round_trip() {
    for content in ContentEncryption::ALL {
        for payload in [Vec::new(), vec![0xab; 100_000]] {
            let message = encrypt(
                &payload,
                &[&alice().certificate],
                KeyTransport::RsaOaep(OaepHash::Sha256),
                content,
            )
            .unwrap();
            assert_eq!(decrypt_as(&message, alice()).unwrap(), payload, "{content}");
        }
    }
}
