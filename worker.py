"""RQ worker for Agnes jobs, inside an app context.

python worker.py            # work the queue (forks a work-horse per job)
python worker.py --burst    # work until the queue is empty, then exit
python worker.py --cron     # run the periodic-job scheduler (RQ cron) instead

SIGTERM or Ctrl+C: warm shutdown (the running job gets AGNES_WORKER_GRACE seconds, then it is
requeued); a second SIGTERM or Ctrl+C: cold shutdown (the job is requeued at once).
"""

from __future__ import annotations

import argparse
import logging
import sys

from agnes import create_app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cron", action="store_true", help="run the periodic-job scheduler")
    parser.add_argument("--burst", action="store_true", help="exit when the queue is empty")
    parser.add_argument("--name", default=None, help="worker name (default: host and pid)")
    args = parser.parse_args(argv)

    app = create_app()
    if not app.config["REDIS_URL"]:
        logging.getLogger("agnes.worker").error(
            "REDIS_URL is not set: jobs run inside the web process (embedded mode); no worker is needed."
        )
        return 2
    backend = app.extensions["agnes_jobs"]
    with app.app_context():
        heartbeat = int(app.config["AGNES_JOB_HEARTBEAT"])
        if args.cron:
            from agnes.jobs.schedule import rq_cron_scheduler

            rq_cron_scheduler(backend, recover_every=heartbeat).start()
            return 0
        from agnes.jobs.worker import AgnesWorker

        worker = AgnesWorker(
            [backend.queue],
            connection=backend.connection,
            name=args.name,
            grace_seconds=app.config["AGNES_WORKER_GRACE"],
            job_monitoring_interval=heartbeat,
        )
        worker.work(burst=args.burst, with_scheduler=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
