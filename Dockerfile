# Agnes image: web (default command), `python worker.py` and `python worker.py --cron` (compose.yml).
FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends git make \
    && rm -rf /var/lib/apt/lists/*
# The virtualenv the README's `make install` installs into (VIRTUAL_ENV is honoured by the Makefile).
ENV VIRTUAL_ENV=/opt/agnes PATH=/opt/agnes/bin:$PATH PIP_NO_CACHE_DIR=1 AGNES_DATA_DIR=/data
RUN python -m venv /opt/agnes
WORKDIR /app
COPY pyproject.toml README.md Makefile ./
COPY agnes ./agnes
COPY cli ./cli
COPY wsgi.py worker.py ./
RUN make install
EXPOSE 8000
CMD ["gunicorn", "--no-control-socket", "--workers", "2", "--threads", "8", "--graceful-timeout", "8", "--bind", "0.0.0.0:8000", "--access-logfile", "-", "wsgi:app"]
