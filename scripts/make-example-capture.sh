#!/usr/bin/env bash
# Regenerates examples/kernel-mix.pcap: real kernel traffic (ARP, ICMP echo, a TCP transfer, UDP incl. a
# datagram the kernel fragments, IPv6 neighbour discovery) between two network namespaces. Needs root.
set -e
A=pvexa$$; B=pvexb$$
ip netns add $A; ip netns add $B
trap "ip netns del $A; ip netns del $B" EXIT
ip link add pvea$$ type veth peer name pveb$$
ip link set pvea$$ netns $A; ip link set pveb$$ netns $B
ip -n $A addr add 198.18.0.1/24 dev pvea$$; ip -n $B addr add 198.18.0.2/24 dev pveb$$
ip -n $A link set pvea$$ up; ip -n $B link set pveb$$ up; ip -n $A link set lo up; ip -n $B link set lo up
ip netns exec $A ethtool -K pvea$$ tx off >/dev/null; ip netns exec $B ethtool -K pveb$$ tx off >/dev/null
ip netns exec $B timeout 8 tcpdump -i pveb$$ --time-stamp-precision nano -w "${1:-examples/kernel-mix.pcap}" 2>/dev/null &
sleep 1
ip netns exec $B timeout 5 python3 -c "
import socket
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR,1); s.bind(('198.18.0.2',8080)); s.listen(1)
c,_=s.accept(); d=c.recv(100); c.sendall(b'HTTP/1.0 200 OK\r\n\r\n'+b'x'*3000); c.close()
" &
ip netns exec $B timeout 5 python3 -c "
import socket
u=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); u.bind(('198.18.0.2',5353))
for i in range(2):
  d,a=u.recvfrom(65535)
" &
sleep 0.5
ip netns exec $A ping -c 1 -W 1 198.18.0.2 >/dev/null
ip netns exec $A python3 -c "
import socket,time
s=socket.create_connection(('198.18.0.2',8080)); s.sendall(b'GET / HTTP/1.0\r\n\r\n')
while s.recv(4096): pass
s.close()
u=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)
u.sendto(b'pktveil', ('198.18.0.2',5353))
u.sendto(b'z'*3000, ('198.18.0.2',5353))
time.sleep(0.3)
"
sleep 1; wait
