"""Run the application under uvicorn: our own access log, no proxy headers but the trusted.

uvicorn's access log is off (its lines carry the query string, where the tokens are): the
application writes its own (``umacct.web.access``). uvicorn's own reading of
``X-Forwarded-For`` is off too: only ``[web] trusted_proxies`` are believed, by the
application. A listening address other than loopback needs a trusted proxy in front: the
server speaks plain http, so TLS must end in that proxy. With ``[web] bind_dn`` its password
must be stored before the server starts (else every form would fail).
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

from umacct.clock import Clock
from umacct.config import Config
from umacct.errors import ConfigError
from umacct.loopback import is_loopback_host
from umacct.web.settings import WebSettings

LOG_FORMAT = "%(asctime)s %(name)s %(levelname)s %(message)s"


def check_listening(host: str, settings: WebSettings) -> None:
    """Refuse to listen beyond loopback without a trusted (TLS) reverse proxy configured."""
    if not is_loopback_host(host) and not settings.trusted_proxies:
        raise ConfigError(
            f"umacct serve speaks plain http: listening on {host} needs a TLS reverse proxy "
            "in front, listed in [web] trusted_proxies (or listen on 127.0.0.1 behind it)"
        )


def setup_logging(stream: TextIO | None = None) -> None:
    """The application's log and access log, and uvicorn's errors, on ``stream`` (stderr)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    for name in ("umacct.web", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(logging.INFO)
        logger.propagate = False
    logging.getLogger("uvicorn.access").disabled = True


def serve(
    config: Config, settings: WebSettings, *, host: str, port: int, clock: Clock | None = None
) -> None:
    """Serve until interrupted (SIGINT, SIGTERM), on ``clock`` (the machine's by default)."""
    import uvicorn

    from umacct.web.app import create_app
    from umacct.web.binding import check_web_bind_password

    check_listening(host, settings)
    check_web_bind_password(config, settings)
    setup_logging()
    app = create_app(config, settings, clock=clock)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=host,
            port=port,
            access_log=False,
            proxy_headers=False,
            server_header=False,
            log_config=None,
            lifespan="off",
            ws="none",
            limit_concurrency=200,
            timeout_keep_alive=5,
            h11_max_incomplete_event_size=16 * 1024,
        )
    )
    logging.getLogger("umacct.web").info("serving on http://%s:%d/", host, port)
    server.run()
