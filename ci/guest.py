#!/usr/bin/env python3
"""Boots a throw-away QEMU guest that runs one command on this machine's own root file system.

    ci/guest.py [OPTIONS] -- COMMAND [ARG...]   run COMMAND in a guest, print its console,
                                                exit with COMMAND's exit status
    ci/guest.py --prepare                       install and cache what a guest needs, say
                                                which accelerator it would use

The guest is Debian's own kernel (the version package linux-image-amd64 points to, fetched
with `apt-get download` and unpacked with `dpkg -x`) and a small initramfs (a static busybox,
ci/guest-init.sh as /init, and the modules for virtio, 9p, uio_pci_generic and vfio-pci). It
mounts the host's `/` read-only over virtio-9p, so the freshly built forwarder, DPDK, python,
iproute2 and iperf3 are all there, plus one writable 9p share (a host directory, mounted at
the same path in the guest), reserves hugepages, and runs COMMAND as root in the host's root
(chroot), in the current directory, with:

    GUEST_SHARE   the share's path (the same inside and outside the guest)
    GUEST_BOOT    1 on the first boot, 2 after the first reboot, ...
    GUEST_REBOOT  a path: creating it makes the guest reboot (not power off) when COMMAND
                  exits, while --boots allows; COMMAND then runs again with GUEST_BOOT + 1
    GUEST_ACCEL   kvm or tcg

Acceleration: KVM (`-enable-kvm -cpu host`) only where a probe boot under KVM reached /init
within PROBE_SECONDS; the answer is cached per host kernel, QEMU and guest kernel. Otherwise
TCG (`-accel tcg,thread=multi -cpu max`), whose CPU model has the SSE4.2/AVX2 Debian's DPDK
needs. `--accel`/DP_GUEST_ACCEL force one.

Cache (DP_GUEST_CACHE; default /var/cache/dataplane-guest, or target/guest-cache when that
cannot be written): the kernel and the needed modules (not the 400 MB package), the
initramfs, the accelerator probe. Packages qemu-system-x86, kmod, cpio and busybox-static
are installed with apt-get when missing.

Bounded: the guest is killed after --timeout seconds (exit status 124). Exit status 77 with
"SKIP: ..." only when QEMU cannot start at all (not installable, or it fails with no guest);
125 when the guest ended without reporting a status (kernel panic, failed mount: see the
console). QEMU runs in its own session and is killed on any exit, Ctrl-C or SIGTERM.

As a library (ci/e1000-test.py, ci/vhost-test.py): `Guest(...)` is a context manager; `start()`
boots it in the background, `wait()` returns its `Result`; leaving the `with` kills QEMU.
"""

import argparse
import functools
import gzip
import hashlib
import lzma
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INIT = Path(__file__).resolve().parent / "guest-init.sh"
QEMU = "qemu-system-x86_64"
PROBE_SECONDS = 40
# Modules /init loads, in this order (their dependencies first, resolved by modprobe).
MODULES = ["virtio_pci", "virtio_net", "9pnet_virtio", "9p", "uio_pci_generic", "vfio-pci"]
SKIP = 77
TIMED_OUT = 124
NO_STATUS = 125


def log(msg):
    print(f"guest: {msg}", flush=True)


class Skip(Exception):
    """QEMU cannot start on this machine at all."""


def sigterm_as_exit():
    """SIGINT, SIGTERM and SIGHUP unwind the stack, so every `finally` and `with` cleans up
    (SIGINT too when it came in ignored, as it does for a shell's background jobs)."""

    def handler(signum, _frame):
        raise SystemExit(128 + signum)

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, handler)


def cache_dir():
    d = os.environ.get("DP_GUEST_CACHE")
    candidates = [Path(d)] if d else [Path("/var/cache/dataplane-guest"), ROOT / "target" / "guest-cache"]
    for c in candidates:
        try:
            c.mkdir(parents=True, exist_ok=True)
            if os.access(c, os.W_OK):
                return c
        except OSError:
            pass
    raise SystemExit(f"guest: no writable cache directory among {', '.join(map(str, candidates))}")


