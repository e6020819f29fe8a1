//! Verification of arbitrary bytes as a CMS SignedData: parsing (DER, BER, PEM, base64),
//! signer lookup and signature checks must end in a result or an error, never a panic.

#![no_main]

use std::sync::OnceLock;

use keyward_crypto::{Certificate, KeyAlgorithm};
use keyward_domain::Timestamp;
use libfuzzer_sys::fuzz_target;

const NOW: Timestamp = Timestamp::from_seconds(1_795_428_000);

fn trusted() -> &'static [Certificate] {
    static TRUSTED: OnceLock<Vec<Certificate>> = OnceLock::new();
    TRUSTED.get_or_init(|| {
        let (_, cert) = keyward_crypto::generate(KeyAlgorithm::EcP256, "CN=fuzz", 30, NOW).expect("key generation");
        vec![cert]
    })
}

fuzz_target!(|data: &[u8]| {
    // The first byte picks the mode, so the fuzzer explores detached verification too.
    let (mode, message) = data.split_first().map_or((0, data), |(m, rest)| (*m, rest));
    let content = (mode & 1 == 1).then_some(&b"detached content"[..]);
    let require = if mode & 2 == 2 { keyward_cms::Require::Any } else { keyward_cms::Require::All };
    let _ = keyward_cms::verify(message, content, trusted(), require, NOW);
});
