"""The operator's /metrics: process metrics, and nothing left of a deleted service."""

from __future__ import annotations

from foresail.controllers import handlers, inferenceservice, telemetry


def series(namespace: str, name: str) -> list[str]:
    label = f'inferenceservice="{name}",namespace="{namespace}"'
    return [line for line in telemetry.render().decode().splitlines() if label in line and not line.startswith("#")]


def test_the_process_metrics_every_exporter_has_are_served() -> None:
    text = telemetry.render().decode()
    for name in ("process_resident_memory_bytes", "process_cpu_seconds_total", "process_open_fds", "python_info"):
        assert f"\n{name}" in text, name


def test_forget_removes_every_label_set_of_one_service_and_only_its() -> None:
    for svc in ("gone", "kept"):
        telemetry.DESIRED.labels("ns", svc).set(3)
        telemetry.WARMUPS.labels("ns", svc, "warm").inc()
        telemetry.WARMUPS.labels("ns", svc, "failed").inc()
        telemetry.COLD_START.labels("ns", svc, "scheduled").observe(2.0)
        telemetry.COLD_START_ESTIMATE.labels("ns", svc, "0.9").set(20.0)
        telemetry.WARMUP_SECONDS.labels("ns", svc).observe(1.0)
    telemetry.DESIRED.labels("other-ns", "gone").set(1)
    assert telemetry.forget("ns", "gone") == 6
    assert series("ns", "gone") == []
    assert series("ns", "kept") != [] and series("other-ns", "gone") != []
    assert telemetry.forget("ns", "gone") == 0, "forgetting twice is harmless"
    telemetry.forget("ns", "kept")
    telemetry.forget("other-ns", "gone")


def test_a_deleted_service_drops_its_lock() -> None:
    lock = handlers.object_lock("ns/gone")
    assert handlers.object_lock("ns/gone") is lock
    inferenceservice.forget("ns", "gone")
    assert handlers.object_lock("ns/gone") is not lock
    inferenceservice.forget("ns", "gone")
