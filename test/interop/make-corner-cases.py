"""Writes scapy-crafted corner cases to the pcap named by argv[1], one frame per case, in a fixed order
(the case names go to stdout, one per line). scapy is the independent peer: none of these bytes come
from pktveil's encoders."""
import sys
from scapy.all import (ARP, ESP, ICMP, IP, IPOption_RR, IPOption_Router_Alert, IPv6, IPv6ExtHdrFragment,
                       IPv6ExtHdrHopByHop, Dot1AD, Dot1Q, Ether, Raw, TCP, UDP, fragment, raw, wrpcap)

SRC, DST = '198.18.0.1', '198.18.0.2'
E = lambda: Ether(src='02:00:00:00:00:01', dst='02:00:00:00:00:02')
cases = []

def case(name, pkt):
    cases.append((name, pkt))

def rebuilt(pkt):
    # Let scapy compute lengths and checksums, then freeze the bytes so later edits stay as made.
    return Ether(raw(pkt))

case('ipv4-options-udp', E() / IP(src=SRC, dst=DST, options=[IPOption_RR(routers=['198.18.1.1', '0.0.0.0']),
                                                         IPOption_Router_Alert()]) / UDP(sport=1000, dport=2000) / Raw(b'opt'))
case('stacked-vlan-tcp', Ether(src='02:00:00:00:00:01', dst='02:00:00:00:00:02') / Dot1AD(vlan=100, prio=3) /
     Dot1Q(vlan=200, id=1) / IP(src=SRC, dst=DST) / TCP(sport=40000, dport=80, flags='S'))
case('tcp-sack-timestamps', E() / IP(src=SRC, dst=DST) / TCP(sport=40001, dport=443, flags='A', seq=1000, ack=2000,
     options=[('MSS', 1460), ('NOP', None), ('WScale', 7), ('SAckOK', b''), ('Timestamp', (123456, 654321)),
              ('SAck', (3000, 4000, 5000, 6000))]) / Raw(b'x' * 10))
case('tcp-unknown-option', E() / IP(src=SRC, dst=DST) / TCP(sport=1, dport=2, options=[(254, b'\x12\x34'), ('NOP', None), ('NOP', None)]))

p = rebuilt(E() / IP(src=SRC, dst=DST) / UDP(sport=3, dport=4) / Raw(b'bad ip checksum'))
p[IP].chksum ^= 0x1111
case('bad-ip-checksum', p)
p = rebuilt(E() / IP(src=SRC, dst=DST) / TCP(sport=5, dport=6) / Raw(b'bad tcp checksum'))
p[TCP].chksum ^= 0x0101
case('bad-tcp-checksum', p)
p = rebuilt(E() / IP(src=SRC, dst=DST) / UDP(sport=7, dport=8) / Raw(b'bad udp checksum'))
p[UDP].chksum ^= 0x0101
case('bad-udp-checksum', p)
case('zero-udp-checksum', E() / IP(src=SRC, dst=DST) / UDP(sport=9, dport=10, chksum=0) / Raw(b'no checksum'))
case('esp', E() / IP(src=SRC, dst=DST) / ESP(spi=0xa5f8, seq=1, data=bytes(range(96))))
case('natt-esp', E() / IP(src=SRC, dst=DST) / UDP(sport=4500, dport=4500) / ESP(spi=0x1234, seq=7, data=bytes(range(64))))
case('natt-ike', E() / IP(src=SRC, dst=DST) / UDP(sport=4500, dport=4500) / Raw(b'\x00\x00\x00\x00' + b'ike' * 10))
case('natt-keepalive', E() / IP(src=SRC, dst=DST) / UDP(sport=4500, dport=4500) / Raw(b'\xff'))
for i, frag in enumerate(fragment(IP(src=SRC, dst=DST, id=0x4242) / UDP(sport=11, dport=12) / Raw(b'f' * 2000), fragsize=800)):
    case(f'ipv4-fragment-{i}', E() / frag)
case('icmp-echo', E() / IP(src=SRC, dst=DST) / ICMP(id=7, seq=1) / Raw(b'ping'))
case('arp-request', Ether(src='02:00:00:00:00:01', dst='ff:ff:ff:ff:ff:ff') / ARP(psrc=SRC, pdst=DST, hwsrc='02:00:00:00:00:01'))
case('ipv6-udp', E() / IPv6(src='2001:db8::1', dst='2001:db8::2') / UDP(sport=13, dport=14) / Raw(b'v6'))
case('ipv6-hbh-frag-udp', E() / IPv6(src='2001:db8::1', dst='2001:db8::2') / IPv6ExtHdrHopByHop() /
     IPv6ExtHdrFragment(id=99, m=1, offset=0) / UDP(sport=15, dport=16, len=1000) / Raw(b'a' * 40))
case('anon-layer', E() / IP(src=SRC, dst=DST, proto=253) / Raw(bytes.fromhex('0011223344556677') +
     (1).to_bytes(8, 'big') + bytes(64)))
case('dscp-ecn-ttl', E() / IP(src=SRC, dst=DST, tos=0xb9, ttl=3, flags='DF', id=0xbeef) / UDP(sport=17, dport=18))

wrpcap(sys.argv[1], [p for _, p in cases])
for name, _ in cases:
    print(name)
