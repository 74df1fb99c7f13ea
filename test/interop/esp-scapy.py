"""The independent ESP peer for pktveil's interop tests: scapy 2.5.0's SecurityAssociation encrypts and
decrypts, with pktveil's SA files (the JSON of /work/shared/contracts/cli.md, "esp") as its keys.

  esp-scapy.py gen SPEC.json OUT.pcap        random inner IPv4 packets (spec: seed, count, link, transport)
  esp-scapy.py encrypt SA[,SA...] IN OUT     wraps every IPv4 packet, first SA innermost (pktveil's order)
  esp-scapy.py decrypt SA[,SA...] IN OUT     peels ESP layers while the outermost SPI is known
  esp-scapy.py jobs JOBS.json                a JSON list of {"op": "gen"|"encrypt"|"decrypt"|"kat", ...}: one
                                             process for many jobs, so the tests pay scapy's start-up once
Each job prints one JSON line: what it did, and for decrypt, per packet and per layer, what it found.

Where scapy 2.5.0 gets RFC 4303 wrong, this script works around it and says so:
- AES-GCM with crypt_icv_size 8 or 12 still appends a 16-byte tag (its AESGCM AEAD API cannot truncate),
  so AES-GCM uses the Cipher/modes.GCM path of the same CryptAlgo class, which truncates the tag.
- HMAC integrity ignores ESN: the high 32 bits of the sequence number must be appended to the ICV input
  (RFC 4303 section 2.2.1 and 3.3.2.1); with ESN on, the ICV is computed here with scapy's AuthAlgo MAC.
- SecurityAssociation(nat_t_header=UDP()) writes UDP length 8: RFC 3948 framing is done here.
- Decrypt does not return the padding bytes, so the plaintext is tapped from the cipher to check them.
"""
import json
import random
import struct
import sys

from cryptography.hazmat.primitives.ciphers import aead, algorithms, modes
from scapy.compat import raw
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.ipsec import (AUTH_ALGOS, CRYPT_ALGOS, ESP, CryptAlgo, IPSecIntegrityError,
                                SecurityAssociation)
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Raw

MASK32 = 0xFFFFFFFF
ETHER_HEADER = 14
ETHERTYPE_IPV4 = 0x0800
NON_ESP_MARKER = b'\x00\x00\x00\x00'

# ---------------------------------------------------------------------------------------------------------
# pcap files (classic pcap only: pktveil keeps the format of its input, and our inputs are classic pcap)

PCAP_MAGICS = {  # magic as read little-endian -> (byte order, nanosecond timestamps)
    0xA1B2C3D4: ('<', False), 0xA1B23C4D: ('<', True),
    0xD4C3B2A1: ('>', False), 0x4D3CB2A1: ('>', True),
}


def read_pcap(path):
    """(link type, [(timestamp in ns, bytes)])."""
    with open(path, 'rb') as f:
        blob = f.read()
    if len(blob) < 24:
        raise ValueError(f'{path}: {len(blob)} bytes, too short for a pcap header')
    magic = struct.unpack('<I', blob[:4])[0]
    if magic not in PCAP_MAGICS:
        raise ValueError(f'{path}: not a classic pcap file (magic {blob[:4].hex()})')
    order, nano = PCAP_MAGICS[magic]
    link = struct.unpack(order + 'I', blob[20:24])[0]
    records, off = [], 24
    while off < len(blob):
        if off + 16 > len(blob):
            raise ValueError(f'{path}: truncated record header at offset {off}')
        sec, frac, incl, _orig = struct.unpack(order + 'IIII', blob[off:off + 16])
        off += 16
        if off + incl > len(blob):
            raise ValueError(f'{path}: truncated record at offset {off}')
        records.append((sec * 1_000_000_000 + (frac if nano else frac * 1000), blob[off:off + incl]))
        off += incl
    return link, records


