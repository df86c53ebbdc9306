"""moto's server (as `moto_server -H HOST -p PORT` runs it) with its S3 writes made atomic.

moto 5.2.5 checks `If-Match` / `If-None-Match` on PutObject and then stores the object without a
lock, so two concurrent conditional writers that read the same ETag can both succeed (seen as a
lost update about once in three runs of 24 aws-sdk-s3 writers). AWS S3 does not allow that. This
wrapper serialises requests that change state (PUT, POST, DELETE) and leaves reads concurrent.

usage: python moto_s3.py HOST PORT
"""

import sys
import threading

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple


class SerialWrites:
    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        if environ.get("REQUEST_METHOD") not in ("PUT", "POST", "DELETE"):
            return self.app(environ, start_response)
        with self.lock:
            # Write responses are small: finish the whole request inside the lock.
            return list(self.app(environ, start_response))


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(
        host,
        port,
        SerialWrites(app),
        threaded=True,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()
