"""Run the dev broker: `python -m functions.dev.broker --port 8080 --subscribers '{...}'`.

Each delivery record is one line on stdout, which `kshop dev` streams as its live log.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import uvicorn

from functions import topology
from functions.dev.broker import Broker


def _endpoints(parser: argparse.ArgumentParser, text: str, where: str) -> dict[str, str]:
    try:
        endpoints = json.loads(text)
    except ValueError as error:
        parser.error(f"{where}: not JSON: {error}")
    if not isinstance(endpoints, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in endpoints.items()
    ):
        parser.error(f"{where}: expected a JSON object of function name to base URL")
    return endpoints


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m functions.dev.broker",
        description="A local Knative broker for the kshop topology.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8080, help="port to listen on (default 8080)")
    parser.add_argument(
        "--namespace",
        default="default",
        help="the namespace in the ingress path /{namespace}/{broker}",
    )
    parser.add_argument(
        "--topology", help="the values file to read (default: $KSHOP_TOPOLOGY or the chart's)"
    )
    subscribers = parser.add_mutually_exclusive_group()
    subscribers.add_argument(
        "--subscribers",
        help='JSON: function name to base URL, e.g. \'{"orders": "http://127.0.0.1:8101"}\'',
    )
    subscribers.add_argument("--subscribers-file", type=Path, help="the same JSON, in a file")
    parser.add_argument(
        "--concurrency", type=int, default=64, help="requests in flight per trigger (default 64)"
    )
    parser.add_argument(
        "--drain-timeout",
        type=float,
        default=30.0,
        help="seconds to let in-flight deliveries finish on shutdown (default 30)",
    )
    args = parser.parse_args(argv)
    if args.subscribers_file is not None:
        try:
            text = args.subscribers_file.read_text()
        except OSError as error:
            parser.error(f"--subscribers-file: {error}")
        endpoints = _endpoints(parser, text, str(args.subscribers_file))
    else:
        endpoints = _endpoints(parser, args.subscribers or "{}", "--subscribers")
    logging.basicConfig(
        stream=sys.stdout, level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S"
    )
    # The delivery records say what happened; a line per HTTP call would bury them.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        broker = Broker(
            topology.load(args.topology),
            endpoints,
            namespace=args.namespace,
            url=f"http://{args.host}:{args.port}",
            concurrency=args.concurrency,
            drain_timeout=args.drain_timeout,
        )
    except ValueError as error:
        parser.error(str(error))
    uvicorn.run(broker.app, host=args.host, port=args.port, log_level="warning", lifespan="on")


if __name__ == "__main__":
    main()
