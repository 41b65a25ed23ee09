"""A ``helm`` stand-in for the release lifecycle, put first on PATH by tests.

Real helm cannot install into the fake API server (it needs OpenAPI, protobuf
release storage and, in Helm 4, server-side apply with watches), so the parts of
the lifecycle that write releases (``upgrade --install``, ``rollback``) are played
by this script. Everything it prints was captured from the real binaries (Helm
v3.17.2 and v4.1.4, ``scripts/get_helm.py``):

- ``list/status/history/get values -o json``: the JSON shapes real helm printed when
  it read releases from :mod:`tests.lab.fake_kube` (``revision`` is a string in
  ``list`` and a number in ``history``; ``updated`` has two formats);
- the error lines: ``Error: release: not found``, ``Error: uninstall: Release not
  loaded: NAME: release: not found``, ``Error: UPGRADE FAILED: another operation
  (install/upgrade/rollback) is in progress``, and the ``upgrade``/``rollback``
  success messages. ``tests/integration/test_helm_real.py`` checks that the real
  binaries still print these against the fake API, so the stand-in cannot drift.

``list`` filters by state the way helm's own code does, read at the two tags the
stand-in plays (pkg/action/list.go ``SetStateMask``, ``filterLatestReleases`` and
``filterStateMask``; cmd/helm/list.go in v3.17.2, commit cc0bbbd6, and pkg/cmd/list.go
in v4.1.4, commit 05fa3797):

- only each release's latest revision is shown, and only when its status is one of
  the states asked for: ``--deployed``, ``--failed``, ``--pending`` (pending-install,
  pending-upgrade, pending-rollback), ``--superseded``, ``--uninstalled``,
  ``--uninstalling``, combined with OR; ``--superseded`` alone lists every superseded
  revision instead;
- with no state flag, Helm 3 shows deployed and failed releases, Helm 4 every state;
- Helm 3's ``--all``/``-a`` shows every state; Helm 4 has no ``--all``.

A flag real helm rejects (``--all`` on Helm 4, a state flag on ``status`` or any
command but ``list``) fails with helm's own line and exit code, printed by the real
v3.17.2 and v4.1.4 binaries: ``Error: unknown flag: --all`` or ``Error: unknown
shorthand flag: 'a' in -a``, exit 1; the call is also recorded as unexpected, since
o11yctl should never send it.

State (releases, scripted failures, and every argv it was called with) lives in a
JSON file named by ``$FAKE_HELM_STATE``. An argument it does not understand
makes it exit 2 and is recorded, so tests fail closed.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pytest

SCRIPT = r'''#!{python}
import fcntl, json, os, sys, time
STATE = os.environ["FAKE_HELM_STATE"]

def load():
    with open(STATE) as fh:
        return json.load(fh)

def save(state):
    tmp = STATE + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(state, fh, indent=1)
    os.replace(tmp, STATE)

def now():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

def fail(state, text, code=1):
    save(state)
    sys.stderr.write(text + "\n")
    sys.exit(code)

# helm's ListStates bits (pkg/action/list.go); a status without a name is ListUnknown, never listed.
LIST_STATES = {{"deployed": 1, "uninstalled": 2, "uninstalling": 4, "pending-install": 8, "pending-upgrade": 16,
               "pending-rollback": 32, "superseded": 64, "failed": 128}}
LIST_ALL = 255
STATE_FLAGS = {{"--deployed": 1, "--uninstalled": 2, "--uninstalling": 4, "--pending": 8 | 16 | 32,
               "--superseded": 64, "--failed": 128}}

def list_mask(flags, major):
    """helm's List.SetStateMask: --all, else the flags ORed, else the default of the major version."""
    if flags.get("--all") or flags.get("-a"):
        return LIST_ALL
    mask = 0
    for flag, bits in STATE_FLAGS.items():
        if flags.get(flag):
            mask |= bits
    if mask == 0:
        mask = LIST_STATES["deployed"] | LIST_STATES["failed"] if major == 3 else LIST_ALL
    return mask

