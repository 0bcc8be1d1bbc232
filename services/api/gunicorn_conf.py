"""The one gunicorn configuration of the API, used by ``lookalike serve`` (and so the tests,
the demo and the benchmarks), the Dockerfile and docker-compose.yml
(``gunicorn --config=python:services.api.gunicorn_conf ...``). Command-line flags (bind,
workers, threads, access log) override it where a deployment differs.
"""

bind = "0.0.0.0:8000"
workers = 2
threads = 8
# Threads: requests mostly wait on the graph. gunicorn's gthread worker, answering the
# requests gunicorn refuses itself (an over-long URL, huge headers) in the API's JSON errors.
worker_class = "services.api.gunicorn_worker.JsonErrorWorker"
# Whole-graph exports and analyses can take a while; a worker silent this long is restarted.
timeout = 120
# Time for requests in flight to finish on a graceful stop (SIGTERM); SIGINT stops at once.
graceful_timeout = 30
keepalive = 5
errorlog = "-"
# One shared control socket path would clash between servers on one machine (tests, bench);
# gunicorn versions without the setting ignore it.
control_socket_disable = True
