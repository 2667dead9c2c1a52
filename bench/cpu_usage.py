"""CPU seconds used so far by given processes and by the machine's shared servers (PostgreSQL,
RabbitMQ): the benchmarks read it before and after a load to say how many cores each side used."""

from __future__ import annotations

from collections import defaultdict

import psutil


def cpu_seconds(roles: dict[int, str]) -> dict[str, float]:
    """Per role of ``roles`` (pid to role; a process gone meanwhile counts nothing), and
    ``postgresql`` and ``rabbitmq`` over all their processes."""
    used: dict[str, float] = defaultdict(float)
    for pid, role in roles.items():
        try:
            t = psutil.Process(pid).cpu_times()
        except psutil.NoSuchProcess:
            continue
        used[role] += t.user + t.system
    for proc in psutil.process_iter(["name", "cpu_times"]):
        name, t = proc.info["name"] or "", proc.info["cpu_times"]
        if t is None:
            continue
        if name.startswith("postgres"):
            used["postgresql"] += t.user + t.system
        elif name.startswith("beam"):
            used["rabbitmq"] += t.user + t.system
    return used
