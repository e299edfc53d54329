#!/usr/bin/python3
"""Boots the VM image N times (kernel command line `quiet`, as a real VM
would) and measures, per boot:

  QEMU start -> kernel hands over to /init -> maitred serving -> VmReady
  maitred's own part: exec -> serving (kernel log timestamps) and its CPU
  maitred's RSS as PID 1
  Shutdown -> QEMU exit

Host-side times come from the host clock; guest-side ones from the kernel
log's timestamps, placed on the host clock through the VmReady call (its
arrival on the host and maitred's "Told the host" line are a round trip
apart). Prints medians and writes them to BUILD/vm-boot-bench.json.

Usage: bench/vm_boot_bench.py --build STATIC_BUILD [--boots N]"""
import argparse
import json
import os
import re
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))

import valet  # noqa: E402
import vm  # noqa: E402


def one_boot(build, kdir, initrd, work):
    v = vm.VM(build, work, kdir, initrd, cmdline=os.environ.get("VALET_VM_CMDLINE", "quiet"))
    v.keep_console = os.path.join(build, "vm-console-bench.log")
    try:
        if not v.listener.event.wait(vm.BOOT_TIMEOUT):
            v.check_alive()
            raise AssertionError("no VmReady")
        ready_host = v.listener.calls[0][0] - v.started
        res = valet.vsh(v.vshd_addr(), "--", "/bin/sh", "-c", "dmesg; grep VmRSS /proc/1/status")
        out = res.stdout.decode()
        handover, _ = vm.kernel_time(out, "first-stage: loading modules")
        execd, _ = vm.kernel_time(out, "first-stage: exec maitred")
        serving, m = vm.kernel_time(out, r"maitred: Serving (?P<wall>[\d.]+) ms after start \((?P<cpu>[\d.]+) ms "
                                    r"of CPU: (?P<user>[\d.]+) in maitred, (?P<sys>[\d.]+) in the kernel\)")
        main_ms, cpu_ms, user_ms = float(m["wall"]), float(m["cpu"]), float(m["user"])
        told, _ = vm.kernel_time(out, "maitred: Told the host")
        rss = int(re.search(r"VmRSS:\s+(\d+)", out).group(1))
        offset = ready_host - told  # kernel clock -> seconds since QEMU start
        # The same binary started again inside the booted VM (not PID 1, no
        # setup, no jobs): first its code is cold for QEMU's translator,
        # then warm. Shows how much of the boot figure is emulation.
        again = valet.vsh(v.vshd_addr(), "--", "/bin/sh", "-c",
                          "for i in 1 2 3; do /sbin/maitred --listen unix:/run/b$i.sock --no-startup-processes"
                          " --vm-ready none 2>&1 & p=$!; sleep 0.3; kill $p; wait $p; done").stdout.decode()
        restarts = [float(x) for x in re.findall(r"Serving ([\d.]+) ms after start", again)]
        assert len(restarts) == 3, again
        start = time.monotonic()
        valet.maitctl(v.maitred_addr(), "shutdown")
        code = v.wait_exit(30)
        down = time.monotonic() - start
        assert code == 0, code
        return {
            "qemu_to_handover_s": handover + offset,
            "qemu_to_serving_s": serving + offset,
            "qemu_to_vm_ready_s": ready_host,
            "maitred_exec_to_serving_ms": (serving - execd) * 1000,
            "maitred_main_to_serving_ms": main_ms,
            "maitred_cpu_to_serving_ms": cpu_ms,
            "maitred_user_cpu_to_serving_ms": user_ms,
            "maitred_wall_share_pct": (serving - execd) / ready_host * 100,
            "maitred_cpu_share_pct": cpu_ms / 1000 / ready_host * 100,
            "maitred_user_cpu_share_pct": user_ms / 1000 / ready_host * 100,
            "maitred_pid1_rss_kib": rss,
            "restart_in_vm_cold_ms": restarts[0],
            "restart_in_vm_warm_ms": restarts[2],
            "shutdown_to_qemu_exit_s": down,
        }
    finally:
        v.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--boots", type=int, default=5)
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    valet.configure(build)
    work = valet.tmpdir()
    try:
        kdir = vm.kernel_dir()
        initrd = os.path.join(work, "initrd.gz")
        vm.build_initramfs(build, kdir, initrd)
        runs = []
        for i in range(args.boots):
            sub = os.path.join(work, f"boot{i}")
            os.makedirs(sub)
            runs.append(one_boot(build, kdir, initrd, sub))
            print(f"boot {i + 1}: " + ", ".join(f"{k}={v:.3g}" for k, v in runs[-1].items()), flush=True)
    finally:
        valet.cleanup()
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    print("\nmedian of %d boots (TCG, q35, 1 vCPU, kernel %s):" % (len(runs), open(os.path.join(kdir, "version")).read().strip()))
    for k, v in med.items():
        print(f"  {k:32s} {v:10.3f}")
    with open(os.path.join(build, "vm-boot-bench.json"), "w") as f:
        json.dump({"boots": runs, "median": med}, f, indent=1)


if __name__ == "__main__":
    main()
