"""FRR instances in network namespaces, for the FPM test (ci/frr-test.py) and bench.

`install()` installs Debian's `frr` package when it is missing (idempotent; no service is
started: a policy-rc.d that refuses starts is put in place for the install when none exists).
`Instance` runs one FRR instance in a namespace the caller made: its daemons (zebra, staticd,
bgpd) with config, pid, zserv and vty files in a directory of its own (owned by user frr, as
the daemons drop privileges to it), `vtysh` against exactly that instance, and `stop()` by PID
(SIGTERM, then SIGKILL after a timeout), leaving nothing behind, not even FRR's per-process
crash-log directories /var/tmp/frr/<daemon>.<pid>. Nothing it did not start is touched.
"""

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

FRR_BIN = Path("/usr/lib/frr")
FPM_MODULE = "dplane_fpm_nl"
POLICY_RC_D = Path("/usr/sbin/policy-rc.d")


def run(cmd, check=True, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))}: exit {r.returncode}: {(r.stderr or r.stdout).strip()}")
    return r


def installed():
    return (FRR_BIN / "zebra").exists() and shutil.which("vtysh") is not None


def install():
    """Installs Debian's frr when missing. Returns None when FRR is there, else why it cannot be."""
    if installed():
        return None
    if os.geteuid() != 0:
        return "FRR is not installed and installing it needs root"
    made_policy = False
    try:
        if not POLICY_RC_D.exists():
            # Keep the package from starting the system's own FRR (zebra in the root namespace).
            POLICY_RC_D.write_text("#!/bin/sh\n# ci/frr.py: no service starts while frr installs\nexit 101\n")
            POLICY_RC_D.chmod(0o755)
            made_policy = True
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        r = run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "frr"], check=False, env=env)
        if r.returncode != 0:
            run(["apt-get", "update", "-qq"], check=False, env=env)
            r = run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "frr"], check=False, env=env)
        if r.returncode != 0:
            return f"apt-get install frr failed: {(r.stderr or r.stdout).strip()[-300:]}"
    finally:
        if made_policy:
            POLICY_RC_D.unlink(missing_ok=True)
    return None if installed() else "frr installed but /usr/lib/frr/zebra or vtysh is missing"


def version():
    """`zebra --version`'s first line, e.g. 'zebra version 8.4.4'."""
    r = run([str(FRR_BIN / "zebra"), "--version"], check=False)
    return (r.stdout or r.stderr).splitlines()[0].strip() if (r.stdout or r.stderr) else "unknown"


class Instance:
    """One FRR instance (zebra and friends) in network namespace `netns`, files in `directory`."""

    DAEMONS = ("zebra", "staticd", "bgpd")

    def __init__(self, name, netns, directory):
        self.name = name
        self.netns = netns
        self.dir = Path(directory)
        self.run_dir = self.dir / "run"
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.pids = {}  # daemon -> pid, of the daemons this object started

    def configure(self, daemon, text):
        """Writes DIR/<daemon>.conf, with a log file in DIR unless the text names one."""
        if "log file" not in text:
            text = f"log file {self.dir / (daemon + '.log')} informational\n" + text
        path = self.dir / f"{daemon}.conf"
        path.write_text(text)
        self._own()
        path.chmod(0o640)

    def _own(self):
        shutil.chown(self.dir, "frr", "frr")
        for p in self.dir.rglob("*"):
            shutil.chown(p, "frr", "frr")

    def start(self, daemons=DAEMONS, zebra_args=(), timeout=10):
        """Starts each daemon (zebra with the FPM module) and waits for its pid file and vty socket."""
        for d in daemons:
            conf = self.dir / f"{d}.conf"
            if not conf.exists():
                self.configure(d, f"hostname {self.name}\n")
            pidfile = self.run_dir / f"{d}.pid"
            pidfile.unlink(missing_ok=True)
            cmd = ["ip", "netns", "exec", self.netns, str(FRR_BIN / d), "-d", "-f", str(conf), "-i", str(pidfile),
                   "-z", str(self.run_dir / "zserv.api"), "--vty_socket", str(self.run_dir), "-P", "0"]
            if d == "zebra":
                cmd += ["-M", FPM_MODULE, *zebra_args]
            self._own()
            r = run(cmd, check=False)
            deadline = time.monotonic() + timeout
            vty = self.run_dir / f"{d}.vty"
            while time.monotonic() < deadline:
                if pidfile.exists() and vty.exists():
                    try:
                        self.pids[d] = int(pidfile.read_text().split()[0])
                        break
                    except (ValueError, IndexError):
                        pass
                time.sleep(0.05)
            else:
                log = self.dir / f"{d}.log"
                tail = log.read_text()[-800:] if log.exists() else ""
                raise RuntimeError(f"{self.name}: {d} did not start (exit {r.returncode}): {r.stderr.strip()[-400:]} {tail}")

    def vtysh(self, *commands, check=True):
        """Runs vtysh against this instance: each command is one -c (e.g. 'conf t', 'ip route ...')."""
        cmd = ["ip", "netns", "exec", self.netns, "vtysh", "--vty_socket", str(self.run_dir)]
        for c in commands:
            cmd += ["-c", c]
        return run(cmd, check=check).stdout

    def running(self, daemon):
        pid = self.pids.get(daemon)
        if pid is None:
            return False
        try:
            os.kill(pid, 0)
            return True
        except ProcessLookupError:
            return False

    def stop(self, daemons=None, zebra_first=False, timeout=15):
        """Stops daemons by PID, waiting for each to exit (zebra with many routes takes seconds
        to remove them from its kernel); SIGKILL after `timeout` seconds. Removes FRR's
        crash-log directories of these PIDs.

        The order is the reverse of the start (bgpd, staticd, zebra): each client withdraws its
        routes through zebra, which streams the deletes. With `zebra_first`, zebra goes first,
        as when it dies and watchfrr restarts the whole instance: zebra sends no deletes, its
        clients then lose it and stop."""
        order = [d for d in reversed(self.DAEMONS) if d in self.pids and (daemons is None or d in daemons)]
        if zebra_first and "zebra" in order:
            order = ["zebra"] + [d for d in order if d != "zebra"]
        for d in order:
            pid = self.pids.pop(d)
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.05)
            else:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            shutil.rmtree(f"/var/tmp/frr/{d}.{pid}", ignore_errors=True)
            for f in (self.run_dir / f"{d}.pid", self.run_dir / f"{d}.vty"):
                f.unlink(missing_ok=True)

    def close(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
