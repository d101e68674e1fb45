"""The seccomp filter every sandboxed run gets: a classic BPF program, assembled here, given to bwrap.

A deny list, not an allow list: candidate code is arbitrary Python with numpy, torch and CUDA, whose
needs (mmap flavours, futexes, ioctls on /dev/nvidia*, clone for threads) are wide and change between
versions. What is denied is what a run has no business doing, each for a reason (`DENIED`); a denied
call fails with EPERM, as if a capability were missing, so well-behaved libraries degrade instead of
crashing. `clone3` fails with ENOSYS (its flags lie in memory, out of a filter's reach) so that libc
falls back to `clone`, whose flags are checked: no new namespaces. A 32-bit (i386) or x32 syscall, which
would dodge the numbers below, kills the process; so does an unknown architecture.

    fd = program_fd()   # a memfd holding the program; pass it to bwrap as `--seccomp FD`
"""

from __future__ import annotations

import errno
import os
import struct

__all__ = ["DENIED", "program", "program_fd"]

# name: (reason, x86_64 number, aarch64 number)
DENIED: dict[str, tuple[str, int, int]] = {
    "keyctl": ("kernel keyrings outlive a run and are shared by uid", 250, 219),
    "add_key": ("kernel keyrings outlive a run and are shared by uid", 248, 217),
    "request_key": ("kernel keyrings outlive a run and are shared by uid", 249, 218),
    "ptrace": ("reading or steering another process", 101, 117),
    "process_vm_readv": ("reading another process's memory", 310, 270),
    "process_vm_writev": ("writing another process's memory", 311, 271),
    "kcmp": ("probing other processes' kernel state", 312, 272),
    "mount": ("changing the file tree it was given", 165, 40),
    "umount2": ("uncovering what a mount masks (held-out data)", 166, 39),
    "pivot_root": ("changing the file tree it was given", 155, 41),
    "chroot": ("changing the file tree it was given", 161, 51),
    "open_tree": ("the new mount API", 428, 428),
    "move_mount": ("the new mount API", 429, 429),
    "fsopen": ("the new mount API", 430, 430),
    "fsconfig": ("the new mount API", 431, 431),
    "fsmount": ("the new mount API", 432, 432),
    "fspick": ("the new mount API", 433, 433),
    "mount_setattr": ("the new mount API", 442, 442),
    "unshare": ("new namespaces: a way around the ones it was put in", 272, 97),
    "setns": ("joining other namespaces", 308, 268),
    "bpf": ("loading programs into the kernel", 321, 280),
    "perf_event_open": ("side channels on other processes and the kernel", 298, 241),
    "userfaultfd": ("stalling the kernel mid-copy: a staple of kernel exploits", 323, 282),
    "io_uring_setup": ("a second syscall interface that seccomp does not see", 425, 425),
    "io_uring_enter": ("a second syscall interface that seccomp does not see", 426, 426),
    "io_uring_register": ("a second syscall interface that seccomp does not see", 427, 427),
    "open_by_handle_at": ("opening files by handle, around the mount tree", 304, 265),
    "name_to_handle_at": ("file handles, the way to open_by_handle_at", 303, 264),
    "fanotify_init": ("watching other processes' file access", 300, 262),
    "kexec_load": ("the host's kernel", 246, 104),
    "kexec_file_load": ("the host's kernel", 320, 294),
    "init_module": ("the host's kernel", 175, 105),
    "finit_module": ("the host's kernel", 313, 273),
    "delete_module": ("the host's kernel", 176, 106),
    "reboot": ("the host", 169, 142),
    "swapon": ("the host's memory", 167, 224),
    "swapoff": ("the host's memory", 168, 225),
    "acct": ("the host's process accounting", 163, 89),
    "syslog": ("the kernel log names host paths and other runs", 103, 116),
    "settimeofday": ("the host's clock", 164, 170),
    "clock_settime": ("the host's clock", 227, 112),
    "clock_adjtime": ("the host's clock", 305, 266),
    "adjtimex": ("the host's clock", 159, 171),
    "quotactl": ("the host's disk quotas", 179, 60),
    "quotactl_fd": ("the host's disk quotas", 443, 443),
    "lookup_dcookie": ("kernel profiling", 212, 18),
    "vhangup": ("other terminals", 153, 58),
}
_CLONE = (56, 220)
_CLONE3 = (435, 435)
_IOCTL = (16, 29)
_TIOCSTI, _TIOCLINUX = 0x5412, 0x541C  # pushing input into a terminal, console control
# CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET | NEWTIME
_NEW_NAMESPACES = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000
_NEW_NAMESPACES |= 0x40000000 | 0x00000080
_ARCHES = (0xC000003E, 0xC00000B7)  # AUDIT_ARCH_X86_64, AUDIT_ARCH_AARCH64
_X32_BIT = 0x40000000

