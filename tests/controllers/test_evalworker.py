"""The eval worker's Prometheus credentials (``spec.traffic.prometheusAuth``): the files of the mounted Secret
(real files laid out as the kubelet mounts a Secret) turned into the yield signals' client, the token sent
(httpx.MockTransport), what cannot work named in the shard's report, and no secret in any log record."""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
from pathlib import Path
from typing import Any

import httpx
import pytest

from foresail.api.evalreport import LatencyHistogram
from foresail.clients.promauth import PromAuth, PromAuthError, client_args
from foresail.clients.prometheus import PromClient
from foresail.controllers import evalworker
from foresail.controllers.evalworker import BadInput, production_client, prom_auth
from foresail.evaluation.limiter import AIMDLimiter
from foresail.evaluation.results import ResultStore
from foresail.render.evaljob import EXIT_BAD_INPUT, prom_auth_paths
from foresail.render.evaljob_status import ShardReport
from hack.testbed.cluster.pki import make_pki

TOKEN = "w0rker-t0ken-value"
PASSWORD = "pa55-w0rd-value"


def mounted_secret(root: Path, keys: dict[str, str]) -> Path:
    """A Secret as the kubelet mounts it: each key a link into ``..data``, itself a link to a timestamped directory."""
    stamp = root / "..2027_01_15_08_00_00.1"
    stamp.mkdir(parents=True)
    for k, v in keys.items():
        (stamp / k).write_text(v)
        (root / k).symlink_to(Path("..data") / k)
    (root / "..data").symlink_to(stamp.name)
    return root


def paths(root: Path) -> dict[str, str]:
    """The worker configuration's ``prometheusAuth`` (render.evaljob), with the mount moved to ``root``."""
    return {"secret": "prom", **{k: v.replace("/etc/foresail/prometheus", str(root)) for k, v in prom_auth_paths().items()}}


def config(auth: dict[str, str] | None, *, yields: bool = True) -> dict[str, Any]:
    cfg: dict[str, Any] = {"plan": {"prometheusUrl": "http://prom:9090", "production": "classifier"}, "yield": yields}
    if auth is not None:
        cfg["prometheusAuth"] = auth
    return cfg


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("pki")
    make_pki(d, "evalworker", "127.0.0.1")
    return d


@pytest.mark.parametrize(
    ("name", "keys", "want"),
    [
        ("bearer token", {"token": TOKEN}, {"bearer_token_file": "token"}),
        ("basic auth", {"username": "eval", "password": PASSWORD}, {"basic_auth_username_file": "username", "basic_auth_password_file": "password"}),
        ("headers only", {"header.X-Scope-OrgID": "team-a"}, {"headers_dir": "", "headers_prefix": "header."}),
        ("a service-account-token Secret: its namespace key ignored", {"token": TOKEN, "ca.crt": "x", "namespace": "team-a"}, {"bearer_token_file": "token", "ca_file": "ca.crt"}),
    ],
)  # fmt: skip
def test_the_keys_the_secret_has_become_the_credentials(tmp_path: Path, name: str, keys: dict[str, str], want: dict[str, str]) -> None:
    root = mounted_secret(tmp_path / "secret", keys)
    got = prom_auth(paths(root))
    expect = {k: (str(root / v) if k.endswith("_file") else str(root) if k == "headers_dir" else v) for k, v in want.items()}
    assert got == PromAuth(**expect), name


@pytest.mark.parametrize(
    ("name", "keys", "message"),
    [
        ("no Secret mounted", None, "the Secret is not mounted"),
        ("no known key", {"bearer": TOKEN, "namespace": "team-a"}, r"none of the keys .* \(its keys: bearer, namespace\)"),
        ("username without password", {"username": "eval"}, "needs both keys username and password"),
    ],
)
def test_a_secret_that_cannot_work_is_named(tmp_path: Path, name: str, keys: dict[str, str] | None, message: str) -> None:
    root = tmp_path / "secret" if keys is None else mounted_secret(tmp_path / "secret", keys)
    with pytest.raises(PromAuthError, match=message):
        prom_auth(paths(root))


