"""Shared fixtures: tshark must be there (CI installs it through the README's test command)."""

from __future__ import annotations

import shutil

import pytest


@pytest.fixture(scope="session")
def tshark() -> str:
    path = shutil.which("tshark")
    if path is None:
        pytest.fail("tshark is required (Debian package tshark); run the suite through .ci/run, which installs it")
    return path


@pytest.fixture(scope="session")
def influx_server(tmp_path_factory: pytest.TempPathFactory):
    """A real influxd 1.6 (Debian's influxdb) behind nginx translating /api/v2/write, for the whole session."""
    from support.influx import InfluxServer

    for program in ("influxd", "nginx"):
        if shutil.which(program) is None and not shutil.os.path.exists(f"/usr/sbin/{program}"):
            pytest.fail(f"{program} is required (Debian packages influxdb and nginx); run the suite through .ci/run")
    server = InfluxServer(tmp_path_factory.mktemp("influx")).start()
    yield server
    server.stop()


@pytest.fixture
def influx(influx_server):
    """The session's InfluxDB with an empty `apispy` database."""
    influx_server.drop_all()
    return influx_server
