"""The `apispy` command. Thin: parse options, build the config, call the library, print one-line errors."""

from __future__ import annotations

import sys

import click

from sniffer.capture.pcapfile import CaptureError
from sniffer.config import ConfigError, load_config
from sniffer.replay import open_all, replay
from sniffer.sinks.jsonl import JsonLinesSink
from sniffer.summary import render_summary

EXIT_USAGE = 2


def fail(message: str) -> None:
    click.echo(f"apispy: error: {message}", err=True)
    sys.exit(EXIT_USAGE)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="apispy")
def main() -> None:
    """apispy: passive monitor for HTTP API traffic."""


@main.command("replay")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=True))
@click.option("--transactions", "transactions_path", metavar="PATH|-", help="Write one JSON line per transaction.")
@click.option("--config", "config_path", metavar="PATH", help="Configuration file (TOML, YAML or JSON).")
@click.option("--quiet", is_flag=True, help="No summary on stderr.")
def replay_command(files: tuple[str, ...], transactions_path: str | None, config_path: str | None, quiet: bool) -> None:
    """Read capture FILEs (pcap or pcapng) in order as one stream and report the HTTP transactions in them."""
    try:
        config = load_config(config_path)
        readers = open_all(list(files))
    except (ConfigError, CaptureError) as error:
        fail(str(error))
    sink = JsonLinesSink(transactions_path) if transactions_path else None
    on_transaction = sink.write if sink else (lambda transaction: None)
    total_bytes = sum(reader.size for reader in readers)
    try:
        if sys.stderr.isatty() and not quiet:
            with click.progressbar(length=total_bytes, label="reading", file=sys.stderr) as bar:
                result = replay(readers, config, on_transaction, bar.update)
        else:
            result = replay(readers, config, on_transaction)
    except BrokenPipeError:
        sys.exit(0)
    finally:
        if sink:
            sink.close()
    for warning in result.warnings:
        click.echo(f"apispy: warning: {warning}", err=True)
    if not quiet:
        click.echo(render_summary(result.counters, result.endpoints, []), err=True)
