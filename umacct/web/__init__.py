"""``umacct serve``: the pages behind the links the tool mails (``pip install 'umacct[web]'``).

``create_app(config, settings)`` builds the ASGI application (Starlette, Jinja2 templates);
``umacct.web.serve`` runs it under uvicorn. The core never imports this package.
"""
