FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends git && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY agnes ./agnes
COPY cli ./cli
COPY wsgi.py worker.py ./
RUN pip install --no-cache-dir .
ENV AGNES_DATA_DIR=/data
EXPOSE 8000
CMD ["gunicorn", "--no-control-socket", "--workers", "2", "--threads", "8", "--bind", "0.0.0.0:8000", "wsgi:app"]
