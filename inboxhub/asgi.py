import os

from django.core.asgi import get_asgi_application

from inboxhub.lib.secret_key import require_secret_key

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "inboxhub.settings")
application = get_asgi_application()
require_secret_key()
