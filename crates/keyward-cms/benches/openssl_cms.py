"""OpenSSL's CMS signing, in-process through Python `cryptography`, for the keyward benchmark.

Usage: openssl_cms.py PAYLOAD THREADS SECONDS KEY CERT [KEY CERT]
Prints the number of SignedData messages made per second (encapsulated, SHA-256,
signer certificate included, signing time included), summed over THREADS processes.
"""

import multiprocessing
import sys
import time

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs7


def worker(args):
    payload_path, seconds, pairs = args
    with open(payload_path, "rb") as f:
        payload = f.read()
    signers = []
    for key_path, cert_path in pairs:
        with open(key_path, "rb") as f:
            key = serialization.load_pem_private_key(f.read(), password=None)
        with open(cert_path, "rb") as f:
            cert = x509.load_pem_x509_certificate(f.read())
        signers.append((cert, key))
    count = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        builder = pkcs7.PKCS7SignatureBuilder().set_data(payload)
        for cert, key in signers:
            builder = builder.add_signer(cert, key, hashes.SHA256())
        builder.sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary])
        count += 1
    return count / (time.perf_counter() - start)


def main():
    payload, threads, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    rest = sys.argv[4:]
    pairs = [(rest[i], rest[i + 1]) for i in range(0, len(rest), 2)]
    with multiprocessing.Pool(threads) as pool:
        rates = pool.map(worker, [(payload, seconds, pairs)] * threads)
    print(f"{sum(rates):.1f}")


if __name__ == "__main__":
    main()
