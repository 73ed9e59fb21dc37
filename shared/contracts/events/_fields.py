"""Field helpers shared by the event schemas."""
from marshmallow import fields, validate

from ..base import Identifier, NonEmpty, Point, Tolerant  # noqa: F401

UNIT = fields.String  # a unit id from the reference data: street.*, town.*, park.*, dept.*, op.*


def ident(**kwargs):
    return fields.String(validate=Identifier, **kwargs)


def when(**kwargs):
    kwargs.setdefault("required", True)
    return fields.AwareDateTime(**kwargs)


def actor():
    """Who did it: a person id/name and their unit, or 'system' for timers."""
    return fields.String(required=True, validate=validate.Length(min=1, max=200))