def test_no_secret_no_credentials() -> None:
    assert prom_auth(None) is None


def test_the_token_and_headers_are_sent_and_no_value_is_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = mounted_secret(tmp_path / "secret", {"token": TOKEN, "header.X-Scope-OrgID": "team-a"})
    seen: list[httpx.Request] = []

    def handler(req: httpx.Request) -> httpx.Response:
        seen.append(req)
        return httpx.Response(200, text=json.dumps({"status": "success", "data": {"resultType": "matrix", "result": []}}))

    async def go() -> None:
        prom = production_client(config(paths(root)), transport=httpx.MockTransport(handler))
        assert prom is not None
        try:
            await prom.counter_samples(10, {("team-a", "classifier"): "classifier"})
        finally:
            await prom.close()

    with caplog.at_level(logging.DEBUG):
        asyncio.run(go())
    assert seen[0].headers["Authorization"] == f"Bearer {TOKEN}" and seen[0].headers["X-Scope-OrgID"] == "team-a"
    assert "keys token, header.*" in caplog.text and "Secret 'prom'" in caplog.text
    assert not [r for r in caplog.records if TOKEN in r.getMessage() or "team-a" in r.getMessage()]


def test_tls_files_make_a_verifying_context_with_the_client_certificate(tmp_path: Path, pki: Path) -> None:
    keys = {"ca.crt": (pki / "ca.crt").read_text(), "tls.crt": (pki / "prometheus.crt").read_text(),
            "tls.key": (pki / "prometheus.key").read_text(), "username": "eval", "password": PASSWORD}  # fmt: skip
    root = mounted_secret(tmp_path / "secret", keys)
    auth = prom_auth(paths(root))
    assert auth is not None and (auth.ca_file, auth.cert_file, auth.key_file) == (str(root / "ca.crt"), str(root / "tls.crt"), str(root / "tls.key"))
    assert isinstance(client_args(auth)["verify"], ssl.SSLContext)  # the CA and the client certificate loaded
    prom = production_client(config(paths(root)))
    assert prom is not None
    asyncio.run(prom.close())


@pytest.mark.parametrize(
    ("name", "keys", "message"),
    [
        ("token and basic auth", {"token": TOKEN, "username": "u", "password": PASSWORD}, "a bearer token or basic auth for Prometheus, not both"),
        ("certificate without its key", {"tls.crt": "x"}, "a client certificate needs its key"),
        ("a CA that is not PEM", {"ca.crt": "not a certificate"}, "ca.crt: cannot load the CA"),
        ("an empty token", {"token": "\n"}, "token: must hold one non-empty line"),
        ("a header name that is none", {"header.Bad Name": "x"}, "'Bad Name' is not an HTTP header name"),
    ],
)  # fmt: skip
def test_credentials_that_cannot_work_are_bad_input_naming_the_secret(tmp_path: Path, name: str, keys: dict[str, str], message: str) -> None:
    root = mounted_secret(tmp_path / "secret", keys)
    with pytest.raises(BadInput, match=message) as e:
        production_client(config(paths(root)))
    assert str(e.value).startswith("spec.traffic.prometheusAuth (Secret 'prom'): "), name
    assert TOKEN not in str(e.value) and PASSWORD not in str(e.value)


def test_an_unreadable_token_is_bad_input(tmp_path: Path) -> None:
    root = mounted_secret(tmp_path / "secret", {"ca.crt": "x"})
    (root / "token").mkdir()  # exists, cannot be read as a file (the tests may run as root: no chmod)
    with pytest.raises(BadInput, match="token: cannot read"):
        production_client({**config(paths(root)), "prometheusAuth": {**paths(root), "caFile": ""}})


