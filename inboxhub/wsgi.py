import os

from django.core.wsgi import get_wsgi_application

from inboxhub.lib.secret_key import require_secret_key

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "inboxhub.settings")
application = get_wsgi_application()
require_secret_key()  # any WSGI server, runserver included; gunicorn already refused in gunicorn.conf.py