def main(argv):
    state = load()
    state["calls"].append(argv)
    major = int(state["version"].lstrip("v").split(".")[0])
    args, flags, i = [], {{}}, 0
    bool_flags = {{"--install", "--wait", "--all", "-a"}} | set(STATE_FLAGS)
    value_flags = {{"--namespace", "-n", "--output", "-o", "--repo", "--version", "--values", "-f", "--timeout",
                   "--kubeconfig", "--kube-context", "--template"}}
    while i < len(argv):
        a = argv[i]
        if a in bool_flags:
            flags[a] = True
        elif a in value_flags:
            flags[a] = argv[i + 1]
            i += 1
        elif a.startswith("-"):
            state["unexpected"].append(argv)
            fail(state, "Error: unknown flag: " + a, 2)
        else:
            args.append(a)
        i += 1
    ns = flags.get("--namespace") or flags.get("-n") or "default"
    releases = state["releases"].setdefault(ns, {{}})
    cmd = " ".join(args[:2]) if args[:1] == ["get"] else (args[0] if args else "")
    name = args[2] if cmd == "get values" else (args[1] if len(args) > 1 else "")
    list_only = set(STATE_FLAGS) | ({{"--all", "-a"}} if major == 3 else set())
    rejected = [f for f in flags if f in STATE_FLAGS or f in ("--all", "-a")
                if cmd != "list" or f not in list_only]
    if rejected:
        state["unexpected"].append(argv)
        if rejected[0] == "-a":
            fail(state, "Error: unknown shorthand flag: 'a' in -a")
        fail(state, "Error: unknown flag: " + rejected[0])
    scripted = state["failures"].get(cmd + ":" + name)
    if scripted:
        state["failures"].pop(cmd + ":" + name)
        fail(state, scripted["stderr"], scripted.get("code", 1))
    if cmd == "version":
        save(state)
        print(state["version"] if flags.get("--template") else "version.BuildInfo{{Version:\"%s\"}}" % state["version"])
        return
    if cmd == "list":
        mask = list_mask(flags, major)
        out = []
        for rel_name, revs in sorted(releases.items()):
            if not revs:
                continue
            # filterLatestReleases is skipped when only superseded releases are asked for
            shown = revs if mask == LIST_STATES["superseded"] else [max(revs, key=lambda r: r["revision"])]
            for rev in sorted(shown, key=lambda r: r["revision"]):
                if LIST_STATES.get(rev["status"], 0) & mask:
                    out.append({{"name": rel_name, "namespace": ns, "revision": str(rev["revision"]),
                                "updated": rev["updated"].replace("T", " ").replace("Z", " +0000 UTC"),
                                "status": rev["status"], "chart": rev["chart"], "app_version": "1.0.0"}})
        save(state)
        print(json.dumps(out, separators=(",", ":")))
        return
    revs = releases.get(name)
    if cmd in ("status", "get values", "history", "rollback") and not revs:
        fail(state, "Error: release: not found")
    if cmd == "status":
        last = revs[-1]
        save(state)
        print(json.dumps({{"name": name, "info": {{"first_deployed": revs[0]["updated"],
                          "last_deployed": last["updated"], "deleted": "", "description": last["description"],
                          "status": last["status"]}},
                          "config": last["values"], "version": last["revision"], "namespace": ns}}))
        return
    if cmd == "get values":
        save(state)
        print(json.dumps(revs[-1]["values"] or None, separators=(",", ":")))
        return
    if cmd == "history":
        save(state)
        print(json.dumps([{{"revision": r["revision"], "updated": r["updated"], "status": r["status"],
                           "chart": r["chart"], "app_version": "1.0.0", "description": r["description"]}}
                          for r in revs], separators=(",", ":")))
        return
    if cmd == "uninstall":
        if not revs:
            fail(state, "Error: uninstall: Release not loaded: %s: release: not found" % name)
        del releases[name]
        save(state)
        print('release "%s" uninstalled' % name)
        return
    if cmd == "rollback":
        target = int(args[2]) if len(args) > 2 else revs[-2]["revision"]
        source = [r for r in revs if r["revision"] == target][0]
        for r in revs:
            if r["status"] == "deployed" or r["status"].startswith("pending"):
                r["status"] = "superseded"
        revs.append({{"revision": revs[-1]["revision"] + 1, "status": "deployed", "chart": source["chart"],
                     "values": source["values"], "updated": now(), "description": "Rollback to %d" % target}})
        save(state)
        print("Rollback was a success! Happy Helming!")
        return
    if cmd == "upgrade" and flags.get("--install"):
        if len(args) != 3:
            state["unexpected"].append(argv)
            fail(state, "Error: \"helm upgrade\" requires 2 arguments", 1)
        chart = args[2]
        version = flags.get("--version")
        if os.path.exists(chart):
            meta = {{}}
            for line in open(os.path.join(chart, "Chart.yaml")):
                key, _, value = line.partition(":")
                meta[key.strip()] = value.strip()
            chart_id = meta["name"] + "-" + meta["version"]
        else:
            if not version or not flags.get("--repo"):
                state["unexpected"].append(argv)
                fail(state, "Error: stand-in wants --repo and --version", 2)
            chart_id = chart + "-" + version
        import yaml
        with open(flags["--values"]) as fh:
            values = yaml.safe_load(fh) or {{}}
        if revs and revs[-1]["status"].startswith("pending"):
            fail(state, "Error: UPGRADE FAILED: another operation (install/upgrade/rollback) is in progress")
        first = not revs
        if first:
            revs = releases.setdefault(name, [])
        rev = (revs[-1]["revision"] + 1) if revs else 1
        delay = float(state.get("durations", {{}}).get(name, 0))
        if delay:
            # As helm does: the new revision is stored pending-* first, then helm waits (--wait) for the
            # release's resources; other helm processes run meanwhile (the lock is released).
            revs.append({{"revision": rev, "status": "pending-install" if first else "pending-upgrade",
                         "chart": chart_id, "values": values, "updated": now(),
                         "description": "Initial install underway" if first else "Preparing upgrade"}})
            save(state)
            fcntl.flock(LOCK[0], fcntl.LOCK_UN)
            time.sleep(delay)
            fcntl.flock(LOCK[0], fcntl.LOCK_EX)
            state = load()
            revs = state["releases"][ns][name]
            revs.pop()
        for r in revs:
            if r["status"] == "deployed":
                r["status"] = "superseded"
        revs.append({{"revision": rev, "status": "deployed", "chart": chart_id, "values": values, "updated": now(),
                     "description": "Install complete" if first else "Upgrade complete"}})
        save(state)
        if first:
            print('Release "%s" does not exist. Installing it now.' % name)
        else:
            print('Release "%s" has been upgraded. Happy Helming!' % name)
        print("NAME: %s\nLAST DEPLOYED: %s\nNAMESPACE: %s\nSTATUS: deployed\nREVISION: %d\nTEST SUITE: None"
              % (name, time.ctime(), ns, rev))
        return
    state["unexpected"].append(argv)
    fail(state, "Error: unknown command %r for \"helm\"" % cmd, 2)

