#!/usr/bin/env bash
# Seeds the fuzz corpora with valid messages made by OpenSSL, so the fuzzers start from
# real structure: signed (DER, PEM, BER stream, detached with two signers), encrypted
# (AES-CBC, AES-GCM, RSA-OAEP) and keystore material (PEM, DER, PKCS#12, PKCS#7).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
openssl req -x509 -newkey rsa:2048 -nodes -keyout k.pem -out c.pem -subj "/CN=seed" -days 3 2>/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ek.pem -out ec.pem -subj "/CN=seed-ec" -days 3 2>/dev/null
echo "seed payload" > p.txt
c="$here/corpus"
mkdir -p "$c/verify" "$c/decrypt" "$c/import"
openssl cms -sign -binary -outform DER -in p.txt -signer c.pem -inkey k.pem -nodetach -out "$c/verify/rsa.der"
openssl cms -sign -binary -outform DER -in p.txt -signer c.pem -inkey k.pem -signer ec.pem -inkey ek.pem -out "$c/verify/two-detached.der"
openssl cms -sign -binary -outform PEM -in p.txt -signer ec.pem -inkey ek.pem -nodetach -out "$c/verify/ec.pem"
openssl cms -sign -binary -stream -outform DER -in p.txt -signer c.pem -inkey k.pem -nodetach -out "$c/verify/stream.ber"
openssl cms -encrypt -binary -outform DER -aes256 -in p.txt -out "$c/decrypt/cbc.der" c.pem
openssl cms -encrypt -binary -outform DER -aes-256-gcm -in p.txt -out "$c/decrypt/gcm.der" c.pem
openssl cms -encrypt -binary -outform DER -aes128 -in p.txt -recip c.pem -keyopt rsa_padding_mode:oaep -out "$c/decrypt/oaep.der"
cp c.pem "$c/import/cert.pem"
openssl x509 -in c.pem -outform DER -out "$c/import/cert.der"
cat k.pem c.pem > "$c/import/keypair.pem"
openssl pkcs12 -export -inkey k.pem -in c.pem -passout pass:fuzz -out "$c/import/bundle.p12"
openssl crl2pkcs7 -nocrl -certfile c.pem -outform DER -out "$c/import/chain.p7b"
echo "seeded $(find "$c" -type f | wc -l) files under $c"
