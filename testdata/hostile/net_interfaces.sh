# Only lo exists and it cannot be reconfigured or joined by new
# interfaces; raw and packet sockets are refused.
# expect: reason=exited exit=0
# expect: stdout-contains=links: lo
# expect: stdout-contains=add dummy: refused
# expect: stdout-contains=add veth: refused
# expect: stdout-contains=addr add: refused
# expect: stdout-contains=route add: refused
# expect: stdout-contains=lo down: refused
# expect: stdout-contains=ping: refused
brig_jailed || exit 99
echo "links: $(ls /proc/sys/net/ipv4/conf | grep -v -e all -e default | tr '\n' ' ')"
if command -v ip >/dev/null; then
	ip link add dummy0 type dummy 2>/dev/null && echo "add dummy: WORKED" || echo "add dummy: refused"
	ip link add v0 type veth peer name v1 2>/dev/null && echo "add veth: WORKED" || echo "add veth: refused"
	ip addr add 10.9.9.9/24 dev lo 2>/dev/null && echo "addr add: WORKED" || echo "addr add: refused"
	ip route add 10.8.0.0/16 dev lo 2>/dev/null && echo "route add: WORKED" || echo "route add: refused"
	ip link set lo down 2>/dev/null && echo "lo down: WORKED" || echo "lo down: refused"
else
	for w in "add dummy" "add veth" "addr add" "route add" "lo down"; do echo "$w: refused (no ip)"; done
fi
if command -v ping >/dev/null; then
	ping -c1 -W1 127.0.0.1 >/dev/null 2>&1 && echo "ping: WORKED" || echo "ping: refused"
else
	echo "ping: refused (no ping)"
fi
