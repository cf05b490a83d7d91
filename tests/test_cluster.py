"""cluster.py: embedding on a real Ray cluster of three nodes on this machine (loopback only).

The cluster: a head and two worker nodes of one CPU each (`ray.cluster_utils.Cluster`),
started once for this module, with an explicit object store, Ray's workers at nice 0
(at nice 15 they starve beside the writer), and loopback addresses only. The real model.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from searchkit import cluster
from searchkit import embedder as embedding
from searchkit.cli import app
from searchkit.cli.app import ray_address
from searchkit.errors import ModelMismatchError, ServiceError
from searchkit.service import Index

pytestmark = pytest.mark.slow

CORPUS = Path(__file__).resolve().parent.parent / "data" / "corpus.jsonl"
STORE = 128 * 1024**2


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[Any]:
    env = {"RAY_worker_niceness": "0", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}  # nice 0; loopback
    before = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    import ray
    from ray.cluster_utils import Cluster

    made = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 1, "object_store_memory": STORE, "include_dashboard": False},
    )
    workers = [made.add_node(num_cpus=1, object_store_memory=STORE) for _ in range(2)]
    made.wait_for_nodes()
    ray.init(address=made.address, log_to_driver=False, logging_level="error")
    try:
        yield made, workers
    finally:
        ray.shutdown()
        made.shutdown()
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def items(n: int) -> list[dict[str, Any]]:
    """`n` distinct real texts: the sample corpus, each with a numbered note."""
    base = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines()]
    return [
        {
            "id": f"d{i}",
            "text": f"{base[i % len(base)]['text']} (note {i})",
            "metadata": {"n": i, "odd": i % 2},
        }
        for i in range(n)
    ]


def contents(index: Index) -> dict[str, tuple[str, Any, np.ndarray]]:
    return {
        row["id"]: (row["text"], row["metadata"], np.array(row["embedding"], dtype=np.float32))
        for row in index.export(vectors=True)
    }


@pytest.fixture(scope="module")
def local_5000(tmp_path_factory: pytest.TempPathFactory, model: embedding.Embedder) -> Path:
    path = tmp_path_factory.mktemp("local") / "index"
    with Index.create(path, embedder=model) as index:
        index.add(items(5000))
    return path


def test_5000_items_on_the_cluster_equal_local_while_a_node_dies(
    ray_cluster: Any, local_5000: Path, tmp_path: Path
) -> None:
    made, workers = ray_cluster
    came_back = [0]
    killed = threading.Event()

    def kill_a_node() -> None:
        made.remove_node(workers[0], allow_graceful=False)
        killed.set()

    def progress(n: int) -> None:
        came_back[0] += n
        if came_back[0] >= 500 and not killed.is_set() and not hasattr(progress, "started"):
            progress.started = True  # type: ignore[attr-defined]
            threading.Thread(target=kill_a_node, daemon=True).start()

    with Index.create(tmp_path / "ray") as index:
        report = index.add(items(5000), on_progress=progress, ray=made.address)
        assert killed.wait(60), "the node was not removed during the ingest"
        import ray

        assert [n["Alive"] for n in ray.nodes()].count(False) == 1  # Ray saw it die
        assert report.added == 5000 and report.embedded == 5000 and len(index) == 5000
        assert came_back[0] == 5000  # the progress counted every item once
        on_ray = contents(index)
    with Index.open(local_5000) as local:
        here = contents(local)
    assert on_ray.keys() == here.keys()
    for key, (text, metadata, vector) in here.items():
        assert on_ray[key][:2] == (text, metadata)
        assert np.abs(on_ray[key][2] - vector).max() <= 1e-6
    with Index.open(tmp_path / "ray") as index, Index.open(local_5000) as local:
        query = "a note about the weather"
        assert [h.id for h in index.search(query, k=10)] == [h.id for h in local.search(query, k=10)]


def test_unchanged_items_are_not_sent_and_changed_ones_are(
    ray_cluster: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made, _ = ray_cluster
    sent: list[int] = []
    embed = cluster.RayEmbedder._embed

    def counting(self: cluster.RayEmbedder, texts: list[str], *args: Any, **kwargs: Any) -> Any:
        sent.append(len(texts))
        return embed(self, texts, *args, **kwargs)

    monkeypatch.setattr(cluster.RayEmbedder, "_embed", counting)
    first = items(300)
    with Index.create(tmp_path / "ix") as index:
        index.add(first, ray=made.address)
        assert sent == [300]
        again = index.add(first, ray=made.address)
        assert again.unchanged == 300 and sent == [300]  # nothing went to the cluster
        changed = [dict(first[0], text="A new text for the first item."), *first[1:]]
        report = index.add(changed, ray=made.address)
        assert report.updated == 1 and report.embedded == 1 and sent == [300, 1]
        hits = index.search("A new text for the first item.", k=1)
        assert hits[0].id == "d0" and hits[0].score > 0.99


def test_the_cli_embeds_on_the_cluster(ray_cluster: Any, tmp_path: Path) -> None:
    made, _ = ray_cluster
    data = tmp_path / "in.jsonl"
    data.write_text("".join(json.dumps(item) + "\n" for item in items(40)), encoding="utf-8")
    result = CliRunner().invoke(
        app, ray_address(["index", str(tmp_path / "ix"), str(data), "--ray", made.address])
    )
    assert result.exit_code == 0, result.output
    assert "40 added" in result.output and "40 embedded" in result.output


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["index", "ix", "a.txt", "--ray"], ["index", "ix", "a.txt", "--ray", "local"]),
        (["index", "ix", "--ray", "a.txt"], ["index", "ix", "--ray", "local", "a.txt"]),
        (["index", "ix", "a.txt", "--ray", "--json"], ["index", "ix", "a.txt", "--ray", "local", "--json"]),
        (["index", "ix", "a", "--ray", "auto"], ["index", "ix", "a", "--ray", "auto"]),
        (["index", "ix", "a", "--ray", "10.0.0.5:6379"], ["index", "ix", "a", "--ray", "10.0.0.5:6379"]),
        (
            ["index", "ix", "a", "--ray", "ray://head:10001"],
            ["index", "ix", "a", "--ray", "ray://head:10001"],
        ),
        (["index", "ix", "a", "--ray", "local"], ["index", "ix", "a", "--ray", "local"]),
        (["query", "ix", "--ray"], ["query", "ix", "--ray", "local"]),  # Click then refuses it there
    ],
)
def test_ray_alone_means_a_local_instance(args: list[str], expected: list[str]) -> None:
    assert ray_address(args) == expected


def test_an_address_that_does_not_answer_is_one_line_at_once() -> None:
    import socket

    with socket.socket() as free:  # a port nothing listens on
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    for address in (f"127.0.0.1:{port}", f"ray://127.0.0.1:{port}"):
        with pytest.raises(ServiceError) as refused:
            cluster._reachable(address)
        assert str(refused.value).startswith(f"cannot join the Ray cluster at {address} (")
        assert "give --ray alone to start one on this machine" in str(refused.value)


def test_the_cli_refuses_a_cluster_that_does_not_answer_and_makes_nothing(tmp_path: Path) -> None:
    import socket

    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    data = tmp_path / "in.txt"
    data.write_text("one\ntwo\n", encoding="utf-8")
    exe = Path(sys.executable).with_name("searchkit")
    index = tmp_path / "ix"
    out = subprocess.run(
        [str(exe), "index", str(index), str(data), "--ray", f"127.0.0.1:{port}"],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        check=False,
    )
    assert out.returncode == 1
    assert out.stderr.startswith(f"Error: cannot join the Ray cluster at 127.0.0.1:{port} (")
    assert len(out.stderr.strip().splitlines()) == 1
    assert not index.exists()


def test_the_collected_rows_must_each_come_back_once() -> None:
    def batch(rows: list[int]) -> dict[str, np.ndarray]:
        return {
            "row": np.array(rows),
            "embedding": np.full((len(rows), 2), 1.0, dtype=np.float32) * np.array(rows)[:, None],
            "truncated": np.array([r == 2 for r in rows]),
        }

    told: list[int] = []
    vectors, flags = cluster.collect([batch([2, 0]), batch([1, 3])], 4, 2, told.append)
    assert vectors[:, 0].tolist() == [0, 1, 2, 3] and flags == [False, False, True, False]
    assert told == [2, 2]
    with pytest.raises(ServiceError, match=r"gave back 3 of 4 texts' vectors \(0 more than once\)"):
        cluster.collect([batch([2, 0]), batch([1])], 4, 2)
    with pytest.raises(ServiceError, match=r"gave back 4 of 4 texts' vectors \(1 more than once\)"):
        cluster.collect([batch([2, 0, 1]), batch([1, 3])], 4, 2)


def actor(expected: dict[str, Any]) -> Any:
    settings = {
        "model": None,
        "backend": None,
        "device": "cpu",
        "threads": 1,
        "batch_size": 8,
        "expected": expected,
    }
    return type("Embed", (cluster._Embed,), {"settings": settings})()


def test_an_actor_embeds_as_the_model_does(model: embedding.Embedder) -> None:
    embed = actor(model.fingerprint.to_json())  # plain Python: no Ray
    texts = np.array(["I like soccer", "he is a basketball player", "x " * 400], dtype=object)
    out = embed({"row": np.array([7, 3, 5]), "text": texts})
    assert out["row"].tolist() == [7, 3, 5]
    assert out["embedding"].dtype == np.float32 and out["embedding"].shape == (3, 384)
    assert np.abs(out["embedding"] - model.encode(list(texts))).max() < 1e-5
    assert out["truncated"].tolist() == [False, False, True]


def test_an_actor_with_another_model_refuses_to_embed(model: embedding.Embedder) -> None:
    other = dict(model.fingerprint.to_json(), sha256="0" * 64)
    with pytest.raises(ModelMismatchError, match="a Ray worker loaded all-MiniLM-L6-v2"):
        actor(other)


def test_help_and_a_cold_query_import_no_ray(tmp_path: Path, model: embedding.Embedder) -> None:
    with Index.create(tmp_path / "ix", embedder=model) as index:
        index.add([{"id": "a", "text": "The weather is lovely today."}])
    code = (
        "import sys\n"
        "from searchkit.cli import app\n"
        "try:\n"
        "    app(args=sys.argv[1:])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('ray', 'pyarrow', 'pandas')))\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    for args in (["--help"], ["index", "--help"], ["query", str(tmp_path / "ix"), "weather", "-k", "1"]):
        out = subprocess.run(
            [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, check=True
        ).stdout
        assert out.strip().splitlines()[-1] == "[]", (args, out)
