//! Test fixtures made at run time: small CA hierarchies built with rcgen.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, PKCS_ECDSA_P256_SHA256,
};

use crate::certificate::Certificate;

/// A CA for tests: its parameters, key and certificate.
pub(crate) struct TestCa {
    pub params: CertificateParams,
    pub key: KeyPair,
    pub cert: Certificate,
}

fn params(cn: &str, ca: bool) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::OrganizationName, "Test Org");
    params.distinguished_name.push(DnType::CommonName, cn);
    params.use_authority_key_identifier_extension = true;
    if ca {
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    }
    params
}

/// A CA named `cn`, self-signed when `issuer` is `None`.
pub(crate) fn ca(cn: &str, issuer: Option<&TestCa>) -> TestCa {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let params = params(cn, true);
    let cert = match issuer {
        None => params.self_signed(&key).unwrap(),
        Some(parent) => params
            .signed_by(&key, &Issuer::from_params(&parent.params, &parent.key))
            .unwrap(),
    };
    let cert = Certificate::from_der(cert.der()).unwrap();
    TestCa { params, key, cert }
}

/// An end-entity certificate named `cn` issued by `issuer`.
pub(crate) fn leaf(cn: &str, issuer: &TestCa) -> Certificate {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let cert = params(cn, false)
        .signed_by(&key, &Issuer::from_params(&issuer.params, &issuer.key))
        .unwrap();
    Certificate::from_der(cert.der()).unwrap()
}
