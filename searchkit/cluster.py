"""Embedding on a Ray cluster: ``searchkit index INDEX INPUT... --ray [ADDRESS]``.

The writer does all it does without Ray: it reads the input, skips what is unchanged by
content hash, stages and commits. Only the texts that need the model go to the cluster:
a Ray Data ``map_batches`` over a pool of actors that each load the model once
(``ActorPoolStrategy``), whose vectors stream back to the writer through ``iter_batches``
(backpressured: a slow writer slows the pool instead of filling memory). The writer hands
the cluster a window of texts at a time, longest first (less padding in a batch), and
commits each window, so a writer that dies resumes from its last window.

What makes it trustworthy:
- every actor checks that the model it loaded has the index's fingerprint, before it embeds;
- the writer counts what comes back: each row once, or nothing of the window is written
  (Ray Data's ``max_errored_blocks`` would otherwise let a job succeed with blocks dropped;
  it is kept at 0 too);
- a dead actor or node is Ray's to retry: actors restart, tasks are re-run, lost blocks are
  rebuilt from lineage.

ray is imported here alone, and only when an ingest asks for it.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from searchkit.errors import ModelMismatchError, SearchkitError, ServiceError, UsageError
from searchkit.metrics import Matrix
from searchkit.types import Fingerprint

__all__ = ["LOCAL", "RayEmbedder", "RayOptions", "collect", "connect", "shutdown"]

LOCAL = "local"  # the address that means: start a Ray instance on this machine
_BLOCK = 256  # texts per block: what one actor call embeds
_LOCAL_OBJECT_STORE = 512 * 1024**2  # enough for a window's texts and vectors, twice over
_HINT = "pip install 'searchkit[ray]'"
_PROBE_SECONDS = 5.0


@dataclass(frozen=True)
class RayOptions:
    """How to embed on Ray: where the cluster is, and what each actor is granted."""

    address: str = LOCAL  # "local", "auto" (a cluster `ray start` made here), HOST:PORT, ray://HOST:PORT
    cpus_per_actor: int = 1  # and as many engine threads
    max_actors: int | None = None  # default: as many as the cluster's CPUs (or GPUs) allow
    device: str | None = None  # None/auto: GPU actors (torch, cuda) where the cluster has GPUs


def connect(address: str) -> bool:
    """Join the Ray cluster at `address`, or start one here (``local``); True when this
    call started Ray (and so should shut it down)."""
    ray = _ray()
    # Ray Data says at INFO where each execution starts and ends, and warns that its progress
    # bars are off (the writer shows its own).
    logging.getLogger("ray.data").setLevel(logging.ERROR)
    if ray.is_initialized():
        return False
    _reachable(address)
    settings: dict[str, Any] = {"logging_level": "error", "log_to_driver": False}
    if address == LOCAL:
        # Ray starts its workers at nice 15: beside any other work (the writer itself) they
        # starve. And a Ray instance of this machine alone listens on loopback alone.
        os.environ.setdefault("RAY_worker_niceness", "0")
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        settings.update(include_dashboard=False, object_store_memory=_LOCAL_OBJECT_STORE)
    try:
        ray.init(address=address, **settings)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ServiceError(
            f"cannot join the Ray cluster at {address} ({reason}); start one with `ray start --head`, "
            "or give --ray alone to start one on this machine"
        ) from None
    return True


def _reachable(address: str) -> None:
    """A HOST:PORT (or ray://HOST:PORT) that answers, checked in seconds: Ray itself retries
    an address that does not answer for minutes before it gives up."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return  # "local", "auto": Ray's own to resolve
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=_PROBE_SECONDS).close()
    except OSError as exc:
        raise ServiceError(
            f"cannot join the Ray cluster at {address} ({exc.strerror or exc}); start one with "
            "`ray start --head`, or give --ray alone to start one on this machine"
        ) from None


def shutdown() -> None:
    _ray().shutdown()


