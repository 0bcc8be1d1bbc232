# The one image every Lookalike app service runs (api, worker, beat, indexer, init): see
# docker-compose.yml. Neo4j and Redis run from their own official images.

# --- build: wheels for the project and every dependency. annoy is published only as source
# and needs a C++ compiler, and the index reader's scan (services/indexer/_popscan.c) is
# compiled with the project; building here keeps the compiler out of the runtime image.
FROM python:3.11-slim AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

# --- runtime
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    LOOKALIKE_STATE_DIR=/data \
    LOOKALIKE_MODEL_DIR=/opt/lookalike/models

# pip install . (from the wheels built above): the packages with their Cypher statements and
# Lua scripts, their dependencies and the `lookalike` console script. arcadedb-embedded comes
# along as a declared dependency but is never started here: production points NEO4J_URI at
# Neo4j.
COPY --from=build /wheels /wheels
RUN pip install --no-index --find-links /wheels lookalike \
    && rm -rf /wheels

# The embedding model, converted once into the image (readable by every user), so no
# worker converts it at start-up.
RUN lookalike model install

# Run as an unprivileged user. /data (thumbnails, the Annoy index, beat's schedule) is owned
# by it, so a named volume mounted there starts out writable.
RUN useradd --system --uid 10001 --create-home --home-dir /home/lookalike lookalike \
    && mkdir -p /data \
    && chown lookalike:lookalike /data
USER lookalike

EXPOSE 8000
CMD ["gunicorn", "--config=python:services.api.gunicorn_conf", "services.api.wsgi:app"]
