# One image for every process of the scaled deployment (docker-compose.yml).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml ./
COPY . .
RUN pip install --no-cache-dir . && python manage.py collectstatic --noinput
RUN useradd --system --home /app inboxhub && mkdir -p /app/var && chown -R inboxhub /app/var
USER inboxhub
EXPOSE 8000 2525
# Refuses to start without SECRET_KEY (gunicorn.conf.py); so do runsmtp and the Celery worker and beat.
CMD ["gunicorn", "inboxhub.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-"]
