"""Calls what a candidate has no business calling: attaches ptrace to its parent, uses the kernel
keyring, loads a BPF program, opens a perf event, makes a userfaultfd, a user namespace and a mount,
and starts io_uring; any that works is a way to read, steer or outlive the grading."""

import ctypes
import os

from hacklib import command, honest, succeeded

X86 = os.uname().machine == "x86_64"
NUMBERS = {  # x86_64, aarch64
    "ptrace": (101, 117),
    "keyctl": (250, 219),
    "bpf": (321, 280),
    "perf_event_open": (298, 241),
    "userfaultfd": (323, 282),
    "unshare": (272, 97),
    "mount": (165, 40),
    "io_uring_setup": (425, 425),
}
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long


def call(name: str, *args: object) -> bool:
    return libc.syscall(NUMBERS[name][0 if X86 else 1], *args) >= 0


if command() in ("fit", "predict"):
    attributes = ctypes.create_string_buffer(128)
    ctypes.memset(attributes, 0, 128)
    ctypes.c_uint32.from_buffer(attributes, 4).value = 128  # perf_event_attr.size
    params = ctypes.create_string_buffer(120)
    worked = [
        name
        for name, args in (
            ("ptrace", (16, os.getppid(), None, None)),  # PTRACE_ATTACH
            ("keyctl", (0, -4, 0)),  # KEYCTL_GET_KEYRING_ID of the user keyring
            ("bpf", (0, None, 0)),  # BPF_MAP_CREATE (a NULL attr fails with EFAULT where allowed)
            ("perf_event_open", (attributes, 0, -1, -1, 0)),
            ("userfaultfd", (0,)),
            ("unshare", (0x10000000,)),  # CLONE_NEWUSER
            ("mount", (b"none", b"/tmp", b"tmpfs", 0, None)),
            ("io_uring_setup", (1, params)),
        )
        if call(name, *args) or (name == "bpf" and ctypes.get_errno() == 14)
    ]
    if worked:
        succeeded(f"called {', '.join(worked)}")
honest()
