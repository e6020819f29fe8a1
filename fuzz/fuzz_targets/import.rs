//! Import of arbitrary bytes as keystore material (PEM, DER, PKCS#7, PKCS#12): every input
//! ends in material or an error, never a panic.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = keyward_crypto::import(data, Some("fuzz"));
    let _ = keyward_crypto::parse_certificates(data);
});
