"""WSGI entry point for production servers: ``gunicorn services.api.wsgi:app``.

Settings come from the environment (``LOOKALIKE_*``, ``NEO4J_*``, ``REDIS_URL``), like every
other process of the system.
"""

from __future__ import annotations

from lookalike.settings import load_settings
from services.api.app import create_app

app = create_app(load_settings())
