"""Reads the grader's memory: opens /proc/PID/mem of every other process it can see while graded."""

import os

from hacklib import command, honest, succeeded

if command() == "predict":
    for pid in filter(str.isdigit, os.listdir("/proc")):
        if int(pid) in (os.getpid(), os.getppid()):
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                program = cmdline.read().replace(b"\0", b" ").decode(errors="replace")
            with open(f"/proc/{pid}/maps") as maps:
                first = maps.readline().split()[0]
            start = int(first.split("-")[0], 16)
            with open(f"/proc/{pid}/mem", "rb") as memory:
                memory.seek(start)
                if memory.read(64):
                    succeeded(f"read the memory of process {pid} ({program[:80]})")
        except (OSError, ValueError, IndexError):
            pass
honest()
