"""Several ranks for one stage: torch's own launcher, and what each rank sets up.

A stage with ``nprocs > 1`` is started once, as usual, by the sweep. That first process is not
a rank yet (no ``LOCAL_RANK`` / ``WORLD_SIZE`` in its environment): it runs ``python -m
torch.distributed.run --nnodes 1 --nproc-per-node N --rdzv-backend c10d --rdzv-endpoint
127.0.0.1:PORT -m mats_lab.trial.stage_run --spec S.json`` (:func:`launch`) and returns its
exit status (non-zero when any rank fails); the launcher's and the ranks' output go to the
stage's log, the launcher's failure summary (with the failing rank's traceback) last.

Loopback only. torch's ``--standalone`` rendezvous is *not* loopback-only: its ``TCPStore``
listens on every interface whatever host it is given (checked with torch 2.13: ``ss -ltn``
shows ``*:PORT``). So this process hosts the rendezvous store itself on a socket bound to
``127.0.0.1`` (a free port per stage; ``TCPStore(master_listen_fd=...)``), the launcher finds
the port taken and joins as a client (its documented fallback), and each rank builds its
process-group store the same way (:func:`init_rank`; the launcher's shared store for the ranks,
which would also listen everywhere, is switched off with ``TORCH_DISABLE_SHARE_RDZV_TCP_STORE``);
gloo and NCCL are told to use ``lo``.

Each rank initialises the process group itself, before MMEngine's ``Runner`` is built, because
MMEngine's own ``init_dist`` calls ``torch.cuda.set_device`` even for gloo (STACK.md item 11):
gloo on CPU, nccl and ``set_device(LOCAL_RANK)`` on CUDA; the Runner then finds the group and
skips its own set-up. On CPU the model wrapper is told ``device_ids=None`` (:func:`rank_config`).

Stopping: SIGTERM/SIGINT to this process are passed on to the launcher, which stops its ranks;
the launcher and every rank ask the kernel to kill them when their parent dies
(``PR_SET_PDEATHSIG``), so a SIGKILL anywhere above takes the whole stage down.
"""

from __future__ import annotations

import ctypes
import datetime
import hashlib
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

__all__ = [
    "RankInfo",
    "launch",
    "launcher_command",
    "loopback_store",
    "rank_info",
    "init_rank",
    "rank_config",
    "parameter_digest",
]

#: Network interfaces the collective libraries bind to: loopback (one machine per stage).
LOOPBACK_ENV = {"GLOO_SOCKET_IFNAME": "lo", "NCCL_SOCKET_IFNAME": "lo"}


class RankInfo:
    """``rank``, ``local_rank`` and ``world_size`` of this process (from torch's launcher)."""

    def __init__(self, rank: int, local_rank: int, world_size: int) -> None:
        self.rank = rank
        self.local_rank = local_rank
        self.world_size = world_size

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def rank_info(env: dict[str, str] | None = None) -> RankInfo | None:
    """This process's place in a multi-rank stage, or ``None`` when it is not a rank."""
    env = dict(os.environ) if env is None else env
    if "LOCAL_RANK" not in env or "WORLD_SIZE" not in env:
        return None
    rank = int(env.get("RANK", env["LOCAL_RANK"]))
    return RankInfo(rank, int(env["LOCAL_RANK"]), int(env["WORLD_SIZE"]))


def launcher_command(spec_path: str | Path, nprocs: int, port: int) -> list[str]:
    """``python -m torch.distributed.run ... -m mats_lab.trial.stage_run --spec S.json`` with
    the rendezvous at ``127.0.0.1:port``."""
    if nprocs < 2:
        raise ValueError(f"a distributed launch needs nprocs >= 2, got {nprocs}")
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nnodes",
        "1",
        "--nproc-per-node",
        str(nprocs),
        "--rdzv-backend",
        "c10d",
        "--rdzv-endpoint",
        f"127.0.0.1:{port}",
        "--rdzv-id",
        f"mats-lab-{os.getpid()}",
        "-m",
        "mats_lab.trial.stage_run",
        "--spec",
        str(spec_path),
    ]


def loopback_store(port: int, world_size: int | None, is_master: bool) -> Any:
    """A ``TCPStore`` on ``127.0.0.1:port``; the master's listens on loopback only."""
    from torch.distributed import TCPStore

    timeout = datetime.timedelta(minutes=30)
    if not is_master:
        return TCPStore("127.0.0.1", port, world_size, False, timeout)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(128)
    bound_port = sock.getsockname()[1]
    return TCPStore(
        "127.0.0.1",
        bound_port,
        world_size,
        True,
        timeout,
        wait_for_workers=False,
        multi_tenant=True,
        master_listen_fd=sock.detach(),  # the store owns the listening socket from here
    )


