"""Job functions for the jobs tests. They are plain functions, not fixtures: RQ stores a job's
function by dotted path (``tests.jobs.conftest.run_flaky``) and the worker imports it from there, so
tests import them (``from tests.jobs.conftest import run_flaky``) and enqueue them."""

from __future__ import annotations

from pathlib import Path

from agnes.jobs import set_progress


def run_flaky(marker: str) -> str:
    """Fails until the marker file exists, then succeeds (for retry tests)."""
    if not Path(marker).exists():
        Path(marker).write_text("seen")
        raise ValueError("first attempt fails on purpose")
    return "ok"


def run_always_fails() -> None:
    raise RuntimeError("token=agnes_pat_SECRETSECRET leaked?")


def run_with_progress(steps: int) -> int:
    for i in range(steps):
        set_progress(i + 1, steps, f"step {i + 1}")
    return steps


class HangingGitServer:
    """A repository served as ``/acme.git`` over git smart HTTP (dulwich) on a loopback port whose first fetch
    (``POST git-upload-pack``) hangs until :meth:`release`: a sync that stays "running" until
    the test kills its worker. Later fetches are served normally."""

    def __init__(self, repo: Path) -> None:
        import threading
        from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

        from dulwich.repo import Repo
        from dulwich.server import DictBackend
        from dulwich.web import make_wsgi_chain

        self.fetching = threading.Event()
        self.released = threading.Event()
        git_app = make_wsgi_chain(DictBackend({"/acme.git": Repo(str(repo))}))

        def app(environ, start_response):  # type: ignore[no-untyped-def]
            if environ["REQUEST_METHOD"] == "POST" and not self.fetching.is_set():
                self.fetching.set()
                self.released.wait(300)
            return git_app(environ, start_response)

        class Quiet(WSGIRequestHandler):
            def log_message(self, *args):  # type: ignore[no-untyped-def]
                pass

        class Threaded(WSGIServer):
            daemon_threads = True

            def process_request(self, request, client_address):  # type: ignore[no-untyped-def]
                threading.Thread(target=self._serve_one, args=(request, client_address), daemon=True).start()

            def _serve_one(self, request, client_address):  # type: ignore[no-untyped-def]
                try:
                    self.finish_request(request, client_address)
                except Exception:  # the killed client closed its end
                    pass
                finally:
                    self.shutdown_request(request)

        self.server = make_server("127.0.0.1", 0, app, server_class=Threaded, handler_class=Quiet)
        self.url = f"http://127.0.0.1:{self.server.server_port}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def release(self) -> None:
        self.released.set()

    def stop(self) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()
