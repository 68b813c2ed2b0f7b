"""Gavel: the payments core of an auction marketplace on Stripe Connect."""

from gavel.celery import app as celery_app

__all__ = ["celery_app"]
