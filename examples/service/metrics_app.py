#!/usr/bin/env python3
"""A stand-in service for the monitoring drill (plans/service-slo-drill.yaml): it serves
Prometheus metrics of the requests it pretends to answer, 100 per second, a share of them
failing. The share is what a drill's guard watches; change it while it runs with
`curl -X POST 'http://HOST:PORT/error_ratio?value=0.2'`.

    python3 examples/service/metrics_app.py --port 9400 --pid-file /tmp/demo.pid
"""
import argparse
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

RATE = 100.0  # requests per second


class State:
    def __init__(self, error_ratio):
        self.lock = threading.Lock()
        self.error_ratio = error_ratio
        self.ok = 0.0
        self.errors = 0.0
        self.last = time.monotonic()

    def advance(self):
        with self.lock:
            now = time.monotonic()
            served = (now - self.last) * RATE
            self.last = now
            self.errors += served * self.error_ratio
            self.ok += served * (1 - self.error_ratio)
            return int(self.ok), int(self.errors)


def handler(state):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def reply(self, status, body, content_type="text/plain; version=0.0.4"):
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            if urlparse(self.path).path != "/metrics":
                return self.reply(200, "ok\n")
            ok, errors = state.advance()
            self.reply(
                200,
                "# HELP demo_requests_total Requests answered, by status code.\n"
                "# TYPE demo_requests_total counter\n"
                f'demo_requests_total{{code="200"}} {ok}\n'
                f'demo_requests_total{{code="500"}} {errors}\n',
            )

        def do_POST(self):
            url = urlparse(self.path)
            values = parse_qs(url.query).get("value", [])
            if url.path != "/error_ratio" or not values:
                return self.reply(400, "POST /error_ratio?value=0.2\n")
            try:
                ratio = float(values[0])
            except ValueError:
                return self.reply(400, "value must be a number between 0 and 1\n")
            if not 0 <= ratio <= 1:
                return self.reply(400, "value must be a number between 0 and 1\n")
            state.advance()
            with state.lock:
                state.error_ratio = ratio
            self.reply(200, f"error ratio {ratio}\n")

    return Handler


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--pid-file")
    parser.add_argument("--error-ratio", type=float, default=0.0)
    args = parser.parse_args()
    server = ThreadingHTTPServer((args.host, args.port), handler(State(args.error_ratio)))
    if args.pid_file:
        with open(args.pid_file + ".tmp", "w") as f:
            f.write(f"{os.getpid()}\n")
        os.replace(args.pid_file + ".tmp", args.pid_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
