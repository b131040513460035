"""``mlops-nb predict`` and ``mlops-nb serve``."""

from __future__ import annotations

import click


@click.command("predict")
@click.argument("model")
@click.option("--input", "input_path", required=True, type=click.Path(dir_okay=False), help="Rows to score (.parquet or .csv).")
@click.option("--output", required=True, type=click.Path(dir_okay=False), help="Where to write predictions (.parquet or .csv).")
@click.option("--keep", multiple=True, help="Input column to copy beside the predictions (repeatable), e.g. an id.")
@click.option("--no-drift", is_flag=True, help="Skip the drift check of the input against the training data.")
def predict_command(model: str, input_path: str, output: str, keep: tuple[str, ...], no_drift: bool) -> None:
    """Score a file with MODEL (NAME@ALIAS, NAME:VERSION or a digest), recorded as a scoring run."""
    from .predict import predict

    result = predict(model, input_path, output=output, keep=list(keep) or None, drift_check=not no_drift)
    click.echo(result.summary())
    if result.drift is not None:
        click.echo(f"  input drift: {result.drift.summary()}")
    for note in result.notes:
        click.echo(f"  {note}")


@click.command("serve")
@click.argument("model")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=click.IntRange(0, 65535))
@click.option("--poll", default=1.0, show_default=True, type=click.FloatRange(min=0.05), help="Seconds between alias checks.")
@click.option("--token-file", type=click.Path(dir_okay=False), help="Bearer tokens, one NAME:TOKEN a line (also: MLOPS_NB_SERVE_TOKEN).")
@click.option("--no-auth", is_flag=True, help="No token needed (only on a loopback address).")
@click.option("--certfile", type=click.Path(dir_okay=False), help="TLS certificate (PEM): serve HTTPS.")
@click.option("--keyfile", type=click.Path(dir_okay=False), help="TLS private key (PEM).")
@click.option("--max-bytes", default=10 * 1024 * 1024, show_default=True, type=click.IntRange(min=1), help="Largest request body.")
@click.option("--max-rows", default=100_000, show_default=True, type=click.IntRange(min=1), help="Most rows per request.")
@click.option("--record-every", default=60.0, show_default=True, type=click.FloatRange(min=0.1),
              help="Seconds between the scoring runs recording each caller's requests and rows.")  # fmt: skip
@click.option("--log-sample", default=0.0, show_default=True, type=click.FloatRange(0, 1),
              help="Share of scored requests logged as data (served:MODEL) for the monitors; 0: none.")  # fmt: skip
@click.option("--log-keep", default=None, metavar="DURATION",
              help="Delete logged rows older than this (7d, 12h); default: kept until mlops-nb gc.")  # fmt: skip
def serve_command(
    model: str, host: str, port: int, poll: float, token_file: str | None, no_auth: bool, certfile: str | None,
    keyfile: str | None, max_bytes: int, max_rows: int, record_every: float, log_sample: float = 0.0,
    log_keep: str | None = None,
) -> None:  # fmt: skip
    """Serve MODEL over HTTP (/invocations, /health, /version); follows NAME@ALIAS when it moves."""
    from .access import Access
    from .serve import serve
    from .traffic import parse_since

    access = Access(tokens={}, max_bytes=max_bytes, max_rows=max_rows, record_every=record_every)
    serve(model, host=host, port=port, poll=poll, access=access, token_file=token_file, no_auth=no_auth,
          certfile=certfile, keyfile=keyfile, log_sample=log_sample, log_keep=parse_since(log_keep))  # fmt: skip


COMMANDS = [predict_command, serve_command]