_LD_ABS = 0x20  # BPF_LD | BPF_W | BPF_ABS
_JEQ, _JGE, _JSET = 0x15, 0x35, 0x45  # BPF_JMP | BPF_K | op
_RET = 0x06  # BPF_RET | BPF_K
_KILL = 0x80000000  # SECCOMP_RET_KILL_PROCESS
_ALLOW = 0x7FFF0000
_NR, _ARCH, _ARG0, _ARG1 = 0, 4, 16, 24  # offsets in struct seccomp_data (low words, little-endian)


def _errno(code: int) -> int:
    return 0x00050000 | code  # SECCOMP_RET_ERRNO


def _arch_block(index: int) -> list[tuple[int, int, int, int]]:
    """The checks for one architecture, entered with its syscall number in A; every path returns."""
    code: list[tuple[int, int, int, int]] = [(_LD_ABS, 0, 0, _NR)]
    if index == 0:  # x86_64: the x32 ABI's numbers have this bit set
        code += [(_JGE, 0, 1, _X32_BIT), (_RET, 0, 0, _KILL)]
    for _, *numbers in DENIED.values():
        code += [(_JEQ, 0, 1, numbers[index]), (_RET, 0, 0, _errno(errno.EPERM))]
    code += [(_JEQ, 0, 1, _CLONE3[index]), (_RET, 0, 0, _errno(errno.ENOSYS))]
    code += [
        (_JEQ, 0, 4, _CLONE[index]),
        (_LD_ABS, 0, 0, _ARG0),
        (_JSET, 0, 1, _NEW_NAMESPACES),
        (_RET, 0, 0, _errno(errno.EPERM)),
        (_RET, 0, 0, _ALLOW),
        (_JEQ, 0, 5, _IOCTL[index]),
        (_LD_ABS, 0, 0, _ARG1),
        (_JEQ, 1, 0, _TIOCSTI),
        (_JEQ, 0, 1, _TIOCLINUX),
        (_RET, 0, 0, _errno(errno.EPERM)),
        (_RET, 0, 0, _ALLOW),
        (_RET, 0, 0, _ALLOW),  # every other call
    ]
    return code


def program() -> bytes:
    """The filter as an array of struct sock_filter {u16 code; u8 jt; u8 jf; u32 k}."""
    blocks = [_arch_block(index) for index in range(len(_ARCHES))]
    code: list[tuple[int, int, int, int]] = [(_LD_ABS, 0, 0, _ARCH)]
    for arch, block in zip(_ARCHES, blocks, strict=True):
        code.append((_JEQ, 0, len(block), arch))
        code += block
    code.append((_RET, 0, 0, _KILL))  # any other architecture, i386 on x86_64 included
    return b"".join(struct.pack("=HBBI", op, jt, jf, k) for op, jt, jf, k in code)


def program_fd() -> int:
    """A fresh, sealed-by-convention memfd holding the program at offset 0 (bwrap reads it to the end)."""
    fd = os.memfd_create("alphalab-seccomp", os.MFD_CLOEXEC)
    os.write(fd, program())
    os.lseek(fd, 0, os.SEEK_SET)
    return fd
