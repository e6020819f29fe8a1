//! [`crate::sign`] writes, byte for byte, what the `cms` crate's owned `ContentInfo`,
//! `SignedData` and `SignerInfo` types write for the same message.

use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{
    CertificateSet, EncapsulatedContentInfo, SignedData, SignerIdentifier, SignerInfo, SignerInfos,
};
use der::asn1::{Any, OctetString, SetOfVec};
use der::{Decode, Encode};
use keyward_crypto::{Chain, KeyAlgorithm, PrivateKey, generate};
use keyward_domain::Timestamp;

use crate::algorithm::{ID_DATA, ID_SIGNED_DATA};
use crate::{DigestAlgorithm, IncludeCertificates, SignatureScheme, Signer, sign};

const NOW: Timestamp = Timestamp::from_seconds(1_800_000_000);

/// The message as the `cms` types encode it, built from the `SignerInfo`s of `message`
/// (whose signatures may be randomised and so cannot be made again).
fn written_by_cms_types(
    payload: &[u8],
    signers: &[Signer<'_>],
    detached: bool,
    message: &[u8],
) -> Vec<u8> {
    let decoded = ContentInfo::from_der(message)
        .unwrap()
        .content
        .decode_as::<SignedData>()
        .unwrap();
    let mut digest_algorithms = SetOfVec::new();
    let mut certificates: Vec<CertificateChoices> = Vec::new();
    let mut signer_infos = Vec::new();
    for (index, signer) in signers.iter().enumerate() {
        let identifier = signer.digest.identifier();
        if !digest_algorithms.iter().any(|known| known == &identifier) {
            digest_algorithms.insert(identifier).unwrap();
        }
        let included = match signer.include {
            IncludeCertificates::None => &[][..],
            IncludeCertificates::Signer => &signer.chain.certificates()[..1],
            IncludeCertificates::Chain => signer.chain.certificates(),
        };
        for certificate in included {
            let choice = CertificateChoices::Certificate(
                x509_cert::Certificate::from_der(certificate.der()).unwrap(),
            );
            if !certificates.contains(&choice) {
                certificates.push(choice);
            }
        }
        let parsed = x509_cert::Certificate::from_der(signer.chain.leaf().der()).unwrap();
        let sid = SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
            issuer: parsed.tbs_certificate().issuer().clone(),
            serial_number: parsed.tbs_certificate().serial_number().clone(),
        });
        // The signer infos of `message` are in DER order; find this signer's by its
        // signer identifier, digest and position among equal ones.
        let same =
            |info: &&SignerInfo| info.sid == sid && info.digest_alg == signer.digest.identifier();
        let earlier = signers[..index]
            .iter()
            .filter(|other| {
                other.chain.leaf() == signer.chain.leaf() && other.digest == signer.digest
            })
            .count();
        let written = decoded
            .signer_infos
            .0
            .iter()
            .filter(same)
            .nth(earlier)
            .unwrap();
        signer_infos.push(SignerInfo {
            version: CmsVersion::V1,
            sid,
            digest_alg: signer.digest.identifier(),
            // Put in order again by the `der` crate, to check the order of the message.
            signed_attrs: Some(
                SetOfVec::try_from(
                    written
                        .signed_attrs
                        .as_ref()
                        .unwrap()
                        .iter()
                        .cloned()
                        .collect::<Vec<_>>(),
                )
                .unwrap(),
            ),
            signature_algorithm: written.signature_algorithm.clone(),
            signature: OctetString::new(written.signature.as_bytes()).unwrap(),
            unsigned_attrs: None,
        });
    }
    let signed = SignedData {
        version: CmsVersion::V1,
        digest_algorithms,
        encap_content_info: EncapsulatedContentInfo {
            econtent_type: ID_DATA,
            econtent: (!detached)
                .then(|| Any::encode_from(&OctetString::new(payload).unwrap()).unwrap()),
        },
        certificates: (!certificates.is_empty())
            .then(|| CertificateSet(SetOfVec::try_from(certificates).unwrap())),
        crls: None,
        signer_infos: SignerInfos(SetOfVec::try_from(signer_infos).unwrap()),
    };
    ContentInfo {
        content_type: ID_SIGNED_DATA,
        content: Any::encode_from(&signed).unwrap(),
    }
    .to_der()
    .unwrap()
}