@pytest.mark.parametrize(
    ("name", "cfg"),
    [
        ("does not yield", config(None, yields=False)),
        ("no Prometheus URL", {"plan": {"prometheusUrl": "", "production": "classifier"}, "yield": True}),
    ],
)
def test_no_client_when_nothing_is_queried(name: str, cfg: dict[str, Any]) -> None:
    assert production_client(cfg) is None, name


def test_no_secret_queries_without_credentials() -> None:
    prom = production_client(config(None))
    assert isinstance(prom, PromClient) and "Authorization" not in prom.http.headers
    asyncio.run(prom.close())


class FakeKube:
    """What the worker asks of the API before it runs: its progress report, pods of the production service."""

    def __init__(self) -> None:
        self.patches: list[tuple[str, str, str, dict[str, Any]]] = []

    def merge_patch(self, kind: str, ns: str, name: str, body: dict[str, Any]) -> None:
        self.patches.append((kind, ns, name, body))

    def list(self, kind: str, ns: str, selector: str) -> list[dict[str, Any]]:
        return []


def test_a_credential_that_cannot_work_fails_the_shard_with_a_report(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = mounted_secret(tmp_path / "secret", {"token": TOKEN, "username": "u", "password": PASSWORD})
    data = tmp_path / "dataset.jsonl"
    data.write_text('{"id": "a", "inputs": {"x": [1]}, "label": 0}\n')
    cfg = {
        **config(paths(root)),
        "namespace": "team-a",
        "progressConfigMap": "iris-eval-progress",
        "seed": 0,
        "shards": 1,
        "scorer": {"kind": "top1"},
        "traffic": {},
    }
    cfg["plan"] |= {"datasetPath": str(data), "resultsDir": "r", "service": "classifier", "model": "m", "sloMs": 100}
    kube = FakeKube()
    with caplog.at_level(logging.DEBUG):
        code = asyncio.run(evalworker.run(cfg, 0, kube, asyncio.Event()))  # type: ignore[arg-type]
    assert code == EXIT_BAD_INPUT
    ((kind, ns, name, body),) = kube.patches
    assert (kind, ns, name) == ("ConfigMap", "team-a", "iris-eval-progress")
    report = json.loads(body["data"]["shard-0"])
    assert report["error"].startswith("spec.traffic.prometheusAuth (Secret 'prom'): ") and "not both" in report["error"]
    assert "not both" in caplog.text
    assert not [r for r in caplog.records if TOKEN in r.getMessage() or PASSWORD in r.getMessage()]


class _Said(logging.Handler):
    """Sets ``event`` when a record says ``words`` (on the event loop's thread, where the worker logs)."""

    def __init__(self, words: str) -> None:
        super().__init__()
        self.words = words
        self.event = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.words in record.getMessage():
            self.event.set()


def test_a_refused_query_is_logged_once_then_the_recovery(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = mounted_secret(tmp_path / "secret", {"username": "eval", "password": PASSWORD})
    answers = iter([401, 401, 401, 200])
    seen: list[httpx.Request] = []

    def handler(req: httpx.Request) -> httpx.Response:
        seen.append(req)
        code = next(answers, 200)
        if code != 200:
            return httpx.Response(code, text="Unauthorized")
        return httpx.Response(200, text=json.dumps({"status": "success", "data": {"resultType": "matrix", "result": []}}))

    async def go() -> None:
        prom = production_client(config(paths(root)), transport=httpx.MockTransport(handler))
        assert prom is not None
        limiter = AIMDLimiter(1, 8)
        task = asyncio.create_task(evalworker._yield(prom, FakeKube(), "team-a", "classifier", "m", 100.0, limiter, period=0.001))  # type: ignore[arg-type]
        recovered = _Said("read from Prometheus")  # a read went through (the first: a minute of history, in slices)
        logging.getLogger("foresail.eval-worker").addHandler(recovered)
        try:
            await asyncio.wait_for(recovered.event.wait(), 10)
        finally:
            logging.getLogger("foresail.eval-worker").removeHandler(recovered)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await prom.close()

    with caplog.at_level(logging.INFO, logger="foresail.eval-worker"):
        asyncio.run(go())
    lines = [r.getMessage() for r in caplog.records if r.name == "foresail.eval-worker" and "production signals" in r.getMessage()]
    assert len(lines) == 3, lines  # the client's credentials, the refusal once, the recovery once
    assert "HTTP 401" in lines[1] and "yielding fully" in lines[1]
    assert lines[2] == "production signals of team-a/classifier read from Prometheus"
    assert all(r.headers["Authorization"].startswith("Basic ") for r in seen)
    assert not [r for r in caplog.records if PASSWORD in r.getMessage()]


class FlakyKube(FakeKube):
    """Refuses the first ``failures`` patches (the apiserver away for a while)."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    def merge_patch(self, kind: str, ns: str, name: str, body: dict[str, Any]) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise ConnectionError("apiserver unreachable")
        super().merge_patch(kind, ns, name, body)


async def _no_sleep(_s: float) -> None:
    return None


@pytest.mark.parametrize(("name", "failures", "delivered"), [("at once", 0, True), ("after 5 refusals", 5, True), ("never", 6, False)])
def test_the_final_report_is_delivered_or_the_shard_does_not_succeed(name: str, failures: int, delivered: bool) -> None:
    """Was: the last report was best effort and the worker exited 0 anyway, leaving a wrong score on a
    Succeeded job. Now it is retried, and ``run`` exits 1 (the Job retries the shard) when it cannot land."""
    kube = FlakyKube(failures)
    reporter = evalworker.Reporter(kube, "team-a", "iris-eval-progress-2", 801, sleep=_no_sleep)  # type: ignore[arg-type]
    r = ShardReport(index=801, done=3, final=True, run="abc")
    assert asyncio.run(reporter.deliver(r)) is delivered, name
    assert [(p[2], json.loads(p[3]["data"]["shard-801"])["final"]) for p in kube.patches] == ([("iris-eval-progress-2", True)] if delivered else [])


def test_the_final_report_counts_the_results_file_resumed_items_included(tmp_path: Path) -> None:
    store = ResultStore(tmp_path, 0)
    store.append([{"id": "a", "shard": 0, "correct": True, "value": 1.0}, {"id": "b", "shard": 0, "error": "timeout"}])  # attempt 1
    store.append([{"id": "b", "shard": 0, "correct": False, "value": 0.0}, {"id": "c", "shard": 0, "correct": True, "value": 1.0},
                  {"id": "d", "shard": 0, "error": "HTTP 400"}])  # fmt: skip
    store.compact(["a", "b", "c", "d"])
    last = ShardReport(index=0, done=2, correct=1, scored=1, total=4, run="abc", spans=((1.0, 2.0),))  # the live counts of attempt 2
    got = evalworker.final_report(store, last)
    assert (got.done, got.errors, got.correct, got.scored, got.final, got.finished) == (4, 1, 2, 3, True, True)
    assert (got.run, got.spans, got.total) == ("abc", ((1.0, 2.0),), 4), "the rest of the last report is kept"


def test_run_statistics_carry_across_a_shards_attempts(tmp_path: Path) -> None:
    store = ResultStore(tmp_path, 0)
    first = evalworker.RunStats.load(store, 100.0)
    h1 = LatencyHistogram()
    h1.add(10.0, 9)
    first.save(h1, 130.0)
    second = evalworker.RunStats.load(store, 200.0)  # the next pod, after a preemption
    h2 = LatencyHistogram()
    h2.add(100.0)
    spans, latency = second.now(h2, 210.0)
    assert spans == ((100.0, 130.0), (200.0, 210.0))
    merged = LatencyHistogram.decode(list(latency))
    assert merged.total() == 10 and merged.percentile(50) == pytest.approx(10.0, rel=0.1)
    assert merged.percentile(99) == pytest.approx(100.0, rel=0.1)