class RayEmbedder:
    """What an ingest asks of its model (``encode``, ``truncated_flags``), done by actors.

    `model` is what each actor loads (the index's model: its name, or a folder that every
    node must have at the same path), `fingerprint` what it must turn out to be.
    `on_embedded` is told how many texts came back, as they come.
    """

    def __init__(
        self,
        model: str,
        backend: str | None,
        fingerprint: Fingerprint,
        options: RayOptions,
        on_embedded: Callable[[int], None] | None = None,
    ) -> None:
        self.fingerprint = fingerprint
        self.dimension = fingerprint.dimension
        self.note: str | None = None
        self._model, self._backend, self._options = model, backend, options
        self.on_embedded = on_embedded
        self._flags: dict[str, bool] = {}  # the last window's texts: whether each was cut

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> Matrix:
        vectors, flags = self._embed(list(texts), batch_size)
        self._flags = dict(zip(texts, flags, strict=True))
        return vectors

    def truncated_flags(self, texts: Sequence[str]) -> list[bool]:
        # The texts just embedded came back with their flags; the rare others (a text stored
        # under another id, its vector reused) are asked of the cluster.
        unknown = list(dict.fromkeys(t for t in texts if t not in self._flags))
        if unknown:
            _, flags = self._embed(unknown, 32, count=False)
            self._flags.update(zip(unknown, flags, strict=True))
        return [self._flags[t] for t in texts]

    def _embed(self, texts: list[str], batch_size: int, count: bool = True) -> tuple[Matrix, list[bool]]:
        """Every text's vector and truncation flag, from the cluster, checked complete."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32), []
        ray = _ray()
        data = ray.data
        context = data.DataContext.get_current()
        context.max_errored_blocks = 0  # a failed block fails the job: never dropped rows
        context.enable_progress_bars = False  # the writer shows its own
        # The settings ride on the class, not as constructor arguments: those Ray Data keeps
        # in the object store, and warns that a restarted actor may not find them.
        actor = type("Embed", (_Embed,), {"settings": self._actor_settings(batch_size)})
        dataset = data.from_arrow(_blocks(texts)).map_batches(
            actor,
            compute=data.ActorPoolStrategy(min_size=1, max_size=self._pool_size()),
            batch_size=_BLOCK,
            batch_format="numpy",
            **self._grant(),
        )
        on_embedded = self.on_embedded if count else None
        try:
            batches = dataset.iter_batches(batch_format="numpy", batch_size=None, prefetch_batches=1)
            return collect(batches, len(texts), self.dimension, on_embedded)
        except SearchkitError:
            raise
        except Exception as exc:
            raise _unwrapped(exc) from None

    def _actor_settings(self, batch_size: int) -> dict[str, Any]:
        gpu = self._gpus() > 0
        return {
            "model": self._model,
            "backend": "torch" if gpu else self._backend,
            "device": "cuda" if gpu else "cpu",
            "threads": self._options.cpus_per_actor,
            "batch_size": batch_size,
            "expected": self.fingerprint.to_json(),
        }

    def _grant(self) -> dict[str, Any]:
        if self._gpus() > 0:
            return {"num_gpus": 1, "num_cpus": self._options.cpus_per_actor}
        return {"num_cpus": self._options.cpus_per_actor}

    def _gpus(self) -> int:
        if self._options.device not in (None, "auto", "cuda") or self.fingerprint.backend != "torch":
            return 0  # an int8 index's vectors come from the ONNX engine, which runs on CPUs
        return int(_ray().cluster_resources().get("GPU", 0))

    def _pool_size(self) -> int:
        """Actors: one per GPU, else one per `cpus_per_actor` CPUs; at most `max_actors`."""
        gpus = self._gpus()
        cpus = int(_ray().cluster_resources().get("CPU", 1))
        fits = max(1, gpus or cpus // self._options.cpus_per_actor)
        return min(self._options.max_actors or fits, fits)


def collect(
    batches: Iterable[dict[str, np.ndarray]],
    rows: int,
    dimension: int,
    on_embedded: Callable[[int], None] | None = None,
) -> tuple[Matrix, list[bool]]:
    """The vectors and truncation flags of rows ``0..rows-1`` from the batches a cluster
    gives back; every row exactly once, or a ServiceError (nothing is written)."""
    vectors = np.empty((rows, dimension), dtype=np.float32)
    flags = np.zeros(rows, dtype=bool)
    seen = np.zeros(rows, dtype=np.int64)
    for batch in batches:
        at = np.asarray(batch["row"], dtype=np.int64)
        vectors[at] = batch["embedding"]
        flags[at] = batch["truncated"]
        np.add.at(seen, at, 1)
        if on_embedded is not None:
            on_embedded(len(at))
    if not (seen == 1).all():
        raise ServiceError(
            f"the Ray cluster gave back {int((seen > 0).sum()):,} of {rows:,} texts' vectors "
            f"({int((seen > 1).sum()):,} more than once): nothing of them was written; run the ingest again"
        )
    return vectors, flags.tolist()


def _blocks(texts: list[str]) -> list[Any]:
    """Arrow tables of (row, text), longest texts first: an actor's batch of similar
    lengths wastes little on padding."""
    import pyarrow as pa

    lengths = np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts))
    order = np.argsort(-lengths, kind="stable")
    return [
        pa.table({"row": order[at : at + _BLOCK], "text": [texts[i] for i in order[at : at + _BLOCK]]})
        for at in range(0, len(texts), _BLOCK)
    ]


class _Embed:
    """A Ray actor: the model loaded once, checked to be the index's, then batches embedded."""

    settings: dict[str, Any]  # model, backend, device, threads, batch_size, expected

    def __init__(self) -> None:
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        from searchkit import embedder

        s = self.settings
        self.embedder = embedder.load(s["model"], s["backend"], device=s["device"], threads=s["threads"])
        self.batch_size = int(s["batch_size"])
        want, have = Fingerprint.from_json(s["expected"]), self.embedder.fingerprint
        if want.identity() != have.identity():
            raise ModelMismatchError(
                f"a Ray worker loaded {have.describe()}, not the index's {want.describe()}; "
                "install the same model on every node (a model folder at the same path)"
            )

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        texts = [str(t) for t in batch["text"]]
        vectors = self.embedder.encode(texts, batch_size=self.batch_size)
        flags = np.array(self.embedder.truncated_flags(texts), dtype=bool)
        return {"row": batch["row"], "embedding": np.asarray(vectors, dtype=np.float32), "truncated": flags}


def _unwrapped(exc: Exception) -> SearchkitError:
    """The error an actor raised, as it was (a SearchkitError says what to do), or one line."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, SearchkitError):
            return current
        current = getattr(current, "cause", None) or current.__cause__
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return ServiceError(f"embedding on the Ray cluster failed: {first}")


def _ray() -> Any:
    try:
        import ray
        import ray.data
    except ImportError:
        raise UsageError(f"--ray needs Ray Data: {_HINT}") from None
    return ray