# Real helm processes may run at the same time (o11yctl reads several releases at once): one at a time here.
LOCK = []
with open(STATE + ".lock", "w") as lock:
    LOCK.append(lock)
    fcntl.flock(lock, fcntl.LOCK_EX)
    main(sys.argv[1:])
'''


class FakeHelm:
    """The stand-in's state file and the directory holding its ``helm`` script."""

    def __init__(self, root: Path, *, version: str = "v3.17.2") -> None:
        self.bin_dir = root / "bin"
        self.bin_dir.mkdir(parents=True, exist_ok=True)
        self.state_file = root / "fake-helm-state.json"
        self.path = self.bin_dir / "helm"
        self.path.write_text(SCRIPT.format(python=sys.executable))
        self.path.chmod(0o755)
        self._write({"version": version, "releases": {}, "failures": {}, "calls": [], "unexpected": []})

    def env(self) -> dict[str, str]:
        """Environment variables that put the stand-in first on PATH."""
        return {"FAKE_HELM_STATE": str(self.state_file),
                "PATH": f"{self.bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}

    def first_on_path(self, monkeypatch: pytest.MonkeyPatch) -> FakeHelm:
        """Make this stand-in the ``helm`` every o11yctl run of the test finds (and no $O11YCTL_HELM override)."""
        for key, value in self.env().items():
            monkeypatch.setenv(key, value)
        monkeypatch.delenv("O11YCTL_HELM", raising=False)
        return self

    def _read(self) -> dict[str, Any]:
        return dict(json.loads(self.state_file.read_text()))

    def _write(self, state: dict[str, Any]) -> None:
        self.state_file.write_text(json.dumps(state, indent=1))

    def seed_release(self, name: str, namespace: str, revisions: list[dict[str, Any]]) -> None:
        """Store a release; each revision: status, chart ("loki-6.21.0"), values, optional description."""
        state = self._read()
        revs = []
        for n, r in enumerate(revisions, 1):
            revs.append({"revision": n, "status": r["status"], "chart": r["chart"], "values": r.get("values", {}),
                         "updated": "2025-01-01T10:00:00Z", "description": r.get("description", "Install complete")})
        state["releases"].setdefault(namespace, {})[name] = revs
        self._write(state)

    def set_duration(self, release: str, seconds: float) -> None:
        """``helm upgrade --install`` of ``release`` takes this long (its --wait), with the revision pending-*
        meanwhile and other helm processes free to run, as real helm waiting for the release's resources."""
        state = self._read()
        state.setdefault("durations", {})[release] = seconds
        self._write(state)

    def fail(self, command: str, release: str, stderr: str, code: int = 1) -> None:
        """The next ``command`` ("upgrade", "rollback", "uninstall", ...) on ``release`` prints ``stderr`` and fails."""
        state = self._read()
        state["failures"][f"{command}:{release}"] = {"stderr": stderr, "code": code}
        self._write(state)

    def releases(self, namespace: str) -> dict[str, list[dict[str, Any]]]:
        return dict(self._read()["releases"].get(namespace, {}))

    @property
    def calls(self) -> list[list[str]]:
        return list(self._read()["calls"])

    def commands(self) -> list[str]:
        """Each call's helm command (``upgrade``, ``list``, ``get``...), in order."""
        return [c[0] if c else "" for c in self.calls]

    def check_clean(self) -> None:
        state = self._read()
        problems = [f"unexpected helm call: {u}" for u in state["unexpected"]]
        problems += [f"scripted helm failure never happened: {k}" for k in state["failures"]]
        if problems:
            raise AssertionError("\n".join(problems))
