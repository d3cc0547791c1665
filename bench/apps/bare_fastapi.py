"""Baseline: the smallest FastAPI app that acknowledges an event, served by uvicorn.

It answers 202 with an empty body to `POST /` and looks at nothing else: the
floor that any FastAPI-based event handler starts from.
"""

from __future__ import annotations

import os

import uvicorn
from fastapi import FastAPI, Response

app = FastAPI()


@app.post("/", status_code=202)
async def receive() -> Response:
    return Response(status_code=202)


if __name__ == "__main__":
    # The same uvicorn settings as functions.runtime.serve.run, on loopback.
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(os.environ["PORT"]),
        loop="auto",  # uvloop, which is installed
        http="httptools",
        ws="none",
        lifespan="on",
        access_log=False,
        log_config=None,
        server_header=False,
    )
