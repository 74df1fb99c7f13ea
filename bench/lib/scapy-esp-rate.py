"""scapy 2.5.0's ESP encryption rate, the baseline of pktveil's esp-vs-scapy benchmark.

Reads one JSON object on stdin:
  count            packets to encrypt in the timed loop
  spi              SPI of the SA
  keyMaterial      hex, AES-128 key followed by the 4-byte salt (RFC 4106 keying material)
  tunnel           {"src", "dst"}: the outer IPv4 header of tunnel mode
  inner            hex, the inner IPv4 packet encrypted every time
  pktveilPacket    hex, pktveil's ESP packet (same SA, sequence 1) carrying the same inner packet

Prints one JSON line: packets, seconds (the encrypt loop alone, timed here after one warm-up call, so
interpreter start-up and imports are excluded), outputLength (bytes of scapy's ESP packet) and
pktveilDecrypts (scapy decrypted pktveil's packet to exactly the inner packet). Exits 1 if scapy's own
packet does not decrypt back to the inner packet or pktveil's does not: a rate of broken work is no
baseline.
"""
import json
import sys
import time

from scapy.compat import raw
from scapy.layers.inet import IP
from scapy.layers.ipsec import ESP, SecurityAssociation


def make_sa(job):
    return SecurityAssociation(ESP, spi=job['spi'], crypt_algo='AES-GCM',
                               crypt_key=bytes.fromhex(job['keyMaterial']), crypt_icv_size=16,
                               tunnel_header=IP(src=job['tunnel']['src'], dst=job['tunnel']['dst']))


def main():
    job = json.load(sys.stdin)
    inner_bytes = bytes.fromhex(job['inner'])
    packet = IP(inner_bytes)
    sender = make_sa(job)
    out = sender.encrypt(packet)

    count = job['count']
    began = time.perf_counter()
    for _ in range(count):
        out = sender.encrypt(packet)
    seconds = time.perf_counter() - began

    own = raw(make_sa(job).decrypt(IP(raw(out))))
    theirs = raw(make_sa(job).decrypt(IP(bytes.fromhex(job['pktveilPacket']))))
    result = {
        'packets': count,
        'seconds': seconds,
        'outputLength': len(raw(out)),
        'pktveilDecrypts': theirs == inner_bytes,
    }
    print(json.dumps(result))
    if own != inner_bytes:
        print("scapy's own ESP packet does not decrypt to the inner packet", file=sys.stderr)
        return 1
    if theirs != inner_bytes:
        print("pktveil's ESP packet does not decrypt to the inner packet", file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