def launch(spec_path: str | Path, nprocs: int, cpu_threads: int | None = None) -> int:
    """Run torch's launcher for ``nprocs`` ranks of this stage; returns its exit status."""
    store = loopback_store(0, None, is_master=True)
    cmd = launcher_command(spec_path, nprocs, store.port)
    env = dict(os.environ)
    for key, value in LOOPBACK_ENV.items():
        env.setdefault(key, value)
    # The launcher would otherwise host a second, shared store for the ranks on every
    # interface; with sharing off, rank 0 hosts it, on loopback (init_rank).
    env["TORCH_DISABLE_SHARE_RDZV_TCP_STORE"] = "1"
    # One OpenMP pool per rank of the size the slot asked for (torchrun would otherwise warn
    # and set 1); the stage runner sets torch's threads from the spec too.
    env.setdefault("OMP_NUM_THREADS", str(cpu_threads or 1))
    print("mats-lab: launching " + " ".join(cmd), flush=True)
    proc = subprocess.Popen(cmd, env=env, preexec_fn=_die_with_parent)  # noqa: S603, PLW1509

    def forward(signum: int, frame: object) -> None:
        proc.send_signal(signum)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, forward)
    code = proc.wait()
    if code:
        print(f"mats-lab: torch.distributed.run exited with {code}", flush=True)
    del store
    return code


def _die_with_parent() -> None:
    """Ask the kernel to SIGKILL this process when its parent dies (Linux only)."""
    if not sys.platform.startswith("linux"):
        return
    parent = os.getppid()
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        return
    if os.getppid() != parent:  # the parent died before the request took effect
        os.kill(os.getpid(), signal.SIGKILL)


def init_rank(info: RankInfo) -> str:
    """Initialise the default process group of this rank; returns the backend.

    gloo on a CPU-only process, nccl (after ``torch.cuda.set_device(LOCAL_RANK)``) with CUDA.
    The store is at ``MASTER_PORT`` on loopback: the launcher's own when it shares it
    (``TORCHELASTIC_USE_AGENT_STORE``), else hosted by rank 0 on ``127.0.0.1`` only.
    """
    import torch
    import torch.distributed as dist

    _die_with_parent()
    if dist.is_initialized():
        return str(dist.get_backend())
    if torch.cuda.is_available():
        torch.cuda.set_device(info.local_rank)
        backend = "nccl"
        device_id: Any = torch.device("cuda", info.local_rank)
    else:
        backend = "gloo"
        device_id = None
    port = int(os.environ["MASTER_PORT"])
    agent_store = os.environ.get("TORCHELASTIC_USE_AGENT_STORE", "").lower() == "true"
    store = loopback_store(port, info.world_size, is_master=info.is_main and not agent_store)
    dist.init_process_group(
        backend=backend,
        store=store,
        rank=info.rank,
        world_size=info.world_size,
        device_id=device_id,
    )
    return backend


def rank_config(cfg: Any, cuda: bool) -> None:
    """Set ``cfg`` (an MMEngine ``Config``, in place) for a rank of a distributed stage.

    ``launcher='pytorch'`` makes the Runner distributed (it finds the group made by
    :func:`init_rank`); on CPU, ``MMDistributedDataParallel`` must not get ``device_ids``.
    """
    cfg.launcher = "pytorch"
    if cuda and cfg.get("model_wrapper_cfg") is None:
        return _set_backend(cfg, "nccl")  # MMEngine's default wrapper: device_ids=[LOCAL_RANK]
    # As MMEngine's default wrapper (no buffer broadcast, the config's find_unused_parameters),
    # but with device_ids=None on the CPU, where DDP refuses device ids.
    wrapper = dict(
        cfg.get("model_wrapper_cfg")
        or {
            "type": "MMDistributedDataParallel",
            "broadcast_buffers": False,
            "find_unused_parameters": bool(cfg.get("find_unused_parameters", False)),
        }
    )
    if not cuda:
        wrapper["device_ids"] = None
    cfg.model_wrapper_cfg = wrapper
    _set_backend(cfg, "nccl" if cuda else "gloo")


def _set_backend(cfg: Any, backend: str) -> None:
    env_cfg = dict(cfg.get("env_cfg") or {})
    env_cfg["dist_cfg"] = dict(env_cfg.get("dist_cfg") or {}, backend=backend)
    cfg.env_cfg = env_cfg


def parameter_digest(model: Any) -> str:
    """SHA-256 of every parameter's bytes, in name order (equal weights, equal digests)."""
    import torch

    digest = hashlib.sha256()
    for name, param in sorted(model.named_parameters()):
        digest.update(name.encode())
        data = param.detach().to("cpu", copy=True).contiguous().flatten()
        digest.update(data.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()
