"""`o11yctl fix-vxlan`: diagnose and repair Flannel's VXLAN overlay between the nodes.

The work is split the way the data flows:

- :mod:`~o11yctl.vxlan.remote` builds the read-only commands and parses what they print
  (``ip -d -j addr``, ``iptables -S``, ``nft -j list ruleset``, ``/proc/net/snmp``, ping);
- :mod:`~o11yctl.vxlan.firewall` decides, without I/O, what a node's firewall does with one
  packet (iptables chains, nftables base chains, firewalld);
- :mod:`~o11yctl.vxlan.diagnose` turns every node's facts into a verdict: the ping matrix,
  the blocked directions and why;
- :mod:`~o11yctl.vxlan.fix` turns a diagnosis into the exact commands per node;
- :mod:`~o11yctl.vxlan.run` is the only part that talks to the nodes (through the SSH pool);
- :mod:`~o11yctl.vxlan.podping` runs the runbook's pod test through the Kubernetes API (a pod
  on each node pings the Loki pod) and judges it.
"""