def apt_install(packages):
    """apt-get install of the packages not yet installed (waits for another apt's lock)."""
    missing = [
        p
        for p in packages
        if subprocess.run(["dpkg-query", "-W", "-f=${Status}", p], capture_output=True, text=True).stdout
        != "install ok installed"
    ]
    if not missing:
        return
    log(f"installing {' '.join(missing)}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    apt = ["apt-get", "-q", "-o", "DPkg::Lock::Timeout=600"]
    r = subprocess.run(apt + ["install", "-y", "--no-install-recommends"] + missing, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        subprocess.run(apt + ["update"], env=env, capture_output=True)
        r = subprocess.run(apt + ["install", "-y", "--no-install-recommends"] + missing, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"apt-get install {' '.join(missing)} failed:\n{r.stdout[-2000:]}{r.stderr[-2000:]}")


def ensure_qemu():
    """QEMU and the tools to build the guest; Skip when QEMU cannot be had or cannot start."""
    try:
        apt_install(["qemu-system-x86", "kmod", "cpio"])
    except RuntimeError as e:
        if shutil.which(QEMU) is None:
            raise Skip(f"{QEMU} is not installed and cannot be installed: {e}") from e
        raise
    if shutil.which(QEMU) is None:
        raise Skip(f"{QEMU} not found after installing qemu-system-x86")
    # An empty machine with no guest, told to quit on its monitor: if this cannot run, no
    # guest can.
    r = subprocess.run(
        [QEMU, "-machine", "none", "-accel", "tcg", "-nodefaults", "-display", "none", "-monitor", "stdio"],
        input="quit\n", capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    if r.returncode != 0:
        raise Skip(f"{QEMU} cannot start here (exit {r.returncode}): {r.stderr.strip()[-500:]}")


def qemu_version():
    return subprocess.run([QEMU, "--version"], capture_output=True, text=True).stdout.splitlines()[0]


def apt_download(pkg, dest):
    """`apt-get download PKG` into dest (a fresh temp dir); returns the .deb path."""
    r = subprocess.run(["apt-get", "-q", "download", pkg], cwd=dest, capture_output=True, text=True)
    if r.returncode != 0:
        subprocess.run(["apt-get", "-q", "-o", "DPkg::Lock::Timeout=600", "update"], capture_output=True)
        r = subprocess.run(["apt-get", "-q", "download", pkg], cwd=dest, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"apt-get download {pkg} failed: {r.stderr.strip()[-1000:]}")
    debs = list(Path(dest).glob("*.deb"))
    if len(debs) != 1:
        raise RuntimeError(f"apt-get download {pkg}: expected one .deb, found {debs}")
    return debs[0]


def kernel_package():
    """The linux-image-<version>-amd64 that linux-image-amd64 depends on (None without apt lists)."""
    for attempt in range(2):
        r = subprocess.run(["apt-cache", "depends", "linux-image-amd64"], capture_output=True, text=True)
        for line in r.stdout.splitlines():
            line = line.strip()
            if line.startswith("Depends: linux-image-"):
                return line.split()[1]
        if attempt == 0:
            subprocess.run(["apt-get", "-q", "-o", "DPkg::Lock::Timeout=600", "update"], capture_output=True)
    return None


def extract_vmlinux(bzimage):
    """The uncompressed kernel ELF inside a bzImage (xz or gzip), or None.

    QEMU boots such an ELF directly at its PVH entry point (CONFIG_PVH): no firmware
    decompressing 8 MB of xz under TCG, which takes most of a boot (about 12 s -> 3 s here).
    """
    data = bzimage.read_bytes()
    for magic, decompressor in ((b"\xfd7zXZ\x00", lzma.LZMADecompressor), (b"\x1f\x8b\x08\x00", lambda: zlib.decompressobj(31))):
        at = data.find(magic)
        if at < 0:
            continue
        try:
            elf = decompressor().decompress(data[at:])
        except (lzma.LZMAError, zlib.error):
            continue
        if elf[:4] == b"\x7fELF":
            return elf
    return None


def ensure_kernel(cache):
    """cache/linux-image-<version>/{vmlinuz, vmlinux (when it can boot), busybox, modules/,
    modules.list}: returns that dir."""
    pkg = kernel_package()
    if pkg is None:
        have = sorted(cache.glob("linux-image-*/vmlinuz"))
        if have:
            return have[-1].parent
        raise RuntimeError("cannot resolve linux-image-amd64 (apt lists?) and no kernel is cached")
    kdir = cache / pkg
    if (kdir / "modules.list").exists():
        return kdir
    version = pkg.removeprefix("linux-image-")
    log(f"fetching {pkg} and busybox-static (once; cached in {cache})")
    with tempfile.TemporaryDirectory(prefix="dp-guest-kernel.", dir=cache) as tmp:
        tmp = Path(tmp)
        (tmp / "dl").mkdir()
        os.chmod(tmp, 0o755)
        os.chmod(tmp / "dl", 0o777)  # apt-get download runs as _apt where it can
        kdeb = apt_download(pkg, tmp / "dl")
        unpacked = tmp / "root"
        subprocess.run(["dpkg-deb", "-x", str(kdeb), str(unpacked)], check=True)
        kdeb.unlink()
        bdeb = apt_download("busybox-static", tmp / "dl")
        subprocess.run(["dpkg-deb", "-x", str(bdeb), str(unpacked)], check=True)
        # The package has no modules.dep: make one so modprobe can resolve dependencies.
        subprocess.run(["depmod", "-b", str(unpacked), version], check=True)
        order = []
        for m in MODULES:
            r = subprocess.run(
                ["modprobe", "-d", str(unpacked), "-S", version, "--show-depends", m], capture_output=True, text=True, check=True
            )
            for line in r.stdout.splitlines():
                words = line.split()
                if words and words[0] == "insmod" and words[1] not in order:
                    order.append(words[1])
        stage = tmp / "stage"
        (stage / "modules").mkdir(parents=True)
        listing = []
        for path in order:
            name = Path(path).name
            shutil.copy2(path, stage / "modules" / name)
            listing.append(f"/lib/modules/{name}")
        (stage / "modules.list").write_text("\n".join(listing) + "\n")
        shutil.copy2(unpacked / "boot" / f"vmlinuz-{version}", stage / "vmlinuz")
        if "CONFIG_PVH=y" in (unpacked / "boot" / f"config-{version}").read_text().split():
            vmlinux = extract_vmlinux(stage / "vmlinuz")
            if vmlinux:
                (stage / "vmlinux").write_bytes(vmlinux)
        shutil.copy2(unpacked / "bin" / "busybox", stage / "busybox")
        (stage / "version").write_text(version + "\n")
        if kdir.exists():
            shutil.rmtree(kdir)
        stage.rename(kdir)
    return kdir


def ensure_initramfs(kdir, cache):
    """An initramfs of busybox, /init and the modules; rebuilt when any of them changes."""
    init = INIT.read_bytes()
    key = hashlib.sha256(init + (kdir / "modules.list").read_bytes() + str(kdir).encode()).hexdigest()[:16]
    out = cache / f"initramfs-{kdir.name}-{key}.cpio.gz"
    if out.exists():
        return out
    with tempfile.TemporaryDirectory(prefix="dp-guest-initramfs.", dir=cache) as tmp:
        tree = Path(tmp) / "tree"
        for d in ("bin", "dev", "proc", "sys", "host", "lib/modules"):
            (tree / d).mkdir(parents=True)
        shutil.copy2(kdir / "busybox", tree / "bin" / "busybox")
        (tree / "init").write_bytes(init)
        os.chmod(tree / "init", 0o755)
        for ko in (kdir / "modules").iterdir():
            shutil.copy2(ko, tree / "lib" / "modules" / ko.name)
        shutil.copy2(kdir / "modules.list", tree / "modules.list")
        files = subprocess.run(["find", "."], cwd=tree, capture_output=True, text=True, check=True).stdout
        cpio = subprocess.run(
            ["cpio", "--quiet", "-o", "-H", "newc", "-R", "0:0"], cwd=tree, input=files.encode(), capture_output=True, check=True
        ).stdout
        part = Path(tmp) / "initramfs.cpio.gz"
        part.write_bytes(gzip.compress(cpio, 6))
        part.rename(out)
    for old in cache.glob(f"initramfs-{kdir.name}-*.cpio.gz"):
        if old != out:
            old.unlink()
    return out


@dataclass
class Prepared:
    kernel: Path
    initramfs: Path
    accel: str
    accel_reason: str


def kvm_boots(kernel, initramfs):
    """Whether a probe guest under KVM reaches /init within PROBE_SECONDS."""
    with tempfile.TemporaryDirectory(prefix="dp-guest-probe.") as tmp:
        console = Path(tmp) / "console.log"
        cmd = [
            QEMU, "-enable-kvm", "-cpu", "host", "-m", "512", "-smp", "1", "-nodefaults", "-no-user-config",
            "-display", "none", "-monitor", "none", "-no-reboot",
            "-kernel", str(kernel), "-initrd", str(initramfs), "-append", "console=ttyS0 panic=-1 dp.probe=1",
            "-chardev", f"file,id=con,path={console}", "-serial", "chardev:con",
        ]  # fmt: skip
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        try:
            deadline = time.monotonic() + PROBE_SECONDS
            while time.monotonic() < deadline and p.poll() is None:
                if console.exists() and "dp-guest: probe ok" in console.read_text(errors="replace"):
                    return True, f"a KVM guest reached /init in {PROBE_SECONDS - (deadline - time.monotonic()):.1f} s"
                time.sleep(0.2)
            if console.exists() and "dp-guest: probe ok" in console.read_text(errors="replace"):
                return True, "a KVM guest reached /init"
            if p.poll() is not None:
                err = p.stderr.read().decode(errors="replace").strip().splitlines()
                return False, f"QEMU with -enable-kvm failed: {err[-1] if err else 'exit ' + str(p.returncode)}"
            return False, f"a KVM guest did not reach /init within {PROBE_SECONDS} s (e.g. PVM, which boots no stock kernel)"
        finally:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def detect_accel(kernel, initramfs, cache):
    forced = os.environ.get("DP_GUEST_ACCEL")
    if forced in ("kvm", "tcg"):
        return forced, "forced by DP_GUEST_ACCEL"
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return "tcg", "/dev/kvm is absent or not accessible"
    key = hashlib.sha256(f"{os.uname().release}|{qemu_version()}|{kernel.parent.name}/{kernel.name}".encode()).hexdigest()[:16]
    cached = cache / f"accel-{key}"
    if cached.exists():
        accel, reason = cached.read_text().split("\n", 1)
        return accel, reason.strip() + " (cached probe)"
    log(f"probing KVM: booting a guest under KVM for at most {PROBE_SECONDS} s (once; cached)")
    ok, reason = kvm_boots(kernel, initramfs)
    accel = "kvm" if ok else "tcg"
    cached.write_text(f"{accel}\n{reason}\n")
    return accel, reason


@functools.cache
def prepare(accel="auto"):
    """Installs, downloads and builds what a guest needs; raises Skip when QEMU cannot start.
    Done once per process."""
    ensure_qemu()
    cache = cache_dir()
    kdir = ensure_kernel(cache)
    initramfs = ensure_initramfs(kdir, cache)
    kernel = kdir / "vmlinux" if (kdir / "vmlinux").exists() else kdir / "vmlinuz"
    if accel == "auto":
        accel, reason = detect_accel(kernel, initramfs, cache)
    else:
        reason = "chosen with --accel"
    return Prepared(kernel, initramfs, accel, reason)


@dataclass
class Result:
    status: int  # COMMAND's exit status, or TIMED_OUT / NO_STATUS
    console: Path  # the whole console log (kernel, /init, COMMAND's output)
    boot_seconds: float | None  # QEMU start to the first "dp-guest: init"
    seconds: float  # QEMU start to its exit


class Guest:
    """One guest run. Extra QEMU arguments (NICs, netdevs) go in `qemu_args`."""

    def __init__(self, command, *, share=None, mem=1536, smp=2, hugepages=0, timeout=300, boots=1,
                 shared_memory=False, qemu_args=(), accel="auto", name="dp-guest", cwd=None, echo=True):  # fmt: skip
        self.command = list(command)
        self.own_share = share is None
        if share is None:
            # Under target/ (not /tmp, which the guest covers with its own tmpfs), made now
            # so that the caller can put files in it before start().
            base = ROOT / "target" / "guest"
            base.mkdir(parents=True, exist_ok=True)
            share = tempfile.mkdtemp(prefix=f"{name}.", dir=base)
        self.share = Path(share).resolve()
        self.mem, self.smp, self.hugepages, self.timeout, self.boots = mem, smp, hugepages, timeout, boots
        self.shared_memory, self.qemu_args, self.accel, self.name = shared_memory, list(qemu_args), accel, name
        self.cwd = Path(cwd or os.getcwd())
        self.echo = echo
        self.proc = None
        self.prepared = None
        self.started = None
        self.boot_seconds = None
        self._reader = None
        self._stop_reader = threading.Event()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.kill()
        if self.own_share:
            shutil.rmtree(self.share, ignore_errors=True)

    @property
    def control(self):
        return self.share / ".guest"

    def start(self):
        self.prepared = prepare(self.accel)
        p = self.prepared
        if " " in str(self.share) or "\t" in str(self.share):
            raise ValueError(f"the share path {self.share} must not contain blanks (it goes on the kernel command line)")
        self.control.mkdir(parents=True, exist_ok=True)
        for f in ("status", "boot", "reboot", "console.log"):
            (self.control / f).unlink(missing_ok=True)
        env = {
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": "/root",
            "LANG": "C.UTF-8",
            "TERM": "dumb",
            "GUEST_SHARE": str(self.share),
            "GUEST_REBOOT": str(self.control / "reboot"),
            "GUEST_ACCEL": p.accel,
        }
        script = ["#!/bin/sh", "# Written by ci/guest.py: runs the command in the guest (chroot into the host's root)."]
        script += [f"export {k}={shlex.quote(v)}" for k, v in env.items()]
        script += ['export GUEST_BOOT="$1"', f"cd {shlex.quote(str(self.cwd))} || exit 125", f"exec {shlex.join(self.command)}"]
        (self.control / "run.sh").write_text("\n".join(script) + "\n")
        console = self.control / "console.log"
        if p.accel == "kvm":
            accel = ["-enable-kvm", "-cpu", "host"]
        else:
            accel = ["-accel", "tcg,thread=multi", "-cpu", "max"]
        append = (f"console=ttyS0 panic=-1 quiet dp.share={self.share} dp.hugepages={self.hugepages} dp.boots={self.boots}"
                  f" dp.keep={ROOT}")
        cmd = [
            QEMU, "-name", self.name, *accel, "-smp", str(self.smp), "-m", f"{self.mem}M",
            "-nodefaults", "-no-user-config", "-display", "none", "-vga", "none", "-monitor", "none",
            "-kernel", str(p.kernel), "-initrd", str(p.initramfs), "-append", append,
            "-chardev", f"file,id=con,path={console}", "-serial", "chardev:con",
            "-virtfs", "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap",
            "-virtfs", f"local,path={self.share},mount_tag=share,security_model=none,multidevs=remap",
        ]  # fmt: skip
        if self.boots <= 1:
            cmd.append("-no-reboot")
        if self.shared_memory:
            # Guest RAM a vhost-user back end can map: a memfd shared with it over the socket.
            cmd += ["-object", f"memory-backend-memfd,id=mem,size={self.mem}M,share=on", "-numa", "node,memdev=mem"]
        cmd += self.qemu_args
        log(f"booting ({p.accel}: {p.accel_reason}); {self.smp} vCPU, {self.mem} MiB, share {self.share}")
        self.started = time.monotonic()
        self.stderr = open(self.control / "qemu.stderr", "w")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self.stderr, stderr=subprocess.STDOUT,
                                     start_new_session=True)  # fmt: skip
        self._reader = threading.Thread(target=self._follow, args=(console,), daemon=True)
        self._reader.start()
        return self

    def _follow(self, console):
        """Echoes the console as it grows and notes when /init started."""
        pos = 0
        pending = b""
        while True:
            stopping = self._stop_reader.is_set()
            try:
                with open(console, "rb") as f:
                    f.seek(pos)
                    chunk = f.read()
            except FileNotFoundError:
                chunk = b""
            pos += len(chunk)
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for raw in lines:
                line = raw.decode(errors="replace").rstrip("\r")
                if self.boot_seconds is None and line.startswith("dp-guest: init at uptime"):
                    self.boot_seconds = time.monotonic() - self.started
                if self.echo:
                    print(f"  | {line}", flush=True)
            if stopping:
                if pending and self.echo:
                    print(f"  | {pending.decode(errors='replace')}", flush=True)
                return
            time.sleep(0.1)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def file(self, name):
        """A path in the share."""
        return self.share / name

    def wait(self):
        """Waits for the guest to power off (or for the timeout); returns its Result."""
        deadline = self.started + self.timeout
        timed_out = False
        while self.proc.poll() is None:
            if time.monotonic() >= deadline:
                timed_out = True
                log(f"still running after {self.timeout} s: stopping it")
                self.kill()
                break
            time.sleep(0.2)
        seconds = time.monotonic() - self.started
        self._stop_reader.set()
        self._reader.join(timeout=5)
        self.stderr.close()
        status_file = self.control / "status"
        if timed_out:
            status = TIMED_OUT
        elif status_file.exists():
            status = int(status_file.read_text().strip() or NO_STATUS)
        else:
            status = NO_STATUS
            err = (self.control / "qemu.stderr").read_text(errors="replace").strip()
            log(f"the guest ended without a status (QEMU exit {self.proc.returncode}){': ' + err if err else ''}")
        boot = f"{self.boot_seconds:.1f} s" if self.boot_seconds is not None else "never"
        log(f"done in {seconds:.1f} s ({self.prepared.accel}; QEMU start to /init {boot}); status {status}")
        return Result(status, self.control / "console.log", self.boot_seconds, seconds)

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
            except ProcessLookupError:
                pass


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n\n".join(__doc__.split("\n\n")[1:]))  # fmt: skip
    ap.add_argument("--prepare", action="store_true", help="install and cache what a guest needs, print the accelerator")
    ap.add_argument("--share", help="writable directory shared with the guest (default: a new one under target/guest/, removed after)")
    ap.add_argument("--mem", type=int, default=1536, help="guest memory in MiB (default 1536)")
    ap.add_argument("--smp", type=int, default=2, help="vCPUs (default 2)")
    ap.add_argument("--hugepages", type=int, default=0, help="2 MiB hugepages to reserve in the guest (default 0)")
    ap.add_argument("--timeout", type=int, default=300, help="seconds before the guest is killed (default 300)")
    ap.add_argument("--boots", type=int, default=1, help="boots allowed (reboots asked with $GUEST_REBOOT; default 1)")
    ap.add_argument("--accel", choices=["auto", "kvm", "tcg"], default=os.environ.get("DP_GUEST_ACCEL", "auto"))
    ap.add_argument("--qemu", action="append", default=[], metavar="ARG", help="an extra QEMU argument (repeat)")
    ap.add_argument("command", nargs="*", help="the command to run in the guest (after --)")
    a = ap.parse_args()
    sigterm_as_exit()
    try:
        if a.prepare:
            p = prepare(a.accel)
            log(f"kernel {p.kernel}, initramfs {p.initramfs}")
            log(f"accelerator: {p.accel} ({p.accel_reason})")
            return 0
        if not a.command:
            ap.error("no command (give it after --)")
        with Guest(a.command, share=a.share, mem=a.mem, smp=a.smp, hugepages=a.hugepages, timeout=a.timeout,
                   boots=a.boots, accel=a.accel, qemu_args=a.qemu) as g:  # fmt: skip
            g.start()
            r = g.wait()
            if a.share:
                log(f"console log: {r.console}")
            return r.status
    except Skip as e:
        print(f"SKIP: {e}", flush=True)
        return SKIP


if __name__ == "__main__":
    sys.exit(main())