#[test]
fn messages_are_what_the_cms_types_write() {
    let identities: Vec<(PrivateKey, Chain)> = [
        KeyAlgorithm::Rsa2048,
        KeyAlgorithm::EcP256,
        KeyAlgorithm::Ed25519,
    ]
    .into_iter()
    .map(|algorithm| {
        let (key, certificate) = generate(algorithm, "CN=signer, O=Example AG", 30, NOW).unwrap();
        (key, Chain::new(vec![certificate]).unwrap())
    })
    .collect();
    let signer = |index: usize, digest, scheme, include, signing_time| Signer {
        key: &identities[index].0,
        chain: &identities[index].1,
        digest,
        scheme,
        include,
        signing_time,
    };
    use DigestAlgorithm::{Sha256, Sha384, Sha512};
    use IncludeCertificates::{Chain as All, None as Nothing, Signer as Leaf};
    let later = Some(Timestamp::from_seconds(2_600_000_000));
    let cases: Vec<(&str, Vec<Signer<'_>>)> = vec![
        (
            "one RSA signer",
            vec![signer(0, Sha256, None, Leaf, Some(NOW))],
        ),
        (
            "an RSA-PSS signer without certificates",
            vec![signer(
                0,
                Sha384,
                Some(SignatureScheme::RsaPss),
                Nothing,
                None,
            )],
        ),
        (
            "one P-256 signer",
            vec![signer(1, Sha256, None, All, Some(NOW))],
        ),
        (
            "one Ed25519 signer after 2049",
            vec![signer(2, Sha512, None, Leaf, later)],
        ),
        (
            "three signers with two digests",
            vec![
                signer(1, Sha256, None, Leaf, None),
                signer(0, Sha512, None, All, Some(NOW)),
                signer(2, Sha512, None, Nothing, None),
            ],
        ),
        (
            "the same signer twice",
            vec![
                signer(1, Sha256, None, Leaf, None),
                signer(1, Sha256, None, Leaf, None),
            ],
        ),
    ];
    for payload in [&b""[..], b"invoice 4711", &[0x5a; 70_000]] {
        for (case, signers) in &cases {
            for detached in [false, true] {
                let message = sign(payload, signers, detached).unwrap();
                assert_eq!(
                    message,
                    written_by_cms_types(payload, signers, detached, &message),
                    "{case}, {} payload bytes, detached: {detached}",
                    payload.len()
                );
            }
        }
    }
}

#[test]
fn a_key_signs_as_the_same_key_read_again() {
    // RSA PKCS#1 v1.5 and Ed25519 sign deterministically, so the messages can be compared.
    for algorithm in [KeyAlgorithm::Rsa2048, KeyAlgorithm::Ed25519] {
        let (key, certificate) = generate(algorithm, "CN=signer", 30, NOW).unwrap();
        let chain = Chain::new(vec![certificate]).unwrap();
        let digest = if algorithm == KeyAlgorithm::Ed25519 {
            DigestAlgorithm::Sha512
        } else {
            DigestAlgorithm::Sha256
        };
        let signers = [Signer {
            key: &key,
            chain: &chain,
            digest,
            scheme: None,
            include: IncludeCertificates::Signer,
            signing_time: Some(NOW),
        }];
        let reparsed = PrivateKey::from_pkcs8_der(key.pkcs8_der()).unwrap();
        let again = [Signer {
            key: &reparsed,
            ..signers[0]
        }];
        assert_eq!(
            sign(b"payload", &signers, false).unwrap(),
            sign(b"payload", &again, false).unwrap()
        );
    }
}
