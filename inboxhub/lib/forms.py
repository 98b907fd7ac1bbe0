"""Showing a service's refusal on the form that asked for the change."""

from django import forms
from django.core.exceptions import ValidationError


def add_service_errors(form: forms.BaseForm, exc: ValidationError) -> None:
    """Each error under its field, or above the form when the service named no field of this form."""
    for field, errors in exc.message_dict.items():
        form.add_error(field if field in form.fields else None, errors)
