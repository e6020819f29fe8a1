//! Decryption of arbitrary bytes as CMS EnvelopedData / AuthEnvelopedData: recipient
//! parsing, key unwrapping and content decryption must end in a result or an error, never a
//! panic.

#![no_main]

use std::sync::OnceLock;

use keyward_crypto::{Certificate, KeyAlgorithm, PrivateKey};
use keyward_domain::Timestamp;
use libfuzzer_sys::fuzz_target;

fn recipient() -> &'static (PrivateKey, Certificate) {
    static RECIPIENT: OnceLock<(PrivateKey, Certificate)> = OnceLock::new();
    RECIPIENT.get_or_init(|| {
        keyward_crypto::generate(KeyAlgorithm::Rsa2048, "CN=fuzz", 30, Timestamp::from_seconds(1_795_428_000))
            .expect("key generation")
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(recipients) = keyward_cms::recipients(data) {
        let (_, certificate) = recipient();
        let _ = recipients.iter().any(|r| r.matches(certificate));
    }
    let (key, certificate) = recipient();
    let _ = keyward_cms::decrypt(data, key, certificate);
});