def write_pcap(path, link, records):
    """Little-endian, nanosecond pcap."""
    out = [struct.pack('<IHHiIII', 0xA1B23C4D, 2, 4, 0, 0, 262144, link)]
    for ts, data in records:
        out.append(struct.pack('<IIII', ts // 1_000_000_000, ts % 1_000_000_000, len(data), len(data)))
        out.append(data)
    with open(path, 'wb') as f:
        f.write(b''.join(out))


# ---------------------------------------------------------------------------------------------------------
# Random inner packets

def gen(spec, out_path):
    """spec: seed, count, link ('raw' | 'ether'), transport ({src, dst} or null: random addresses),
    nonIpEvery (ether only: every Nth frame is ARP, which ESP must pass through untouched)."""
    rnd = random.Random(spec['seed'])
    transport = spec.get('transport')
    ether = spec.get('link', 'raw') == 'ether'
    non_ip_every = spec.get('nonIpEvery', 0)

    def addr():  # 198.18.0.0/15
        return f'198.{18 + rnd.randrange(2)}.{rnd.randrange(256)}.{rnd.randrange(1, 255)}'

    def mac():
        return '02:' + ':'.join('%02x' % rnd.randrange(256) for _ in range(5))

    def port():
        while True:
            p = rnd.randrange(1, 65536)
            if p not in (500, 4500):  # keep IKE / NAT-T ports for the outer layer
                return p

    def data_length():
        # Every size class: empty, around the 4- and 16-byte padding edges, and up to 1400 bytes.
        r = rnd.random()
        if r < 0.3:
            return rnd.randrange(0, 40)
        if r < 0.8:
            return rnd.randrange(0, 1401)
        return rnd.randrange(1300, 1401)

    records, ipv4 = [], 0
    t0 = 1_700_000_000 * 1_000_000_000
    for i in range(spec['count']):
        ts = t0 + i * 1_000_000
        if ether and non_ip_every and i % non_ip_every == non_ip_every - 1:
            frame = Ether(src=mac(), dst='ff:ff:ff:ff:ff:ff') / ARP(psrc=addr(), pdst=addr(), hwsrc=mac())
            records.append((ts, raw(frame)))
            continue
        src, dst = (transport['src'], transport['dst']) if transport else (addr(), addr())
        options = []
        if rnd.random() < 0.1:
            options = [b'\x01\x01\x01\x00']  # NOP NOP NOP EOL: IHL 6, header bytes ESP must keep
        ip = IP(src=src, dst=dst, id=rnd.randrange(65536), ttl=rnd.randrange(1, 256), tos=rnd.randrange(256),
                flags=rnd.choice([0, 2]), options=options)
        payload = bytes(rnd.randrange(256) for _ in range(data_length()))
        kind = rnd.choice(['udp', 'tcp', 'icmp'])
        if kind == 'udp':
            pkt = ip / UDP(sport=port(), dport=port()) / Raw(payload)
        elif kind == 'tcp':
            opts = rnd.choice([[], [('MSS', 1460)], [('NOP', None), ('NOP', None), ('Timestamp', (rnd.randrange(1 << 32), 0))]])
            pkt = ip / TCP(sport=port(), dport=port(), seq=rnd.randrange(1 << 32), ack=rnd.randrange(1 << 32),
                           flags=rnd.choice(['S', 'SA', 'A', 'PA', 'FA', 'R']), window=rnd.randrange(65536),
                           options=opts) / Raw(payload)
        else:
            pkt = ip / ICMP(type=rnd.choice([0, 8]), id=rnd.randrange(65536), seq=rnd.randrange(65536)) / Raw(payload)
        data = raw(pkt)
        if ether:
            data = raw(Ether(src=mac(), dst=mac(), type=ETHERTYPE_IPV4)) + data
        records.append((ts, data))
        ipv4 += 1
    write_pcap(out_path, 1 if ether else 101, records)
    return {'op': 'gen', 'out': out_path, 'packets': len(records), 'ipv4': ipv4}


# ---------------------------------------------------------------------------------------------------------
# Plaintext tap: scapy's decrypt drops the padding bytes, so the ciphers below record what they decrypt.

TAP = {'plain': None}


class _TapContext:
    def __init__(self, ctx):
        self.ctx, self.out = ctx, b''

    def authenticate_additional_data(self, data):
        self.ctx.authenticate_additional_data(data)

    def update(self, data):
        r = self.ctx.update(data)
        self.out += r
        return r

    def finalize(self):
        r = self.ctx.finalize()
        self.out += r
        TAP['plain'] = self.out
        return r


class _TapCipher:
    def __init__(self, cipher):
        self.cipher = cipher

    def encryptor(self):
        return self.cipher.encryptor()

    def decryptor(self):
        return _TapContext(self.cipher.decryptor())


class TappedCryptAlgo(CryptAlgo):
    """scapy's CryptAlgo (Cipher API path), with decryption output recorded in TAP."""

    def new_cipher(self, key, mode_iv, digest=None):
        return _TapCipher(super().new_cipher(key, mode_iv, digest))


class TappedChaCha20Poly1305(aead.ChaCha20Poly1305):
    def decrypt(self, nonce, data, associated_data):
        out = super().decrypt(nonce, data, associated_data)
        TAP['plain'] = out
        return out


def _salt_iv(sa, iv, **_kw):  # RFC 4106 section 4 / RFC 7634 section 2: nonce = salt || explicit IV
    return sa.crypt_salt + iv


CRYPT_ALGOS['pktveil-AES-GCM'] = TappedCryptAlgo('AES-GCM', cipher=algorithms.AES, mode=modes.GCM,
                                                 key_size=(16, 24, 32), salt_size=4, block_size=1, iv_size=8,
                                                 icv_size=16, format_mode_iv=_salt_iv)
CRYPT_ALGOS['pktveil-AES-CBC'] = TappedCryptAlgo('AES-CBC', cipher=algorithms.AES, mode=modes.CBC)
_chacha = CryptAlgo('CHACHA20-POLY1305', cipher=aead.ChaCha20Poly1305, mode=None, key_size=32, block_size=1,
                    iv_size=8, salt_size=4, icv_size=16, format_mode_iv=_salt_iv)
_chacha.cipher = TappedChaCha20Poly1305  # after __init__, which picks the AEAD API path by the class
CRYPT_ALGOS['pktveil-CHACHA20-POLY1305'] = _chacha

# pktveil suite -> (scapy crypt algo, ICV length of the AEAD or None, scapy auth algo)
SUITES = {
    'aes-gcm-16': ('pktveil-AES-GCM', 16, None),
    'aes-gcm-12': ('pktveil-AES-GCM', 12, None),
    'aes-gcm-8': ('pktveil-AES-GCM', 8, None),
    'chacha20-poly1305': ('pktveil-CHACHA20-POLY1305', 16, None),
    'aes-cbc-hmac-sha1-96': ('pktveil-AES-CBC', None, 'HMAC-SHA1-96'),
    'aes-cbc-hmac-sha256-128': ('pktveil-AES-CBC', None, 'SHA2-256-128'),
    'null-hmac-sha256-128': (None, None, 'SHA2-256-128'),
    'null': (None, None, None),
}


# ---------------------------------------------------------------------------------------------------------
# One SA: scapy's SecurityAssociation plus the sequence state scapy leaves to its caller

class Sa:
    def __init__(self, cfg):
        self.cfg = cfg
        spi = cfg['spi']
        self.spi = int(spi, 16) if isinstance(spi, str) else int(spi)
        self.suite = cfg['suite']
        crypt, icv, auth = SUITES[self.suite]
        self.esn = bool(cfg.get('esn', False))
        self.mode = cfg['mode']
        if self.mode not in ('tunnel', 'transport'):
            raise ValueError(f'SA mode {self.mode} is not one scapy speaks')
        tunnel = cfg.get('tunnel')
        header = IP(src=tunnel['src'], dst=tunnel['dst']) if self.mode == 'tunnel' else None
        enc_key = bytes.fromhex(cfg.get('encKey') or '')
        auth_key = bytes.fromhex(cfg.get('authKey') or '')
        self.auth_algo = AUTH_ALGOS[auth] if auth else None
        self.auth_key = auth_key
        self.sa = SecurityAssociation(ESP, spi=self.spi, crypt_algo=crypt, crypt_key=enc_key or None,
                                      crypt_icv_size=icv, auth_algo=auth, auth_key=auth_key or None,
                                      tunnel_header=header)
        self.crypt = self.sa.crypt_algo
        self.natt = cfg.get('natt')
        seq = int(cfg.get('seq', 1))
        self.next_seq = seq  # encrypt: the 64-bit number of the next packet
        self.highest = seq - 1  # decrypt: T of RFC 4303 Appendix A, before the first packet
        self.window = int(cfg.get('replayWindow', 64))

    # RFC 4303 Appendix A2.2: the high half of a received ESN from its low half and the highest seen
    def infer_high(self, low):
        if not self.esn:
            return 0
        w = self.window
        tl, th = self.highest & MASK32, self.highest >> 32
        if tl >= w - 1:  # case A: window within one subspace
            return th if low >= tl - w + 1 else th + 1
        return th - 1 if low >= ((tl - w + 1) & MASK32) else th  # case B: window spans two subspaces

    def icv_with_esn(self, esp_bytes, high):
        mac = self.auth_algo.new_mac(self.auth_key)
        mac.update(esp_bytes + struct.pack('!L', high))
        return mac.finalize()[:self.auth_algo.icv_size]

    def encrypt(self, ip_bytes, tfc_zeros=0):
        seq = self.next_seq
        if seq > (1 << 64) - 1 or (not self.esn and seq > MASK32):
            raise ValueError(f'SPI 0x{self.spi:08x}: sequence number {seq} exhausted')
        self.next_seq += 1
        low, high = seq & MASK32, seq >> 32
        # scapy reads these with `x or default`: set the SA's own fields so that 0 stays 0
        self.sa.seq_num, self.sa.esn_en, self.sa.esn = low, self.esn, high
        pkt = IP(ip_bytes + b'\x00' * tfc_zeros)  # TFC padding (RFC 4303 2.7) follows the inner datagram
        own_icv = self.esn and self.auth_algo is not None
        if own_icv:
            self.sa.auth_algo = AUTH_ALGOS['NULL']
        try:
            out = self.sa.encrypt(pkt)
        finally:
            self.sa.auth_algo = self.auth_algo or AUTH_ALGOS['NULL']
        if own_icv:
            out[ESP].data += self.icv_with_esn(raw(out[ESP]), high)
            out.len = None  # scapy fixed the length before the ICV existed
            out.chksum = None
        out = raw(out)
        if self.natt:
            out = natt_wrap(out, self.natt)
        return out

    def decrypt(self, ip_bytes):
        """(inner bytes, layer report); raises on any failure."""
        ip = IP(ip_bytes)
        natt = None
        if ip.proto == 17:
            natt = {'srcPort': ip[UDP].sport, 'dstPort': ip[UDP].dport}
            ip_bytes = natt_unwrap(ip_bytes)
            ip = IP(ip_bytes)
        outer = {'src': ip.src, 'dst': ip.dst}
        esp = ip[ESP]
        low = esp.seq
        high = self.infer_high(low)
        seq = (high << 32) | low
        if high < 0:
            raise ValueError(f'sequence {low} is below the window (no high half)')
        icv_len = self.sa.crypt_icv_size or self.crypt.icv_size or self.sa.auth_algo.icv_size
        iv = bytes(esp.data[:self.crypt.iv_size])
        if self.esn and self.auth_algo is not None:
            # Verify the RFC 4303 ESN ICV here, then let scapy decrypt without its own (ESN-less) check.
            icv = bytes(esp.data[len(esp.data) - icv_len:])
            clone = esp.copy()
            clone.data = esp.data[:len(esp.data) - icv_len]
            if self.icv_with_esn(raw(clone), high) != icv:
                raise IPSecIntegrityError(f'ICV mismatch (ESN high half {high})')
            if esp.spi != self.spi:
                raise ValueError('SPI mismatch')
            verify = False
        else:
            verify = True
        self.sa.esn_en, self.sa.esn = self.esn, high
        TAP['plain'] = None
        if self.crypt.cipher is None:  # NULL encryption: the plaintext is in the clear
            TAP['plain'] = bytes(esp.data[:len(esp.data) - icv_len])
        inner = self.sa.decrypt(ip, verify=verify)
        plain = TAP['plain']
        if plain is None:
            raise RuntimeError('plaintext tap saw nothing')
        pad_len, next_header = plain[-2], plain[-1]
        padding = plain[len(plain) - 2 - pad_len:len(plain) - 2]
        self.highest = max(self.highest, seq)  # integrity verified: the window may move
        inner_bytes = raw(inner)
        layer = {'spi': self.spi, 'seq': str(seq), 'outer': outer, 'natt': natt, 'iv': iv.hex(), 'nextHeader': next_header,
                 'padLength': pad_len, 'padOk': padding == bytes(range(1, pad_len + 1))}
        if self.mode == 'tunnel':
            total = IP(inner_bytes).len
            tfc = inner_bytes[total:]
            layer['tfcLength'] = len(tfc)
            layer['tfcZero'] = tfc == b'\x00' * len(tfc)
            inner_bytes = inner_bytes[:total]
        return inner_bytes, layer


def natt_wrap(ip_bytes, natt):
    """RFC 3948 section 2.1: IP | UDP (checksum 0) | ESP, built here (scapy 2.5.0 writes UDP length 8)."""
    ip = IP(ip_bytes)
    esp_bytes = raw(ip.payload)
    ip.remove_payload()
    ip.proto = 17
    del ip.len
    del ip.chksum
    return raw(ip / UDP(sport=natt['srcPort'], dport=natt['dstPort'], chksum=0) / Raw(esp_bytes))


def natt_unwrap(ip_bytes):
    """IP | UDP | ESP back to IP | ESP, after checking the UDP framing."""
    ip = IP(ip_bytes)
    hl = ip.ihl * 4
    udp = ip_bytes[hl:hl + 8]
    sport, dport, length, checksum = struct.unpack('!HHHH', udp)
    body = ip_bytes[hl + 8:ip.len]
    if length != 8 + len(body):
        raise ValueError(f'NAT-T UDP length {length}, carries {8 + len(body)}')
    if body[:4] == NON_ESP_MARKER:
        raise ValueError('NAT-T: non-ESP marker (IKE), not ESP')
    if checksum != 0:  # RFC 3948 2.1: SHOULD be 0; a sender that fills it in must fill it in right
        check = IP(ip_bytes)
        del check[UDP].chksum
        if IP(raw(check))[UDP].chksum != checksum:
            raise ValueError(f'NAT-T UDP checksum 0x{checksum:04x} is wrong')
    plain = IP(ip_bytes[:hl])
    plain.proto = 50
    del plain.len
    del plain.chksum
    return raw(plain / Raw(body))


def esp_spi(ip_bytes, natt_ports):
    """SPI of the outermost ESP (plain, or UDP-encapsulated to one of natt_ports), or None."""
    if len(ip_bytes) < 20 or ip_bytes[0] >> 4 != 4:
        return None
    hl = (ip_bytes[0] & 15) * 4
    if ip_bytes[9] == 50 and len(ip_bytes) >= hl + 8:
        return struct.unpack('!I', ip_bytes[hl:hl + 4])[0]
    if ip_bytes[9] == 17 and len(ip_bytes) >= hl + 16:
        dport = struct.unpack('!H', ip_bytes[hl + 2:hl + 4])[0]
        spi = struct.unpack('!I', ip_bytes[hl + 8:hl + 12])[0]
        if dport in natt_ports and spi != 0:
            return spi
    return None


# ---------------------------------------------------------------------------------------------------------
# Jobs

def _split_link(link, data):
    """(link-layer header, IPv4 bytes) or (data, None) for a frame that is not IPv4."""
    if link == 1:
        if len(data) >= ETHER_HEADER and struct.unpack('!H', data[12:14])[0] == ETHERTYPE_IPV4:
            return data[:ETHER_HEADER], data[ETHER_HEADER:]
        return data, None
    if link in (101, 228):
        return (b'', data) if data and data[0] >> 4 == 4 else (data, None)
    raise ValueError(f'link type {link} is not one these tests write')


def load_sa(path):
    with open(path) as f:
        return Sa(json.load(f))


def encrypt(sa_paths, in_path, out_path, tfc=None):
    """tfc: {seed, max}: every packet gets 1..max zero bytes of TFC padding inside the first SA's ESP."""
    sas = [load_sa(p) for p in sa_paths]
    link, records = read_pcap(in_path)
    rnd = random.Random(tfc['seed']) if tfc else None
    out, passed, tfc_lengths = [], 0, []
    for ts, data in records:
        head, ip = _split_link(link, data)
        if ip is None:
            out.append((ts, data))
            passed += 1
            continue
        zeros = rnd.randrange(1, tfc['max'] + 1) if tfc else 0
        tfc_lengths.append(zeros)
        for i, sa in enumerate(sas):
            ip = sa.encrypt(ip, zeros if i == 0 else 0)
        out.append((ts, head + ip))
    write_pcap(out_path, link, out)
    return {'op': 'encrypt', 'out': out_path, 'packets': len(records), 'passed': passed, 'tfc': tfc_lengths}


def decrypt(sa_paths, in_path, out_path):
    db = {}
    for p in sa_paths:
        sa = load_sa(p)
        db[sa.spi] = sa
    natt_ports = {4500} | {sa.natt['dstPort'] for sa in db.values() if sa.natt}
    link, records = read_pcap(in_path)
    out, failures, layers, passed = [], [], [], 0
    for index, (ts, data) in enumerate(records):
        head, ip = _split_link(link, data)
        if ip is None:
            out.append((ts, data))
            passed += 1
            layers.append([])
            continue
        peeled = []
        try:
            while True:
                spi = esp_spi(ip, natt_ports)
                if spi is None or spi not in db:
                    if not peeled:
                        raise ValueError(f'no ESP with a known SPI (outer SPI {spi})')
                    break
                ip, layer = db[spi].decrypt(ip)
                peeled.append(layer)
        except Exception as err:  # report per packet; the test shows them all
            failures.append({'index': index, 'error': f'{type(err).__name__}: {err}', 'hex': data.hex()})
            layers.append(peeled)
            continue
        layers.append(peeled)
        out.append((ts, head + ip))
    write_pcap(out_path, link, out)
    return {'op': 'decrypt', 'out': out_path, 'packets': len(records), 'passed': passed,
            'decrypted': len(out) - passed, 'failures': failures, 'layers': layers}


def kat(cases):
    """Published ESP packets (SPI..ICV) decrypted in transport mode behind a made-up IPv4 header: the
    plaintext scapy recovers (payload, padding, pad length, next header), or why it could not."""
    results = []
    for case in cases:
        sa = Sa(case['sa'])
        esp = bytes.fromhex(case['esp'])
        ip = raw(IP(src='198.18.0.1', dst='198.18.0.2', proto=50) / Raw(esp))
        try:
            _inner, layer = sa.decrypt(ip)
            results.append({'id': case['id'], 'plaintext': TAP['plain'].hex(), 'layer': layer})
        except Exception as err:
            results.append({'id': case['id'], 'error': f'{type(err).__name__}: {err}'})
    return {'op': 'kat', 'results': results}


def run_job(job):
    op = job['op']
    if op == 'gen':
        return gen(job['spec'], job['out'])
    if op == 'encrypt':
        return encrypt(job['sas'], job['in'], job['out'], job.get('tfc'))
    if op == 'decrypt':
        return decrypt(job['sas'], job['in'], job['out'])
    if op == 'kat':
        return kat(job['cases'])
    raise ValueError(f'unknown op {op}')


def main(argv):
    if len(argv) == 2 and argv[0] == 'jobs':
        with open(argv[1]) as f:
            jobs = json.load(f)
        for job in jobs:
            print(json.dumps(run_job(job)), flush=True)
        return 0
    if len(argv) == 3 and argv[0] == 'gen':
        with open(argv[1]) as f:
            print(json.dumps(gen(json.load(f), argv[2])))
        return 0
    if len(argv) == 4 and argv[0] in ('encrypt', 'decrypt'):
        print(json.dumps(run_job({'op': argv[0], 'sas': argv[1].split(','), 'in': argv[2], 'out': argv[3]})))
        return 0
    sys.stderr.write(__doc__)
    return 2


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
