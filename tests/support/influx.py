"""A real InfluxDB 1.6 on loopback, with nginx in front translating the 2.x write API to the 1.x one.

influxdb-client writes to `/api/v2/write?org=..&bucket=db/rp&precision=ns` with `Authorization: Token ..`.
InfluxDB 1.8+ translates that itself; 1.6.7 (Debian's package) predates it, so nginx does the same translation:
bucket `db/rp` becomes `db` and `rp`, precision `ns`/`us` becomes `n`/`u`. Everything else (`/query`, `/ping`)
passes through. Each instance has its own ports and temporary directories and is stopped at the end.
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

INFLUXD_CONFIG = """
reporting-disabled = true
bind-address = "127.0.0.1:{rpc_port}"
[meta]
  dir = "{root}/meta"
[data]
  dir = "{root}/data"
  wal-dir = "{root}/wal"
  query-log-enabled = false
[coordinator]
[retention]
  enabled = false
[monitor]
  store-enabled = false
[http]
  enabled = true
  bind-address = "127.0.0.1:{http_port}"
  auth-enabled = false
  log-enabled = false
[continuous_queries]
  enabled = false
[subscriber]
  enabled = false
"""

NGINX_CONFIG = """
daemon off;
worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/nginx-error.log warn;
events {{ worker_connections 256; }}
http {{
  access_log off;
  client_body_temp_path {root}/client_body;
  proxy_temp_path {root}/proxy;
  fastcgi_temp_path {root}/fastcgi;
  uwsgi_temp_path {root}/uwsgi;
  scgi_temp_path {root}/scgi;
  client_max_body_size 64m;
  # Keep request bodies in memory and stream them on: the worker (user nobody) cannot write temp files in a
  # private temporary directory.
  client_body_buffer_size 64m;
  proxy_request_buffering off;
  # $arg_bucket is the raw query value: the "/" of db/rp arrives percent-encoded.
  map $arg_bucket $influx_db {{ "~^(?<db>[^/%]+)(/|%2[Ff])" $db; default $arg_bucket; }}
  map $arg_bucket $influx_rp {{ "~^[^/%]+(/|%2[Ff])(?<rp>.+)$" $rp; default ""; }}
  map $arg_precision $influx_precision {{ ns n; us u; ms ms; s s; default n; }}
  server {{
    listen 127.0.0.1:{port};
    location = /api/v2/write {{
      proxy_pass http://127.0.0.1:{influx_port}/write?db=$influx_db&rp=$influx_rp&precision=$influx_precision;
    }}
    location / {{
      proxy_pass http://127.0.0.1:{influx_port};
    }}
  }}
}}
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(url: str, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


class InfluxServer:
    """influxd plus its nginx translator; `url` is what apispy is given, `query()` reads back with InfluxQL."""

    database = "apispy"

    def __init__(self, root: Path) -> None:
        self.root = root
        self.influx_port = free_port()
        self.rpc_port = free_port()
        self.port = free_port()
        self.influxd: subprocess.Popen | None = None
        self.nginx: subprocess.Popen | None = None
        (root / "influxd.conf").write_text(
            INFLUXD_CONFIG.format(root=root, rpc_port=self.rpc_port, http_port=self.influx_port)
        )
        (root / "nginx.conf").write_text(NGINX_CONFIG.format(root=root, port=self.port, influx_port=self.influx_port))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def bucket(self) -> str:
        return f"{self.database}/autogen"

    def start(self) -> InfluxServer:
        self.start_influxd()
        self.nginx = subprocess.Popen(
            [shutil.which("nginx") or "/usr/sbin/nginx", "-p", str(self.root), "-c", str(self.root / "nginx.conf")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_for(f"{self.url}/ping")
        self.query(f'CREATE DATABASE "{self.database}"', database=None, method="POST")
        return self

    def start_influxd(self) -> None:
        log = open(self.root / "influxd.log", "ab")  # noqa: SIM115
        self.influxd = subprocess.Popen(
            [shutil.which("influxd") or "/usr/bin/influxd", "-config", str(self.root / "influxd.conf")],
            stdout=log, stderr=log,
        )
        wait_for(f"http://127.0.0.1:{self.influx_port}/ping")

    def stop_influxd(self) -> None:
        if self.influxd is not None:
            self.influxd.send_signal(signal.SIGTERM)
            self.influxd.wait(timeout=30)
            self.influxd = None

    def stop(self) -> None:
        self.stop_influxd()
        if self.nginx is not None:
            self.nginx.send_signal(signal.SIGQUIT)
            try:
                self.nginx.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.nginx.kill()
            self.nginx = None

    def query(self, text: str, database: str | None = "apispy", method: str = "GET", epoch: str = "ns") -> list:
        """Runs InfluxQL over /query; returns the list of series of the first statement."""
        parameters = {"q": text, "epoch": epoch}
        if database:
            parameters["db"] = database
        encoded = urllib.parse.urlencode(parameters)
        if method == "POST":
            request = urllib.request.Request(f"{self.url}/query", data=encoded.encode(), method="POST")
        else:
            request = urllib.request.Request(f"{self.url}/query?{encoded}")
        with urllib.request.urlopen(request, timeout=30) as response:
            body = json.load(response)
        result = body["results"][0]
        if "error" in result:
            raise RuntimeError(f"InfluxQL error: {result['error']} in {text}")
        return result.get("series", [])

    def drop_all(self) -> None:
        self.query(f'DROP DATABASE "{self.database}"', database=None, method="POST")
        self.query(f'CREATE DATABASE "{self.database}"', database=None, method="POST")
