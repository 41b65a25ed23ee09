"""`o11yctl doctor`: the runbook's troubleshooting section, walked by a program.

The work is split the way the data flows:

- :mod:`~o11yctl.doctor.facts` reads the cluster (pods, their logs and previous logs,
  events, PVs, PVCs, nodes) and, only where a rule needs it, the storage node (the
  owner of a data directory over SSH) and the overlay (fix-vxlan's diagnosis). It
  also holds the pure parsers that turn API objects into small fact values;
- :mod:`~o11yctl.doctor.rules` judges the facts without I/O: one
  :class:`~o11yctl.doctor.rules.Finding` per problem, with the symptom, the cause,
  the evidence (the event or log line) and the fix;
- :mod:`~o11yctl.doctor.fixes` carries out the few fixes o11yctl can apply safely
  itself (chown over SSH, a node's label or taint, fix-vxlan, and opening TCP 10250 for the
  server, planned by :mod:`~o11yctl.doctor.kubelet` with fix-vxlan's firewall code);
- :mod:`~o11yctl.doctor.scrub` and :mod:`~o11yctl.doctor.bundle` collect what a
  maintainer asks for into a tar.gz, without Secrets and with known secret values
  removed;
- :mod:`~o11yctl.doctor.run` ties these together for the command line.
"""
