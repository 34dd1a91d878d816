"""WSGI entry point: ``gunicorn wsgi:app`` or ``flask --app wsgi run``.

In embedded mode (no ``REDIS_URL``) the periodic-job scheduler runs in this process too.
"""

from agnes import create_app
from agnes.cli_server import start_embedded_scheduler

app = create_app()
start_embedded_scheduler(app)
